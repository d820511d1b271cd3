//! Graceful shutdown with hooks in flight: every notification the bot
//! acknowledged with 202 is handled before `serve` returns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Harness, WAIT, short_timings};
use graph_comms_handler::model::{CallId, CallState};
use graph_comms_handler::notify::NotificationEvent;
use graph_comms_handler::{CallContext, CallHandler, HookError, async_trait};

/// Slow on every event, so events queue up behind running hooks.
#[derive(Default)]
struct Slow {
    handled: AtomicUsize,
}

#[async_trait]
impl CallHandler for Slow {
    async fn on_notification(&self, _ctx: &CallContext, _event: &NotificationEvent) -> Result<(), HookError> {
        tokio::time::sleep(Duration::from_millis(150)).await;
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Notification items the emulator delivered with a 202 for these calls.
fn acknowledged(h: &Harness, calls: &[CallId]) -> usize {
    calls
        .iter()
        .flat_map(|c| h.emu.notifications(c))
        .filter(|n| n.response_status == Some(202))
        .map(|n| n.body["value"].as_array().map_or(0, Vec::len))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_handles_every_acknowledged_event() {
    let handler = Arc::new(Slow::default());
    let h = Harness::start(handler.clone(), short_timings()).await;
    let mut calls = Vec::new();
    for i in 0..8 {
        calls.push(h.call_from(&format!("caller-{i}")).await);
    }
    // Wait until Graph's side is done: every call established and its notifications answered.
    for call in &calls {
        h.wait_state(call, CallState::Established).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while acknowledged(&h, &calls) < calls.len() * 3 {
        assert!(tokio::time::Instant::now() < deadline, "notifications not delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked = acknowledged(&h, &calls);
    let handled_before = handler.handled.load(Ordering::SeqCst);
    assert!(handled_before < acked, "hooks were not in flight at shutdown");
    let report = h.stop().await;
    assert!(report.drained, "{report:?}");
    assert_eq!(handler.handled.load(Ordering::SeqCst), acked);
}
