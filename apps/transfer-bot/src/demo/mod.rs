//! `transfer-bot demo`: the embedded Graph emulator, scripted calls, and a result table.
//!
//! [`cluster`] runs the same calls on several `serve` processes sharing Redis.

pub mod cluster;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use graph_comms_emulator::{DeliveryFaults, Emulator, EmulatorConfig, IncomingCall, RegisteredApp, TargetBehavior};
use graph_comms_handler::model::{CallId, Identity, IdentitySet, ParticipantInfo, PhoneNumber, Tone};
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::mpsc;

use crate::bot::{BotEvent, BotEventKind, CallOutcome};
use crate::config::{Config, GraphClientSettings, LogFormat, Secret, StoreSettings};
use crate::menu::{Menu, MenuOption};
use crate::routing::{Route, RoutingPolicy, Target};
use crate::server::RunningBot;

/// How long one scripted call may take before it counts as stuck.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// One scripted call: who is called, how the targets behave, what should happen.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name shown in the table.
    pub name: &'static str,
    /// The called identity (an application instance id) the route matches.
    pub called_id: &'static str,
    /// The route's targets.
    pub targets: Vec<Target>,
    /// How each target id behaves in the emulator.
    pub behaviors: Vec<(String, TargetBehavior)>,
    /// Call from a phone number instead of a Teams user.
    pub from_phone: bool,
    /// Make it a group call (the transfer then carries `transferee`).
    pub group: bool,
    /// Notification delivery faults for the call.
    pub faults: DeliveryFaults,
    /// Keys the caller presses once the bot listens for them (the menu).
    pub presses: Vec<Tone>,
    /// The targets the bot should try, in order (log labels).
    pub expected_path: Vec<String>,
    /// The outcome it should reach.
    pub expected: CallOutcome,
}

fn user(id: &str) -> Target {
    Target::user(id)
}

fn phone(number: &str) -> anyhow::Result<Target> {
    Ok(Target::phone(PhoneNumber::parse(number)?))
}

fn transferred(target: &Target) -> CallOutcome {
    CallOutcome::Transferred {
        target: target.to_string(),
    }
}

/// The scripted calls, in the order they run.
pub fn scenarios() -> anyhow::Result<Vec<Scenario>> {
    let base = |name, called_id, targets: Vec<Target>, behaviors: Vec<(&str, TargetBehavior)>| {
        let expected = targets.last().map_or(CallOutcome::Apologised, transferred);
        Scenario {
            name,
            called_id,
            expected_path: targets.iter().map(ToString::to_string).collect(),
            targets,
            behaviors: behaviors.into_iter().map(|(id, b)| (id.to_owned(), b)).collect(),
            from_phone: false,
            group: false,
            faults: DeliveryFaults::default(),
            presses: Vec::new(),
            expected,
        }
    };
    // The menu's callers (see `demo_menu`): the route's target is the operator.
    let menu_call = |name, presses: Vec<Tone>, reaches: Target| Scenario {
        expected_path: vec![reaches.to_string()],
        expected: transferred(&reaches),
        presses,
        ..base(
            name,
            MENU_CALLED_ID,
            vec![user("olga")],
            vec![
                ("olga", TargetBehavior::Accept),
                ("sam", TargetBehavior::Accept),
                ("sue", TargetBehavior::Accept),
            ],
        )
    };
    let partner_queue = Target::application_instance("partner-queue").in_tenant(OTHER_TENANT);
    let pstn = phone("+14255550100")?;
    let pstn_desk = phone("+14255550142")?.consultative();
    let unreachable = phone("+14255550199")?;
    Ok(vec![
        base(
            "blind transfer",
            "ri-blind",
            vec![user("alice")],
            vec![("alice", TargetBehavior::Accept)],
        ),
        base(
            "declined, falls back",
            "ri-fallback",
            vec![user("bob"), user("carol")],
            vec![("bob", TargetBehavior::Decline), ("carol", TargetBehavior::Accept)],
        ),
        base(
            "consultative transfer",
            "ri-consult",
            vec![user("dave").consultative()],
            vec![("dave", TargetBehavior::Accept)],
        ),
        base(
            "consult declined, falls back",
            "ri-consult-fallback",
            vec![user("ivan").consultative(), user("judy")],
            vec![("ivan", TargetBehavior::Decline), ("judy", TargetBehavior::Accept)],
        ),
        Scenario {
            from_phone: true,
            ..base(
                "PSTN target",
                "ri-pstn",
                vec![pstn.clone()],
                vec![(pstn.id(), TargetBehavior::Accept)],
            )
        },
        base(
            "PSTN consultative (from the resource account)",
            "ri-pstn-consult",
            vec![pstn_desk.clone()],
            vec![(pstn_desk.id(), TargetBehavior::Accept)],
        ),
        Scenario {
            group: true,
            ..base(
                "group call (transferee)",
                "ri-group",
                vec![user("erin")],
                vec![("erin", TargetBehavior::Accept)],
            )
        },
        Scenario {
            expected: CallOutcome::Apologised,
            ..base(
                "all targets fail",
                "ri-all-fail",
                vec![user("frank"), unreachable.clone(), user("grace")],
                vec![
                    ("frank", TargetBehavior::Busy),
                    (unreachable.id(), TargetBehavior::Decline),
                    (
                        "grace",
                        TargetBehavior::NoAnswer {
                            after: Duration::from_millis(50),
                        },
                    ),
                ],
            )
        },
        menu_call("menu: caller presses 2", vec![Tone::Tone2], user("sue")),
        menu_call("menu: no key, operator", Vec::new(), user("olga")),
        base(
            "7505 tenant mismatch, falls back",
            "ri-7505",
            vec![partner_queue, user("kim")],
            vec![("kim", TargetBehavior::Accept)],
        ),
        Scenario {
            faults: DeliveryFaults {
                reorder: true,
                duplicate: true,
                ..DeliveryFaults::default()
            },
            ..base(
                "reordered + duplicated",
                "ri-faults",
                vec![user("heidi")],
                vec![("heidi", TargetBehavior::Accept)],
            )
        },
    ])
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct DemoRow {
    /// The call id (shortened for display by the table).
    pub call_id: Option<CallId>,
    /// The scenario's name.
    pub scenario: &'static str,
    /// Targets tried, in order.
    pub path: Vec<String>,
    /// What happened (or why it did not finish).
    pub outcome: Result<CallOutcome, String>,
    /// What should have happened.
    pub expected: CallOutcome,
    /// Completion events the bot reported for the call (must be at most one).
    pub completions: usize,
    /// Whether the call ended as scripted.
    pub ok: bool,
}

/// The scripted demo's result.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// One row per scripted call.
    pub rows: Vec<DemoRow>,
}

impl DemoReport {
    /// Whether every call ended as its script says.
    pub fn all_ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.ok)
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "call".to_owned(),
            "scenario".to_owned(),
            "path".to_owned(),
            "outcome".to_owned(),
            "expected".to_owned(),
            "ok".to_owned(),
        ]];
        for row in &self.rows {
            let id = row.call_id.as_ref().map_or("-", |c| c.as_str());
            rows.push([
                id.get(..8).unwrap_or(id).to_owned(),
                row.scenario.to_owned(),
                row.path.join(" -> "),
                match &row.outcome {
                    Ok(outcome) => outcome.to_string(),
                    Err(e) => format!("ERROR: {e}"),
                },
                row.expected.to_string(),
                if row.ok { "ok" } else { "FAIL" }.to_owned(),
            ]);
        }
        render_table(&rows)
    }

    /// The process exit code: success only when every call ended as scripted,
    /// so a `FAIL` row (or no row at all) fails the command.
    pub fn exit_code(&self) -> ExitCode {
        if self.all_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Prints the table and a summary line to stdout; the exit code.
    pub fn print_and_check(&self) -> ExitCode {
        print!("{}", self.table());
        println!(
            "{} of {} scripted calls ended as scripted",
            self.rows.iter().filter(|r| r.ok).count(),
            self.rows.len()
        );
        self.exit_code()
    }
}

fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

/// The emulator and a bot serving against it, with the bot's progress events.
pub struct DemoEnvironment {
    /// The emulator.
    pub emulator: Emulator,
    /// The bot.
    pub bot: RunningBot,
    /// Places calls to the bot.
    pub placer: Arc<CallPlacer>,
    /// The receptionist's progress.
    pub events: mpsc::UnboundedReceiver<BotEvent>,
}

impl DemoEnvironment {
    /// Starts the emulator on loopback and the bot against it, routing the given scenarios.
    pub async fn start(scenarios: &[Scenario]) -> anyhow::Result<Self> {
        Self::start_with_store(scenarios, StoreSettings::default()).await
    }

    /// Like [`DemoEnvironment::start`], keeping calls where `store` says (Redis in tests).
    pub async fn start_with_store(scenarios: &[Scenario], store: StoreSettings) -> anyhow::Result<Self> {
        Self::start_configured(scenarios, store, |_| {}).await
    }

    /// Like [`DemoEnvironment::start_with_store`]; `configure` changes the
    /// bot's configuration (the emulator's default app, its tenant, ...) first.
    pub async fn start_configured(
        scenarios: &[Scenario],
        store: StoreSettings,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .context("starting the Graph emulator")?;
        let app = emulator.default_app();
        for scenario in scenarios {
            for (id, behavior) in &scenario.behaviors {
                emulator.script_target(id, behavior.clone());
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let callback_uri = format!("http://{}/api/calls", listener.local_addr()?);
        let mut config = Config {
            tenant_id: app.tenant_id.clone(),
            app_id: app.app_id.clone(),
            client_secret: Secret::new(app.client_secret.clone()),
            graph_base_url: emulator.graph_base_url(),
            login_base_url: emulator.login_base_url(),
            openid_configuration_url: emulator.openid_configuration_url(),
            listen: listener.local_addr()?,
            public_callback_url: callback_uri.clone(),
            callback_path: "/api/calls".into(),
            hold_prompt_uri: Some("https://transfer-bot.invalid/audio/hold.wav".into()),
            apology_prompt_uri: Some("https://transfer-bot.invalid/audio/sorry.wav".into()),
            transfer_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15 * 60),
            hook_timeout: Duration::from_secs(30),
            log_format: LogFormat::Plain,
            graph_client: GraphClientSettings::default(),
            routing: RoutingPolicy {
                routes: routes_of(scenarios),
                default_targets: Vec::new(),
            },
            store,
            menu: Some(demo_menu()),
            allowed_tenants: None,
            application_instance_id: Some(DEMO_RESOURCE_ACCOUNT.to_owned()),
        };
        configure(&mut config);
        let (sender, events) = mpsc::unbounded_channel();
        let bot = RunningBot::start(&config, listener, Some(sender)).await?;
        if let Err(e) = bot.wait_ready(Duration::from_secs(10)).await {
            bot.shutdown().await;
            emulator.shutdown().await;
            return Err(e);
        }
        let placer = Arc::new(CallPlacer {
            emulator: emulator.clone(),
            app,
            callback_uri,
        });
        Ok(Self {
            emulator,
            bot,
            placer,
            events,
        })
    }

    /// Stops the bot, then the emulator.
    pub async fn shutdown(self) {
        self.bot.shutdown().await;
        self.emulator.shutdown().await;
    }
}

/// What the progress events said about one call.
#[derive(Debug, Default, Clone)]
struct CallLog {
    finished: Option<(CallOutcome, Vec<String>)>,
    completions: usize,
    finished_at: Option<Instant>,
}

fn absorb(logs: &mut HashMap<CallId, CallLog>, event: &BotEvent) {
    let log = logs.entry(event.call_id.clone()).or_default();
    match &event.kind {
        BotEventKind::TransferCompleted { .. } => log.completions += 1,
        BotEventKind::Finished { outcome, tried } => {
            log.finished = Some((outcome.clone(), tried.clone()));
            log.finished_at = Some(Instant::now());
        }
        _ => {}
    }
}

/// Runs every scripted scenario one after the other, printing one progress line
/// per event to stderr.
pub async fn run_scripted_demo() -> anyhow::Result<DemoReport> {
    run_scenarios(true).await
}

/// Like [`run_scripted_demo`]; `progress` turns the stderr lines off (tests).
pub async fn run_scenarios(progress: bool) -> anyhow::Result<DemoReport> {
    run_scenario_list(&scenarios()?, progress).await
}

/// Runs the given scenarios one after the other and checks each against its script.
pub async fn run_scenario_list(scenarios: &[Scenario], progress: bool) -> anyhow::Result<DemoReport> {
    let mut env = DemoEnvironment::start(scenarios).await?;
    let mut logs: HashMap<CallId, CallLog> = HashMap::new();
    let mut rows = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        if progress {
            eprintln!("== {}: {}", i + 1, scenario.name);
        }
        let placed = env.placer.place(scenario, i).await;
        let row = match placed {
            Err(e) => DemoRow {
                call_id: None,
                scenario: scenario.name,
                path: Vec::new(),
                outcome: Err(format!("could not place the call: {e}")),
                expected: scenario.expected.clone(),
                completions: 0,
                ok: false,
            },
            Ok(call_id) => {
                let deadline = tokio::time::Instant::now() + CALL_TIMEOUT;
                while logs.get(&call_id).is_none_or(|l| l.finished.is_none()) {
                    match tokio::time::timeout_at(deadline, env.events.recv()).await {
                        Ok(Some(event)) => {
                            if progress {
                                eprintln!("   {event}");
                            }
                            absorb(&mut logs, &event);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                // Let late duplicates arrive, so a second outcome would be seen.
                let settle = tokio::time::Instant::now() + Duration::from_millis(100);
                while let Ok(Some(event)) = tokio::time::timeout_at(settle, env.events.recv()).await {
                    if progress {
                        eprintln!("   {event}");
                    }
                    absorb(&mut logs, &event);
                }
                row_for(scenario, call_id.clone(), logs.get(&call_id))
            }
        };
        rows.push(row);
    }
    env.shutdown().await;
    Ok(DemoReport { rows })
}

fn row_for(scenario: &Scenario, call_id: CallId, log: Option<&CallLog>) -> DemoRow {
    row_from(
        scenario,
        call_id,
        log.and_then(|l| l.finished.clone()),
        log.map_or(0, |l| l.completions),
    )
}

/// A row from what is known about the call: how it finished (outcome, path) and how many completions were reported.
pub(crate) fn row_from(
    scenario: &Scenario,
    call_id: CallId,
    finished: Option<(CallOutcome, Vec<String>)>,
    completions: usize,
) -> DemoRow {
    let (outcome, path) = match finished {
        Some((outcome, path)) => (Ok(outcome), path),
        None => (
            Err(format!("no outcome within {}s", CALL_TIMEOUT.as_secs())),
            Vec::new(),
        ),
    };
    let expected_completions = usize::from(matches!(scenario.expected, CallOutcome::Transferred { .. }));
    let ok = outcome.as_ref().is_ok_and(|o| *o == scenario.expected)
        && path == scenario.expected_path
        && completions == expected_completions;
    DemoRow {
        call_id: Some(call_id),
        scenario: scenario.name,
        path,
        outcome,
        expected: scenario.expected.clone(),
        completions,
        ok,
    }
}

/// Options of the randomised load run.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Calls to place.
    pub calls: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Seed of the scenario mix (random when `None`).
    pub seed: Option<u64>,
}

/// The load run's result.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Calls placed.
    pub calls: usize,
    /// Calls that ended as their scenario says.
    pub ok: usize,
    /// Transfers completed.
    pub transfers: u64,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Incoming-to-finished latency, in microseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// Count per scenario name.
    pub mix: Vec<(&'static str, usize)>,
    /// The seed used.
    pub seed: u64,
}

impl LoadReport {
    /// Completed transfers per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.transfers as f64 / secs } else { 0.0 }
    }

    /// The process exit code: success only when every call ended as scripted.
    pub fn exit_code(&self) -> ExitCode {
        if self.calls > 0 && self.ok == self.calls {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Prints the summary; the exit code.
    pub fn print_and_check(&self) -> ExitCode {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        println!("calls: {} (seed {}), ok: {}", self.calls, self.seed, self.ok);
        for (name, count) in &self.mix {
            println!("  {count:>6}  {name}");
        }
        println!(
            "transfers completed: {} in {:.2}s = {:.1} transfers/s",
            self.transfers,
            self.elapsed.as_secs_f64(),
            self.throughput()
        );
        println!(
            "incoming -> finished latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(0.50),
            ms(0.90),
            ms(0.99),
            self.latency.max() as f64 / 1000.0
        );
        self.exit_code()
    }
}

/// Places `calls` calls drawn at random from the scenarios, `concurrency` at a time.
pub async fn run_load(options: LoadOptions) -> anyhow::Result<LoadReport> {
    let scenarios = scenarios()?;
    let seed = options.seed.unwrap_or_else(rand::random);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let picks: Vec<usize> = (0..options.calls)
        .map(|_| rng.random_range(0..scenarios.len()))
        .collect();
    let mut mix: Vec<(&'static str, usize)> = scenarios.iter().map(|s| (s.name, 0)).collect();
    for pick in &picks {
        mix[*pick].1 += 1;
    }
    let mut env = DemoEnvironment::start(&scenarios).await?;
    let started = Instant::now();
    // Some((call, scenario, placed at)), or None when placing failed.
    let (placed_tx, mut placed_rx) = mpsc::unbounded_channel::<Option<(CallId, usize, Instant)>>();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency));
    let scenarios = Arc::new(scenarios);
    let mut pending: HashMap<CallId, (usize, Instant)> = HashMap::new();
    let mut logs: HashMap<CallId, CallLog> = HashMap::new();
    // Microseconds, 1 µs to 1 hour, 3 significant digits.
    let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut ok = 0;
    let mut finished = 0;
    let mut failed_to_place = 0;

    let placer = {
        let semaphore = Arc::clone(&semaphore);
        let scenarios = Arc::clone(&scenarios);
        let placer = Arc::clone(&env.placer);
        tokio::spawn(async move {
            for (n, pick) in picks.into_iter().enumerate() {
                let Ok(permit) = Arc::clone(&semaphore).acquire_owned().await else {
                    return;
                };
                let at = Instant::now();
                let placed = placer.place(&scenarios[pick], n).await;
                // The permit goes back when the call finishes (see below).
                permit.forget();
                match placed {
                    Ok(id) => {
                        let _ = placed_tx.send(Some((id, pick, at)));
                    }
                    Err(e) => {
                        eprintln!("could not place call {n}: {e}");
                        semaphore.add_permits(1);
                        let _ = placed_tx.send(None);
                    }
                }
            }
        })
    };

    let deadline = tokio::time::Instant::now() + CALL_TIMEOUT + Duration::from_millis(50) * options.calls as u32;
    let mut placing = true;
    while finished + failed_to_place < options.calls {
        tokio::select! {
            placed = placed_rx.recv(), if placing => match placed {
                Some(None) => failed_to_place += 1,
                Some(Some((id, pick, at))) => { pending.insert(id, (pick, at)); }
                None => placing = false,
            },
            event = env.events.recv() => match event {
                Some(event) => absorb(&mut logs, &event),
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
        let done: Vec<CallId> = pending
            .keys()
            .filter(|id| logs.get(*id).is_some_and(|l| l.finished.is_some()))
            .cloned()
            .collect();
        for id in done {
            let Some((pick, at)) = pending.remove(&id) else {
                continue;
            };
            let log = logs.remove(&id).unwrap_or_default();
            let end = log.finished_at.unwrap_or_else(Instant::now);
            let micros = u64::try_from(end.duration_since(at).as_micros()).unwrap_or(u64::MAX);
            latency.saturating_record(micros.max(1));
            if row_for(&scenarios[pick], id.clone(), Some(&log)).ok {
                ok += 1;
            }
            finished += 1;
            semaphore.add_permits(1);
        }
    }
    let elapsed = started.elapsed();
    placer.abort();
    let transfers = env.bot.metrics.transfers_completed();
    env.shutdown().await;
    Ok(LoadReport {
        calls: options.calls,
        ok,
        transfers,
        elapsed,
        latency,
        mix,
        seed,
    })
}

/// Offers scripted calls to the bot through the emulator.
#[derive(Debug)]
pub struct CallPlacer {
    emulator: Emulator,
    app: RegisteredApp,
    callback_uri: String,
}

impl CallPlacer {
    /// Where the bot takes notifications.
    pub fn callback_uri(&self) -> &str {
        &self.callback_uri
    }

    /// Offers calls through `emulator` as `app`'s callers; Graph posts their
    /// notifications to `callback_uri`.
    pub fn new(emulator: Emulator, app: RegisteredApp, callback_uri: String) -> Self {
        Self {
            emulator,
            app,
            callback_uri,
        }
    }

    /// Offers the scenario's call to the bot; `caller` numbers the caller.
    pub async fn place(&self, scenario: &Scenario, caller: usize) -> anyhow::Result<CallId> {
        let mut call = if scenario.from_phone {
            IncomingCall::from_phone(&self.app, self.callback_uri.clone(), "+14255550123")
        } else {
            let id = format!("caller-{caller}");
            IncomingCall::from_user(&self.app, self.callback_uri.clone(), &id, "Demo Caller")
        }
        .to(IdentitySet::application_instance(Identity::with_id(scenario.called_id)))
        .faults(scenario.faults.clone());
        if scenario.group {
            call = call.group(vec![ParticipantInfo::new(IdentitySet::user(
                Identity::with_id("colleague").display_name("Colleague"),
            ))]);
        }
        let id = self.emulator.place_incoming_call(call).await?;
        if !scenario.presses.is_empty() {
            tokio::spawn(press_when_listened(
                self.emulator.clone(),
                id.clone(),
                scenario.presses.clone(),
            ));
        }
        Ok(id)
    }
}

/// Presses `tones` on `call` once the bot subscribed to tones (for at most 10 s).
async fn press_when_listened(emulator: Emulator, call: CallId, tones: Vec<Tone>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match emulator.send_tones(&call, &tones) {
            Ok(true) | Err(_) => return,
            Ok(false) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One route per called identity (scenarios calling the same one share it).
fn routes_of(scenarios: &[Scenario]) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    for scenario in scenarios {
        if !routes.iter().any(|r| r.match_called_id == scenario.called_id) {
            routes.push(Route {
                match_called_id: scenario.called_id.to_owned(),
                targets: scenario.targets.clone(),
            });
        }
    }
    routes
}

/// The bot's resource account: the source of consultation calls to numbers.
pub(crate) const DEMO_RESOURCE_ACCOUNT: &str = "ri-resource-account";

/// The called identity the demo's menu answers.
const MENU_CALLED_ID: &str = "ri-menu";
/// A tenant that is not the bot's: a resource account there is Graph's 7505.
const OTHER_TENANT: &str = "0a1b2c3d-0000-4000-8000-00000000beef";

/// The demo's auto attendant: 1 for sales (sam), 2 for support (sue), the
/// operator (olga) otherwise; one short round, so the demo stays quick.
pub(crate) fn demo_menu() -> Menu {
    Menu {
        match_called_id: Some(MENU_CALLED_ID.to_owned()),
        prompt_uri: "https://transfer-bot.invalid/audio/menu.wav".to_owned(),
        timeout: Duration::from_secs(1),
        reprompts: 0,
        options: vec![
            MenuOption {
                key: '1',
                targets: vec![Target::user("sam")],
            },
            MenuOption {
                key: '2',
                targets: vec![Target::user("sue")],
            },
        ],
        operator: Some(vec![Target::user("olga")]),
    }
}
