//! Failover tests with real processes: three `transfer-bot serve` processes
//! share one private `redis-server` and sit behind a round-robin proxy, so
//! the notifications of one call reach different instances. The Graph
//! emulator (in this process) offers calls through the proxy and scripts how
//! each transfer target answers; instances are killed, paused, restarted and
//! Redis is stopped while calls are in flight.
//!
//! What each test checks, for every call it placed:
//! - the call ended in the emulator, with `POST /transfer` sent to exactly
//!   the targets its route lists (no attempt sent twice, none lost). Where an
//!   instance stops without warning, an attempt it decided but did not record
//!   as sent fails as `unconfirmed` after the takeover (it is never sent
//!   twice) and its call moves on: such calls are counted and bounded by the
//!   calls that instance held, and checked for everything but the route. No
//!   attempt may be failed by a copy of an earlier attempt's failure, however
//!   it was delivered (duplicated, delayed, redelivered after a refusal);
//! - from the instances' JSON logs: every attempt (`transfer started`) has
//!   exactly one outcome (`transfer completed` or `transfer failed`) across
//!   all instances, never two different ones, and as many attempts as the
//!   emulator saw POSTs (less those whose consultation call ended before
//!   answering: they send none); the outcomes are the scripted ones. An outcome hook
//!   may run again on the instance that took a call over from one that
//!   stopped, only flagged `redelivered` and with the same outcome;
//! - the call's record in Redis is ended and agrees with those outcomes.
//!
//! One variant runs the same load and checks on a three-node Redis Cluster
//! and restarts the node holding the indexes mid-load.
//!
//! Needs `redis-server` on the PATH (each test starts its own).

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use graph_comms_emulator::{
    DeliveryFaults, DuplicateLater, Emulator, EmulatorConfig, Endpoint, IncomingCall, RegisteredApp, TargetBehavior,
};
use graph_comms_handler::CallStore as _;
use graph_comms_handler::model::{CallId, CallState, Identity, IdentitySet};
use graph_comms_redis::{RedisCallStore, RedisStoreConfig};
use graph_comms_testkit::signal::Signal;
use graph_comms_testkit::{BotProcess, RedisCluster, RedisServer, RoundRobinProxy, free_port};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use transfer_bot::demo::cluster::{ServeConfig, serve_config};

const BINARY: &str = env!("CARGO_BIN_EXE_transfer-bot");
const CALLBACK_PATH: &str = "/api/calls";
const INSTANCES: usize = 3;
/// How long one call may take from being offered to ending in the emulator
/// (a lost notification costs the 10 s transfer timeout, then the next target).
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The load stops offering calls once this many did not end in time: the
/// test has failed, and waiting for the rest would only take longer.
const STUCK_LIMIT: usize = 20;
/// How long a graceful shutdown may take.
const TERMINATE_TIMEOUT: Duration = Duration::from_secs(20);
/// Graph redelivers a notification the bot did not take (non-2xx or no
/// answer). With the emulator's backoff (20 ms, doubling) ten attempts span
/// about 10 s, longer than any outage these tests cause.
const DELIVERY_ATTEMPTS: u32 = 10;
/// libfaketime (Debian's `faketime` package; `scripts/test.sh` checks it is installed).
const FAKETIME_LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// The tests start three bot processes and a Redis each: one at a time on a
/// small machine, whatever the test harness's thread count.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How the scripted transfer targets answer.
fn behaviours() -> Vec<(&'static str, TargetBehavior)> {
    vec![
        ("scale-alice", TargetBehavior::Accept),
        ("scale-bob", TargetBehavior::Decline),
        // Rings a while, so a late copy of scale-bob's failure lands during the ring.
        (
            "scale-carol",
            TargetBehavior::AcceptAfter {
                after: Duration::from_millis(300),
            },
        ),
        ("scale-frank", TargetBehavior::Busy),
        (
            "scale-grace",
            TargetBehavior::NoAnswer {
                after: Duration::from_millis(100),
            },
        ),
        ("scale-dave", TargetBehavior::Accept),
        ("scale-ivan", TargetBehavior::Decline),
        ("scale-judy", TargetBehavior::Accept),
    ]
}

/// One kind of call: its route and what must happen to it.
struct Scenario {
    name: &'static str,
    /// The called application instance; the route matches it.
    called_id: &'static str,
    /// The route's `targets`, as TOML.
    targets: &'static str,
    /// The targets the emulator must see `POST /transfer` for, in order.
    transfers: &'static [&'static str],
    /// Attempts that must end completed / failed.
    completed: usize,
    failed: usize,
    /// Every target fails: the bot apologises and hangs up.
    hangs_up: bool,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario {
        name: "blind, accepted",
        called_id: "scale-blind",
        targets: r#"[{ kind = "user", id = "scale-alice" }]"#,
        transfers: &["scale-alice"],
        completed: 1,
        failed: 0,
        hangs_up: false,
    },
    Scenario {
        name: "declined, falls back",
        called_id: "scale-fallback",
        targets: r#"[{ kind = "user", id = "scale-bob" }, { kind = "user", id = "scale-carol" }]"#,
        transfers: &["scale-bob", "scale-carol"],
        completed: 1,
        failed: 1,
        hangs_up: false,
    },
    Scenario {
        name: "busy, no answer, apology",
        called_id: "scale-all-fail",
        targets: r#"[{ kind = "user", id = "scale-frank" }, { kind = "user", id = "scale-grace" }]"#,
        transfers: &["scale-frank", "scale-grace"],
        completed: 0,
        failed: 2,
        hangs_up: true,
    },
    Scenario {
        name: "consultative, accepted",
        called_id: "scale-consult",
        targets: r#"[{ kind = "user", id = "scale-dave", mode = "consultative" }]"#,
        transfers: &["scale-dave"],
        completed: 1,
        failed: 0,
        hangs_up: false,
    },
    Scenario {
        name: "consultation declined, falls back",
        called_id: "scale-consult-fallback",
        targets: r#"[{ kind = "user", id = "scale-ivan", mode = "consultative" }, { kind = "user", id = "scale-judy" }]"#,
        // The declined consultation call is not a transfer attempt.
        transfers: &["scale-judy"],
        completed: 1,
        failed: 0,
        hangs_up: false,
    },
];

/// The delivery faults of the `n`th call (of scenario `n % 5`), on every
/// route: none; reordering; duplicates; reordering, duplicates and delay; and
/// every notification delivered again 200 ms later, after the ones that
/// follow it (a copy of a declined target's failure then lands while the
/// next target rings). Every other call's deliveries carry no message id, so
/// both ways of recognising a copy are exercised.
fn faults(n: usize) -> DeliveryFaults {
    let (reorder, duplicate, delay, later) = match (n / SCENARIOS.len()) % 5 {
        0 => (false, false, Duration::ZERO, None),
        1 => (true, false, Duration::ZERO, None),
        2 => (false, true, Duration::ZERO, None),
        3 => (true, true, Duration::from_millis(15), None),
        _ => (
            false,
            false,
            Duration::ZERO,
            Some(DuplicateLater::every(Duration::from_millis(200))),
        ),
    };
    DeliveryFaults {
        reorder,
        duplicate,
        delay,
        duplicate_later: later,
        omit_message_ids: n % 2 == 1,
        ..DeliveryFaults::default()
    }
}

#[derive(Clone, Copy, Default)]
struct ClusterOptions {
    /// Redis keeps every write in an append-only file, so a restart loses nothing.
    persistent_redis: bool,
    /// A three-node Redis Cluster (persistent) instead of one Redis.
    redis_cluster: bool,
    /// Extra lines for each instance's `[store]` table.
    store_extra: &'static str,
    /// Only the first instance is in the proxy's rotation (the others run
    /// and share Redis but get no notification): the baseline.
    one_in_rotation: bool,
    /// How long the emulator waits for a bot to answer a notification
    /// before it delivers it again (default 5 s).
    delivery_timeout: Option<Duration>,
    /// How long the emulator keeps delivering a refused notification again
    /// before it gives up (default: an hour, longer than any test).
    retry_window: Option<Duration>,
    /// The first instance's wall clock runs this far ahead of the others'
    /// (libfaketime's `FAKETIME` offset, such as `"+5s"`; monotonic clocks untouched).
    clock_ahead: Option<&'static str>,
    /// An instance stops without warning (kill -9, SIGSTOP): an attempt it
    /// decided but did not record as sent may fail as `unconfirmed` after a
    /// takeover (the POST is never sent twice), so its call may take a
    /// different route.
    abrupt_stop: bool,
    /// Every instance writes its outage journal to one shared directory.
    journal_on_disk: bool,
}

/// The test's Redis: one server, or a Redis Cluster.
enum Redis {
    Server(RedisServer),
    Cluster(RedisCluster),
}

impl Redis {
    /// The URL the bots are given: the server, or a seed node of the cluster.
    fn url(&self) -> String {
        match self {
            Self::Server(server) => server.url(),
            Self::Cluster(cluster) => cluster.urls().swap_remove(0),
        }
    }

    /// The `[store]` lines naming it.
    fn store_lines(&self) -> String {
        match self {
            Self::Server(server) => format!("redis_url = \"{}\"\n", server.url()),
            Self::Cluster(_) => format!("redis_url = \"{}\"\nredis_cluster = true\n", self.url()),
        }
    }

    fn store_config(&self, prefix: &str) -> RedisStoreConfig {
        match self {
            Self::Server(server) => RedisStoreConfig::new(server.url()),
            Self::Cluster(cluster) => RedisStoreConfig::cluster(cluster.urls()),
        }
        .prefix(prefix)
    }

    fn server(&mut self) -> &mut RedisServer {
        match self {
            Self::Server(server) => server,
            Self::Cluster(_) => panic!("this test runs on a Redis Cluster"),
        }
    }

    fn cluster(&mut self) -> &mut RedisCluster {
        match self {
            Self::Cluster(cluster) => cluster,
            Self::Server(_) => panic!("this test runs on one Redis"),
        }
    }

    fn log_paths(&self) -> Vec<std::path::PathBuf> {
        match self {
            Self::Server(server) => vec![server.log_path()],
            Self::Cluster(cluster) => (0..cluster.len()).filter_map(|i| cluster.log_path(i)).collect(),
        }
    }
}

/// The emulator, Redis, the proxy and the bot processes of one test.
struct Cluster {
    emulator: Emulator,
    app: RegisteredApp,
    redis: Redis,
    proxy: RoundRobinProxy,
    /// The instances in service, in proxy order.
    bots: Vec<BotProcess>,
    /// Instances replaced by a rolling restart (their logs still count).
    retired: Vec<BotProcess>,
    prefix: String,
    options: ClusterOptions,
    spawned: usize,
    /// Things that went wrong while driving the cluster (a shutdown that hung, ...).
    incidents: Vec<String>,
    /// The instances' outage journal directory, with `journal_on_disk`.
    journal: Option<tempfile::TempDir>,
}

impl Cluster {
    async fn start(options: ClusterOptions) -> Self {
        let defaults = EmulatorConfig::default();
        let emulator = Emulator::start(EmulatorConfig {
            delivery_attempts: DELIVERY_ATTEMPTS,
            delivery_retry_initial: Duration::from_millis(20),
            delivery_retry_max_interval: Duration::from_secs(3600),
            delivery_retry_window: options.retry_window.unwrap_or(Duration::from_secs(3600)),
            delivery_timeout: options.delivery_timeout.unwrap_or(defaults.delivery_timeout),
            ..defaults
        })
        .await
        .expect("the emulator starts");
        for (id, behaviour) in behaviours() {
            emulator.script_target(id, behaviour);
        }
        let redis = if options.redis_cluster {
            Redis::Cluster(tokio::task::block_in_place(RedisCluster::start))
        } else if options.persistent_redis {
            Redis::Server(RedisServer::start_persistent())
        } else {
            Redis::Server(RedisServer::start())
        };
        let proxy = RoundRobinProxy::start(Vec::new()).await.expect("the proxy starts");
        let mut cluster = Self {
            app: emulator.default_app(),
            emulator,
            redis,
            proxy,
            bots: Vec::new(),
            retired: Vec::new(),
            prefix: format!("scale-{}-{:012x}", std::process::id(), rand::random::<u64>() >> 16),
            options,
            spawned: 0,
            incidents: Vec::new(),
            journal: options
                .journal_on_disk
                .then(|| tempfile::tempdir().expect("a journal directory")),
        };
        for _ in 0..INSTANCES {
            let bot = cluster.spawn_bot().await;
            cluster.bots.push(bot);
        }
        let mut rotation = cluster.upstreams();
        if options.one_in_rotation {
            rotation.truncate(1);
        }
        cluster.proxy.set_upstreams(rotation);
        cluster
    }

    fn callback_url(&self) -> String {
        format!("{}{CALLBACK_PATH}", self.proxy.url())
    }

    fn upstreams(&self) -> Vec<String> {
        self.bots.iter().map(BotProcess::base_url).collect()
    }

    /// One instance's configuration: every instance shares Redis and the key
    /// prefix, and Graph posts to the proxy, not to the instance.
    fn config(&self, port: u16, instance_id: &str) -> String {
        let journal = self.journal.as_ref().map_or_else(String::new, |dir| {
            format!("outage_journal_dir = \"{}\"\n", dir.path().display())
        });
        config_toml(&ConfigParts {
            emulator: &self.emulator,
            listen_port: port,
            public_callback_url: &self.callback_url(),
            store: &format!(
                "kind = \"redis\"\n{}key_prefix = \"{}\"\ninstance_id = \"{instance_id}\"\n{journal}{}",
                self.redis.store_lines(),
                self.prefix,
                self.options.store_extra
            ),
        })
    }

    async fn spawn_bot(&mut self) -> BotProcess {
        self.spawned += 1;
        let name = format!("bot-{}", self.spawned);
        let secret = self.app.client_secret.clone();
        let mut env = vec![("TRANSFER_BOT_CLIENT_SECRET", secret.as_str())];
        if let Some(offset) = self.options.clock_ahead.filter(|_| self.spawned == 1) {
            env.extend([
                ("LD_PRELOAD", FAKETIME_LIBRARY),
                ("FAKETIME", offset),
                ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
                ("FAKETIME_DONT_RESET", "1"),
            ]);
        }
        let mut last_error = None;
        for _ in 0..3 {
            let config = self.config(free_port().unwrap(), &name);
            match BotProcess::spawn_with_env(Path::new(BINARY), &config, &name, &env).await {
                Ok(bot) => return bot,
                // The free port was taken before the bot bound it: take another.
                Err(e) if e.to_string().contains("binding") => last_error = Some(e),
                Err(e) => panic!("{name} did not start: {e}"),
            }
        }
        panic!("{name} did not start: {last_error:?}");
    }

    /// Out of the proxy's rotation (as a load balancer drains it), `SIGTERM`,
    /// a new process on a new port, back into the rotation.
    async fn restart_instance(&mut self, i: usize) {
        let old_url = self.bots[i].base_url();
        let others: Vec<String> = self.upstreams().into_iter().filter(|u| *u != old_url).collect();
        self.proxy.set_upstreams(others);
        let name = self.bots[i].name().to_owned();
        match self.bots[i].terminate(TERMINATE_TIMEOUT).await {
            Ok(status) if status.success() => {}
            Ok(status) => self
                .incidents
                .push(format!("{name} exited with {status} after SIGTERM")),
            Err(e) => self.incidents.push(format!("{name}: {e}")),
        }
        let fresh = self.spawn_bot().await;
        let old = std::mem::replace(&mut self.bots[i], fresh);
        self.retired.push(old);
        self.proxy.set_upstreams(self.upstreams());
    }

    /// `kill -9`, then a new process (same configuration, new port) in its place.
    async fn kill_and_replace(&mut self, i: usize) {
        let status = self.bots[i].kill9().expect("SIGKILL");
        eprintln!("killed {} ({status})", self.bots[i].name());
        let fresh = self.spawn_bot().await;
        let old = std::mem::replace(&mut self.bots[i], fresh);
        self.retired.push(old);
        self.proxy.set_upstreams(self.upstreams());
    }

    fn all_bots(&self) -> impl Iterator<Item = &BotProcess> {
        self.bots.iter().chain(&self.retired)
    }
}

struct ConfigParts<'a> {
    emulator: &'a Emulator,
    listen_port: u16,
    public_callback_url: &'a str,
    /// The body of the `[store]` table.
    store: &'a str,
}

/// A `transfer-bot serve` configuration against the emulator, routing every
/// scenario; the client secret comes from the environment.
fn config_toml(parts: &ConfigParts<'_>) -> String {
    let routes: Vec<(String, String)> = SCENARIOS
        .iter()
        .map(|s| (s.called_id.to_owned(), s.targets.to_owned()))
        .collect();
    serve_config(&ServeConfig {
        emulator: parts.emulator,
        listen_port: parts.listen_port,
        public_callback_url: parts.public_callback_url,
        routes: &routes,
        default_targets: r#"[{ kind = "user", id = "scale-alice" }]"#,
        menu: None,
        store: parts.store,
    })
}

/// One call the load offered.
#[derive(Debug)]
struct Placed {
    n: usize,
    scenario: usize,
    result: Result<CallId, String>,
    /// The emulator saw it end within [`CALL_TIMEOUT`].
    ended: bool,
}

/// Calls offered through the proxy, at most `concurrency` in flight; a call
/// holds its slot until it ends (or [`CALL_TIMEOUT`]).
struct Load {
    placed: watch::Receiver<usize>,
    task: JoinHandle<LoadResult>,
    started: Instant,
}

/// How many calls, how many in flight at most, and the pause between two
/// offers (zero: as fast as slots free up).
#[derive(Clone, Copy)]
struct LoadShape {
    calls: usize,
    concurrency: usize,
    pace: Duration,
}

/// The offered calls, and why offering stopped early (if it did).
struct LoadResult {
    placed: Vec<Placed>,
    stopped_early: Option<String>,
    elapsed: Duration,
}

impl Load {
    /// Starts offering calls as `shape` says; none is offered after
    /// `placing_deadline` or once [`STUCK_LIMIT`] calls did not end in time.
    fn start(cluster: &Cluster, shape: LoadShape, placing_deadline: Duration) -> Self {
        let LoadShape {
            calls,
            concurrency,
            pace,
        } = shape;
        let (count, placed) = watch::channel(0);
        let emulator = cluster.emulator.clone();
        let app = cluster.app.clone();
        let callback = cluster.callback_url();
        let started = Instant::now();
        let first = tokio::time::Instant::now();
        let stop_placing = first + placing_deadline;
        let task = tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(concurrency));
            let stuck = Arc::new(AtomicUsize::new(0));
            let mut calls_in_flight = JoinSet::new();
            let mut placed = Vec::new();
            let mut stopped_early = None;
            for n in 0..calls {
                let slot = tokio::time::timeout_at(stop_placing, Arc::clone(&slots).acquire_owned()).await;
                let Ok(Ok(slot)) = slot else {
                    stopped_early = Some(format!("placing deadline of {placing_deadline:?} passed"));
                    break;
                };
                if stuck.load(Ordering::SeqCst) >= STUCK_LIMIT {
                    stopped_early = Some(format!("{STUCK_LIMIT} calls did not end within {CALL_TIMEOUT:?}"));
                    break;
                }
                let scenario = n % SCENARIOS.len();
                let call = IncomingCall::from_user(&app, callback.clone(), &format!("caller-{n}"), "Scale Caller")
                    .to(IdentitySet::application_instance(Identity::with_id(
                        SCENARIOS[scenario].called_id,
                    )))
                    .faults(faults(n));
                match emulator.place_incoming_call(call).await {
                    Ok(id) => {
                        let emulator = emulator.clone();
                        let stuck = Arc::clone(&stuck);
                        calls_in_flight.spawn(async move {
                            let ended = emulator
                                .wait_for_state(&id, CallState::Terminated, CALL_TIMEOUT)
                                .await
                                .is_ok();
                            if !ended {
                                stuck.fetch_add(1, Ordering::SeqCst);
                            }
                            drop(slot);
                            Placed {
                                n,
                                scenario,
                                result: Ok(id),
                                ended,
                            }
                        });
                    }
                    Err(e) => placed.push(Placed {
                        n,
                        scenario,
                        result: Err(e.to_string()),
                        ended: false,
                    }),
                }
                count.send_replace(n + 1);
                if !pace.is_zero() {
                    tokio::time::sleep_until(first + pace * u32::try_from(n + 1).unwrap_or(u32::MAX)).await;
                }
            }
            // Closing the channel tells waiters that no more calls come.
            drop(count);
            while let Some(call) = calls_in_flight.join_next().await {
                placed.push(call.expect("a call's waiter panicked"));
            }
            placed.sort_by_key(|p| p.n);
            LoadResult {
                placed,
                stopped_early,
                elapsed: started.elapsed(),
            }
        });
        Self { placed, task, started }
    }

    /// Waits until the load has run for `at` (from its start).
    async fn wait_until(&self, at: Duration) {
        tokio::time::sleep_until((self.started + at).into()).await;
    }

    /// Calls offered so far.
    fn offered(&self) -> usize {
        *self.placed.borrow()
    }

    /// Waits until every offered call ended or timed out.
    async fn finish(self) -> LoadResult {
        self.task.await.expect("the load task panicked")
    }
}

/// An attempt's outcome as one log line states it, and the instance that logged it.
/// (outcome, instance, redelivered: a hook run again after a takeover).
type OutcomeLine = (&'static str, String, bool);

/// What the instances' JSON logs say about transfer attempts.
///
/// The runtime logs `transfer started` before the POST, and `transfer
/// completed` / `transfer failed` once the outcome is committed (target
/// `graph_comms_handler::...`); the app's hooks then log the same messages
/// (target `transfer_bot::bot`). Both are counted, separately.
#[derive(Default)]
struct AttemptLog {
    /// Attempt id -> times `transfer started` was logged.
    started: HashMap<String, usize>,
    /// Attempt id -> the runtime's outcome lines (the decision).
    decided: HashMap<String, Vec<OutcomeLine>>,
    /// Attempt id -> the app's outcome hook lines.
    hooks: HashMap<String, Vec<OutcomeLine>>,
    /// Attempt id -> the app's first-run `transfer accepted` hook lines
    /// (runs again after a takeover, flagged `redelivered`, not counted).
    accepted: HashMap<String, usize>,
    /// Call id -> attempt ids, each once, in log order per instance (from
    /// `transfer started`, and from the runtime's decisions).
    by_call: HashMap<CallId, Vec<String>>,
    /// Attempts the runtime failed as `unconfirmed` after a takeover.
    unconfirmed: std::collections::HashSet<String>,
    /// Attempts whose consultation call ended before answering: they send no POST.
    consultation_ended: std::collections::HashSet<String>,
    /// `WARN`/`ERROR` messages and how often, for failure messages.
    warnings: BTreeMap<String, usize>,
}

fn text<'a>(line: &'a Value, pointer: &str) -> Option<&'a str> {
    line.pointer(pointer).and_then(Value::as_str)
}

impl AttemptLog {
    fn read<'a>(bots: impl Iterator<Item = &'a BotProcess>) -> Self {
        let mut log = Self::default();
        for bot in bots {
            for line in bot.log_lines() {
                log.absorb(bot.name(), &line);
            }
        }
        log
    }

    fn absorb(&mut self, instance: &str, line: &Value) {
        let Some(message) = text(line, "/fields/message") else {
            return;
        };
        if matches!(text(line, "/level"), Some("WARN" | "ERROR")) {
            let first: String = message.chars().take(90).collect();
            *self.warnings.entry(first).or_default() += 1;
        }
        let Some(attempt) = text(line, "/fields/attempt") else {
            return;
        };
        let from_app = text(line, "/target") == Some("transfer_bot::bot");
        let redelivered = line.pointer("/fields/redelivered").and_then(Value::as_bool) == Some(true);
        let outcome = match message {
            "transfer started" => {
                *self.started.entry(attempt.to_owned()).or_default() += 1;
                // Call ids compare as Graph's do: without case or dashes.
                let call = CallId::new(text(line, "/fields/call_id").unwrap_or("?"));
                let attempts = self.by_call.entry(call).or_default();
                if !attempts.iter().any(|a| a == attempt) {
                    attempts.push(attempt.to_owned());
                }
                return;
            }
            "transfer accepted" if from_app => {
                if !redelivered {
                    *self.accepted.entry(attempt.to_owned()).or_default() += 1;
                }
                return;
            }
            "transfer completed" => "completed",
            "transfer failed" => {
                match text(line, "/fields/reason").filter(|_| !from_app) {
                    Some("unconfirmed") => {
                        self.unconfirmed.insert(attempt.to_owned());
                    }
                    Some("consultation_ended") => {
                        self.consultation_ended.insert(attempt.to_owned());
                    }
                    _ => {}
                }
                "failed"
            }
            _ => return,
        };
        // A killed instance loses its last lines: an attempt it started is
        // known from the decision the instance that took over logged.
        if let Some(call) = text(line, "/fields/call_id").filter(|_| !from_app) {
            let attempts = self.by_call.entry(CallId::new(call)).or_default();
            if !attempts.iter().any(|a| a == attempt) {
                attempts.push(attempt.to_owned());
            }
        }
        let lines = if from_app { &mut self.hooks } else { &mut self.decided };
        lines
            .entry(attempt.to_owned())
            .or_default()
            .push((outcome, instance.to_owned(), redelivered));
    }

    /// Whether every attempt started has its decision and its hook logged.
    fn settled(&self) -> bool {
        self.started
            .keys()
            .all(|a| self.decided.contains_key(a) && self.hooks.contains_key(a))
    }
}

/// Lines not flagged as a run again after a takeover.
fn first_runs(lines: &[OutcomeLine]) -> usize {
    lines.iter().filter(|(_, _, redelivered)| !redelivered).count()
}

/// The outcome kinds among `lines`, each once, sorted.
fn distinct_kinds(lines: &[OutcomeLine]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = lines.iter().map(|(kind, _, _)| *kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// Problems found, by kind, with examples.
#[derive(Default)]
struct Findings(BTreeMap<&'static str, Vec<String>>);

impl Findings {
    fn add(&mut self, kind: &'static str, example: String) {
        self.0.entry(kind).or_default().push(example);
    }

    fn summary(&self) -> String {
        let mut out = String::new();
        for (kind, examples) in &self.0 {
            out.push_str(&format!("  {} x {kind}\n", examples.len()));
            for example in examples.iter().take(4) {
                out.push_str(&format!("      e.g. {example}\n"));
            }
        }
        out
    }
}

/// Checks every offered call against its scenario (see the module docs) and
/// panics with all findings at once.
async fn verify(cluster: &Cluster, test: &str, calls: usize, load: &LoadResult) {
    let (placed, load_time) = (&load.placed, load.elapsed);
    let mut findings = Findings::default();
    for incident in &cluster.incidents {
        findings.add("incident while driving the cluster", incident.clone());
    }
    let offered: Vec<(&Placed, &CallId)> = placed
        .iter()
        .filter_map(|p| p.result.as_ref().ok().map(|id| (p, id)))
        .collect();
    if placed.len() < calls {
        let why = load.stopped_early.as_deref().unwrap_or("?");
        findings.add(
            "load stopped early",
            format!("{} of {calls} calls offered: {why}", placed.len()),
        );
    }
    for p in placed.iter() {
        if let Err(e) = &p.result {
            findings.add("call could not be offered", format!("call {}: {e}", p.n));
        }
    }

    // Outcome hooks run after the emulator's state changed: let the logs catch up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = AttemptLog::read(cluster.all_bots());
    while !log.settled() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        log = AttemptLog::read(cluster.all_bots());
    }
    // A late duplicate outcome would show up now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = AttemptLog::read(cluster.all_bots());

    let mut transfers: HashMap<CallId, Vec<(String, u16)>> = HashMap::new();
    let mut hang_ups: HashMap<CallId, usize> = HashMap::new();
    for request in cluster.emulator.requests() {
        let Some(call) = request.call_id.clone() else { continue };
        match request.endpoint {
            Endpoint::Transfer => {
                let target = request
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/transferTarget/identity/user/id"))
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                transfers.entry(call).or_default().push((target, request.status));
            }
            Endpoint::HangUp => *hang_ups.entry(call).or_default() += 1,
            _ => {}
        }
    }

    let store = RedisCallStore::connect(cluster.redis.store_config(&cluster.prefix))
        .await
        .expect("connecting to the test's Redis to read the records");

    let (mut rerouted, mut echoes) = (0, 0);
    for (p, call) in &offered {
        let scenario = &SCENARIOS[p.scenario];
        let at = format!("call {} ({}, {call})", p.n, scenario.name);
        let attempts = log.by_call.get(*call).cloned().unwrap_or_default();
        // An attempt failed as unconfirmed moves the call on to its next
        // target, POSTed or not: the route is not the script's.
        let unconfirmed = attempts.iter().filter(|a| log.unconfirmed.contains(*a)).count();
        if unconfirmed > 0 {
            rerouted += 1;
            if !cluster.options.abrupt_stop {
                findings.add(
                    "attempt failed as unconfirmed with no instance stopped abruptly",
                    at.clone(),
                );
            }
        }
        let on_route = unconfirmed == 0;
        if !p.ended {
            let state = cluster
                .emulator
                .call_state(call)
                .map_or_else(|| "unknown".to_owned(), |s| s.to_string());
            findings.add(
                "call did not end",
                format!("{at}: still {state} after {CALL_TIMEOUT:?}"),
            );
        }
        // Graph gives up on a notification after its retries: the bot never
        // had it, so what follows is not the bot's to lose.
        let given_up: Vec<String> = cluster
            .emulator
            .notifications(call)
            .iter()
            .filter(|n| n.attempt == DELIVERY_ATTEMPTS && !n.response_status.is_some_and(|s| (200..300).contains(&s)))
            .map(|n| format!("{:?} after {} tries", n.response_status, n.attempt))
            .collect();
        if !given_up.is_empty() {
            findings.add(
                "emulator gave up delivering a notification",
                format!("{at}: {given_up:?}"),
            );
        }
        let posts = transfers.get(*call).cloned().unwrap_or_default();
        let targets: Vec<&str> = posts.iter().map(|(t, _)| t.as_str()).collect();
        if on_route && targets != scenario.transfers {
            findings.add(
                "POST /transfer targets differ from the route",
                format!("{at}: POSTed {targets:?}, route says {:?}", scenario.transfers),
            );
        }
        if scenario.hangs_up && !hang_ups.contains_key(*call) {
            findings.add("no hang-up after every target failed", at.clone());
        }
        // An attempt whose consultation ended before answering sent no POST.
        let posting = attempts.iter().filter(|a| !log.consultation_ended.contains(*a)).count();
        if (on_route && posting != posts.len()) || posts.len() > posting {
            findings.add(
                "attempts logged != POST /transfer seen",
                format!(
                    "{at}: {} attempt(s) logged ({} ended with their consultation), {} POST(s)",
                    attempts.len(),
                    attempts.len() - posting,
                    posts.len()
                ),
            );
        }
        let (mut completed, mut failed) = (0, 0);
        for attempt in &attempts {
            if let Some(times) = log.started.get(attempt).filter(|times| **times > 1) {
                findings.add("attempt started twice", format!("{at}: {attempt} logged {times} times"));
            }
            let decided = log.decided.get(attempt).cloned().unwrap_or_default();
            match distinct_kinds(&decided).as_slice() {
                [] => findings.add("attempt without a decided outcome", format!("{at}: {attempt}")),
                ["completed"] => completed += 1,
                [_] => failed += 1,
                _ => findings.add(
                    "attempt with two different outcomes",
                    format!("{at}: {attempt}: {decided:?}"),
                ),
            }
            // Hooks run at least once: runs again after a takeover must say so.
            if first_runs(&decided) > 1 {
                findings.add(
                    "attempt outcome decided more than once",
                    format!("{at}: {attempt}: {decided:?}"),
                );
            }
            let hooks = log.hooks.get(attempt).cloned().unwrap_or_default();
            if hooks.is_empty() || first_runs(&hooks) > 1 {
                findings.add(
                    "outcome hook not run exactly once (runs again unflagged)",
                    format!("{at}: {attempt}: hooks {hooks:?}, decided {decided:?}"),
                );
            } else if distinct_kinds(&hooks) != distinct_kinds(&decided) {
                findings.add(
                    "outcome hook differs from the decision",
                    format!("{at}: {attempt}: hooks {hooks:?}, decided {decided:?}"),
                );
            }
            if let Some(n) = log.accepted.get(attempt).filter(|n| **n > 1) {
                findings.add("transfer accepted more than once", format!("{at}: {attempt} x{n}"));
            }
        }
        // A copy of the first target's failure that failed the next target:
        // one failure more than scripted, one completion less.
        let echoed = unconfirmed == 0
            && attempts.len() == posts.len()
            && completed + 1 == scenario.completed
            && failed == scenario.failed + 1
            && scenario.failed > 0;
        if echoed {
            echoes += 1;
        }
        let on_route = on_route && !echoed;
        if on_route && (completed, failed) != (scenario.completed, scenario.failed) && attempts.len() == posts.len() {
            findings.add(
                "outcomes differ from the script",
                format!(
                    "{at}: {completed} completed, {failed} failed; expected {} and {}",
                    scenario.completed, scenario.failed
                ),
            );
        }
        match store.load(call).await {
            Ok(Some(record)) => {
                let latest = record.attempt.as_ref().and_then(|a| a.machine.outcome());
                let want_completed = scenario.completed > 0;
                if !record.is_ended() {
                    let json = record.to_json().map(|j| String::from_utf8_lossy(&j).into_owned());
                    let deliveries: Vec<String> = cluster
                        .emulator
                        .notifications(call)
                        .iter()
                        .map(|n| {
                            let state = n.body.pointer("/value/0/resourceData/state").and_then(Value::as_str);
                            format!("{} #{} -> {:?}", state.unwrap_or("-"), n.attempt, n.response_status)
                        })
                        .collect();
                    let mut consultation = String::new();
                    if let Some(id) = &record.links.consultation
                        && let Ok(Some(linked)) = store.load(id).await
                    {
                        let json = linked.to_json().map(|j| String::from_utf8_lossy(&j).into_owned());
                        let states: Vec<String> = cluster
                            .emulator
                            .notifications(id)
                            .iter()
                            .map(|n| {
                                let state = n.body.pointer("/value/0/resourceData/state").and_then(Value::as_str);
                                format!("{} #{} -> {:?}", state.unwrap_or("-"), n.attempt, n.response_status)
                            })
                            .collect();
                        consultation = format!(
                            "\n        consultation {id}: {}\n        its deliveries: {states:?}",
                            json.unwrap_or_default()
                        );
                    }
                    findings.add(
                        "record in Redis not ended",
                        format!(
                            "{at}: version {}: {}\n        deliveries: {deliveries:?}{consultation}",
                            record.version,
                            json.unwrap_or_default()
                        ),
                    );
                }
                if usize::try_from(record.attempts_started).unwrap_or(usize::MAX) != attempts.len() {
                    findings.add(
                        "record's attempt count != attempts logged",
                        format!("{at}: record {}, logged {}", record.attempts_started, attempts.len()),
                    );
                }
                if on_route && !posts.is_empty() && latest.map(|o| o.is_completed()) != Some(want_completed) {
                    findings.add(
                        "record's last outcome differs from the script",
                        format!("{at}: {latest:?}, expected completed = {want_completed}"),
                    );
                }
            }
            Ok(None) => findings.add("no record in Redis", at.clone()),
            Err(e) => findings.add("record unreadable", format!("{at}: {e}")),
        }
    }

    let instances: Vec<String> = cluster
        .all_bots()
        .map(|b| format!("{} (pid {}, {})", b.name(), b.pid(), b.base_url()))
        .collect();
    let proxy: Vec<String> = cluster
        .proxy
        .counters()
        .iter()
        .map(|c| {
            format!(
                "{} fwd {} refused {} failed {}",
                c.url, c.forwarded, c.refused, c.failed
            )
        })
        .collect();
    // Only calls the stopped instance held in that instant: a third of those in flight at most.
    let at_most = STEADY.concurrency / INSTANCES;
    if rerouted > at_most {
        findings.add(
            "too many calls rerouted by unconfirmed attempts",
            format!("{rerouted} calls, at most {at_most} expected"),
        );
    }
    if echoes > 0 {
        findings.add(
            "attempts failed by a copy of the previous failure",
            format!("{echoes} calls, none allowed"),
        );
    }
    let context = format!(
        "{test}: {} of {calls} calls offered, {} attempts logged ({} failed as unconfirmed, \
         {rerouted} calls rerouted, {echoes} failed by a redelivered earlier failure), load took {load_time:.1?}\n\
         instances: {}\nproxy: {} (502 with no upstream: {})\nwarnings logged: {:?}",
        offered.len(),
        log.started.len(),
        log.unconfirmed.len(),
        instances.join(", "),
        proxy.join("; "),
        cluster.proxy.unavailable(),
        most_frequent(&log.warnings, 8),
    );
    eprintln!("{context}");
    if !findings.0.is_empty() {
        let kept = keep_evidence(cluster, test);
        panic!("{context}\nfindings:\n{}\n{kept}", findings.summary());
    }
}

/// The `n` most frequent messages, most frequent first.
fn most_frequent(counts: &BTreeMap<String, usize>, n: usize) -> Vec<(usize, &str)> {
    let mut by_count: Vec<(usize, &str)> = counts.iter().map(|(m, c)| (*c, m.as_str())).collect();
    by_count.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
    by_count.truncate(n);
    by_count
}

/// Copies every instance's log and the emulator's request log next to the
/// build's other test files, so a failure can be read after the processes
/// and their temporary directories are gone.
fn keep_evidence(cluster: &Cluster, test: &str) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scale-out").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return format!("(logs not kept: {e})");
    }
    for bot in cluster.all_bots() {
        let _ = std::fs::copy(bot.log_path(), dir.join(format!("{}.log", bot.name())));
    }
    let requests: Vec<String> = cluster
        .emulator
        .requests()
        .iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .collect();
    let _ = std::fs::write(dir.join("emulator-requests.jsonl"), requests.join("\n"));
    for (i, path) in cluster.redis.log_paths().iter().enumerate() {
        let _ = std::fs::copy(path, dir.join(format!("redis-{i}.log")));
    }
    format!("instance logs and the emulator's requests: {}", dir.display())
}

/// The whole scenario: start, offer `calls`, disrupt while they run, verify.
async fn run<F>(test: &str, options: ClusterOptions, shape: LoadShape, disrupt: F)
where
    F: AsyncFnOnce(&mut Cluster, &Load),
{
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = Cluster::start(options).await;
    let setup = started.elapsed();
    let load = Load::start(&cluster, shape, Duration::from_secs(120));
    disrupt(&mut cluster, &load).await;
    let result = load.finish().await;
    eprintln!(
        "{test}: set-up {setup:.1?}, load {:.1?} ({} calls offered)",
        result.elapsed,
        result.placed.len()
    );
    verify(&cluster, test, shape.calls, &result).await;
    eprintln!("{test}: passed in {:.1?}", started.elapsed());
}

/// Tests 2 to 5: a steady 100 calls a second for 4 s, 24 in flight at most,
/// so calls are in flight on every instance when the disruption comes at 1.5 s
/// and new ones keep coming after it.
const STEADY: LoadShape = LoadShape {
    calls: 400,
    concurrency: 24,
    pace: Duration::from_millis(10),
};
/// When the disruption comes, from the start of the load.
const DISRUPT_AT: Duration = Duration::from_millis(1_500);

/// The baseline: the same load and checks as the thousand-call test, with
/// every notification going to one of the three instances. It shows that
/// the harness and the checks pass when a call's notifications are not
/// spread across instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_in_rotation_ends_every_call_as_scripted() {
    run(
        "one_instance_in_rotation_ends_every_call_as_scripted",
        ClusterOptions {
            one_in_rotation: true,
            ..ClusterOptions::default()
        },
        THOUSAND,
        async |_, _| {},
    )
    .await;
}

/// 1,000 calls as fast as 32 slots allow.
const THOUSAND: LoadShape = LoadShape {
    calls: 1_000,
    concurrency: 32,
    pace: Duration::ZERO,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_mixed_transfers_across_three_instances_each_end_once() {
    run(
        "a_thousand_mixed_transfers_across_three_instances_each_end_once",
        ClusterOptions::default(),
        THOUSAND,
        async |_, _| {},
    )
    .await;
}

/// Before: a notification was attributed to an attempt by comparing the
/// wall clock of the instance that received it with that of the instance
/// that started the attempt; an instance whose clock ran ahead could turn a
/// real 7015 received elsewhere into `call_ended`. Now no decision compares
/// two hosts' clocks. One instance runs 5 s ahead of the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_whose_clocks_differ_by_seconds_end_every_call_as_scripted() {
    assert!(
        Path::new(FAKETIME_LIBRARY).exists(),
        "{FAKETIME_LIBRARY} is missing: install Debian's faketime package (scripts/test.sh says how)"
    );
    run(
        "two_instances_whose_clocks_differ_by_seconds_end_every_call_as_scripted",
        ClusterOptions {
            clock_ahead: Some("+5s"),
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, _| {
            // The skew took: the first instance logs times 5 s ahead.
            let logged = cluster.bots[0]
                .log_lines()
                .iter()
                .find_map(|line| line.get("timestamp").and_then(Value::as_str).map(str::to_owned))
                .expect("the first instance logged a timestamp");
            let logged = time_from_rfc3339(&logged).unwrap_or_else(|| panic!("not an RFC 3339 time: {logged}"));
            let ahead = logged.duration_since(std::time::SystemTime::now()).unwrap_or_default();
            assert!(
                ahead >= Duration::from_secs(3),
                "the first instance's clock is not ahead: {logged:?}"
            );
        },
    )
    .await;
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`2026-12-08T00:11:22.123456Z`).
fn time_from_rfc3339(text: &str) -> Option<std::time::SystemTime> {
    let (date, time) = text.trim_end_matches('Z').split_once('T')?;
    let mut date = date.split('-').map(str::parse::<i64>);
    let (y, m, d) = (date.next()?.ok()?, date.next()?.ok()?, date.next()?.ok()?);
    let mut time = time.split(':');
    let (hh, mm) = (time.next()?.parse::<i64>().ok()?, time.next()?.parse::<i64>().ok()?);
    let ss: f64 = time.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3_600 + mm * 60;
    let secs = u64::try_from(secs).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_secs_f64(ss))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_mid_load_loses_no_outcome() {
    run(
        "kill_9_of_one_instance_mid_load_loses_no_outcome",
        ClusterOptions {
            abrupt_stop: true,
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| {
            load.wait_until(DISRUPT_AT).await;
            let status = cluster.bots[1].kill9().expect("SIGKILL");
            eprintln!(
                "killed {} ({status}) after {} calls were offered",
                cluster.bots[1].name(),
                load.offered()
            );
            // It stays in the proxy's rotation: the proxy skips it as it refuses connections.
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_longer_than_the_lease_then_sigcont_writes_nothing_stale() {
    run(
        "sigstop_longer_than_the_lease_then_sigcont_writes_nothing_stale",
        ClusterOptions {
            store_extra: "lease_ttl_ms = 1000",
            abrupt_stop: true,
            // Graph gives up on the paused instance and delivers elsewhere
            // while the paused one still holds the request.
            delivery_timeout: Some(Duration::from_secs(1)),
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| {
            load.wait_until(DISRUPT_AT).await;
            // Notifications routed to it hang until the delivery timeout (1 s)
            // and go to another instance; its leases (1 s) expire meanwhile,
            // and on SIGCONT it goes on with what it had started.
            cluster.bots[1].pause().expect("SIGSTOP");
            eprintln!(
                "paused {} after {} calls were offered",
                cluster.bots[1].name(),
                load.offered()
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
            cluster.bots[1].resume().expect("SIGCONT");
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_for_five_seconds_mid_load_loses_nothing() {
    run(
        "redis_stopped_for_five_seconds_mid_load_loses_nothing",
        // A production Redis persists its data; without that a restart loses every call by design.
        ClusterOptions {
            persistent_redis: true,
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| redis_down_for_five_seconds(cluster, load).await,
    )
    .await;
}

/// At [`DISRUPT_AT`], Redis stops for 5 s and starts again on its port and data.
async fn redis_down_for_five_seconds(cluster: &mut Cluster, load: &Load) {
    load.wait_until(DISRUPT_AT).await;
    cluster.redis.server().stop().expect("Redis stops");
    let offered = load.offered();
    tokio::time::sleep(Duration::from_secs(5)).await;
    eprintln!(
        "Redis was down while calls {offered} to {} were offered",
        load.offered()
    );
    cluster
        .redis
        .server()
        .restart()
        .expect("Redis restarts on the same port");
}

/// The steady load on a three-node Redis Cluster: the node holding the
/// indexes (which every write touches) and a third of the calls is stopped
/// with SIGTERM for five seconds, then started again on its port and data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_node_restarted_mid_load_loses_nothing() {
    run(
        "redis_cluster_node_restarted_mid_load_loses_nothing",
        ClusterOptions {
            redis_cluster: true,
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| {
            load.wait_until(DISRUPT_AT).await;
            let index_key = format!("{{{}}}:due", cluster.prefix);
            let redis = cluster.redis.cluster();
            let node = redis.node_for_key(&index_key).expect("the index's node");
            let status = tokio::task::block_in_place(|| redis.stop_node(node, Signal::Term)).expect("the node stops");
            eprintln!(
                "stopped cluster node {node} ({status}) after {} calls were offered",
                load.offered()
            );
            tokio::time::sleep(Duration::from_secs(5)).await;
            let redis = cluster.redis.cluster();
            tokio::task::block_in_place(|| redis.start_node(node)).expect("the node is back and the cluster ok");
        },
    )
    .await;
}

/// Before: while Redis was down the webhook answered 503 and left the rest to
/// Graph's retries, which are not documented to last; with an emulator that
/// gives up after a second, the calls that rang during a 5 s outage were never
/// answered. Now each instance keeps what it takes in its outage journal and
/// appends it when Redis returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_five_seconds_while_graph_retries_for_one_loses_no_call() {
    run(
        "redis_down_for_five_seconds_while_graph_retries_for_one_loses_no_call",
        ClusterOptions {
            persistent_redis: true,
            retry_window: Some(Duration::from_secs(1)),
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| redis_down_for_five_seconds(cluster, load).await,
    )
    .await;
}

/// The outage journal on disk: an instance killed while Redis is down, with
/// notifications it answered 202 in its journal, leaves them to the process
/// that replaces it, which appends them when Redis returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_redis_is_down_leaves_the_journal_to_the_next_process() {
    run(
        "kill_9_while_redis_is_down_leaves_the_journal_to_the_next_process",
        ClusterOptions {
            persistent_redis: true,
            retry_window: Some(Duration::from_secs(1)),
            journal_on_disk: true,
            abrupt_stop: true,
            ..ClusterOptions::default()
        },
        STEADY,
        async |cluster, load| {
            load.wait_until(DISRUPT_AT).await;
            cluster.redis.server().stop().expect("Redis stops");
            let down = Instant::now();
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            let victim = cluster.bots[1].name().to_owned();
            let journaled = journal_lines(cluster, &victim);
            cluster.kill_and_replace(1).await;
            tokio::time::sleep(Duration::from_secs(5).saturating_sub(down.elapsed())).await;
            eprintln!("{journaled} notifications were in {victim}'s journal when it was killed");
            cluster
                .redis
                .server()
                .restart()
                .expect("Redis restarts on the same port");
            assert!(journaled > 0, "{victim} journaled nothing: the test shows nothing");
            let successor = &cluster.bots[1];
            assert!(
                successor
                    .log_text()
                    .contains("taking over notifications a stopped process kept"),
                "{} did not take over {victim}'s journal: {}",
                successor.name(),
                successor.log_tail(20)
            );
        },
    )
    .await;
}

/// Lines in `instance`'s journal files now (named `<instance>.<millis>.<pid>.journal`).
fn journal_lines(cluster: &Cluster, instance: &str) -> usize {
    let dir = cluster.journal.as_ref().expect("journal_on_disk");
    std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&format!("{instance}.")))
        .map(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_all_three_instances_loses_no_outcome() {
    run(
        "rolling_restart_of_all_three_instances_loses_no_outcome",
        ClusterOptions::default(),
        // Long enough that calls keep coming through all three restarts.
        LoadShape { calls: 800, ..STEADY },
        async |cluster, load| {
            load.wait_until(DISRUPT_AT).await;
            for i in 0..INSTANCES {
                let began = Instant::now();
                cluster.restart_instance(i).await;
                eprintln!(
                    "restarted instance {i} in {:.1?}; {} calls offered",
                    began.elapsed(),
                    load.offered()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        },
    )
    .await;
}

/// [`BotProcess`] on the real binary (in-memory store, so no Redis): ready,
/// paused, resumed, killed; its JSON log stays readable afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_process_answers_until_paused_and_refuses_once_killed() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let port = free_port().unwrap();
    let config = config_toml(&ConfigParts {
        emulator: &emulator,
        listen_port: port,
        public_callback_url: &format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        store: "kind = \"memory\"\ninstance_id = \"solo\"",
    });
    let secret = emulator.default_app().client_secret;
    let mut bot = BotProcess::spawn_with_env(
        Path::new(BINARY),
        &config,
        "solo",
        &[("TRANSFER_BOT_CLIENT_SECRET", &secret)],
    )
    .await
    .expect("the bot starts and becomes ready");
    assert_eq!(bot.base_url(), format!("http://127.0.0.1:{port}"));
    let probe = Duration::from_millis(700);
    assert_eq!(bot.get("/readyz", probe).await.unwrap().0, 200);
    let lines = bot.log_lines();
    assert!(
        lines.iter().any(|l| text(l, "/fields/message") == Some("listening")),
        "the JSON log has the start-up line: {lines:?}"
    );

    bot.pause().unwrap();
    let paused = bot.get("/readyz", probe).await;
    assert_eq!(
        paused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::TimedOut),
        "a paused process accepts the connection but never answers: {paused:?}"
    );
    bot.resume().unwrap();
    assert_eq!(bot.get("/readyz", probe).await.unwrap().0, 200);

    let status = bot.kill9().unwrap();
    assert!(!status.success(), "{status}");
    assert!(!bot.is_running());
    let refused = bot.get("/readyz", probe).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
    assert!(bot.pause().is_err(), "no signal to a process that is gone");
    assert!(!bot.log_lines().is_empty(), "the log outlives the process");
    emulator.shutdown().await;
}

/// `terminate` is a graceful shutdown: exit status 0 and the app's last log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_bot_process_shuts_down_gracefully() {
    let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let port = free_port().unwrap();
    let config = config_toml(&ConfigParts {
        emulator: &emulator,
        listen_port: port,
        public_callback_url: &format!("http://127.0.0.1:{port}{CALLBACK_PATH}"),
        store: "kind = \"memory\"",
    });
    let secret = emulator.default_app().client_secret;
    let mut bot = BotProcess::spawn_with_env(
        Path::new(BINARY),
        &config,
        "graceful",
        &[("TRANSFER_BOT_CLIENT_SECRET", &secret)],
    )
    .await
    .unwrap();
    let status = bot.terminate(TERMINATE_TIMEOUT).await.unwrap();
    assert!(status.success(), "{status}\n{}", bot.log_tail(10));
    assert!(
        bot.log_lines()
            .iter()
            .any(|l| text(l, "/fields/message") == Some("stopped")),
        "{}",
        bot.log_tail(10)
    );
    emulator.shutdown().await;
}
