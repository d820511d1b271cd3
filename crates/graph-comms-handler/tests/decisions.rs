//! Incoming-call decisions other than answering (reject, redirect) through
//! the emulator, and per-call data that outlives the bot that wrote it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Harness, WAIT, short_timings};
use graph_comms_emulator::{EmulatorConfig, Endpoint};
use graph_comms_handler::model::{Call, CallState, Identity, IdentitySet, InvitationParticipantInfo, RejectReason};
use graph_comms_handler::{AnswerOptions, CallContext, CallEnd, CallHandler, HookError, IncomingDecision, async_trait};

/// What the bot keeps with a call.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Note {
    greeted_by: String,
    visits: u32,
}

/// Rejects or redirects by caller; answers the others and keeps a note.
struct Decides {
    name: &'static str,
    /// The note each call had when it ended, as the ending bot read it.
    ended_with: Mutex<Vec<(&'static str, Option<Note>)>>,
}

#[async_trait]
impl CallHandler for Decides {
    async fn on_incoming_call(&self, _ctx: &CallContext, call: &Call) -> Result<IncomingDecision, HookError> {
        let caller = call
            .source
            .as_ref()
            .and_then(|s| s.identity.as_ref())
            .and_then(|i| i.user.as_ref())
            .and_then(|u| u.id.clone())
            .unwrap_or_default();
        Ok(match caller.as_str() {
            "unwanted" => IncomingDecision::Reject(RejectReason::Busy),
            "for-the-desk" => IncomingDecision::Redirect(vec![InvitationParticipantInfo::new(IdentitySet::user(
                Identity::with_id("front-desk"),
            ))]),
            _ => IncomingDecision::Answer(AnswerOptions::audio()),
        })
    }

    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let note = Note {
            greeted_by: self.name.to_owned(),
            visits: 1,
        };
        ctx.set_data(&note).await?;
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, _end: &CallEnd) -> Result<(), HookError> {
        let note = ctx.data::<Note>()?;
        self.ended_with.lock().unwrap().push((self.name, note));
        Ok(())
    }
}

fn decides(name: &'static str) -> Arc<Decides> {
    Arc::new(Decides {
        name,
        ended_with: Mutex::new(Vec::new()),
    })
}

fn requests_to(harness: &Harness, call: &graph_comms_handler::model::CallId, endpoint: Endpoint) -> usize {
    harness
        .emu
        .requests()
        .iter()
        .filter(|r| r.endpoint == endpoint && r.call_id.as_ref() == Some(call))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_call_is_rejected_once_and_ends() {
    let handler = decides("bot");
    let harness = Harness::start_with(handler.clone(), short_timings(), EmulatorConfig::default()).await;
    let call = harness.call_from("unwanted").await;
    harness.wait_state(&call, CallState::Terminated).await;
    assert_eq!(requests_to(&harness, &call, Endpoint::Reject), 1);
    assert_eq!(requests_to(&harness, &call, Endpoint::Answer), 0);
    let body = harness
        .emu
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::Reject)
        .and_then(|r| r.body)
        .unwrap();
    assert_eq!(body["reason"], "busy");
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirected_call_goes_to_its_target_and_ends_for_the_bot() {
    let handler = decides("bot");
    let harness = Harness::start_with(handler.clone(), short_timings(), EmulatorConfig::default()).await;
    let call = harness.call_from("for-the-desk").await;
    harness.wait_state(&call, CallState::Terminated).await;
    assert_eq!(requests_to(&harness, &call, Endpoint::Redirect), 1);
    assert_eq!(requests_to(&harness, &call, Endpoint::Answer), 0);
    let body = harness
        .emu
        .requests()
        .into_iter()
        .find(|r| r.endpoint == Endpoint::Redirect)
        .and_then(|r| r.body)
        .unwrap();
    assert_eq!(body["targets"][0]["identity"]["user"]["id"], "front-desk");
    harness.stop().await;
}

/// The data one bot stored with a call is what the next bot on the same
/// store reads (a restart or a deploy in between).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_data_survives_a_new_bot_on_the_same_store() {
    let first = decides("first");
    let mut harness = Harness::start_with(first.clone(), short_timings(), EmulatorConfig::default()).await;
    let call = harness.call_from("regular").await;
    harness.wait_state(&call, CallState::Established).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while harness
        .store
        .load(&call)
        .await
        .unwrap()
        .is_none_or(|r| r.data.is_none())
    {
        assert!(tokio::time::Instant::now() < deadline, "the note was never stored");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let second = decides("second");
    harness.restart(second.clone()).await;
    harness.client.hang_up(&call).await.unwrap();
    harness.wait_state(&call, CallState::Terminated).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while second.ended_with.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second bot never saw the end"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let expected = Note {
        greeted_by: "first".into(),
        visits: 1,
    };
    assert_eq!(*second.ended_with.lock().unwrap(), vec![("second", Some(expected))]);
    assert!(first.ended_with.lock().unwrap().is_empty());
    harness.stop().await;
}
