//! A consultative transfer: the bot first calls the agent (the consultation
//! call), then transfers the caller into that call with `replacesCallId`.
//! Success shows up as `terminationReason: AppTransferred`.

use std::sync::Arc;

use examples::{WAIT, print_until, start_local};
use graph_comms_handler::model::{
    Call, CallId, CallState, Identity, IdentitySet, InvitationParticipantInfo, MediaConfig, Modality, TransferRequest,
};
use graph_comms_handler::prelude::*;
use tokio::sync::{mpsc, watch};

struct Consultative {
    /// The consultation call with the agent, once it is up.
    consultation: watch::Receiver<Option<CallId>>,
    report: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl CallHandler for Consultative {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let Some(consultation) = self.consultation.borrow().clone() else {
            // The consultation call itself is being set up: nothing to transfer yet.
            return Ok(());
        };
        // The consultation call reports `established` too; only transfer the caller.
        if ctx.call_id() == &consultation {
            return Ok(());
        }
        let request = TransferRequest::to_user("agent-1", None)
            .replaces_call(consultation)
            .build();
        ctx.transfer(request).await?;
        Ok(())
    }

    async fn on_transfer_accepted(&self, _: &CallContext, t: &TransferInfo, inferred: bool) -> Result<(), HookError> {
        Ok(self.report.send(format!("{} accepted (inferred: {inferred})", t.id))?)
    }

    async fn on_transfer_completed(&self, _: &CallContext, t: &TransferInfo) -> Result<(), HookError> {
        Ok(self.report.send(format!("{} completed ({:?})", t.id, t.kind))?)
    }

    async fn on_transfer_failed(
        &self,
        _: &CallContext,
        t: &TransferInfo,
        f: &TransferFailure,
    ) -> Result<(), HookError> {
        Ok(self.report.send(format!("{} failed: {f}", t.id))?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let (report, mut lines) = mpsc::unbounded_channel();
    let (set_consultation, consultation) = watch::channel(None);
    let local = start_local(Arc::new(Consultative { consultation, report })).await?;

    // 1. The bot calls the agent.
    let agent = InvitationParticipantInfo::new(IdentitySet::user(Identity::with_id("agent-1")));
    let consult = Call {
        odata_type: Some("#microsoft.graph.call".into()),
        callback_uri: Some(local.callback_uri.clone()),
        targets: Some(vec![agent]),
        requested_modalities: Some(vec![Modality::Audio]),
        media_config: Some(MediaConfig::service_hosted()),
        tenant_id: Some(local.app.tenant_id.clone()),
        ..Call::default()
    };
    let created = local.client.create_call(&consult).await?.value;
    let consult_id = created.id.ok_or_else(|| anyhow::anyhow!("created call has no id"))?;
    local
        .emulator
        .wait_for_state(&consult_id, CallState::Established, WAIT)
        .await?;
    set_consultation.send_replace(Some(consult_id));

    // 2. A caller comes in; the handler transfers it into the consultation.
    local.place_call("caller-1").await?;
    print_until(&mut lines, |line| line.contains("completed") || line.contains("failed")).await?;
    local.shutdown().await
}
