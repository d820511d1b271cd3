//! The bot: builder, router, server, shutdown and metrics.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_comms_client::GraphClient;
use graph_comms_notify::{EventReceiver, NotifyConfig, NotifyEndpoint, NotifyError};
use tokio::task::JoinHandle;

use crate::handler::{CallHandler, ErrorHandler, LogErrors};
use crate::metrics::BotMetrics;
use crate::runtime::{Shared, SharedParts, lock};
use crate::store::{CallStore, InMemoryCallStore};

/// The default path notifications are POSTed to.
pub const DEFAULT_CALLBACK_PATH: &str = "/api/calls";

/// Timeouts and intervals.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// An attempt with no outcome after this fails with `TimedOut` (default 60 s).
    pub transfer_timeout: Duration,
    /// After an ambiguous `POST /transfer`, how long to wait for any notification
    /// before failing with `OutcomeUnknownNoNotification` (default 10 s).
    pub unknown_outcome_timeout: Duration,
    /// Between `keepAlive` requests for an established call (default 15 min;
    /// Graph ends calls idle for 45 min).
    pub keep_alive_interval: Duration,
    /// Retry delay after a failed `keepAlive` other than 404 (default 1 min).
    pub keep_alive_retry: Duration,
    /// Graph's window for deciding on an incoming call; exceeding it is logged
    /// (default 15 s).
    pub incoming_decision_deadline: Duration,
    /// How long shutdown waits for queued events and running hooks (default 30 s).
    pub shutdown_deadline: Duration,
    /// A call's worker task exits after its queue has been empty this long (default 5 s).
    pub worker_idle_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            transfer_timeout: Duration::from_secs(60),
            unknown_outcome_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15 * 60),
            keep_alive_retry: Duration::from_secs(60),
            incoming_decision_deadline: Duration::from_secs(15),
            shutdown_deadline: Duration::from_secs(30),
            worker_idle_timeout: Duration::from_secs(5),
        }
    }
}

impl Timings {
    /// Sets [`Timings::transfer_timeout`].
    pub fn transfer_timeout(mut self, d: Duration) -> Self {
        self.transfer_timeout = d;
        self
    }

    /// Sets [`Timings::unknown_outcome_timeout`].
    pub fn unknown_outcome_timeout(mut self, d: Duration) -> Self {
        self.unknown_outcome_timeout = d;
        self
    }

    /// Sets [`Timings::keep_alive_interval`].
    pub fn keep_alive_interval(mut self, d: Duration) -> Self {
        self.keep_alive_interval = d;
        self
    }

    /// Sets [`Timings::keep_alive_retry`].
    pub fn keep_alive_retry(mut self, d: Duration) -> Self {
        self.keep_alive_retry = d;
        self
    }

    /// Sets [`Timings::incoming_decision_deadline`].
    pub fn incoming_decision_deadline(mut self, d: Duration) -> Self {
        self.incoming_decision_deadline = d;
        self
    }

    /// Sets [`Timings::shutdown_deadline`].
    pub fn shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = d;
        self
    }

    /// Sets [`Timings::worker_idle_timeout`].
    pub fn worker_idle_timeout(mut self, d: Duration) -> Self {
        self.worker_idle_timeout = d;
        self
    }
}

/// A bot could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `client(...)` was not called.
    #[error("no Graph client: call BotBuilder::client")]
    MissingClient,
    /// Neither `notify(...)` nor `notify_endpoint(...)` was called.
    #[error("no notification endpoint: call BotBuilder::notify or BotBuilder::notify_endpoint")]
    MissingNotify,
    /// `handler(...)` was not called.
    #[error("no handler: call BotBuilder::handler")]
    MissingHandler,
    /// The notification endpoint could not be created.
    #[error("notification endpoint: {0}")]
    Notify(#[from] NotifyError),
    /// `build` must run inside a tokio runtime (it spawns the dispatcher).
    #[error("BotBuilder::build must be called inside a tokio runtime")]
    NoRuntime,
}

enum NotifySource {
    Config(NotifyConfig),
    Endpoint(NotifyEndpoint, EventReceiver),
}

/// Builds a [`Bot`]. Needs a client, a notification source and a handler.
#[must_use]
pub struct BotBuilder {
    client: Option<GraphClient>,
    notify: Option<NotifySource>,
    handler: Option<Arc<dyn CallHandler>>,
    store: Option<Arc<dyn CallStore>>,
    error_handler: Option<Arc<dyn ErrorHandler>>,
    callback_uri: Option<String>,
    callback_path: String,
    timings: Timings,
    allow_concurrent_transfers: bool,
}

impl BotBuilder {
    /// The Graph client the actions use.
    pub fn client(mut self, client: GraphClient) -> Self {
        self.client = Some(client);
        self
    }

    /// Creates the notification endpoint from this configuration (keys over HTTP).
    pub fn notify(mut self, config: NotifyConfig) -> Self {
        self.notify = Some(NotifySource::Config(config));
        self
    }

    /// Uses an endpoint created elsewhere (for example with a custom key source).
    pub fn notify_endpoint(mut self, endpoint: NotifyEndpoint, events: EventReceiver) -> Self {
        self.notify = Some(NotifySource::Endpoint(endpoint, events));
        self
    }

    /// The user's hooks.
    pub fn handler(mut self, handler: Arc<dyn CallHandler>) -> Self {
        self.handler = Some(handler);
        self
    }

    /// Where call records are kept (default: [`InMemoryCallStore`]).
    pub fn store(mut self, store: Arc<dyn CallStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Where hook failures go (default: [`LogErrors`]).
    pub fn error_handler(mut self, handler: Arc<dyn ErrorHandler>) -> Self {
        self.error_handler = Some(handler);
        self
    }

    /// The public URL of the callback route, sent as `callbackUri` when answering.
    pub fn callback_uri(mut self, uri: impl Into<String>) -> Self {
        self.callback_uri = Some(uri.into());
        self
    }

    /// The path [`Bot::router`] serves (default [`DEFAULT_CALLBACK_PATH`]).
    pub fn callback_path(mut self, path: impl Into<String>) -> Self {
        self.callback_path = path.into();
        self
    }

    /// Timeouts and intervals.
    pub fn timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    /// Lets a new transfer start while another is pending on the same call; the
    /// older one then fails with `Superseded` (default: refused with `TransferPending`).
    pub fn allow_concurrent_transfers(mut self, allow: bool) -> Self {
        self.allow_concurrent_transfers = allow;
        self
    }

    /// Builds the bot and starts its dispatcher.
    ///
    /// # Errors
    ///
    /// A missing part, an invalid notification configuration, or no tokio runtime.
    pub fn build(self) -> Result<Bot, BuildError> {
        let client = self.client.ok_or(BuildError::MissingClient)?;
        let handler = self.handler.ok_or(BuildError::MissingHandler)?;
        let (endpoint, events) = match self.notify.ok_or(BuildError::MissingNotify)? {
            NotifySource::Config(config) => NotifyEndpoint::new(config)?,
            NotifySource::Endpoint(endpoint, events) => (endpoint, events),
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let _guard = runtime.enter();
        let shared = Shared::start(SharedParts {
            client,
            handler,
            store: self.store.unwrap_or_else(|| Arc::new(InMemoryCallStore::new())),
            errors: self.error_handler.unwrap_or_else(|| Arc::new(LogErrors)),
            timings: self.timings,
            callback_uri: self.callback_uri,
            allow_concurrent_transfers: self.allow_concurrent_transfers,
        });
        let dispatcher = runtime.spawn(Arc::clone(&shared).dispatch(events));
        Ok(Bot {
            inner: Arc::new(BotInner {
                shared,
                endpoint,
                callback_path: self.callback_path,
                dispatcher: Mutex::new(Some(dispatcher)),
            }),
        })
    }
}

/// What [`Bot::shutdown`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every queued event was handled within the deadline.
    pub drained: bool,
    /// Events still queued or running when the deadline passed.
    pub events_left: usize,
}

struct BotInner {
    shared: Arc<Shared>,
    endpoint: NotifyEndpoint,
    callback_path: String,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

/// A running calling bot: mount [`Bot::router`] or run [`Bot::serve`].
///
/// Cheap to clone.
#[derive(Clone)]
pub struct Bot {
    inner: Arc<BotInner>,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot")
            .field("callback_path", &self.inner.callback_path)
            .finish_non_exhaustive()
    }
}

impl Bot {
    /// Starts building a bot.
    pub fn builder() -> BotBuilder {
        BotBuilder {
            client: None,
            notify: None,
            handler: None,
            store: None,
            error_handler: None,
            callback_uri: None,
            callback_path: DEFAULT_CALLBACK_PATH.to_owned(),
            timings: Timings::default(),
            allow_concurrent_transfers: false,
        }
    }

    /// The callback route (`POST {callback_path}`), to merge into an app's router.
    /// If you serve it yourself, stop your server and then call [`Bot::shutdown`].
    pub fn router(&self) -> axum::Router {
        self.inner.endpoint.router_at(&self.inner.callback_path)
    }

    /// The notification endpoint (key readiness, its own metrics).
    pub fn notify_endpoint(&self) -> &NotifyEndpoint {
        &self.inner.endpoint
    }

    /// The Graph client.
    pub fn client(&self) -> &GraphClient {
        &self.inner.shared.client
    }

    /// The timings in use.
    pub fn timings(&self) -> &Timings {
        &self.inner.shared.timings
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> BotMetrics {
        let shared = &self.inner.shared;
        shared
            .counters
            .snapshot(shared.live_calls(), shared.active_workers(), shared.in_flight())
    }

    /// Serves [`Bot::router`] on `listener` until `shutdown` resolves, then shuts
    /// down gracefully (see [`Bot::shutdown`]).
    ///
    /// # Errors
    ///
    /// The server's I/O error.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<ShutdownReport> {
        let endpoint = self.inner.endpoint.clone();
        let signal = async move {
            shutdown.await;
            // New notifications get 503 (Graph retries them elsewhere or later);
            // requests in progress finish before the server stops.
            endpoint.close();
        };
        axum::serve(listener, self.router())
            .with_graceful_shutdown(signal)
            .await?;
        Ok(self.shutdown().await)
    }

    /// Stops accepting notifications, handles every event already acknowledged
    /// with 202 (running their hooks) within [`Timings::shutdown_deadline`], then
    /// settles attempts still pending with `Abandoned`. Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        let shared = &self.inner.shared;
        let deadline = tokio::time::Instant::now() + shared.timings.shutdown_deadline;
        self.inner.endpoint.close();
        let dispatcher = lock(&self.inner.dispatcher).take();
        if let Some(dispatcher) = dispatcher {
            // Ends once the closed endpoint's queue is drained into the call queues.
            let _ = tokio::time::timeout_at(deadline, dispatcher).await;
        }
        while shared.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shared.begin_shutdown();
        let events_left = shared.in_flight();
        shared.abandon_pending();
        if events_left > 0 {
            tracing::warn!(events_left, "shutdown deadline passed with events still queued");
        }
        ShutdownReport {
            drained: events_left == 0,
            events_left,
        }
    }
}
