//! `transfer-bot demo`: the embedded Graph emulator, scripted calls, and a result table.
//!
//! [`cluster`] runs the same calls on several `serve` processes sharing Redis.

pub mod cluster;
mod environment;
mod load;
mod report;
mod scenarios;

pub use environment::{CallPlacer, DemoEnvironment};
pub use load::{LoadOptions, LoadReport, run_load};
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
use graph_comms_emulator::{
    DeliveryFaults, DuplicateLater, Emulator, EmulatorConfig, IncomingCall, RegisteredApp, TargetBehavior,
};
use graph_comms_handler::ServerLimits;
use graph_comms_handler::model::{CallId, CallState, Identity, IdentitySet, ParticipantInfo, PhoneNumber, Tone};
use tokio::sync::mpsc;

use crate::bot::{BotEvent, BotEventKind, CallOutcome};
use crate::config::{Config, Credential, GraphClientSettings, LogFormat, Secret, StoreSettings};
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
    let report = run_scenarios_in(&mut env, scenarios, progress).await;
    env.shutdown().await;
    Ok(report)
}

/// Runs the given scenarios one after the other in `env` (started with them)
/// and checks each against its script; `env` keeps running, so its bot can be
/// inspected afterwards (`/metrics`, counters).
pub async fn run_scenarios_in(env: &mut DemoEnvironment, scenarios: &[Scenario], progress: bool) -> DemoReport {
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
    DemoReport { rows }
}

fn row_for(scenario: &Scenario, call_id: CallId, log: Option<&CallLog>) -> DemoRow {
    row_from(
        scenario,
        call_id,
        log.and_then(|l| l.finished.clone()),
        log.map_or(0, |l| l.completions),
    )
}
