//! The client, its builder, the call actions, and the request loop.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use graph_comms_model::{
    AnswerRequest, AppId, Call, CallId, ChangeScreenSharingRoleRequest, ClientContextRequest, CommsOperation,
    InviteParticipantsRequest, ParticipantId, PlayPromptRequest, RecordResponseRequest, RedirectRequest, RejectRequest,
    SendDtmfTonesRequest, StartHoldMusicRequest, TenantId, TransferRequest, UpdateRecordingStatusRequest,
};
use http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use tracing::field::Empty;

use crate::auth::{ClientSecretCredential, TokenCaches, TokenProvider};
use crate::certificate::{ClientCertificate, ClientCertificateCredential};
use crate::error::GraphClientError;
use crate::federated::FederatedTokenCredential;
use crate::retry::{AttemptOutcome, Idempotency, RetryPolicy, Verdict, parse_retry_after, verdict};

pub(crate) const DEFAULT_USER_AGENT: &str = concat!("graph-comms-client/", env!("CARGO_PKG_VERSION"));
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_GRAPH: &str = "https://graph.microsoft.com/v1.0";
const DEFAULT_LOGIN: &str = "https://login.microsoftonline.com";

/// Sees every attempt of every request, for metrics.
pub trait RequestObserver: Send + Sync {
    /// Called once per attempt, when it has an answer or has failed.
    fn on_response(&self, info: &RequestInfo);
}

/// One attempt, as a [`RequestObserver`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The action, for example `transfer` or `get_call`.
    pub action: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The path below the Graph base URL.
    pub path: String,
    /// The status Graph answered with; `None` for a timeout or network failure.
    pub status: Option<u16>,
    /// How long this attempt took.
    pub elapsed: Duration,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
}

/// A successful answer from Graph.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphResponse<T> {
    /// The decoded body (`()` for actions that return none).
    pub value: T,
    /// The HTTP status (200, 201, 202 or 204).
    pub status: u16,
    /// Graph's `request-id` header, for support requests.
    pub request_id: Option<String>,
    /// The `client-request-id` this client sent (the same on every retry).
    pub client_request_id: String,
}

/// A Microsoft Graph calls client: app-only auth, typed call actions, safe retries.
///
/// Cheap to clone; clones share the connection pool and the token cache.
///
/// Tokens are per tenant: [`GraphClient::for_tenant`] gives a client that
/// acts in the call's tenant (a multi-tenant bot), sharing the pool and the
/// per-tenant token caches.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
    /// The tenant whose token this handle sends; `None`: the default tenant.
    tenant: Option<TenantId>,
}

struct Inner {
    http: reqwest::Client,
    graph_base_url: String,
    /// The host (and port) of `graph_base_url`: the spans' `server.address`.
    server_address: String,
    tokens: TokenCaches,
    request_timeout: Duration,
    scenario_id: Option<HeaderValue>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph_base_url", &self.inner.graph_base_url)
            .field("tenant", &self.tenant)
            .field("request_timeout", &self.inner.request_timeout)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`GraphClient`]; start with [`GraphClient::builder`].
#[must_use]
pub struct GraphClientBuilder {
    credentials: Option<(TenantId, AppId, String)>,
    certificate: Option<(TenantId, AppId, ClientCertificate)>,
    federated: Option<(TenantId, AppId, PathBuf)>,
    tenant_credentials: Vec<(TenantId, AppId, String)>,
    token_provider: Option<Arc<dyn TokenProvider>>,
    graph_base_url: String,
    login_base_url: String,
    request_timeout: Duration,
    user_agent: String,
    scenario_id: Option<String>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
}

impl fmt::Debug for GraphClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClientBuilder")
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(t, a, _)| (t, a, "<redacted>")),
            )
            .field("certificate", &self.certificate)
            .field("federated", &self.federated)
            .field("graph_base_url", &self.graph_base_url)
            .field("login_base_url", &self.login_base_url)
            .field("request_timeout", &self.request_timeout)
            .field("user_agent", &self.user_agent)
            .field("scenario_id", &self.scenario_id)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// A builder with public-cloud URLs, a 30 s request timeout and the default [`RetryPolicy`].
    pub fn builder() -> GraphClientBuilder {
        GraphClientBuilder {
            credentials: None,
            certificate: None,
            federated: None,
            tenant_credentials: Vec::new(),
            token_provider: None,
            graph_base_url: DEFAULT_GRAPH.into(),
            login_base_url: DEFAULT_LOGIN.into(),
            request_timeout: DEFAULT_TIMEOUT,
            user_agent: DEFAULT_USER_AGENT.into(),
            scenario_id: None,
            retry: RetryPolicy::default(),
            observer: None,
        }
    }
}

impl GraphClientBuilder {
    /// Authenticate as this app with a client secret (client-credentials flow).
    pub fn credentials(mut self, tenant: TenantId, app_id: AppId, client_secret: impl Into<String>) -> Self {
        self.credentials = Some((tenant, app_id, client_secret.into()));
        self
    }

    /// Authenticate as this app with a certificate (a signed client assertion)
    /// instead of a secret; takes precedence over [`Self::credentials`].
    pub fn certificate(mut self, tenant: TenantId, app_id: AppId, certificate: ClientCertificate) -> Self {
        self.certificate = Some((tenant, app_id, certificate));
        self
    }

    /// Authenticate as this app with a federated token (workload identity
    /// federation, as on AKS): `token_file` holds a token of an issuer the app
    /// trusts, sent as the client assertion and read again on every token
    /// fetch (see [`FederatedTokenCredential`]). The token endpoint is at
    /// [`Self::login_base_url`] (`AZURE_AUTHORITY_HOST` on AKS). Takes
    /// precedence over [`Self::credentials`] and [`Self::certificate`].
    pub fn federated_credentials(mut self, tenant: TenantId, app_id: AppId, token_file: impl Into<PathBuf>) -> Self {
        self.federated = Some((tenant, app_id, token_file.into()));
        self
    }

    /// Authenticate in `tenant` with these credentials instead of the default
    /// ones (an app consented in several tenants with a secret per tenant).
    /// Used by [`GraphClient::for_tenant`] for that tenant.
    pub fn tenant_credentials(mut self, tenant: TenantId, app_id: AppId, client_secret: impl Into<String>) -> Self {
        self.tenant_credentials.push((tenant, app_id, client_secret.into()));
        self
    }

    /// Get tokens from this provider instead (takes precedence over [`Self::credentials`]).
    pub fn token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.token_provider = Some(provider);
        self
    }

    /// The Graph base URL; default `https://graph.microsoft.com/v1.0`.
    pub fn graph_base_url(mut self, url: impl Into<String>) -> Self {
        self.graph_base_url = url.into();
        self
    }

    /// The Entra ID base URL; default `https://login.microsoftonline.com`.
    pub fn login_base_url(mut self, url: impl Into<String>) -> Self {
        self.login_base_url = url.into();
        self
    }

    /// How long one attempt (and one token request) may take; default 30 s.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// A `scenario-id` header sent with every request outside [`with_scenario_id`](crate::with_scenario_id)
    /// (which the handler framework sets per call), to correlate in Graph's logs.
    pub fn scenario_id(mut self, id: impl Into<String>) -> Self {
        self.scenario_id = Some(id.into());
        self
    }

    /// How retries are bounded.
    pub fn retry_policy(mut self, p: RetryPolicy) -> Self {
        self.retry = p;
        self
    }

    /// Called once per attempt, for metrics.
    pub fn observer(mut self, o: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(o);
        self
    }

    /// The client. Fails on missing credentials, bad URLs or headers, or a zero budget.
    pub fn build(self) -> Result<GraphClient, GraphClientError> {
        let graph_base_url = base_url("graph_base_url", &self.graph_base_url)?;
        let login_base_url = base_url("login_base_url", &self.login_base_url)?;
        if self.request_timeout.is_zero() {
            return Err(GraphClientError::Config(
                "request_timeout must be more than zero".into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(GraphClientError::Config(
                "retry_policy.max_attempts must be at least 1".into(),
            ));
        }
        let scenario_id = self
            .scenario_id
            .map(|id| HeaderValue::from_str(&id))
            .transpose()
            .map_err(|_| GraphClientError::Config("scenario_id is not a valid header value".into()))?;
        let http = http_client(&self.user_agent)?;
        let default_tenant = match (&self.federated, &self.certificate, &self.credentials) {
            (Some((tenant, _, _)), _, _) | (None, Some((tenant, _, _)), _) | (None, None, Some((tenant, _, _))) => {
                Some(tenant.clone())
            }
            (None, None, None) => None,
        };
        let provider: Arc<dyn TokenProvider> =
            match (self.token_provider, self.federated, self.certificate, self.credentials) {
                (Some(provider), _, _, _) => provider,
                (None, Some((tenant, app_id, token_file)), _, _) => {
                    crate::auth::check_tenant(&tenant).map_err(|e| GraphClientError::Config(e.to_string()))?;
                    Arc::new(FederatedTokenCredential::with_http(
                        http.clone(),
                        &login_base_url,
                        &tenant,
                        app_id,
                        token_file,
                        self.request_timeout,
                    ))
                }
                (None, None, Some((tenant, app_id, certificate)), _) => {
                    crate::auth::check_tenant(&tenant).map_err(|e| GraphClientError::Config(e.to_string()))?;
                    Arc::new(ClientCertificateCredential::with_http(
                        http.clone(),
                        &login_base_url,
                        &tenant,
                        app_id,
                        certificate,
                        self.request_timeout,
                    ))
                }
                (None, None, None, Some((tenant, app_id, secret))) => {
                    crate::auth::check_tenant(&tenant).map_err(|e| GraphClientError::Config(e.to_string()))?;
                    Arc::new(ClientSecretCredential::with_http(
                        http.clone(),
                        &login_base_url,
                        &tenant,
                        app_id,
                        secret,
                        self.request_timeout,
                    ))
                }
                (None, None, None, None) => {
                    return Err(GraphClientError::Config(
                    "no credentials: call credentials(), certificate(), federated_credentials() or token_provider()"
                        .into(),
                ));
                }
            };
        let provider = if self.tenant_credentials.is_empty() {
            provider
        } else {
            let mut by_tenant = std::collections::HashMap::new();
            for (tenant, app_id, secret) in self.tenant_credentials {
                crate::auth::check_tenant(&tenant).map_err(|e| GraphClientError::Config(e.to_string()))?;
                let credential: Arc<dyn TokenProvider> = Arc::new(ClientSecretCredential::with_http(
                    http.clone(),
                    &login_base_url,
                    &tenant,
                    app_id,
                    secret,
                    self.request_timeout,
                ));
                by_tenant.insert(tenant, credential);
            }
            Arc::new(crate::auth::PerTenantProvider {
                default: provider,
                by_tenant,
            })
        };
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                server_address: server_address(&graph_base_url).to_owned(),
                graph_base_url,
                tokens: TokenCaches::new(provider, default_tenant),
                request_timeout: self.request_timeout,
                scenario_id,
                retry: self.retry,
                observer: self.observer,
            }),
            tenant: None,
        })
    }
}

fn base_url(name: &str, url: &str) -> Result<String, GraphClientError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url.to_owned())
    } else {
        Err(GraphClientError::Config(format!(
            "{name} must be an http(s) URL, got {url:?}"
        )))
    }
}

/// The authority of an `http(s)://` URL (no user info), for `server.address`.
fn server_address(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority.rsplit_once('@').map_or(authority, |(_, host)| host)
}

/// The HTTP client every request uses: no redirects (a redirected POST would
/// change meaning), timeouts applied per attempt by the caller.
pub(crate) fn http_client(user_agent: &str) -> Result<reqwest::Client, GraphClientError> {
    reqwest::Client::builder()
        .user_agent(user_agent)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| GraphClientError::Config(format!("HTTP client: {}", error_chain(&err))))
}

/// An error and its sources, as one line.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Percent-encodes one path segment (call ids are opaque strings).
pub(crate) fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `/participants/{id}{suffix}`, the id percent-encoded.
fn participant_suffix(participant: &ParticipantId, suffix: &str) -> String {
    format!("/participants/{}{suffix}", encode_segment(participant.as_str()))
}

/// One call action: what it is called, where it goes, and whether it may be re-sent.
struct Action {
    name: &'static str,
    method: Method,
    path: String,
    idempotency: Idempotency,
}

impl Action {
    fn on_call(name: &'static str, method: Method, call: &CallId, suffix: &str, idempotency: Idempotency) -> Self {
        Self {
            name,
            method,
            path: format!("/communications/calls/{}{suffix}", encode_segment(call.as_str())),
            idempotency,
        }
    }

    /// A POST on a call: never re-sent after an ambiguous failure.
    fn post(name: &'static str, call: &CallId, suffix: &str) -> Self {
        Self::on_call(name, Method::POST, call, suffix, Idempotency::NonIdempotent)
    }
}

/// A 2xx answer before decoding.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    client_request_id: String,
}

impl Reply {
    fn request_id(&self) -> Option<String> {
        header_text(&self.headers, "request-id")
    }

    fn empty(self) -> GraphResponse<()> {
        GraphResponse {
            value: (),
            status: self.status,
            request_id: self.request_id(),
            client_request_id: self.client_request_id,
        }
    }

    fn json<T: DeserializeOwned>(self, action: &'static str) -> Result<GraphResponse<T>, GraphClientError> {
        let value = graph_comms_model::from_slice(&self.body).map_err(|err| GraphClientError::Decode {
            action,
            status: self.status,
            client_request_id: self.client_request_id.clone(),
            message: err.to_string(),
        })?;
        Ok(GraphResponse {
            value,
            status: self.status,
            request_id: self.request_id(),
            client_request_id: self.client_request_id,
        })
    }

    fn optional_json(self, action: &'static str) -> Result<GraphResponse<Option<serde_json::Value>>, GraphClientError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            let empty = self.empty();
            return Ok(GraphResponse {
                value: None,
                status: empty.status,
                request_id: empty.request_id,
                client_request_id: empty.client_request_id,
            });
        }
        self.json(action)
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// What one attempt produced.
enum Attempt {
    Answered {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
    },
    TimedOut,
    NotSent(String),
    Interrupted(String),
}

impl Attempt {
    fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::Answered { status, .. } => AttemptOutcome::Status(*status),
            Self::TimedOut => AttemptOutcome::Timeout,
            Self::NotSent(_) => AttemptOutcome::NotSent,
            Self::Interrupted(_) => AttemptOutcome::Interrupted,
        }
    }

    fn status(&self) -> Option<u16> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Answered { headers, .. } => headers
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
            _ => None,
        }
    }

    fn describe(&self, timeout: Duration) -> String {
        match self {
            Self::Answered { status, .. } => format!("Graph answered {status}, which does not say whether it acted"),
            Self::TimedOut => format!("no answer within {timeout:?}"),
            Self::NotSent(message) => format!("not sent: {message}"),
            Self::Interrupted(message) => format!("connection failed after sending: {message}"),
        }
    }

    /// The final result once no retry follows.
    fn finish(self, action: &Action, client_request_id: String, timeout: Duration) -> Result<Reply, GraphClientError> {
        match self {
            Self::Answered { status, headers, body } if (200..300).contains(&status) => Ok(Reply {
                status,
                headers,
                body,
                client_request_id,
            }),
            Self::Answered { status, headers, body } => Err(GraphClientError::from_response(
                status,
                &headers,
                &body,
                client_request_id,
            )),
            Self::TimedOut => Err(GraphClientError::Timeout {
                action: action.name,
                client_request_id,
                timeout,
            }),
            Self::NotSent(message) | Self::Interrupted(message) => Err(GraphClientError::Network {
                action: action.name,
                client_request_id,
                message,
            }),
        }
    }
}

impl GraphClient {
    /// Sends `action` with retries as the action's [`Idempotency`] and the
    /// [`RetryPolicy`] allow. The `client-request-id` is the same on every attempt.
    async fn execute(&self, action: Action, body: Option<Bytes>) -> Result<Reply, GraphClientError> {
        let client_request_id = uuid::Uuid::new_v4().to_string();
        // Field names follow OpenTelemetry's HTTP client conventions, so an
        // exporting subscriber needs no mapping; `otel.kind` marks a client span.
        let span = tracing::info_span!(
            "graph_request",
            otel.kind = "client",
            action = action.name,
            http.request.method = %action.method,
            url.path = %action.path,
            server.address = %self.inner.server_address,
            client_request_id = %client_request_id,
            attempt = Empty,
            http.response.status_code = Empty,
            request_id = Empty,
        );
        self.execute_in_span(action, body, client_request_id)
            .instrument(span)
            .await
    }

    async fn execute_in_span(
        &self,
        action: Action,
        body: Option<Bytes>,
        client_request_id: String,
    ) -> Result<Reply, GraphClientError> {
        let inner = &self.inner;
        let url = format!("{}{}", inner.graph_base_url, action.path);
        let started = Instant::now();
        let mut reauthenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let span = tracing::Span::current();
            span.record("attempt", attempt);
            let tokens = inner.tokens.cache(self.tenant.as_ref());
            let token = tokens.get().await?;
            let attempt_started = Instant::now();
            let result = self
                .send_once(&action, &url, body.clone(), &token, &client_request_id, attempt)
                .await;
            if let Attempt::Answered { status, headers, .. } = &result {
                span.record("http.response.status_code", status);
                if let Some(id) = header_text(headers, "request-id") {
                    span.record("request_id", id);
                }
                let elapsed_ms = u64::try_from(attempt_started.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::debug!(elapsed_ms, "graph answered");
            }
            if let Some(observer) = &inner.observer {
                observer.on_response(&RequestInfo {
                    action: action.name,
                    method: action.method.to_string(),
                    path: action.path.clone(),
                    status: result.status(),
                    elapsed: attempt_started.elapsed(),
                    attempt,
                });
            }
            let wait = match verdict(result.outcome(), action.idempotency) {
                Verdict::Finish => None,
                Verdict::OutcomeUnknown => {
                    let reason = result.describe(inner.request_timeout);
                    tracing::warn!(%reason, "outcome unknown; not re-sending a non-idempotent request");
                    return Err(GraphClientError::OutcomeUnknown {
                        action: action.name,
                        client_request_id,
                        reason,
                    });
                }
                Verdict::Reauthenticate if !reauthenticated => {
                    reauthenticated = true;
                    tokens.invalidate(&token);
                    inner
                        .retry
                        .wait_before(attempt, Some(Duration::ZERO), started.elapsed())
                }
                Verdict::Reauthenticate => None,
                Verdict::Retry => inner
                    .retry
                    .wait_before(attempt, result.retry_after(), started.elapsed()),
            };
            match wait {
                Some(wait) => {
                    tracing::info!(status = ?result.status(), wait_ms = wait.as_millis(), "retrying");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    let finished = result.finish(&action, client_request_id, inner.request_timeout);
                    // The caller decides how bad a failure is; Graph's answer is in the error.
                    if let Err(err) = &finished {
                        tracing::debug!(error = %err, "request failed");
                    }
                    return finished;
                }
            }
        }
    }

    async fn send_once(
        &self,
        action: &Action,
        url: &str,
        body: Option<Bytes>,
        token: &str,
        client_request_id: &str,
        attempt: u32,
    ) -> Attempt {
        let inner = &self.inner;
        let mut authorization = match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => value,
            Err(_) => return Attempt::NotSent("the access token is not a valid header value".into()),
        };
        authorization.set_sensitive(true);
        let mut request = inner
            .http
            .request(action.method.clone(), url)
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json")
            .header("client-request-id", client_request_id);
        if let Some(scenario) = crate::scenario::current().or_else(|| inner.scenario_id.clone()) {
            request = request.header("scenario-id", scenario);
        }
        if attempt > 1 {
            request = request.header("retry-attempt", (attempt - 1).to_string());
        }
        request = match body {
            Some(body) => request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body),
            // An explicit empty body sends `Content-Length: 0` on bodiless POSTs.
            None if action.method == Method::POST => request.body(Bytes::new()),
            None => request,
        };
        let exchange = async {
            let response = request.send().await.map_err(|err| {
                if err.is_connect() {
                    Attempt::NotSent(error_chain(&err))
                } else {
                    Attempt::Interrupted(error_chain(&err))
                }
            })?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .bytes()
                .await
                .map_err(|err| Attempt::Interrupted(error_chain(&err)))?;
            Ok(Attempt::Answered { status, headers, body })
        };
        match tokio::time::timeout(inner.request_timeout, exchange).await {
            Ok(Ok(answered)) => answered,
            Ok(Err(failed)) => failed,
            Err(_) => Attempt::TimedOut,
        }
    }

    async fn send_json<B: Serialize>(&self, action: Action, body: &B) -> Result<Reply, GraphClientError> {
        let body = serde_json::to_vec(body)
            .map_err(|err| GraphClientError::InvalidRequest(format!("{} body: {err}", action.name)))?;
        self.execute(action, Some(Bytes::from(body))).await
    }

    /// Places an outgoing call (`POST /communications/calls`; 201 with the new call).
    pub async fn create_call(&self, call: &Call) -> Result<GraphResponse<Call>, GraphClientError> {
        let action = Action {
            name: "create_call",
            method: Method::POST,
            path: "/communications/calls".into(),
            idempotency: Idempotency::NonIdempotent,
        };
        self.send_json(action, call).await?.json("create_call")
    }

    /// Reads a call (`GET /communications/calls/{id}`).
    pub async fn get_call(&self, call: &CallId) -> Result<GraphResponse<Call>, GraphClientError> {
        let action = Action::on_call("get_call", Method::GET, call, "", Idempotency::Idempotent);
        self.execute(action, None).await?.json("get_call")
    }

    /// Answers an incoming call (202; the outcome arrives as notifications).
    pub async fn answer(&self, call: &CallId, request: &AnswerRequest) -> Result<GraphResponse<()>, GraphClientError> {
        Ok(self
            .send_json(Action::post("answer", call, "/answer"), request)
            .await?
            .empty())
    }

    /// Rejects an incoming call (202).
    pub async fn reject(&self, call: &CallId, request: &RejectRequest) -> Result<GraphResponse<()>, GraphClientError> {
        Ok(self
            .send_json(Action::post("reject", call, "/reject"), request)
            .await?
            .empty())
    }

    /// Redirects an incoming call before it is answered (202).
    pub async fn redirect(
        &self,
        call: &CallId,
        request: &RedirectRequest,
    ) -> Result<GraphResponse<()>, GraphClientError> {
        Ok(self
            .send_json(Action::post("redirect", call, "/redirect"), request)
            .await?
            .empty())
    }

    /// Transfers an established call (202; the outcome arrives as notifications).
    ///
    /// Never re-sent after an ambiguous failure: that gives
    /// [`GraphClientError::OutcomeUnknown`], and the notifications tell what happened.
    pub async fn transfer(
        &self,
        call: &CallId,
        request: &TransferRequest,
    ) -> Result<GraphResponse<()>, GraphClientError> {
        Ok(self
            .send_json(Action::post("transfer", call, "/transfer"), request)
            .await?
            .empty())
    }

    /// Keeps a call alive (200); a 404 means the call has ended. Safe to repeat.
    pub async fn keep_alive(&self, call: &CallId) -> Result<GraphResponse<()>, GraphClientError> {
        let action = Action::on_call("keep_alive", Method::POST, call, "/keepAlive", Idempotency::Idempotent);
        Ok(self.execute(action, None).await?.empty())
    }

    /// Hangs up (`DELETE /communications/calls/{id}`; 204). Safe to repeat
    /// (a repeat may find the call gone: 404).
    pub async fn hang_up(&self, call: &CallId) -> Result<GraphResponse<()>, GraphClientError> {
        let action = Action::on_call("hang_up", Method::DELETE, call, "", Idempotency::Idempotent);
        Ok(self.execute(action, None).await?.empty())
    }

    /// Plays prompts (200 with a running `playPromptOperation`).
    pub async fn play_prompt(
        &self,
        call: &CallId,
        request: &PlayPromptRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("play_prompt", call, "/playPrompt");
        self.send_json(action, request).await?.json("play_prompt")
    }

    /// Cancels queued and running prompts and recordings.
    pub async fn cancel_media_processing(
        &self,
        call: &CallId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("cancel_media_processing", call, "/cancelMediaProcessing");
        self.send_json(action, request).await?.json("cancel_media_processing")
    }

    /// Invites participants into a group call.
    pub async fn invite_participants(
        &self,
        call: &CallId,
        request: &InviteParticipantsRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("invite_participants", call, "/participants/invite");
        self.send_json(action, request).await?.json("invite_participants")
    }

    /// Mutes the bot.
    pub async fn mute(
        &self,
        call: &CallId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        self.send_json(Action::post("mute", call, "/mute"), request)
            .await?
            .json("mute")
    }

    /// Unmutes the bot.
    pub async fn unmute(
        &self,
        call: &CallId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        self.send_json(Action::post("unmute", call, "/unmute"), request)
            .await?
            .json("unmute")
    }

    /// Plays prompts, then records the caller's answer (`recordResponse`; 200
    /// with a running `recordOperation`; the recording's location arrives in
    /// the operation's completion notification). Not re-sent after an
    /// ambiguous failure: a second recording would start.
    pub async fn record_response(
        &self,
        call: &CallId,
        request: &RecordResponseRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("record_response", call, "/recordResponse");
        self.send_json(action, request).await?.json("record_response")
    }

    /// Subscribes to the caller's DTMF tones (`subscribeToTone`); tones then
    /// arrive as `toneInfo` on call notifications. Subscribing twice is the
    /// same as once, so it is retried like a GET.
    pub async fn subscribe_to_tone(
        &self,
        call: &CallId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::on_call(
            "subscribe_to_tone",
            Method::POST,
            call,
            "/subscribeToTone",
            Idempotency::Idempotent,
        );
        self.send_json(action, request).await?.json("subscribe_to_tone")
    }

    /// Sends DTMF tones into the call (`sendDtmfTones`). Never re-sent after
    /// an ambiguous failure: the far end would hear the digits twice.
    pub async fn send_dtmf_tones(
        &self,
        call: &CallId,
        request: &SendDtmfTonesRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("send_dtmf_tones", call, "/sendDtmfTones");
        self.send_json(action, request).await?.json("send_dtmf_tones")
    }

    /// Sets the recording status (`updateRecordingStatus`, policy-based
    /// recording). It sets an absolute value, so it is retried like a GET.
    pub async fn update_recording_status(
        &self,
        call: &CallId,
        request: &UpdateRecordingStatusRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::on_call(
            "update_recording_status",
            Method::POST,
            call,
            "/updateRecordingStatus",
            Idempotency::Idempotent,
        );
        self.send_json(action, request).await?.json("update_recording_status")
    }

    /// Changes the bot's screen-sharing role (`changeScreenSharingRole`; no
    /// body in the answer). It sets an absolute role, so it is retried like a GET.
    pub async fn change_screen_sharing_role(
        &self,
        call: &CallId,
        request: &ChangeScreenSharingRoleRequest,
    ) -> Result<GraphResponse<()>, GraphClientError> {
        let action = Action::on_call(
            "change_screen_sharing_role",
            Method::POST,
            call,
            "/changeScreenSharingRole",
            Idempotency::Idempotent,
        );
        Ok(self.send_json(action, request).await?.empty())
    }

    /// Adds the large gallery view (`addLargeGalleryView`). Not re-sent after
    /// an ambiguous failure.
    pub async fn add_large_gallery_view(
        &self,
        call: &CallId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("add_large_gallery_view", call, "/addLargeGalleryView");
        self.send_json(action, request).await?.json("add_large_gallery_view")
    }

    /// Mutes another participant (`POST .../participants/{id}/mute`).
    pub async fn mute_participant(
        &self,
        call: &CallId,
        participant: &ParticipantId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post("mute_participant", call, &participant_suffix(participant, "/mute"));
        self.send_json(action, request).await?.json("mute_participant")
    }

    /// Puts a participant on hold with music (`startHoldMusic`).
    pub async fn start_hold_music(
        &self,
        call: &CallId,
        participant: &ParticipantId,
        request: &StartHoldMusicRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post(
            "start_hold_music",
            call,
            &participant_suffix(participant, "/startHoldMusic"),
        );
        self.send_json(action, request).await?.json("start_hold_music")
    }

    /// Takes a participant off hold (`stopHoldMusic`).
    pub async fn stop_hold_music(
        &self,
        call: &CallId,
        participant: &ParticipantId,
        request: &ClientContextRequest,
    ) -> Result<GraphResponse<CommsOperation>, GraphClientError> {
        let action = Action::post(
            "stop_hold_music",
            call,
            &participant_suffix(participant, "/stopHoldMusic"),
        );
        self.send_json(action, request).await?.json("stop_hold_music")
    }

    /// Removes a participant from a group call (`DELETE .../participants/{id}`;
    /// 204). Safe to repeat (a repeat may find the participant gone: 404).
    pub async fn delete_participant(
        &self,
        call: &CallId,
        participant: &ParticipantId,
    ) -> Result<GraphResponse<()>, GraphClientError> {
        let action = Action::on_call(
            "delete_participant",
            Method::DELETE,
            call,
            &participant_suffix(participant, ""),
            Idempotency::Idempotent,
        );
        Ok(self.execute(action, None).await?.empty())
    }

    /// Any request below the Graph base URL (`path` like `/communications/calls/{id}/...`),
    /// with the same auth, headers and retry rules. `idempotent` decides whether
    /// an ambiguous failure is retried or becomes [`GraphClientError::OutcomeUnknown`].
    /// An empty response body gives `None`.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        idempotent: bool,
    ) -> Result<GraphResponse<Option<serde_json::Value>>, GraphClientError> {
        if path.contains("://") {
            return Err(GraphClientError::InvalidRequest(format!(
                "send_raw takes a path below the Graph base URL, got {path:?}"
            )));
        }
        let action = Action {
            name: "send_raw",
            method,
            path: if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            },
            idempotency: if idempotent {
                Idempotency::Idempotent
            } else {
                Idempotency::NonIdempotent
            },
        };
        let reply = match body {
            Some(body) => self.send_json(action, &body).await?,
            None => self.execute(action, None).await?,
        };
        reply.optional_json("send_raw")
    }

    /// Gets a token now (from the cache if it is fresh): a readiness probe
    /// that fails with [`GraphClientError::Auth`] when the credentials are wrong.
    pub async fn ensure_token(&self) -> Result<(), GraphClientError> {
        self.inner.tokens.cache(self.tenant.as_ref()).get().await?;
        Ok(())
    }

    /// The access token requests of this handle carry now (fetched if
    /// needed), for diagnostics that read its claims, such as the `roles`
    /// an app was granted. It is a secret: never log it.
    ///
    /// # Errors
    ///
    /// As [`Self::ensure_token`].
    pub async fn access_token(&self) -> Result<String, GraphClientError> {
        Ok(self.inner.tokens.cache(self.tenant.as_ref()).get().await?)
    }

    /// Token fetches so far (every tenant's cache; handles from
    /// [`Self::for_tenant`] share the counts).
    pub fn token_metrics(&self) -> crate::TokenMetrics {
        self.inner.tokens.metrics()
    }

    /// A handle that sends tokens of `tenant`: use the call's tenant (the
    /// `tid` of its notifications) for every request on that call. Cheap; it
    /// shares the connection pool and the token caches, and concurrent
    /// requests for one tenant still fetch one token. The token comes from
    /// [`TokenProvider::token_for_tenant`] (the built-in credentials request
    /// it at `{login}/{tenant}/oauth2/v2.0/token`, never `/common`).
    pub fn for_tenant(&self, tenant: &TenantId) -> GraphClient {
        GraphClient {
            inner: Arc::clone(&self.inner),
            tenant: Some(tenant.clone()),
        }
    }

    /// The tenant this handle acts in, if set with [`GraphClient::for_tenant`].
    pub fn tenant(&self) -> Option<&TenantId> {
        self.tenant.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(
            encode_segment("491f0b00-ffff-4bc9-a43e-b226498ec22a"),
            "491f0b00-ffff-4bc9-a43e-b226498ec22a"
        );
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn build_checks_its_settings() {
        assert!(matches!(
            GraphClient::builder().build(),
            Err(GraphClientError::Config(_))
        ));
        let with = || GraphClient::builder().credentials("t".into(), "a".into(), "s");
        assert!(with().build().is_ok());
        assert!(matches!(
            with().graph_base_url("localhost:1").build(),
            Err(GraphClientError::Config(_))
        ));
        assert!(matches!(
            with().request_timeout(Duration::ZERO).build(),
            Err(GraphClientError::Config(_))
        ));
        assert!(matches!(
            with()
                .retry_policy(RetryPolicy {
                    max_attempts: 0,
                    ..RetryPolicy::default()
                })
                .build(),
            Err(GraphClientError::Config(_))
        ));
        assert!(matches!(
            with().scenario_id("bad\nvalue").build(),
            Err(GraphClientError::Config(_))
        ));
        let builder = with();
        assert!(!format!("{builder:?}").contains("\"s\""));
    }
}
