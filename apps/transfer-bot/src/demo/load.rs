//! `transfer-bot demo --calls N`: randomised scripted calls, N in flight at once.
//!
//! The driver's work per event is constant: a call is settled when its own
//! event (or its placement) completes it, never by scanning every call in flight.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_comms_handler::model::CallId;
use rand::{Rng as _, SeedableRng as _};
use tokio::sync::mpsc;

use super::{CALL_TIMEOUT, CallLog, DemoEnvironment, absorb, row_for, scenarios};
use crate::bot::BotEvent;

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

/// The calls in flight and what their events said so far.
///
/// A call can finish before its placement is known (the events overtake the
/// placer's reply), so both `placed` and `event` settle the call they name.
#[derive(Default)]
pub(crate) struct InFlight {
    pending: HashMap<CallId, (usize, Instant)>,
    logs: HashMap<CallId, CallLog>,
    /// Map entries looked at; a test checks it does not grow with the calls in flight.
    pub(crate) lookups: u64,
}

/// A call that ended: its scenario, when it was placed and what it did.
pub(crate) struct Settled {
    pub(crate) id: CallId,
    pub(crate) pick: usize,
    pub(crate) placed_at: Instant,
    pub(crate) log: CallLog,
}

impl InFlight {
    /// A call was placed for scenario `pick`.
    pub(crate) fn placed(&mut self, id: CallId, pick: usize, at: Instant) -> Option<Settled> {
        self.pending.insert(id.clone(), (pick, at));
        self.lookups += 1;
        self.settle(id)
    }

    /// A progress event; the call it ends, if it ended one that was placed.
    pub(crate) fn event(&mut self, event: &BotEvent) -> Option<Settled> {
        absorb(&mut self.logs, event);
        self.lookups += 1;
        self.settle(event.call_id.clone())
    }

    /// Calls placed and not yet settled.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    fn settle(&mut self, id: CallId) -> Option<Settled> {
        self.lookups += 1;
        if self.logs.get(&id).is_none_or(|l| l.finished.is_none()) {
            return None;
        }
        self.lookups += 1;
        let (pick, placed_at) = self.pending.remove(&id)?;
        self.lookups += 1;
        let log = self.logs.remove(&id).unwrap_or_default();
        Some(Settled {
            id,
            pick,
            placed_at,
            log,
        })
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
    let mut in_flight = InFlight::default();
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
        let settled = tokio::select! {
            placed = placed_rx.recv(), if placing => match placed {
                Some(None) => { failed_to_place += 1; None }
                Some(Some((id, pick, at))) => in_flight.placed(id, pick, at),
                None => { placing = false; None }
            },
            event = env.events.recv() => match event {
                Some(event) => in_flight.event(&event),
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        };
        let Some(call) = settled else { continue };
        let end = call.log.finished_at.unwrap_or_else(Instant::now);
        let micros = u64::try_from(end.duration_since(call.placed_at).as_micros()).unwrap_or(u64::MAX);
        latency.saturating_record(micros.max(1));
        if row_for(&scenarios[call.pick], call.id, Some(&call.log)).ok {
            ok += 1;
        }
        finished += 1;
        semaphore.add_permits(1);
    }
    if in_flight.len() > 0 {
        eprintln!("{} calls did not finish before the deadline", in_flight.len());
    }
    let elapsed = started.elapsed();
    placer.abort();
    let transfers = env.bot.bot.metrics().transfers_completed;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::{BotEventKind, CallOutcome};

    fn finished(id: &CallId) -> BotEvent {
        BotEvent {
            call_id: id.clone(),
            kind: BotEventKind::Finished {
                outcome: CallOutcome::Apologised,
                tried: Vec::new(),
            },
        }
    }

    /// Lookups to place `in_flight` calls, then settle one more by its event.
    fn lookups_to_settle_one_with(in_flight: usize) -> u64 {
        let mut calls = InFlight::default();
        for n in 0..in_flight {
            assert!(
                calls
                    .placed(CallId::new(format!("waiting-{n}")), 0, Instant::now())
                    .is_none()
            );
        }
        let last = CallId::new("last");
        assert!(calls.placed(last.clone(), 0, Instant::now()).is_none());
        let before = calls.lookups;
        let settled = calls.event(&finished(&last)).map(|s| s.id);
        assert_eq!(settled, Some(last));
        assert_eq!(calls.len(), in_flight);
        calls.lookups - before
    }

    #[test]
    fn settling_a_call_costs_the_same_with_10_or_10000_calls_in_flight() {
        assert_eq!(lookups_to_settle_one_with(10), lookups_to_settle_one_with(10_000));
    }

    #[test]
    fn a_call_that_finishes_before_its_placement_is_known_settles_when_placed() {
        let mut calls = InFlight::default();
        let id = CallId::new("early");
        assert!(calls.event(&finished(&id)).is_none());
        let settled = calls.placed(id.clone(), 3, Instant::now()).map(|s| (s.id, s.pick));
        assert_eq!(settled, Some((id, 3)));
        assert_eq!(calls.len(), 0);
    }
}
