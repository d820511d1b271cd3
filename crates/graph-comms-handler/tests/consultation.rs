//! Consultation calls placed with `CallContext::place_consultation`, end to
//! end through the emulator: their establishment and end reach the call they
//! were placed for, never the ordinary hooks of the consultation call itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, Notes, consultation_call, short_timings};
use graph_comms_emulator::TargetBehavior;
use graph_comms_handler::model::{Call, CallId, TransferRequest};
use graph_comms_handler::{
    AnswerOptions, CallContext, CallEnd, CallHandler, HookError, IncomingDecision, TransferInfo, async_trait,
};

/// Answers, consults `target` once established, transfers into the
/// consultation when it is up; records what each call's hooks saw.
struct Consulting {
    target: &'static str,
    callback: Mutex<String>,
    log: Notes,
}

impl Consulting {
    fn new(target: &'static str) -> Arc<Self> {
        Arc::new(Self {
            target,
            callback: Mutex::default(),
            log: Notes::default(),
        })
    }
}

#[async_trait]
impl CallHandler for Consulting {
    async fn on_incoming_call(&self, ctx: &CallContext, _call: &Call) -> Result<IncomingDecision, HookError> {
        self.log.note(ctx.call_id(), "incoming");
        Ok(IncomingDecision::Answer(AnswerOptions::audio()))
    }

    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "established");
        let consult = consultation_call(ctx, &self.callback.lock().unwrap(), self.target);
        let consultation = match ctx.place_consultation(&consult).await {
            Ok(consultation) => consultation,
            Err(e) => {
                self.log.note(ctx.call_id(), format!("consultation failed: {e}"));
                return Err(e.into());
            }
        };
        self.log.note(ctx.call_id(), format!("placed {consultation}"));
        Ok(())
    }

    async fn on_consultation_established(&self, ctx: &CallContext, consultation: &CallId) -> Result<(), HookError> {
        self.log
            .note(ctx.call_id(), format!("consultation established {consultation}"));
        let request = TransferRequest::to_user(self.target, None)
            .replaces_call(consultation.as_str())
            .build();
        ctx.transfer(request).await?;
        Ok(())
    }

    async fn on_consultation_ended(
        &self,
        ctx: &CallContext,
        consultation: &CallId,
        end: &CallEnd,
    ) -> Result<(), HookError> {
        let code = end.result_info.as_ref().and_then(|r| r.subcode).unwrap_or_default();
        self.log
            .note(ctx.call_id(), format!("consultation ended {consultation} {code}"));
        Ok(())
    }

    async fn on_transfer_completed(&self, ctx: &CallContext, _: &TransferInfo) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "transfer completed");
        Ok(())
    }

    async fn on_call_terminated(&self, ctx: &CallContext, _: &CallEnd) -> Result<(), HookError> {
        self.log.note(ctx.call_id(), "terminated");
        Ok(())
    }
}

fn placed(seen: &[String]) -> CallId {
    let id = seen.iter().find_map(|w| w.strip_prefix("placed ")).expect("placed");
    CallId::from(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_consultation_reaches_its_call_and_the_transfer_replaces_it() {
    let handler = Consulting::new("consult-agent");
    let h = Harness::start(handler.clone(), short_timings()).await;
    *handler.callback.lock().unwrap() = h.callback.clone();
    h.emu.script_target("consult-agent", TargetBehavior::Accept);
    let call = h.call_from("caller-1").await;
    let seen = handler.log.wait_for(&call, "transfer completed").await;
    let consultation = placed(&seen);
    assert_eq!(
        seen.iter()
            .filter(|w| w.starts_with("consultation established"))
            .count(),
        1,
        "{seen:?}"
    );
    assert!(
        seen.contains(&format!("consultation established {consultation}")),
        "{seen:?}"
    );
    // Graph ends the replaced consultation call; that reaches the call too, once.
    let seen = handler.log.wait_for(&call, "consultation ended").await;
    assert_eq!(
        seen.iter().filter(|w| w.starts_with("consultation ended")).count(),
        1,
        "{seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handler.log.seen(&consultation),
        Vec::<String>::new(),
        "the consultation call's own hooks never fire"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_consultation_reaches_its_call_as_ended() {
    let handler = Consulting::new("consult-declines");
    let h = Harness::start(handler.clone(), short_timings()).await;
    *handler.callback.lock().unwrap() = h.callback.clone();
    h.emu.script_target("consult-declines", TargetBehavior::Decline);
    let call = h.call_from("caller-2").await;
    let seen = handler.log.wait_for(&call, "consultation ended").await;
    let consultation = placed(&seen);
    assert!(
        !seen.iter().any(|w| w.starts_with("consultation established")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|w| w.starts_with(&format!("consultation ended {consultation}"))),
        "{seen:?}"
    );
    assert_eq!(handler.log.seen(&consultation), Vec::<String>::new());
    h.stop().await;
}
