//! `transfer-bot demo`: the embedded Graph emulator, scripted calls, and a result table.
//!
//! [`cluster`] runs the same calls on several `serve` processes sharing Redis.

pub mod cluster;
mod environment;
mod report;
mod scenarios;

pub use environment::{CallPlacer, DemoEnvironment};
pub(crate) use report::row_from;
pub use report::{DemoReport, DemoRow};
pub(crate) use scenarios::{DEMO_RESOURCE_ACCOUNT, demo_menu};
pub use scenarios::{Scenario, scenarios};

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
