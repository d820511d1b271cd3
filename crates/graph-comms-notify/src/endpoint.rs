//! The axum callback endpoint: authenticate, read, parse, queue, answer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use graph_comms_model::{CommsNotifications, TenantId};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::clip::{clip, clip_detail};
use crate::events::{Delivery, EventReceiver, NotificationEvent};

/// The header Graph names each notification message with; a retry of the
/// message carries the same id.
pub const MESSAGE_ID_HEADER: &str = "x-microsoft-skype-message-id";

/// [`MESSAGE_ID_HEADER`] as a header name, so a lookup parses no name per request.
static MESSAGE_ID: HeaderName = HeaderName::from_static(MESSAGE_ID_HEADER);
use crate::keys::{HttpKeySource, KeySource, KeyStore};
use crate::metrics::{Counters, NotifyMetrics, RejectReason};
use crate::stages::{StageObserver, Stamps, observe_response, stamp};
use crate::{NotifyConfig, NotifyError};

/// Seconds a 503 asks the sender to wait before retrying.
const RETRY_AFTER_SECS: &str = "1";
/// Body of every 401: the precise reason goes to the log, not to the caller.
/// The body of every 401 the endpoint answers (the reason is logged, never
/// sent): how a check such as `transfer-bot doctor` knows a URL reaches it.
pub const UNAUTHORIZED_BODY: &str = "invalid or missing bearer token";

/// The notification callback endpoint. Cheap to clone; clones share one queue and key cache.
#[derive(Clone)]
pub struct NotifyEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    max_body_bytes: usize,
    queue_capacity: usize,
    auth: Authenticator,
    keys: Arc<KeyStore>,
    counters: Arc<Counters>,
    queue: Mutex<Queue>,
    admission: std::sync::OnceLock<Arc<dyn Admission>>,
    journal: std::sync::OnceLock<Arc<dyn Journal>>,
    stages: std::sync::OnceLock<Arc<dyn StageObserver>>,
}

/// Decides, before a request is answered 202, whether its events may be queued.
///
/// A runtime that bounds its per-call queues implements this: refusing answers
/// 503 with `Retry-After`, so Graph delivers the notification again later and
/// nothing acknowledged is ever dropped.
pub trait Admission: Send + Sync + 'static {
    /// Reserves room for all of `events` (all or none). `false` refuses the request.
    fn admit(&self, events: &[NotificationEvent]) -> bool;
}

/// Makes a request's events durable before it is answered 202.
///
/// Runtimes that share calls among processes implement this: 202 then means
/// "the shared store has it", so an instance that dies after answering loses
/// nothing. An error answers 503 with `Retry-After` (Graph delivers again);
/// events already written by a failed call may then arrive twice, which
/// readers of Graph's notifications tolerate anyway.
#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Writes all of `events`; `Err` carries the reason for the log.
    async fn record(&self, events: &[NotificationEvent]) -> Result<(), String>;
}

/// The sending side; `sender` is `None` once closed. Sequence numbers are
/// given under the same lock as the sends, so queue order is sequence order.
struct Queue {
    sender: Option<mpsc::Sender<NotificationEvent>>,
    next_sequence: u64,
}

/// A refused request: the counter, the body the caller sees, and the detail for the log.
struct Rejection {
    reason: RejectReason,
    message: String,
    detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            reason,
            detail: message.clone(),
            message,
        }
    }
}

impl std::fmt::Debug for NotifyEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyEndpoint")
            .field("keys_loaded", &self.keys_loaded())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl NotifyEndpoint {
    /// An endpoint that fetches its keys over HTTP from `config.openid_configuration_url`.
    pub fn new(config: NotifyConfig) -> Result<(NotifyEndpoint, EventReceiver), NotifyError> {
        let source = HttpKeySource::new(config.openid_configuration_url.clone())?;
        Self::with_key_source(config, Arc::new(source))
    }

    /// An endpoint that takes its keys from `keys`.
    pub fn with_key_source(
        config: NotifyConfig,
        keys: Arc<dyn KeySource>,
    ) -> Result<(NotifyEndpoint, EventReceiver), NotifyError> {
        config.validate()?;
        // Pin the crypto backend so another crate's jsonwebtoken features cannot leave it ambiguous.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let counters = Arc::new(Counters::default());
        let keys = Arc::new(KeyStore::new(
            keys,
            config.key_refresh_interval,
            config.min_key_refetch_interval,
            Arc::clone(&counters),
        ));
        let (sender, receiver) = mpsc::channel(config.queue_capacity);
        let inner = Inner {
            max_body_bytes: config.max_body_bytes,
            queue_capacity: config.queue_capacity,
            auth: Authenticator::new(&config, Arc::clone(&keys), Arc::clone(&counters)),
            keys,
            counters,
            queue: Mutex::new(Queue {
                sender: Some(sender),
                next_sequence: 0,
            }),
            admission: std::sync::OnceLock::new(),
            journal: std::sync::OnceLock::new(),
            stages: std::sync::OnceLock::new(),
        };
        let endpoint = NotifyEndpoint { inner: Arc::new(inner) };
        Ok((endpoint, EventReceiver { inner: receiver }))
    }

    /// A router that answers `POST {path}`. The path is matched literally
    /// (a missing leading `/` is added; braces are not route parameters).
    pub fn router_at(&self, path: &str) -> Router {
        let literal = path.replace('{', "{{").replace('}', "}}");
        let path = if literal.starts_with('/') {
            literal
        } else {
            format!("/{literal}")
        };
        Router::new().route(&path, post(receive)).with_state(self.clone())
    }

    /// Installs the admission check run before each request is queued (once; a
    /// second call is ignored and returns `false`).
    pub fn set_admission(&self, admission: Arc<dyn Admission>) -> bool {
        self.inner.admission.set(admission).is_ok()
    }

    /// Installs the journal that makes events durable before 202 (once; a
    /// second call is ignored and returns `false`).
    pub fn set_journal(&self, journal: Arc<dyn Journal>) -> bool {
        self.inner.journal.set(journal).is_ok()
    }

    /// Installs the observer that receives every answered request's
    /// [`RequestStages`](crate::RequestStages) (once; a second call is ignored
    /// and returns `false`). Without one, no stamps are taken.
    pub fn set_stage_observer(&self, observer: Arc<dyn StageObserver>) -> bool {
        self.inner.stages.set(observer).is_ok()
    }

    /// Fetches the key set now (for example at startup, to fail fast), whatever the rate limit.
    /// On failure the previous keys stay in use.
    pub async fn refresh_keys(&self) -> Result<(), NotifyError> {
        self.inner.keys.refresh().await
    }

    /// Whether a key set has been loaded (readiness).
    pub fn keys_loaded(&self) -> bool {
        self.inner.keys.loaded()
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> NotifyMetrics {
        self.inner.counters.snapshot()
    }

    /// Stops accepting: later requests get 503. Queued events stay in the receiver,
    /// which returns `None` once they are drained.
    pub fn close(&self) {
        self.lock_queue().sender = None;
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock_queue().sender.is_none()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn handle(&self, request: Request) -> Response {
        let received_at = Instant::now();
        let Some(observer) = self.inner.stages.get() else {
            let answer = self.accept(request, received_at, None).await;
            return self.respond(answer);
        };
        let (mut parts, body) = request.into_parts();
        let extensions = std::mem::take(&mut parts.extensions);
        let mut stamps = Stamps::new(received_at);
        let answer = self
            .accept(Request::from_parts(parts, body), received_at, Some(&mut stamps))
            .await;
        observe_response(self.respond(answer), Arc::clone(observer), stamps, extensions)
    }

    fn respond(&self, answer: Result<u64, Rejection>) -> Response {
        match answer {
            Ok(events) => {
                tracing::Span::current().record("events", events);
                tracing::debug!(status = 202, events, "notifications queued");
                StatusCode::ACCEPTED.into_response()
            }
            Err(rejection) => self.reject(rejection),
        }
    }

    fn reject(&self, rejection: Rejection) -> Response {
        let Rejection {
            reason,
            message,
            detail,
        } = rejection;
        self.inner.counters.reject(reason);
        let status = reason.status();
        tracing::warn!(
            status = status.as_u16(),
            reason = reason.as_str(),
            detail = clip_detail(detail),
            "notification refused"
        );
        let mut response = match status {
            StatusCode::UNAUTHORIZED => (status, UNAUTHORIZED_BODY).into_response(),
            _ => (status, message).into_response(),
        };
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }

    /// Runs every check and queues the body's events; returns how many were queued.
    /// Takes the stage stamps into `stamps` when there is one.
    async fn accept(
        &self,
        request: Request,
        received_at: Instant,
        mut stamps: Option<&mut Stamps>,
    ) -> Result<u64, Rejection> {
        if self.is_closed() {
            return Err(Rejection::new(RejectReason::Closed, "the endpoint is shutting down"));
        }
        let (parts, body) = request.into_parts();
        self.check_declared_length(&parts.headers)?;
        let tenant = self
            .inner
            .auth
            .authenticate(&parts.headers)
            .await
            .map_err(|failure| Rejection {
                reason: failure.reason,
                message: UNAUTHORIZED_BODY.into(),
                detail: failure.detail,
            })?;
        stamp(stamps.as_deref_mut(), |s| &mut s.authenticated);
        tracing::Span::current().record("tenant", tenant.as_str());
        check_content_type(&parts.headers)?;
        let body = self.read_body(body).await?;
        let envelope = CommsNotifications::from_slice(&body)
            .map_err(|e| Rejection::new(RejectReason::MalformedBody, format!("malformed notification body: {e}")))?;
        // A scan: cheaper than hashing the name for the few headers Graph sends.
        let message_id = parts
            .headers
            .iter()
            .find_map(|(name, value)| (*name == MESSAGE_ID).then_some(value))
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let delivery = Delivery::new(message_id, 0).with_query(parts.uri.query());
        let events = to_events(envelope, &tenant, received_at, &delivery)?;
        stamp(stamps.as_deref_mut(), |s| &mut s.parsed);
        record_call(&events);
        if let Some(journal) = self.inner.journal.get() {
            journal.record(&events).await.map_err(|detail| Rejection {
                reason: RejectReason::JournalUnavailable,
                message: "the call store is unavailable; retry later".into(),
                detail,
            })?;
        }
        let queued = self.enqueue(events)?;
        stamp(stamps, |s| &mut s.queued);
        Ok(queued)
    }

    fn check_declared_length(&self, headers: &HeaderMap) -> Result<(), Rejection> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(len) if len > self.inner.max_body_bytes as u64 => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    fn too_large(&self) -> Rejection {
        Rejection::new(
            RejectReason::TooLarge,
            format!("request body is larger than {} bytes", self.inner.max_body_bytes),
        )
    }

    /// Reads the body, stopping as soon as it passes the limit.
    async fn read_body(&self, body: Body) -> Result<Vec<u8>, Rejection> {
        let mut stream = body.into_data_stream();
        let mut buffer = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Rejection::new(
                    RejectReason::MalformedBody,
                    format!("could not read the request body: {e}"),
                )
            })?;
            if buffer.len().saturating_add(chunk.len()) > self.inner.max_body_bytes {
                return Err(self.too_large());
            }
            buffer.extend_from_slice(&chunk);
        }
        Ok(buffer)
    }

    /// Queues all events or none.
    fn enqueue(&self, events: Vec<NotificationEvent>) -> Result<u64, Rejection> {
        let count = events.len();
        if count > self.inner.queue_capacity {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "the body holds {count} notifications, more than the queue's {}",
                    self.inner.queue_capacity
                ),
            ));
        }
        let mut queue = self.lock_queue();
        let queue = &mut *queue;
        let closed = || Rejection::new(RejectReason::Closed, "the endpoint is shutting down");
        let Some(sender) = &queue.sender else {
            return Err(closed());
        };
        let permits = match sender.try_reserve_many(count) {
            Ok(permits) => permits,
            Err(TrySendError::Full(())) => {
                return Err(Rejection::new(
                    RejectReason::QueueFull,
                    "the notification queue is full",
                ));
            }
            Err(TrySendError::Closed(())) => return Err(closed()),
        };
        // After the reservation, so a refusal here returns the permits unused.
        if let Some(admission) = self.inner.admission.get()
            && !admission.admit(&events)
        {
            return Err(Rejection::new(
                RejectReason::CallBusy,
                "the handler's queue for this call is full",
            ));
        }
        // Counted before the events become visible, so a consumer never sees them uncounted.
        Counters::bump(&self.inner.counters.accepted_requests, 1);
        Counters::bump(&self.inner.counters.queued_events, count as u64);
        for (permit, mut event) in permits.zip(events) {
            event.sequence = queue.next_sequence;
            queue.next_sequence += 1;
            permit.send(event);
        }
        Ok(count as u64)
    }
}

/// Names the call (and its `callChainId`) on the request's span when every item is about
/// one call, as Graph sends them, so the webhook's lines join the call's `call` span.
fn record_call(events: &[NotificationEvent]) {
    let Some(first) = events.first() else {
        return;
    };
    if events.iter().any(|e| e.call_id != first.call_id) {
        return;
    }
    let span = tracing::Span::current();
    span.record("call_id", tracing::field::display(first.call_id.dashed()));
    if let Some(chain) = events
        .iter()
        .find_map(|e| e.notification.call().and_then(|c| c.call_chain_id.as_deref()))
    {
        span.record("call_chain_id", tracing::field::display(chain));
    }
}

async fn receive(State(endpoint): State<NotifyEndpoint>, request: Request) -> Response {
    let span = tracing::info_span!(
        "graph_notification",
        tenant = tracing::field::Empty,
        call_id = tracing::field::Empty,
        call_chain_id = tracing::field::Empty,
        events = tracing::field::Empty
    );
    endpoint.handle(request).instrument(span).await
}

/// `application/json`, with an optional `charset=utf-8`.
fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let refuse = |got: &str| {
        Rejection::new(
            RejectReason::BadContentType,
            format!("content type must be application/json, got {}", clip(got)),
        )
    };
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(refuse(""));
    };
    let Ok(value) = value.to_str() else {
        return Err(refuse("<not ASCII>"));
    };
    let mut params = value.split(';').map(str::trim);
    let essence = params.next().unwrap_or_default();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(refuse(value));
    }
    for param in params.filter(|p| !p.is_empty()) {
        let (name, charset) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = charset.trim().trim_matches('"');
            if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("utf8") {
                return Err(refuse(value));
            }
        }
    }
    Ok(())
}

fn to_events(
    envelope: CommsNotifications,
    tenant: &TenantId,
    received_at: Instant,
    delivery: &Delivery,
) -> Result<Vec<NotificationEvent>, Rejection> {
    envelope
        .value
        .into_iter()
        .enumerate()
        .map(|(index, notification)| {
            let resource = notification.resource().map_err(|e| {
                Rejection::new(
                    RejectReason::MalformedBody,
                    format!("notification {index} names no call: {e}"),
                )
            })?;
            Ok(NotificationEvent {
                call_id: resource.call_id.clone(),
                resource,
                notification,
                tenant_id: tenant.clone(),
                received_at,
                sequence: 0, // given when queued
                delivery: Delivery {
                    item: u32::try_from(index).unwrap_or(u32::MAX),
                    ..delivery.clone()
                },
            })
        })
        .collect()
}
