//! Through the emulator: failing and panicking hooks; dropped, reordered,
//! duplicated and batched notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, Hook, Recorder, assert_attempt_order, short_timings, to_agent};
use graph_comms_emulator::{DeliveryFaults, IncomingCall, TargetBehavior};
use graph_comms_handler::model::{CallState, TransferRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_panicking_hooks_leave_other_calls_unaffected() {
    let mut recorder = Recorder::new(to_agent);
    recorder.panic_for = Some("panicker".into());
    recorder.error_for = Some("erring".into());
    let handler = Arc::new(recorder);
    let h = Harness::start(handler.clone(), short_timings()).await;
    let panicker = h.call_from("panicker").await;
    let erring = h.call_from("erring").await;
    let normal = h.call_from("normal").await;

    for call in [&erring, &normal] {
        let hooks = handler.wait_terminated(call).await;
        assert!(hooks.contains(&Hook::Completed(1)), "{hooks:?}");
        assert_attempt_order(&hooks);
    }
    // The erring call's failing on_transferring did not stop its later hooks.
    assert!(handler.hooks(&erring).contains(&Hook::Transferring(1)));

    // The panicking call's worker survived: its later events are still handled.
    handler.wait_for(&panicker, |h| h.contains(&Hook::Established)).await;
    h.client.hang_up(&panicker).await.unwrap();
    let hooks = handler.wait_terminated(&panicker).await;
    assert_eq!(
        hooks,
        vec![
            Hook::Incoming,
            Hook::Established,
            Hook::Terminated { subcode: Some(5001) }
        ]
    );

    let metrics = h.bot.metrics();
    assert_eq!(metrics.hook_panics, 1);
    assert_eq!(metrics.hook_errors, 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_terminated_is_reconciled_as_completed_at_the_timeout() {
    let handler = Arc::new(Recorder::new(to_agent));
    let h = Harness::start(handler.clone(), short_timings()).await;
    let faults = DeliveryFaults {
        drop: vec![CallState::Terminated],
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "dropped-end", "x").faults(faults))
        .await;
    // No notification says the transfer completed; at the timeout Graph is
    // asked, answers 404, and the attempt completes and the call ends.
    let hooks = handler.wait_terminated(&call).await;
    assert_eq!(
        hooks[2..],
        [
            Hook::Transferring(1),
            Hook::Accepted {
                attempt: 1,
                inferred: false
            },
            Hook::Completed(1),
            Hook::Terminated { subcode: None },
        ]
    );
    assert_eq!(h.bot.metrics().timeout_lookups, 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transfer_accepted_still_completes_with_inferred_acceptance() {
    let handler = Arc::new(Recorder::new(to_agent));
    let h = Harness::start(handler.clone(), short_timings()).await;
    let faults = DeliveryFaults {
        drop: vec![CallState::TransferAccepted],
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "dropped-accept", "x").faults(faults))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    assert_eq!(
        hooks[2..],
        [
            Hook::Transferring(1),
            Hook::Accepted {
                attempt: 1,
                inferred: true
            },
            Hook::Completed(1),
            Hook::Terminated { subcode: Some(7015) }
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_duplicated_batched_delivery_still_gives_one_outcome() {
    let handler = Arc::new(Recorder::new(to_agent));
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target("agent-declines", TargetBehavior::Decline);
    let mut calls = Vec::new();
    for (caller, batch) in [
        ("chaos-accept", false),
        ("chaos-decline", false),
        ("batch-accept", true),
    ] {
        let faults = DeliveryFaults {
            reorder: true,
            duplicate: true,
            batch,
            ..DeliveryFaults::default()
        };
        let call = h
            .place(IncomingCall::from_user(&h.app, &h.callback, caller, "x").faults(faults))
            .await;
        calls.push((caller, call));
    }
    for (_, call) in &calls {
        handler.wait_for(call, |h| h.iter().any(Hook::is_outcome)).await;
    }
    // Let the duplicates land before checking that nothing fired twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (caller, call) in &calls {
        let hooks = handler.hooks(call);
        assert_attempt_order(&hooks);
        assert_eq!(
            hooks.iter().filter(|h| **h == Hook::Established).count(),
            1,
            "{caller}: {hooks:?}"
        );
        assert_eq!(
            hooks.iter().filter(|h| **h == Hook::Incoming).count(),
            1,
            "{caller}: {hooks:?}"
        );
        let outcome = hooks.iter().find(|h| h.is_outcome()).unwrap();
        if caller.ends_with("decline") {
            assert!(
                matches!(
                    outcome,
                    Hook::Failed {
                        subcode: Some(7000),
                        ..
                    }
                ),
                "{caller}: {hooks:?}"
            );
        } else {
            assert_eq!(outcome, &Hook::Completed(1), "{caller}: {hooks:?}");
        }
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_of_the_first_failure_is_not_attributed_to_the_retry() {
    let mut recorder = Recorder::new(|_, step| match step {
        1 => Some(TransferRequest::to_user("agent-declines", None).build()),
        2 => Some(TransferRequest::to_user("agent-accepts", None).build()),
        _ => None,
    });
    // The duplicate is queued while on_transfer_failed is still running, before
    // the retry's POST.
    recorder.retry_delay = Some(Duration::from_millis(300));
    let handler = Arc::new(recorder);
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target("agent-declines", TargetBehavior::Decline);
    // Every notification twice: the second `established 7000` is already queued
    // when on_transfer_failed starts the retry.
    let faults = DeliveryFaults {
        duplicate: true,
        ..DeliveryFaults::default()
    };
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "retrying", "x").faults(faults))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let hooks_after = handler.hooks(&call);
    assert_eq!(hooks, hooks_after, "hooks fired after the call ended");
    assert_attempt_order(&hooks);
    let outcomes: Vec<&Hook> = hooks.iter().filter(|h| h.is_outcome()).collect();
    assert_eq!(
        outcomes,
        vec![
            &Hook::Failed {
                attempt: 1,
                reason: "returned_to_established",
                subcode: Some(7000)
            },
            &Hook::Completed(2)
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_ambiguous_transfer_posts_fail_the_attempt() {
    use graph_comms_emulator::{ApiFault, Endpoint, FaultKind};
    let handler = Arc::new(Recorder::new(|_, step| {
        (step <= 2).then(|| TransferRequest::to_user("agent-accepts", None).build())
    }));
    let h = Harness::start(handler.clone(), short_timings()).await;
    // Faults apply in order. First POST: 403 (not processed). Second: 500, which
    // the client reports as outcome unknown; Graph did not act on it, so no
    // notification follows and the unknown-outcome window closes the attempt.
    h.emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Transfer,
        kind: FaultKind::Status(403),
        count: 1,
    });
    h.emu.inject_api_fault(ApiFault {
        endpoint: Endpoint::Transfer,
        kind: FaultKind::Status(500),
        count: 1,
    });
    let call = h.call_from("unlucky").await;
    let hooks = handler
        .wait_for(&call, |hooks| hooks.iter().filter(|h| h.is_outcome()).count() == 2)
        .await;
    assert_eq!(
        hooks[2..],
        [
            Hook::Failed {
                attempt: 1,
                reason: "rejected",
                subcode: None
            },
            Hook::Failed {
                attempt: 2,
                reason: "outcome_unknown",
                subcode: None
            }
        ]
    );
    h.stop().await;
}
