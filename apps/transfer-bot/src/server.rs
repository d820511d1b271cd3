//! Wiring: the Graph client, the bot, the health/readiness/metrics routes, and
//! graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use graph_comms_handler::client::{ClientCertificate, GraphClient, RequestInfo, RequestObserver};
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{Bot, ShutdownReport, Timings, serve_with_limits};
use graph_comms_redis::{RedisCallStore, RedisStoreConfig, RedisTls};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bot::{BotEvent, Receptionist, ReceptionistSettings};
use crate::config::{Config, Credential, StoreBackend, StoreTls};
use crate::metrics::Metrics;

/// How long `/readyz` waits for Redis to answer `PING`.
pub const STORE_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Feeds Graph request latencies into [`Metrics`].
struct LatencyObserver(Arc<Metrics>);

impl RequestObserver for LatencyObserver {
    fn on_response(&self, info: &RequestInfo) {
        self.0.graph_request(info.action, info.elapsed);
    }
}

/// A bot serving on a listener, with its app routes.
#[derive(Debug)]
pub struct RunningBot {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the admin routes (`/healthz`, `/readyz`, `/metrics`) are served,
    /// when `admin_listen` is set (else they are on `addr`).
    pub admin_addr: Option<SocketAddr>,
    /// The framework's bot.
    pub bot: Bot,
    /// The app's own metrics (the framework's are read from [`Bot::metrics`]).
    pub metrics: Arc<Metrics>,
    /// This instance's id (`store.instance_id`).
    pub instance_id: String,
    /// The Redis call store, when `store.kind` is `redis`.
    pub redis_store: Option<RedisCallStore>,
    ready: Arc<Readiness>,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// The admin listener's server and its own stop: it stays up through the
    /// drain, so probes see `/readyz` turn 503 rather than a refused connection.
    admin: Option<(watch::Sender<bool>, JoinHandle<std::io::Result<()>>)>,
    warmup: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Readiness {
    token: AtomicBool,
}

#[derive(Clone)]
struct AppState {
    bot: Bot,
    registry: Arc<Registry>,
    ready: Arc<Readiness>,
    redis_store: Option<RedisCallStore>,
    /// Whether notifications are kept while Redis is down (`store.outage_journal > 0`).
    outage_journal: bool,
}

impl RunningBot {
    /// Builds the client and the bot from `config` and serves on `listener`.
    /// `events` receives the receptionist's progress (the demo uses it).
    pub async fn start(
        config: &Config,
        listener: tokio::net::TcpListener,
        events: Option<mpsc::UnboundedSender<BotEvent>>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::new());
        let client = graph_client_builder(config)?
            .observer(Arc::new(LatencyObserver(Arc::clone(&metrics))))
            .build()
            .context("building the Graph client")?;
        let mut notify = NotifyConfig::new(config.app_id.clone());
        notify.openid_configuration_url = config.openid_configuration_url.clone();
        notify.allowed_tenants = config.allowed_tenants.clone();
        let settings = ReceptionistSettings {
            hold_prompt_uri: config.hold_prompt_uri.clone(),
            apology_prompt_uri: config.apology_prompt_uri.clone(),
            callback_uri: config.public_callback_url.clone(),
            // Awaited inside a hook: leave it time to hang up before the hook timeout.
            apology_timeout: config
                .hook_timeout
                .saturating_sub(Duration::from_secs(2))
                .max(Duration::from_secs(1)),
            menu: config.menu.clone(),
            application_instance_id: config.application_instance_id.clone(),
        };
        let mut receptionist = Receptionist::new(config.routing.clone(), settings, Arc::clone(&metrics));
        if let Some(events) = events {
            receptionist = receptionist.with_events(events);
        }
        let timings = Timings::default()
            .transfer_timeout(config.transfer_timeout)
            .ring_limit(config.ring_limit)
            .keep_alive_interval(config.keep_alive_interval)
            .hook_timeout(config.hook_timeout)
            .lease_ttl(config.store.lease_ttl);
        let redis_store = build_store(config)?;
        let mut builder = Bot::builder();
        if let Some(store) = &redis_store {
            // Instances on one Redis share calls: notifications go to the call's
            // inbox before 202, and the call's lease holder handles them.
            builder = builder
                .shared_store(Arc::new(store.clone()), config.store.instance_id.clone())
                .outage_journal_capacity(config.store.outage_journal);
            if let Some(dir) = &config.store.outage_journal_dir {
                builder = builder.outage_journal_dir(dir);
            }
        }
        let bot = builder
            .client(client)
            .notify(notify)
            .handler(Arc::new(receptionist))
            .callback_uri(config.public_callback_url.clone())
            .callback_path(config.callback_path.clone())
            .timings(timings)
            .build()
            .context("building the bot")?;

        let ready = Arc::new(Readiness::default());
        let (stop, stopped) = watch::channel(false);
        let warmup = tokio::spawn(warm_up(bot.clone(), Arc::clone(&ready), stopped.clone()));
        if let Some(store) = redis_store.clone() {
            // Only a log line: readiness asks Redis again on every probe.
            tokio::spawn(async move {
                match try_ping(&store).await {
                    Ok(()) => tracing::info!("call store: Redis answers"),
                    Err(error) => tracing::warn!(
                        %error,
                        "call store: Redis does not answer yet; /readyz reports call_store: false until it does"
                    ),
                }
            });
        }
        // One registry: what the framework counts, then the app's policy metrics.
        let mut registry = Registry::default();
        bot.register_metrics(&mut registry);
        if let Some(store) = &redis_store {
            store.register_metrics(&mut registry);
        }
        metrics.register(&mut registry, &config.store.instance_id, config.store.kind());
        let state = AppState {
            bot: bot.clone(),
            registry: Arc::new(registry),
            ready: Arc::clone(&ready),
            redis_store: redis_store.clone(),
            outage_journal: config.store.outage_journal > 0,
        };
        let limits = config.server;
        // With an admin listener the public one serves the callback path alone.
        let (router, admin, admin_addr) = match config.admin_listen {
            Some(admin_listen) => {
                let admin_listener = tokio::net::TcpListener::bind(admin_listen)
                    .await
                    .with_context(|| format!("admin_listen: binding {admin_listen}"))?;
                let admin_addr = admin_listener.local_addr()?;
                let (admin_stop, mut admin_stopped) = watch::channel(false);
                let admin = tokio::spawn(serve_with_limits(
                    admin_listener,
                    app_routes(state),
                    limits,
                    async move {
                        let _ = admin_stopped.wait_for(|s| *s).await;
                    },
                ));
                (bot.router(), Some((admin_stop, admin)), Some(admin_addr))
            }
            None => {
                tracing::warn!(
                    "admin_listen is not set: /healthz, /readyz and /metrics are served on the public listener \
                     with the webhook; set admin_listen to keep them off the internet"
                );
                (app_routes(state).merge(bot.router()), None, None)
            }
        };
        let endpoint = bot.notify_endpoint().clone();
        let mut stopped = stopped;
        let server = tokio::spawn(serve_with_limits(listener, router, limits, async move {
            let _ = stopped.wait_for(|s| *s).await;
            // New notifications get 503 so Graph redelivers them elsewhere or later.
            endpoint.close();
        }));
        tracing::info!(
            %addr,
            admin_addr = ?admin_addr,
            callback_path = %config.callback_path,
            instance_id = %config.store.instance_id,
            header_read_timeout = ?limits.header_read_timeout,
            request_timeout = ?limits.request_timeout,
            max_connections = limits.max_connections,
            "listening"
        );
        Ok(Self {
            addr,
            admin_addr,
            bot,
            metrics,
            instance_id: config.store.instance_id.clone(),
            redis_store,
            ready,
            stop,
            server,
            admin,
            warmup,
        })
    }

    /// Whether signing keys are loaded and a Graph token was obtained.
    pub fn is_ready(&self) -> bool {
        self.bot.notify_endpoint().keys_loaded() && self.ready.token.load(Ordering::Relaxed)
    }

    /// Whether the call store answers: always for the in-memory store, a
    /// `PING` within [`STORE_PING_TIMEOUT`] for Redis.
    pub async fn call_store_ready(&self) -> bool {
        match &self.redis_store {
            None => true,
            Some(store) => ping(store).await,
        }
    }

    /// Waits until [`RunningBot::is_ready`], at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(timeout, async {
            while !self.is_ready() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .map_err(|_| anyhow::anyhow!("the bot was not ready within {timeout:?} (keys or token missing)"))
    }

    /// Stops the server (requests in progress finish), then lets the bot handle
    /// every notification already acknowledged.
    pub async fn shutdown(self) -> ShutdownReport {
        self.stop.send_replace(true);
        self.warmup.abort();
        log_server_end(self.server.await);
        let report = self.bot.shutdown().await;
        if let Some((stop, admin)) = self.admin {
            stop.send_replace(true);
            log_server_end(admin.await);
        }
        report
    }
}

fn log_server_end(ended: Result<std::io::Result<()>, tokio::task::JoinError>) {
    match ended {
        Ok(Err(e)) => tracing::warn!(error = %e, "server error during shutdown"),
        Err(e) => tracing::warn!(error = %e, "server task failed"),
        Ok(Ok(())) => {}
    }
}

/// The Graph client `config` describes (credential, base URLs, timeouts), not yet built.
pub fn graph_client_builder(config: &Config) -> anyhow::Result<graph_comms_handler::client::GraphClientBuilder> {
    let client = match &config.credential {
        Credential::Secret(secret) => GraphClient::builder().credentials(
            config.tenant_id.clone(),
            config.app_id.clone(),
            secret.expose().to_owned(),
        ),
        Credential::Certificate(pem) => GraphClient::builder().certificate(
            config.tenant_id.clone(),
            config.app_id.clone(),
            ClientCertificate::from_pem(pem.expose(), "").context("reading client_certificate_file")?,
        ),
        // Read again on every token fetch: the kubelet rotates the file.
        Credential::FederatedToken(path) => {
            GraphClient::builder().federated_credentials(config.tenant_id.clone(), config.app_id.clone(), path.clone())
        }
    };
    Ok(client
        .graph_base_url(config.graph_base_url.clone())
        .login_base_url(config.login_base_url.clone())
        .request_timeout(config.graph_client.request_timeout)
        .user_agent(config.graph_client.user_agent.clone()))
}

/// The Redis store when `store.kind` is `redis`. It connects lazily: the app
/// starts (not ready) while Redis is down, and the connection is retried by
/// each operation.
pub fn build_store(config: &Config) -> anyhow::Result<Option<RedisCallStore>> {
    let settings = &config.store;
    match &settings.backend {
        StoreBackend::Memory => {
            tracing::info!(
                instance_id = %settings.instance_id,
                "call store: memory (calls are not shared with other instances)"
            );
            Ok(None)
        }
        StoreBackend::Redis(url) => {
            let store_config = if settings.redis_cluster {
                RedisStoreConfig::cluster([url.expose()])
            } else {
                RedisStoreConfig::new(url.expose())
            };
            let mut store_config = store_config.prefix(settings.key_prefix.clone());
            if settings.tls != StoreTls::default() {
                let mut tls = RedisTls::new();
                if let Some(ca) = &settings.tls.ca_pem {
                    tls = tls.ca_pem(ca.as_bytes());
                }
                if let Some((certificate, key)) = &settings.tls.client_identity {
                    tls = tls.client_identity(certificate.as_bytes(), key.expose().as_bytes());
                }
                store_config = store_config.tls(tls);
            }
            // The crate's errors show the URL with its password masked.
            let store =
                RedisCallStore::connect_lazy(store_config).map_err(|e| anyhow::anyhow!("store.redis_url: {e}"))?;
            tracing::info!(
                instance_id = %settings.instance_id,
                redis = %url,
                redis_cluster = settings.redis_cluster,
                key_prefix = %settings.key_prefix,
                "call store: redis"
            );
            Ok(Some(store))
        }
    }
}

/// `PING` through the store's connection, bounded by [`STORE_PING_TIMEOUT`].
async fn ping(store: &RedisCallStore) -> bool {
    match try_ping(store).await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(error = %e, "call store: PING failed");
            false
        }
    }
}

async fn try_ping(store: &RedisCallStore) -> Result<(), String> {
    let mut connection = store.connection();
    let answer = tokio::time::timeout(
        STORE_PING_TIMEOUT,
        redis::cmd("PING").query_async::<String>(&mut connection),
    )
    .await;
    match answer {
        Ok(Ok(pong)) if pong == "PONG" => Ok(()),
        Ok(Ok(other)) => Err(format!("unexpected answer {other:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {STORE_PING_TIMEOUT:?}")),
    }
}

/// Fetches the notification keys and a Graph token, retrying until both work.
async fn warm_up(bot: Bot, ready: Arc<Readiness>, mut stopped: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(200);
    loop {
        let keys = bot.notify_endpoint().keys_loaded() || {
            match bot.notify_endpoint().refresh_keys().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "fetching notification signing keys failed; retrying");
                    false
                }
            }
        };
        let token = ready.token.load(Ordering::Relaxed) || {
            match bot.client().ensure_token().await {
                Ok(()) => {
                    ready.token.store(true, Ordering::Relaxed);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "getting a Graph token failed; retrying");
                    false
                }
            }
        };
        if keys && token {
            tracing::info!("ready: signing keys loaded and Graph token obtained");
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Liveness: 200 while the process serves.
pub const HEALTH_PATH: &str = "/healthz";
/// Readiness: 200 once keys, token and store are ready and while accepting.
pub const READY_PATH: &str = "/readyz";
/// Prometheus / OpenMetrics exposition.
pub const METRICS_PATH: &str = "/metrics";

fn app_routes(state: AppState) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(|| async { "ok\n" }))
        .route(READY_PATH, get(readyz))
        .route(METRICS_PATH, get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let keys = state.bot.notify_endpoint().keys_loaded();
    let token = state.ready.token.load(Ordering::Relaxed);
    // False once a shutdown drains the bot, so the load balancer moves traffic away.
    let accepting = state.bot.is_ready();
    let call_store = match &state.redis_store {
        None => true,
        Some(store) => ping(store).await,
    };
    // Redis down turns readiness off only without the outage journal (`accepting`
    // is false once it is full): every instance unready at once would leave Graph
    // no address at all, where the journal could have taken its notifications.
    let store_ok = call_store || state.outage_journal;
    let status = if keys && token && accepting && store_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let journaled = state.bot.metrics().outage_journal_items;
    (
        status,
        format!(
            "signing_keys: {keys}\ngraph_token: {token}\naccepting: {accepting}\ncall_store: {call_store}\n\
             outage_journal: {journaled}\n"
        ),
    )
}

/// The content type of [`encode`]'s output (OpenMetrics text, which
/// Prometheus scrapes natively).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry: the framework's families, the Redis store's, and the app's.
async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    let mut text = String::new();
    match encode(&mut text, &state.registry) {
        Ok(()) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::warn!(%error, "encoding the metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `serve`: runs against the configured Graph until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let running = RunningBot::start(&config, listener, None).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    let instance_id = running.instance_id.clone();
    let report = running.shutdown().await;
    tracing::info!(%instance_id, drained = report.drained, events_left = report.events_left, "stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
