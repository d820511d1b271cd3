//! The failure causes users hit most reach `on_transfer_failed` typed, with a hint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Harness, WAIT, short_timings};
use graph_comms_handler::model::{FailureCause, TransferRequest};
use graph_comms_handler::{CallContext, CallHandler, HookError, TransferFailure, TransferInfo, async_trait};

/// A failure as seen by the hook: its label, cause and hint.
type Seen = (&'static str, Option<FailureCause>, Option<&'static str>);

/// Keeps the established call's context and records each failure's label and cause.
#[derive(Default)]
struct Causes {
    established: Mutex<Option<CallContext>>,
    seen: Mutex<Vec<Seen>>,
}

#[async_trait]
impl CallHandler for Causes {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        *self.established.lock().unwrap() = Some(ctx.clone());
        Ok(())
    }

    async fn on_transfer_failed(
        &self,
        _ctx: &CallContext,
        _attempt: &TransferInfo,
        failure: &TransferFailure,
    ) -> Result<(), HookError> {
        let entry = (failure.label(), failure.cause(), failure.hint());
        self.seen.lock().unwrap().push(entry);
        Ok(())
    }
}

async fn eventually<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_in_meeting_mode_fails_with_cause_8523_and_a_hint() {
    let handler = Arc::new(Causes::default());
    let h = Harness::start(handler.clone(), short_timings()).await;
    let call = h.call_from("meeting-caller").await;
    let ctx = eventually(|| handler.established.lock().unwrap().clone()).await;
    // Someone was invited: the call is now a meeting, which Graph will not transfer.
    h.emu.escalate_to_meeting(&call).unwrap();
    ctx.transfer(TransferRequest::to_user("agent-accepts", None).build())
        .await
        .unwrap();
    let (label, cause, hint) = eventually(|| handler.seen.lock().unwrap().first().copied()).await;
    assert_eq!(label, "rejected");
    assert_eq!(cause, Some(FailureCause::TransferInMeetingMode));
    assert!(hint.is_some_and(|h| h.contains("meeting")), "{hint:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_across_tenants_fails_with_cause_7505_and_a_hint() {
    let handler = Arc::new(Causes::default());
    let h = Harness::start(handler.clone(), short_timings()).await;
    h.call_from("tenant-caller").await;
    let ctx = eventually(|| handler.established.lock().unwrap().clone()).await;
    // A resource account of another tenant: Graph refuses the POST with 403/7505.
    let elsewhere = TransferRequest::to_application_instance("resource-account", Some("another-tenant".into())).build();
    ctx.transfer(elsewhere).await.unwrap();
    let (label, cause, hint) = eventually(|| handler.seen.lock().unwrap().first().copied()).await;
    assert_eq!(label, "rejected");
    assert_eq!(cause, Some(FailureCause::TenantMismatch));
    assert!(hint.is_some_and(|h| h.contains("tenant")), "{hint:?}");
    h.stop().await;
}
