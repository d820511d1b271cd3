//! `bench serve`: the process the load generators hit.
//!
//! - `bare`: an axum handler that reads the body and answers 202 (the baseline).
//! - `full`: a `graph_comms_handler::Bot` (notify endpoint with the token cache, parsing,
//!   queueing, per-call workers, the transfer state machine) with a no-op handler whose
//!   `on_notification` records event.received_at -> hook start.
//! - `uncached`: `full` with `NotifyConfig.token_cache = false` (RSA check per request).
//! - `redis`: `full` on a shared Redis store (`--redis-url`): each notification is
//!   appended to its call's inbox before 202 and handled under the call's lease.
//!
//! With `--stages`, every notification's stages are stamped (`crate::stages`) and
//! reported at `GET /stats/stages`.
//!
//! In `full`/`uncached`, the calls the load targets are set up for real first: an
//! in-process emulator rings the bot, the bot answers, and on `established` it starts a
//! transfer to a target that never answers, so every call has a pending attempt in
//! `transferring`. The load then POSTs `transferAccepted` for those calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, NotificationSigner, TargetBehavior};
use graph_comms_handler::{Bot, CallContext, CallHandler, HookError, Timings, TransferInfo};
use graph_comms_model::TransferRequest;
use graph_comms_notify::{HttpKeySource, NotificationEvent, NotifyConfig, NotifyEndpoint};
use graph_comms_redis::{RedisCallStore, RedisStoreConfig};
use graph_comms_testkit::LocalGraph;
use hdrhistogram::Histogram;

use crate::stages::{self, NotifyStages, Recorder};
use crate::token::{self, StaticKeys};

/// Path the notifications are POSTed to.
pub(crate) const CALLBACK_PATH: &str = "/api/calls";
/// The transfer target scripted to never answer, so attempts stay pending.
const SILENT_TARGET: &str = "bench-silent-target";
/// Issuer and audience used by the bare server's token (it checks nothing).
const BARE_ISSUER: &str = "https://api.botframework.com";
/// How long the load generators' token stays valid: longer than any run.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3 * 3600);

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Read the body, answer 202.
    Bare,
    /// The full webhook path with the token cache.
    Full,
    /// The full path, RSA-verifying every token.
    Uncached,
    /// The full path, sharing calls through Redis.
    Redis,
}

/// Arguments of `bench serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Which server.
    #[arg(long, value_enum)]
    pub(crate) mode: Mode,
    /// Calls the load is spread over (round-robin).
    #[arg(long, default_value_t = 1000)]
    pub(crate) calls: usize,
    /// Where to write the token (line 1) and call ids (one a line) for the load generators.
    #[arg(long)]
    pub(crate) setup_file: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// The Redis of `--mode redis`.
    #[arg(long, env = "GRAPH_COMMS_REDIS_URL")]
    pub(crate) redis_url: Option<String>,
    /// Stamp every notification's stages (connection read, head, token check, parse,
    /// queue, response, write) and report them at `GET /stats/stages`.
    #[arg(long)]
    pub(crate) stages: bool,
    /// tokio worker threads (default: tokio's, one per core the process may run on).
    #[arg(long)]
    pub(crate) worker_threads: Option<usize>,
}

/// What the hooks saw, exposed at `GET /stats`.
pub(crate) struct Stats {
    started: Instant,
    latency_ns: Mutex<Histogram<u64>>,
    notifications: AtomicU64,
    transferring: AtomicU64,
    accepted: AtomicU64,
    hook_errors: AtomicU64,
    redis: std::sync::OnceLock<RedisCallStore>,
    stages: Option<Arc<Recorder>>,
}

impl Stats {
    fn new(stages: bool) -> anyhow::Result<Self> {
        Ok(Self {
            started: Instant::now(),
            latency_ns: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3)?),
            notifications: AtomicU64::new(0),
            transferring: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            hook_errors: AtomicU64::new(0),
            redis: std::sync::OnceLock::new(),
            stages: stages.then(Recorder::new),
        })
    }

    fn histogram(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.latency_ns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn json(&self) -> serde_json::Value {
        let mut stats = crate::stages::quantiles(&self.histogram());
        let more = serde_json::json!({
            "notifications": self.notifications.load(Ordering::Relaxed),
            "transferring_hooks": self.transferring.load(Ordering::Relaxed),
            "accepted_hooks": self.accepted.load(Ordering::Relaxed),
            "hook_errors": self.hook_errors.load(Ordering::Relaxed),
            "redis_round_trips": self.redis.get().map(notification_round_trips),
            "threads": threads(),
            "tokio_workers": tokio::runtime::Handle::try_current().ok().map(|h| h.metrics().num_workers()),
            "sched": crate::stages::schedstat("/proc/self/task"),
        });
        if let (Some(stats), serde_json::Value::Object(more)) = (stats.as_object_mut(), more) {
            stats.extend(more);
        }
        stats
    }
}

/// The names of this process's threads (tokio's workers are `tokio-runtime-w`).
fn threads() -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut names: Vec<String> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect();
    names.sort();
    names
}

/// Redis round trips on the notification path (the periodic sweeps aside),
/// less the one-off script loads.
fn notification_round_trips(store: &RedisCallStore) -> u64 {
    let m = store.metrics();
    [
        m.append, m.claim, m.commit, m.release, m.renew, m.load, m.save, m.delete,
    ]
    .iter()
    .map(|op| op.round_trips)
    .sum::<u64>()
    .saturating_sub(m.script_loads)
}

/// The no-op handler: counts, records the hook latency, and (setup only) starts the transfer.
struct BenchHandler {
    stats: Arc<Stats>,
}

#[async_trait::async_trait]
impl CallHandler for BenchHandler {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let request = TransferRequest::to_user(SILENT_TARGET, None).build();
        if let Err(e) = ctx.transfer(request).await {
            self.stats.hook_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e.into());
        }
        Ok(())
    }

    async fn on_transferring(&self, _ctx: &CallContext, _attempt: &TransferInfo) -> Result<(), HookError> {
        self.stats.transferring.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn on_transfer_accepted(
        &self,
        _ctx: &CallContext,
        _attempt: &TransferInfo,
        _inferred: bool,
    ) -> Result<(), HookError> {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn on_notification(&self, _ctx: &CallContext, event: &NotificationEvent) -> Result<(), HookError> {
        let waited = u64::try_from(event.received_at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.histogram().saturating_record(waited.max(1));
        self.stats.notifications.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn stats_router(stats: Arc<Stats>) -> Router {
    Router::new()
        .route(
            "/stats",
            get(|State(s): State<Arc<Stats>>| async move { axum::Json(s.json()) }),
        )
        .route(
            "/stats/stages",
            get(|State(s): State<Arc<Stats>>| async move {
                axum::Json(s.stages.as_ref().map(|r| r.json()).unwrap_or_default())
            }),
        )
        .route(
            "/stats/reset",
            post(|State(s): State<Arc<Stats>>| async move {
                s.histogram().reset();
                if let Some(stages) = &s.stages {
                    stages.reset();
                }
                StatusCode::NO_CONTENT
            }),
        )
        .route("/readyz", get(|| async { StatusCode::OK }))
        .with_state(stats)
}

/// The baseline: read the whole body, answer 202.
pub(crate) fn bare_router() -> Router {
    Router::new().route(
        CALLBACK_PATH,
        post(|body: bytes::Bytes| async move {
            std::hint::black_box(body);
            StatusCode::ACCEPTED
        }),
    )
}

/// Runs the server until killed.
pub(crate) fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.worker_threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let bound = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = bound.local_addr()?;
    let mut listener = Some(bound);
    println!("LISTENING {addr}");
    let stats = Arc::new(Stats::new(args.stages)?);
    // The bare server serves at once (its start-up time is the baseline); the key comes after.
    let bare = match (args.mode, listener.take()) {
        (Mode::Bare, Some(bound)) => {
            let router = bare_router().merge(stats_router(Arc::clone(&stats)));
            Some(tokio::spawn(stages::serve(bound, router, stats.stages.clone())))
        }
        (_, bound) => {
            listener = bound;
            None
        }
    };
    let key = tokio::task::spawn_blocking(NotificationSigner::new).await??;
    let (token, call_ids) = match bare {
        Some(_) => {
            let token = key.sign(BARE_ISSUER, "bench-app", "bench-tenant", TOKEN_LIFETIME)?;
            let ids = (0..args.calls)
                .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
                .collect();
            (token, ids)
        }
        None => {
            let listener = listener.take().context("listener already in use")?;
            let (token, ids, bot, emulator) = setup_bot(&args, &key, addr, listener, Arc::clone(&stats)).await?;
            // Keep both alive for the life of the process.
            std::mem::forget(bot);
            std::mem::forget(emulator);
            (token, ids)
        }
    };
    let mut file = token;
    for id in &call_ids {
        file.push('\n');
        file.push_str(id);
    }
    file.push('\n');
    std::fs::write(&args.setup_file, file).with_context(|| format!("writing {}", args.setup_file.display()))?;
    stats.histogram().reset();
    println!("READY {addr} setup_ms={}", stats.started.elapsed().as_millis());
    std::future::pending::<()>().await;
    Ok(())
}

async fn setup_bot(
    args: &ServeArgs,
    key: &NotificationSigner,
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    stats: Arc<Stats>,
) -> anyhow::Result<(String, Vec<String>, Bot, Emulator)> {
    let LocalGraph {
        emulator, app, client, ..
    } = LocalGraph::start(EmulatorConfig::default()).await?;
    emulator.script_target(
        SILENT_TARGET,
        TargetBehavior::NoAnswer {
            after: Duration::from_secs(6 * 3600),
        },
    );
    let token = key.sign(
        &emulator.issuer(),
        app.app_id.as_str(),
        app.tenant_id.as_str(),
        TOKEN_LIFETIME,
    )?;

    let mut config = NotifyConfig::new(app.app_id.clone());
    config.token_cache = args.mode != Mode::Uncached;
    let keys = StaticKeys {
        keys: token::jwks(key)?,
        also: Some(Box::new(HttpKeySource::new(emulator.openid_configuration_url())?)),
    };
    let (endpoint, events) = NotifyEndpoint::with_key_source(config, Arc::new(keys))?;
    if stats.stages.is_some() {
        endpoint.set_stage_observer(Arc::new(NotifyStages));
    }
    endpoint.refresh_keys().await?;
    let callback = format!("http://{addr}{CALLBACK_PATH}");
    let long = Duration::from_secs(6 * 3600);
    let mut builder = Bot::builder();
    if args.mode == Mode::Redis {
        let url = args.redis_url.clone().context("--mode redis needs --redis-url")?;
        let prefix = format!("bench-{}", std::process::id());
        let store = RedisCallStore::connect(RedisStoreConfig::new(url).prefix(prefix)).await?;
        builder = builder.shared_store(Arc::new(store.clone()), "bench");
        let _ = stats.redis.set(store);
    }
    let bot = builder
        .client(client)
        .notify_endpoint(endpoint, events)
        .handler(Arc::new(BenchHandler {
            stats: Arc::clone(&stats),
        }))
        .callback_uri(callback.clone())
        .timings(
            Timings::default()
                .transfer_timeout(long)
                .unknown_outcome_timeout(long)
                .keep_alive_interval(long),
        )
        .build()?;
    tokio::spawn(stages::serve(
        listener,
        bot.router().merge(stats_router(Arc::clone(&stats))),
        stats.stages.clone(),
    ));

    let mut ids = Vec::with_capacity(args.calls);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..args.calls {
        let call = IncomingCall::from_user(&app, callback.clone(), &format!("caller-{i}"), "Bench Caller");
        let emulator = emulator.clone();
        pending.spawn(async move { emulator.place_incoming_call(call).await });
        if pending.len() >= 64
            && let Some(done) = pending.join_next().await
        {
            ids.push(done??.as_str().to_owned());
        }
    }
    while let Some(done) = pending.join_next().await {
        ids.push(done??.as_str().to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while stats.transferring.load(Ordering::Relaxed) < args.calls as u64 {
        if Instant::now() > deadline {
            bail!(
                "only {} of {} calls reached a pending transfer; stats {}",
                stats.transferring.load(Ordering::Relaxed),
                args.calls,
                stats.json()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((token, ids, bot, emulator))
}
