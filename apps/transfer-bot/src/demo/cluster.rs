//! `transfer-bot demo --instances N --redis URL`: the scripted calls on N
//! `serve` processes that share calls through Redis, behind a loopback
//! round-robin proxy (so the notifications of one call reach different
//! instances). One instance is killed with `SIGKILL` in the middle; every call
//! must still end as scripted.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use graph_comms_emulator::{Emulator, EmulatorConfig};
use graph_comms_handler::model::{CallId, CallState};
use graph_comms_testkit::{BotProcess, RoundRobinProxy, free_port};
use serde_json::Value;

use super::{CALL_TIMEOUT, CallPlacer, DemoReport, DemoRow, Scenario, row_from, scenarios};
use crate::bot::CallOutcome;
use crate::menu::Menu;
use crate::routing::{Destination, Target};

/// The callback path the instances serve.
const CALLBACK_PATH: &str = "/api/calls";
/// Short, so the killed instance's calls are taken over quickly.
const LEASE_TTL_MS: u64 = 2_000;
/// Graph delivers a notification again when an instance refuses it or is gone.
const DELIVERY_ATTEMPTS: u32 = 10;

/// What `demo --instances N --redis URL` runs on.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How many `serve` processes (2 or more).
    pub instances: usize,
    /// The Redis they share.
    pub redis_url: String,
    /// Print progress to stderr.
    pub progress: bool,
}

/// Runs the scripted calls on `options.instances` processes sharing Redis and
/// kills one of them with `SIGKILL` in the middle.
///
/// # Errors
///
/// When the emulator, the proxy or an instance cannot start.
pub async fn run_cluster_demo(options: &ClusterOptions) -> anyhow::Result<DemoReport> {
    anyhow::ensure!(
        options.instances >= 2,
        "--instances must be 2 or more (got {})",
        options.instances
    );
    let scenarios = scenarios()?;
    let mut cluster = Cluster::start(options, &scenarios).await?;
    let victim = 1.min(cluster.bots.len() - 1);
    let kill_at = scenarios.len() / 2;
    let mut rows = Vec::with_capacity(scenarios.len());
    for (i, scenario) in scenarios.iter().enumerate() {
        if options.progress {
            eprintln!("== {}: {}", i + 1, scenario.name);
        }
        let call = match cluster.placer.place(scenario, i).await {
            Ok(call) => call,
            Err(e) => {
                rows.push(failed_row(scenario, format!("could not place the call: {e}")));
                continue;
            }
        };
        if i == kill_at {
            // While the call is being handled: its notifications are spread over every instance.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let bot = &mut cluster.bots[victim];
            let status = bot.kill9().with_context(|| format!("killing {}", bot.name()))?;
            if options.progress {
                eprintln!("== killed {} (pid {}) with SIGKILL: {status}", bot.name(), bot.pid());
            }
        }
        let ended = cluster
            .emulator
            .wait_for_state(&call, CallState::Terminated, CALL_TIMEOUT)
            .await
            .is_ok();
        let finished = wait_for_finish(&cluster.bots, &call, ended).await;
        if options.progress
            && let Some((outcome, path)) = &finished
        {
            eprintln!("   {outcome}; tried [{}]", path.join(", "));
        }
        let completions = completions(&cluster.bots, &call);
        rows.push(row_from(scenario, call, finished, completions));
    }
    cluster.shutdown().await;
    Ok(DemoReport { rows })
}

/// `demo --instances N --redis URL --calls M`: a randomised mix of the
/// scripted calls, `load.concurrency` in flight, on N instances (1 or more);
/// transfers per second and latency like `demo --calls`. Outcomes are read
/// from the instances' logs once the load is over.
///
/// # Errors
///
/// When the emulator, the proxy or an instance cannot start.
pub async fn run_cluster_load(options: &ClusterOptions, load: super::LoadOptions) -> anyhow::Result<super::LoadReport> {
    anyhow::ensure!(options.instances >= 1, "--instances must be 1 or more");
    let scenarios = scenarios()?;
    let seed = load.seed.unwrap_or_else(rand::random);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let picks: Vec<usize> = (0..load.calls)
        .map(|_| rand::Rng::random_range(&mut rng, 0..scenarios.len()))
        .collect();
    let mut mix: Vec<(&'static str, usize)> = scenarios.iter().map(|s| (s.name, 0)).collect();
    for pick in &picks {
        mix[*pick].1 += 1;
    }
    let cluster = Cluster::start(options, &scenarios).await?;
    let started = std::time::Instant::now();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(load.concurrency.max(1)));
    let placer = std::sync::Arc::clone(&cluster.placer);
    let scenario_list = std::sync::Arc::new(scenarios.clone());
    let mut calls = tokio::task::JoinSet::new();
    for (n, pick) in picks.iter().copied().enumerate() {
        let permit = std::sync::Arc::clone(&slots).acquire_owned().await?;
        let (placer, emulator, list) = (
            std::sync::Arc::clone(&placer),
            cluster.emulator.clone(),
            std::sync::Arc::clone(&scenario_list),
        );
        calls.spawn(async move {
            let at = std::time::Instant::now();
            let call = placer.place(&list[pick], n).await.ok()?;
            let ended = emulator
                .wait_for_state(&call, CallState::Terminated, CALL_TIMEOUT)
                .await
                .is_ok();
            drop(permit);
            Some((call, pick, ended.then(|| at.elapsed())))
        });
    }
    let mut placed = Vec::with_capacity(load.calls);
    while let Some(done) = calls.join_next().await {
        if let Some(call) = done? {
            placed.push(call);
        }
    }
    let elapsed = started.elapsed();
    // Microseconds, 1 µs to 1 hour, 3 significant digits.
    let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let logs = LogIndex::read(&cluster.bots);
    let (mut ok, mut transfers) = (0, 0);
    for (call, pick, took) in placed {
        if let Some(took) = took {
            latency.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let completions = logs.completions.get(&call).map_or(0, Vec::len);
        transfers += completions as u64;
        if row_from(
            &scenarios[pick],
            call.clone(),
            logs.finished.get(&call).cloned(),
            completions,
        )
        .ok
        {
            ok += 1;
        }
    }
    cluster.shutdown().await;
    Ok(super::LoadReport {
        calls: load.calls,
        ok,
        transfers,
        elapsed,
        latency,
        mix,
        seed,
    })
}

/// The emulator, the proxy and the `serve` processes of one run.
struct Cluster {
    emulator: Emulator,
    proxy: RoundRobinProxy,
    bots: Vec<BotProcess>,
    placer: std::sync::Arc<CallPlacer>,
}

impl Cluster {
    async fn start(options: &ClusterOptions, scenarios: &[Scenario]) -> anyhow::Result<Self> {
        let binary = std::env::current_exe().context("locating the transfer-bot binary")?;
        let config = EmulatorConfig {
            delivery_attempts: DELIVERY_ATTEMPTS,
            delivery_retry_initial: Duration::from_millis(20),
            delivery_retry_max_interval: Duration::from_secs(3600),
            delivery_retry_window: Duration::from_secs(3600),
            ..EmulatorConfig::default()
        };
        let emulator = Emulator::start(config).await.context("starting the Graph emulator")?;
        for scenario in scenarios {
            for (id, behavior) in &scenario.behaviors {
                emulator.script_target(id, behavior.clone());
            }
        }
        let proxy = RoundRobinProxy::start(Vec::new())
            .await
            .context("starting the round-robin proxy")?;
        let callback = format!("{}{CALLBACK_PATH}", proxy.url());
        let prefix = format!("transfer-bot-demo-{}", uuid_like());
        let mut bots = Vec::with_capacity(options.instances);
        for i in 1..=options.instances {
            let name = format!("bot-{i}");
            let toml = config_toml(&emulator, scenarios, &callback, &options.redis_url, &prefix, &name)?;
            let secret = emulator.default_app().client_secret;
            let bot = BotProcess::spawn_with_env(&binary, &toml, &name, &[("TRANSFER_BOT_CLIENT_SECRET", &secret)])
                .await
                .with_context(|| format!("starting instance {name}"))?;
            if options.progress {
                eprintln!("== {name} (pid {}) at {}", bot.pid(), bot.base_url());
            }
            bots.push(bot);
        }
        proxy.set_upstreams(bots.iter().map(BotProcess::base_url).collect());
        let placer = std::sync::Arc::new(CallPlacer::new(emulator.clone(), emulator.default_app(), callback));
        Ok(Self {
            emulator,
            proxy,
            bots,
            placer,
        })
    }

    async fn shutdown(mut self) {
        for bot in &mut self.bots {
            if bot.is_running() {
                let _ = bot.terminate(Duration::from_secs(20)).await;
            }
        }
        self.proxy.shutdown().await;
        self.emulator.shutdown().await;
    }
}

/// What the instances' logs say about every call, read once.
#[derive(Default)]
struct LogIndex {
    finished: HashMap<CallId, (CallOutcome, Vec<String>)>,
    /// Completed attempts per call, each attempt once.
    completions: HashMap<CallId, Vec<String>>,
}

impl LogIndex {
    fn read(bots: &[BotProcess]) -> Self {
        let mut index = Self::default();
        for line in bots.iter().flat_map(BotProcess::log_lines) {
            let Some(call) = field(&line, "call_id").map(CallId::from) else {
                continue;
            };
            if let Some(finished) = finished(&line, &call) {
                index.finished.insert(call.clone(), finished);
            }
            if let Some(attempt) = completed_attempt(&line) {
                let attempts = index.completions.entry(call).or_default();
                if !attempts.iter().any(|a| a == attempt) {
                    attempts.push(attempt.to_owned());
                }
            }
        }
        index
    }
}

fn failed_row(scenario: &Scenario, reason: String) -> DemoRow {
    DemoRow {
        call_id: None,
        scenario: scenario.name,
        path: Vec::new(),
        outcome: Err(reason),
        expected: scenario.expected.clone(),
        completions: 0,
        ok: false,
    }
}

/// A short random suffix, so runs on one Redis do not share calls.
fn uuid_like() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Waits (bounded) for an instance's `call finished` line about `call`.
async fn wait_for_finish(bots: &[BotProcess], call: &CallId, ended: bool) -> Option<(CallOutcome, Vec<String>)> {
    let deadline = tokio::time::Instant::now() + if ended { Duration::from_secs(5) } else { Duration::ZERO };
    loop {
        if let Some(finished) = bots
            .iter()
            .flat_map(BotProcess::log_lines)
            .find_map(|l| finished(&l, call))
        {
            return Some(finished);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn field<'a>(line: &'a Value, name: &str) -> Option<&'a str> {
    line.pointer(&format!("/fields/{name}")).and_then(Value::as_str)
}

/// The outcome and path of a `call finished` line about `call`.
fn finished(line: &Value, call: &CallId) -> Option<(CallOutcome, Vec<String>)> {
    if field(line, "message") != Some("call finished")
        || field(line, "call_id").map(CallId::from).as_ref() != Some(call)
    {
        return None;
    }
    let outcome: CallOutcome = serde_json::from_str(field(line, "outcome_json")?).ok()?;
    let path = field(line, "path")
        .filter(|p| !p.is_empty())
        .map(|p| p.split(" -> ").map(str::to_owned).collect())
        .unwrap_or_default();
    Some((outcome, path))
}

/// Completed attempts of `call` its instances reported, each attempt once
/// (an attempt's hook run again after a takeover is the same completion).
fn completions(bots: &[BotProcess], call: &CallId) -> usize {
    let mut attempts: Vec<String> = Vec::new();
    for line in bots.iter().flat_map(BotProcess::log_lines) {
        if field(&line, "call_id").map(CallId::from).as_ref() == Some(call)
            && let Some(attempt) = completed_attempt(&line)
            && !attempts.iter().any(|a| a == attempt)
        {
            attempts.push(attempt.to_owned());
        }
    }
    attempts.len()
}

/// The attempt of the app's `transfer completed` line.
fn completed_attempt(line: &Value) -> Option<&str> {
    let from_app = line.pointer("/target").and_then(Value::as_str) == Some("transfer_bot::bot");
    (field(line, "message") == Some("transfer completed") && from_app)
        .then(|| field(line, "attempt"))
        .flatten()
}

/// One instance's `serve` configuration: the emulator as Graph, the proxy as
/// the public callback, Redis as the store.
fn config_toml(
    emulator: &Emulator,
    scenarios: &[Scenario],
    callback: &str,
    redis_url: &str,
    prefix: &str,
    instance_id: &str,
) -> anyhow::Result<String> {
    let mut routes: Vec<(String, String)> = Vec::new();
    for scenario in scenarios {
        // Scenarios calling the same identity share its route.
        if routes.iter().any(|(called, _)| called == scenario.called_id) {
            continue;
        }
        let targets: Vec<String> = scenario.targets.iter().map(target_toml).collect();
        routes.push((scenario.called_id.to_owned(), format!("[{}]", targets.join(", "))));
    }
    let menu = super::demo_menu();
    Ok(serve_config(&ServeConfig {
        emulator,
        listen_port: free_port()?,
        public_callback_url: callback,
        routes: &routes,
        default_targets: r#"[{ kind = "user", id = "operator" }]"#,
        menu: Some(&menu),
        store: &format!(
            "kind = \"redis\"\nredis_url = \"{redis_url}\"\nkey_prefix = \"{prefix}\"\ninstance_id = \"{instance_id}\"\nlease_ttl_ms = {LEASE_TTL_MS}\n"
        ),
    }))
}

/// The parts of a `transfer-bot serve` configuration against the emulator
/// (the client secret comes from `TRANSFER_BOT_CLIENT_SECRET`).
#[derive(Debug)]
pub struct ServeConfig<'a> {
    /// Graph, the login endpoint and the signing keys.
    pub emulator: &'a Emulator,
    /// The loopback port to listen on.
    pub listen_port: u16,
    /// Where Graph posts notifications (a proxy in front of the instances).
    pub public_callback_url: &'a str,
    /// `(match_called_id, targets as an inline TOML array)` per route.
    pub routes: &'a [(String, String)],
    /// `default_targets` as an inline TOML array.
    pub default_targets: &'a str,
    /// The `[menu]` table, if any.
    pub menu: Option<&'a Menu>,
    /// The body of the `[store]` table.
    pub store: &'a str,
}

/// The configuration file's text (JSON logs, 10 s transfer timeout, an apology prompt,
/// the demo's resource account for consultation calls to numbers).
pub fn serve_config(parts: &ServeConfig<'_>) -> String {
    let app = parts.emulator.default_app();
    let mut toml = format!(
        r#"tenant_id = "{tenant}"
app_id = "{app_id}"
graph_base_url = "{graph}"
login_base_url = "{login}"
openid_configuration_url = "{openid}"
listen = "127.0.0.1:{port}"
public_callback_url = "{callback}"
callback_path = "{CALLBACK_PATH}"
apology_prompt_uri = "https://transfer-bot.invalid/audio/sorry.wav"
application_instance_id = "{instance}"
transfer_timeout_secs = 10
log_format = "json"
default_targets = {defaults}
"#,
        tenant = app.tenant_id,
        app_id = app.app_id,
        graph = parts.emulator.graph_base_url(),
        login = parts.emulator.login_base_url(),
        openid = parts.emulator.openid_configuration_url(),
        port = parts.listen_port,
        callback = parts.public_callback_url,
        defaults = parts.default_targets,
        instance = super::DEMO_RESOURCE_ACCOUNT,
    );
    for (called_id, targets) in parts.routes {
        toml.push_str(&format!(
            "\n[[routes]]\nmatch_called_id = \"{called_id}\"\ntargets = {targets}\n"
        ));
    }
    if let Some(menu) = parts.menu {
        toml.push_str(&menu_toml(menu));
    }
    toml.push_str(&format!("\n[store]\n{}\n", parts.store));
    toml
}

/// The `[menu]` table of `menu`.
fn menu_toml(menu: &Menu) -> String {
    let targets = |targets: &[Target]| {
        let tables: Vec<String> = targets.iter().map(target_toml).collect();
        format!("[{}]", tables.join(", "))
    };
    let mut toml = format!(
        "\n[menu]\nprompt_uri = \"{}\"\ntimeout_ms = {}\nreprompts = {}\n",
        menu.prompt_uri,
        menu.timeout.as_millis(),
        menu.reprompts
    );
    if let Some(called) = &menu.match_called_id {
        toml.push_str(&format!("match_called_id = \"{called}\"\n"));
    }
    if let Some(operator) = &menu.operator {
        toml.push_str(&format!("operator_targets = {}\n", targets(operator)));
    }
    for option in &menu.options {
        toml.push_str(&format!(
            "\n[[menu.options]]\ndigit = \"{}\"\ntargets = {}\n",
            option.key,
            targets(&option.targets)
        ));
    }
    toml
}

/// A target as an inline TOML table of the `targets` list.
fn target_toml(target: &Target) -> String {
    let (kind, id, tenant) = match &target.destination {
        Destination::User { id, tenant_id } => ("user", id.clone(), tenant_id.clone()),
        Destination::Phone(number) => ("phone", number.as_str().to_owned(), None),
        Destination::ApplicationInstance { id, tenant_id } => ("application_instance", id.clone(), tenant_id.clone()),
    };
    let mut table = format!(
        "{{ kind = \"{kind}\", id = \"{id}\", mode = \"{}\"",
        target.mode.as_str()
    );
    if let Some(tenant) = tenant {
        table.push_str(&format!(", tenant_id = \"{tenant}\""));
    }
    if let Some(name) = &target.display_name {
        table.push_str(&format!(", display_name = \"{name}\""));
    }
    table.push_str(" }");
    table
}
