//! The bot: builder, router, server, shutdown and metrics.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_comms_client::GraphClient;
use graph_comms_notify::{EventReceiver, NotifyConfig, NotifyEndpoint, NotifyError};
use tokio::task::JoinHandle;

use crate::hooks::CallHandler;
use crate::metrics::BotMetrics;
use crate::report::{ErrorHandler, LogErrors};
use crate::runtime::{OutageJournal, Runtime, RuntimeParts};
use crate::serve::{ServerLimits, serve_with_limits};
use crate::timings::Timings;
use graph_comms_core::memory::InMemoryCallStore;
use graph_comms_core::shared_store::SharedCallStore;
use graph_comms_core::store::CallStore;
use graph_comms_core::sync::lock;

/// Notifications one call may have queued before the webhook answers 503 for it.
pub const DEFAULT_MAX_QUEUED_PER_CALL: usize = 256;
/// Notifications an instance keeps while the shared store is unreachable
/// (see [`BotBuilder::outage_journal_capacity`]).
pub const DEFAULT_OUTAGE_JOURNAL_CAPACITY: usize = 10_000;

/// The default path notifications are POSTed to.
pub const DEFAULT_CALLBACK_PATH: &str = "/api/calls";

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
    /// The outage journal's directory or file could not be opened.
    #[error("outage journal directory {dir}: {source}")]
    OutageJournal {
        /// The directory given to [`BotBuilder::outage_journal_dir`].
        dir: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
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
    sharing: Option<(Arc<dyn SharedCallStore>, String)>,
    error_handler: Option<Arc<dyn ErrorHandler>>,
    callback_uri: Option<String>,
    callback_path: String,
    timings: Timings,
    allow_concurrent_transfers: bool,
    max_queued_per_call: usize,
    outage_journal_capacity: usize,
    outage_journal_dir: Option<std::path::PathBuf>,
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

    /// Shares calls with other instances through `store` (for example Redis):
    /// each notification is appended to its call's inbox before the webhook
    /// answers 202, and the instance holding the call's lease processes it.
    /// `instance_id` names this instance in lease tokens and logs.
    pub fn shared_store(mut self, store: Arc<dyn SharedCallStore>, instance_id: impl Into<String>) -> Self {
        self.store = Some(Arc::clone(&store) as Arc<dyn CallStore>);
        self.sharing = Some((store, instance_id.into()));
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

    /// How many notifications one call may have waiting before the webhook
    /// answers 503 with `Retry-After` for it (default [`DEFAULT_MAX_QUEUED_PER_CALL`]).
    /// Graph delivers refused notifications again, so nothing acknowledged is dropped.
    pub fn max_queued_per_call(mut self, max: usize) -> Self {
        self.max_queued_per_call = max.max(1);
        self
    }

    /// How many notifications this instance keeps while the shared store is
    /// unreachable (default [`DEFAULT_OUTAGE_JOURNAL_CAPACITY`]; 0 turns it off).
    ///
    /// They are answered 202, kept in memory in arrival order, and appended to
    /// their calls' inboxes when the store answers again, so an incoming call
    /// that rings during a short outage is still answered even if Graph gives
    /// up delivering again early. When it is full, or off, notifications are
    /// refused with 503 and Graph's own retries are all that is left. An
    /// instance killed during the outage loses what it holds, unless
    /// [`BotBuilder::outage_journal_dir`] is set. Only with
    /// [`BotBuilder::shared_store`].
    pub fn outage_journal_capacity(mut self, capacity: usize) -> Self {
        self.outage_journal_capacity = capacity;
        self
    }

    /// Writes what the outage journal takes to a file in `dir`, synced before
    /// the 202, so a process killed while the store is down leaves it to the
    /// next process started on the same directory (which takes over every
    /// file there whose process is gone; several instances may share it).
    /// Put it on a volume that outlives the process, such as an `emptyDir`
    /// (container restarts) or a persistent volume (pod replacements).
    pub fn outage_journal_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.outage_journal_dir = Some(dir.into());
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
        let outage = match &self.sharing {
            Some((_, instance)) if self.outage_journal_capacity > 0 => Some(
                OutageJournal::open(
                    self.outage_journal_capacity,
                    self.outage_journal_dir.as_deref(),
                    instance,
                )
                .map_err(|source| BuildError::OutageJournal {
                    dir: self.outage_journal_dir.clone().unwrap_or_default(),
                    source,
                })?,
            ),
            _ => None,
        };
        let shared = Runtime::start(RuntimeParts {
            client,
            handler,
            store: self.store.unwrap_or_else(|| Arc::new(InMemoryCallStore::new())),
            errors: self.error_handler.unwrap_or_else(|| Arc::new(LogErrors)),
            timings: self.timings,
            callback_uri: self.callback_uri,
            allow_concurrent_transfers: self.allow_concurrent_transfers,
            max_queued_per_call: self.max_queued_per_call,
            sharing: self.sharing,
            outage,
        });
        endpoint.set_admission(Arc::clone(&shared) as Arc<dyn graph_comms_notify::Admission>);
        if shared.is_shared() {
            endpoint.set_journal(Arc::clone(&shared) as Arc<dyn graph_comms_notify::Journal>);
        }
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
    shared: Arc<Runtime>,
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
            sharing: None,
            error_handler: None,
            callback_uri: None,
            callback_path: DEFAULT_CALLBACK_PATH.to_owned(),
            timings: Timings::default(),
            allow_concurrent_transfers: false,
            max_queued_per_call: DEFAULT_MAX_QUEUED_PER_CALL,
            outage_journal_capacity: DEFAULT_OUTAGE_JOURNAL_CAPACITY,
            outage_journal_dir: None,
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
        shared.counters.snapshot(
            shared.cached_calls(),
            shared.active_workers(),
            shared.in_flight(),
            shared.journaled(),
        )
    }

    /// Whether the bot accepts notifications: false once shutdown has begun,
    /// and while the shared store is unreachable and the outage journal (see
    /// [`BotBuilder::outage_journal_capacity`]) is off or full, so a load
    /// balancer's readiness check moves traffic elsewhere.
    pub fn is_ready(&self) -> bool {
        let shared = &self.inner.shared;
        !self.inner.endpoint.is_closed() && (shared.store_reachable() || shared.journal_has_room())
    }

    /// The store the bot keeps its calls in.
    pub fn store(&self) -> &Arc<dyn CallStore> {
        &self.inner.shared.store
    }

    /// Serves [`Bot::router`] on `listener` until `shutdown` resolves, then shuts
    /// down gracefully (see [`Bot::shutdown`]). Uses the default
    /// [`ServerLimits`]; see [`Bot::serve_with_limits`].
    ///
    /// # Errors
    ///
    /// The server's I/O error.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<ShutdownReport> {
        self.serve_with_limits(listener, ServerLimits::default(), shutdown)
            .await
    }

    /// Serves [`Bot::router`] on `listener` with `limits` (header read and
    /// request timeouts, a connection cap; see [`serve_with_limits`]) until
    /// `shutdown` resolves, then shuts down gracefully (see [`Bot::shutdown`]).
    ///
    /// # Errors
    ///
    /// The server's I/O error.
    pub async fn serve_with_limits(
        &self,
        listener: tokio::net::TcpListener,
        limits: ServerLimits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<ShutdownReport> {
        let endpoint = self.inner.endpoint.clone();
        let signal = async move {
            shutdown.await;
            // New notifications get 503 (Graph retries them elsewhere or later);
            // requests in progress finish before the server stops.
            endpoint.close();
        };
        serve_with_limits(listener, self.router(), limits, signal).await?;
        Ok(self.shutdown().await)
    }

    /// Drains the bot: readiness turns false, new notifications get 503 with
    /// `Retry-After` (Graph delivers them again), every event already
    /// acknowledged with 202 is handled (hooks included) within
    /// [`Timings::shutdown_deadline`], then timers stop. Every call, pending
    /// attempts included, stays in the store: a bot started later on the same
    /// store resumes them and fires their outcomes when the notifications come.
    /// Only in-process [`TransferAttempt`](crate::TransferAttempt) handles still
    /// waiting resolve to `Abandoned`. Idempotent.
    pub async fn shutdown(&self) -> ShutdownReport {
        let shared = &self.inner.shared;
        let deadline = tokio::time::Instant::now() + shared.timings.shutdown_deadline;
        self.inner.endpoint.close();
        let dispatcher = lock(&self.inner.dispatcher).take();
        if let Some(dispatcher) = dispatcher {
            // Ends once the closed endpoint's queue is drained into the call queues.
            let _ = tokio::time::timeout_at(deadline, dispatcher).await;
        }
        // Notifications in the outage journal are appended if the store returns in time.
        while (shared.in_flight() > 0 || shared.journaled() > 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shared.begin_shutdown();
        let journaled = shared.journaled();
        let events_left = shared.in_flight() + journaled;
        shared.abandon_pending();
        if journaled > 0 {
            tracing::error!(
                journaled,
                "shutdown deadline passed with notifications in the outage journal: the shared store \
                 stayed unavailable, and they are lost"
            );
        } else if events_left > 0 {
            tracing::warn!(events_left, "shutdown deadline passed with events still queued");
        }
        ShutdownReport {
            drained: events_left == 0,
            events_left,
        }
    }
}
