//! Through the emulator: 1,000 calls transferring at once, each with exactly
//! one outcome (its own test binary, so it does not compete with other tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Hook, Recorder, assert_attempt_order, short_timings, to_agent};
use graph_comms_emulator::TargetBehavior;

/// Concurrent calls in the load test. 1,000 fits in well under 30 s in a debug
/// build on two cores.
const CONCURRENT_CALLS: usize = 1_000;

fn concurrent_calls() -> usize {
    std::env::var("HANDLER_TEST_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CONCURRENT_CALLS)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_each_get_exactly_one_outcome() {
    let handler = Arc::new(Recorder::new(to_agent));
    let h = Arc::new(
        Harness::start(
            handler.clone(),
            short_timings().transfer_timeout(Duration::from_secs(60)),
        )
        .await,
    );
    h.emu.script_target("agent-declines", TargetBehavior::Decline);
    let started = std::time::Instant::now();
    let total = concurrent_calls();
    let mut placing = tokio::task::JoinSet::new();
    for i in 0..total {
        let h = Arc::clone(&h);
        let caller = if i % 2 == 0 {
            format!("load-{i}-accept")
        } else {
            format!("load-{i}-decline")
        };
        placing.spawn(async move { (caller.clone(), h.call_from(&caller).await) });
    }
    let mut calls = Vec::new();
    while let Some(placed) = placing.join_next().await {
        calls.push(placed.unwrap());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let outcomes = handler
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, h)| h.is_outcome())
            .count();
        if outcomes >= total {
            eprintln!("{total} calls: all outcomes after {:?}", started.elapsed());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {outcomes} outcomes; {:?}",
            h.bot.metrics()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give stray duplicates a moment to show up if there were any.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (caller, call) in &calls {
        let hooks = handler.hooks(call);
        assert_attempt_order(&hooks);
        let outcomes: Vec<&Hook> = hooks.iter().filter(|h| h.is_outcome()).collect();
        let expected = if caller.ends_with("-decline") {
            Hook::Failed {
                attempt: 1,
                reason: "returned_to_established",
                subcode: Some(7000),
            }
        } else {
            Hook::Completed(1)
        };
        assert_eq!(outcomes, vec![&expected], "{caller}: {hooks:?}");
    }
    // Transferred calls are forgotten and idle workers exit: memory stays flat.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while h.bot.metrics().workers_active > 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", h.bot.metrics());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = h.bot.metrics();
    assert_eq!(metrics.calls_active, total / 2, "only the declined calls stay");
    assert_eq!(metrics.transfers_completed as usize, total / 2);
    assert_eq!(metrics.transfers_failed_total() as usize, total / 2);
    Arc::try_unwrap(h).ok().expect("no other harness users").stop().await;
}
