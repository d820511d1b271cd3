//! One right outcome under Graph's real delivery, through the emulator over
//! real HTTP: failures delivered again while the next target rings, targets
//! ringing past the transfer timeout, no hang-up while a transfer is in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, Hook, Recorder, assert_attempt_order, caller_id, short_timings};
use graph_comms_emulator::{DeliveryFaults, DuplicateLater, Endpoint, IncomingCall, TargetBehavior};
use graph_comms_handler::model::{CallId, CallState, TransferRequest};
use graph_comms_handler::{
    CallContext, CallHandler, CallSnapshot, HangUpError, HookError, TransferFailure, TransferInfo, async_trait,
};

/// Step 1 goes to `<caller>-first`, step 2 to `<caller>-second`.
fn two_targets(snapshot: &CallSnapshot, step: u32) -> Option<TransferRequest> {
    let caller = caller_id(snapshot)?;
    let target = match step {
        1 => format!("{caller}-first"),
        2 => format!("{caller}-second"),
        _ => return None,
    };
    Some(TransferRequest::to_user(target, None).build())
}

fn hang_ups(h: &Harness, call: &CallId) -> usize {
    h.emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::HangUp && r.call_id.as_ref() == Some(call))
        .count()
}

/// The first target declines; the second rings for a while, then accepts.
/// Every failure notification is delivered again `after` later, so the copy
/// of the first target's failure lands while the second target rings.
async fn redelivered_failure_while_the_next_target_rings(message_ids: bool) -> (Vec<Hook>, Harness, CallId) {
    let handler = Arc::new(Recorder::new(two_targets));
    let h = Harness::start(handler.clone(), short_timings()).await;
    let caller = if message_ids { "with-ids" } else { "without-ids" };
    h.emu.script_target(&format!("{caller}-first"), TargetBehavior::Decline);
    h.emu.script_target(
        &format!("{caller}-second"),
        TargetBehavior::AcceptAfter {
            after: Duration::from_millis(1500),
        },
    );
    let faults = DeliveryFaults {
        duplicate_later: Some(DuplicateLater::of(Duration::from_millis(300), [CallState::Established])),
        omit_message_ids: !message_ids,
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, caller, "Caller").faults(faults))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    (hooks, h, call)
}

fn assert_second_target_took_the_call(hooks: &[Hook]) {
    assert_attempt_order(hooks);
    assert!(
        hooks.contains(&Hook::Failed {
            attempt: 1,
            reason: "returned_to_established",
            subcode: Some(7000),
        }),
        "{hooks:?}"
    );
    assert!(hooks.contains(&Hook::Completed(2)), "{hooks:?}");
    assert!(
        !hooks.iter().any(|h| matches!(h, Hook::Failed { attempt: 2, .. })),
        "{hooks:?}"
    );
}

/// Before: a copy of the first target's 500/7000 arriving after the POST to
/// the second target failed the second attempt, and the caller was hung up
/// while the second target rang (37 of 60 calls with half the notifications
/// delivered again 5 ms later).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_failure_redelivered_while_the_next_target_rings_does_not_fail_it() {
    let (hooks, h, call) = redelivered_failure_while_the_next_target_rings(true).await;
    assert_second_target_took_the_call(&hooks);
    assert_eq!(hang_ups(&h, &call), 0, "the caller was hung up");
    // The copy carried the message id of the original: dropped at once.
    assert!(h.bot.metrics().duplicate_deliveries >= 1, "{:?}", h.bot.metrics());
    h.stop().await;
}

/// The same without `X-Microsoft-Skype-Message-ID`: the copy reaches the
/// second attempt, which asks Graph, finds the transfer ringing and drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_failure_redelivered_without_message_ids_is_checked_with_graph() {
    let (hooks, h, call) = redelivered_failure_while_the_next_target_rings(false).await;
    assert_second_target_took_the_call(&hooks);
    assert_eq!(hang_ups(&h, &call), 0, "the caller was hung up");
    let metrics = h.bot.metrics();
    assert_eq!(metrics.duplicate_deliveries, 0, "{metrics:?}");
    assert!(metrics.failure_checks >= 1, "{metrics:?}");
    h.stop().await;
}

/// Before: a target still ringing at `transfer_timeout` was failed as
/// `TimedOut` although Graph said `transferring`; the next target was
/// refused (the call was not established) and the caller was hung up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_ringing_past_the_timeout_then_declining_falls_back_to_the_next_target() {
    let handler = Arc::new(Recorder::new(two_targets));
    let timings = short_timings().transfer_timeout(Duration::from_millis(700));
    let h = Harness::start(handler.clone(), timings).await;
    h.emu.script_target(
        "slow-first",
        TargetBehavior::NoAnswer {
            after: Duration::from_millis(2500),
        },
    );
    h.emu.script_target("slow-second", TargetBehavior::Accept);
    let call = h.call_from("slow").await;
    let hooks = handler.wait_terminated(&call).await;
    assert_second_target_took_the_call(&hooks);
    assert!(
        !hooks.iter().any(|h| matches!(h, Hook::TransferRefused(_))),
        "{hooks:?}"
    );
    assert_eq!(hang_ups(&h, &call), 0, "the caller was hung up");
    // Asked at least twice while the first target rang (at 0.7 s, 1.4 s, ...).
    assert!(h.bot.metrics().timeout_lookups >= 2, "{:?}", h.bot.metrics());
    h.stop().await;
}

/// A handler that tries to hang up while its transfer rings, and records what happened.
#[derive(Default)]
struct HangsUpWhileRinging {
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl CallHandler for HangsUpWhileRinging {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        ctx.transfer(TransferRequest::to_user("never-answers", None).build())
            .await?;
        Ok(())
    }

    async fn on_transferring(&self, ctx: &CallContext, _attempt: &TransferInfo) -> Result<(), HookError> {
        let result = match ctx.hang_up().await {
            Err(HangUpError::TransferInFlight { .. }) => "refused: in flight".to_owned(),
            other => format!("{other:?}"),
        };
        self.seen.lock().unwrap().push(result);
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        ctx: &CallContext,
        _attempt: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        self.seen.lock().unwrap().push(format!("failed: {}", failure.label()));
        // The attempt has its outcome: hanging up is the policy's to decide now.
        ctx.hang_up().await?;
        self.seen.lock().unwrap().push("hung up".to_owned());
        Ok(())
    }
}

/// A ring that never ends fails once, as rung out, at the ring limit; until
/// then `hang_up` refuses to drop the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_ringing_past_the_ring_limit_fails_as_rang_out_and_only_then_hangs_up() {
    let handler = Arc::new(HangsUpWhileRinging::default());
    let timings = short_timings()
        .transfer_timeout(Duration::from_millis(500))
        .ring_limit(Duration::from_millis(1500));
    let h = Harness::start(handler.clone(), timings).await;
    h.emu.script_target(
        "never-answers",
        TargetBehavior::NoAnswer {
            after: Duration::from_secs(30),
        },
    );
    let call = h.call_from("patient").await;
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !handler.seen.lock().unwrap().iter().any(|s| s == "hung up") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            handler.seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = handler.seen.lock().unwrap().clone();
    assert_eq!(seen, ["refused: in flight", "failed: rang_out", "hung up"]);
    assert_eq!(hang_ups(&h, &call), 1);
    h.stop().await;
}
