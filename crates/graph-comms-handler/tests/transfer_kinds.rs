//! End to end through the emulator over real HTTP with signed notifications:
//! each transfer kind fails once, then succeeds on the next attempt, and the
//! hooks fire in order the right number of times.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Harness, Hook, Recorder, assert_attempt_order, caller_id, short_timings};
use graph_comms_emulator::{IncomingCall, TargetBehavior};
use graph_comms_handler::model::{
    Call, CallId, CallState, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, Modality, ParticipantInfo,
    PhoneNumber, TransferRequest,
};

fn failed(attempt: u32, subcode: i32) -> Hook {
    Hook::Failed {
        attempt,
        reason: "returned_to_established",
        subcode: Some(subcode),
    }
}

fn succeeded(attempt: u32) -> Vec<Hook> {
    vec![
        Hook::Transferring(attempt),
        Hook::Accepted {
            attempt,
            inferred: false,
        },
        Hook::Completed(attempt),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blind_transfer_fails_then_completes() {
    let handler = Arc::new(Recorder::new(|snapshot, step| {
        (caller_id(snapshot).as_deref() == Some("blind-caller")).then_some(())?;
        match step {
            1 => Some(TransferRequest::to_user("agent-declines", None).build()),
            2 => Some(TransferRequest::to_user("agent-accepts", None).build()),
            _ => None,
        }
    }));
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target("agent-declines", TargetBehavior::Decline);
    let call = h.call_from("blind-caller").await;
    let hooks = handler.wait_terminated(&call).await;
    let mut expected = vec![
        Hook::Incoming,
        Hook::Established,
        Hook::Transferring(1),
        failed(1, 7000),
    ];
    expected.extend(succeeded(2));
    expected.push(Hook::Terminated { subcode: Some(7015) });
    assert_eq!(hooks, expected);
    assert_attempt_order(&hooks);
    let metrics = h.bot.metrics();
    assert_eq!(metrics.transfers_completed, 1);
    assert_eq!(metrics.transfers_failed.get("returned_to_established"), Some(&1));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consultative_transfer_fails_with_7700_then_completes_with_app_transferred() {
    let consult_call: Arc<Mutex<Option<CallId>>> = Arc::default();
    let replaces = Arc::clone(&consult_call);
    let handler = Arc::new(Recorder::new(move |snapshot, step| {
        (caller_id(snapshot).as_deref() == Some("consult-caller")).then_some(())?;
        let replaces = replaces.lock().unwrap().clone()?;
        let target = match step {
            1 => "consult-fails",
            2 => "consult-agent",
            _ => return None,
        };
        Some(TransferRequest::to_user(target, None).replaces_call(replaces).build())
    }));
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target("consult-fails", TargetBehavior::ConsultativeFails);

    // The bot first calls the agent (the consultation), then transfers into that call.
    let mut consult = Call {
        odata_type: Some("#microsoft.graph.call".into()),
        callback_uri: Some(h.callback.clone()),
        requested_modalities: Some(vec![Modality::Audio]),
        media_config: Some(MediaConfig::service_hosted()),
        tenant_id: Some(h.app.tenant_id.clone()),
        ..Call::default()
    };
    consult.targets = Some(vec![InvitationParticipantInfo::new(IdentitySet::user(
        Identity::with_id("consult-agent"),
    ))]);
    let created = h
        .client
        .create_call(&consult)
        .await
        .expect("consult call created")
        .value;
    let consult_id = created.id.expect("created call has an id");
    h.wait_state(&consult_id, CallState::Established).await;
    *consult_call.lock().unwrap() = Some(consult_id.clone());

    let call = h.call_from("consult-caller").await;
    let hooks = handler.wait_terminated(&call).await;
    let mut expected = vec![
        Hook::Incoming,
        Hook::Established,
        Hook::Transferring(1),
        failed(1, 7700),
    ];
    expected.extend(succeeded(2));
    // AppTransferred ends the call without resultInfo.
    expected.push(Hook::Terminated { subcode: None });
    assert_eq!(hooks, expected);
    assert_attempt_order(&hooks);
    // The replaced consultation call ends too, and the bot notices.
    handler.wait_terminated(&consult_id).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pstn_transfer_fails_busy_then_completes() {
    let handler = Arc::new(Recorder::new(|snapshot, step| {
        (caller_id(snapshot).as_deref() == Some("+14255550100")).then_some(())?;
        let number = match step {
            1 => "+14255550101",
            2 => "+14255550102",
            _ => return None,
        };
        let request = TransferRequest::to_phone(&PhoneNumber::parse(number).unwrap()).build();
        assert_eq!(request.kind(), graph_comms_handler::model::TransferKind::Pstn);
        Some(request)
    }));
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target("+14255550101", TargetBehavior::Busy);
    let call = h
        .place(IncomingCall::from_phone(&h.app, &h.callback, "+14255550100"))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    let mut expected = vec![
        Hook::Incoming,
        Hook::Established,
        Hook::Transferring(1),
        failed(1, 7000),
    ];
    expected.extend(succeeded(2));
    expected.push(Hook::Terminated { subcode: Some(7015) });
    assert_eq!(hooks, expected);
    assert_attempt_order(&hooks);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_transfer_needs_a_transferee_then_fails_then_completes() {
    let handler = Arc::new(Recorder::new(|snapshot, step| {
        (caller_id(snapshot).as_deref() == Some("member-1")).then_some(())?;
        let transferee = ParticipantInfo::new(IdentitySet::user(Identity::with_id("member-1"))).participant_id("p-1");
        match step {
            1 => Some(TransferRequest::to_user("agent-accepts", None).build()),
            2 => Some(
                TransferRequest::to_user("agent-no-answer", None)
                    .transferee(transferee)
                    .build(),
            ),
            3 => Some(
                TransferRequest::to_user("agent-accepts", None)
                    .transferee(transferee)
                    .build(),
            ),
            _ => None,
        }
    }));
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.emu.script_target(
        "agent-no-answer",
        TargetBehavior::NoAnswer {
            after: std::time::Duration::from_millis(50),
        },
    );
    let other = ParticipantInfo::new(IdentitySet::user(Identity::with_id("member-2"))).participant_id("p-2");
    let call = h
        .place(IncomingCall::from_user(&h.app, &h.callback, "member-1", "Member One").group(vec![other]))
        .await;
    let hooks = handler.wait_terminated(&call).await;
    // The group call is recognised by `chatInfo.threadId`, so the guard refuses the
    // request without a transferee and nothing is sent.
    let (first, failed_attempt, completed_attempt, posts_expected) =
        (Hook::TransferRefused("group_without_transferee".into()), 1, 2, 2);
    let mut expected = vec![
        Hook::Incoming,
        Hook::Established,
        first,
        Hook::Transferring(failed_attempt),
        failed(failed_attempt, 7000),
    ];
    expected.extend(succeeded(completed_attempt));
    expected.push(Hook::Terminated { subcode: Some(7015) });
    assert_eq!(hooks, expected);
    assert_attempt_order(&hooks);
    let posts = h
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.call_id.as_ref() == Some(&call) && r.path.ends_with("/transfer"))
        .count();
    assert_eq!(posts, posts_expected);
    h.stop().await;
}
