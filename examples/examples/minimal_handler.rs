//! The smallest useful bot: answer every call and blind-transfer it, against
//! the in-process emulator. Exits after the first transfer outcome.

use std::sync::Arc;

use examples::{print_until, start_local};
use graph_comms_handler::prelude::*;
use tokio::sync::mpsc;

struct Transfer(mpsc::UnboundedSender<String>);

#[async_trait]
impl CallHandler for Transfer {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        ctx.transfer(TransferRequest::to_user("agent-1", None).build()).await?;
        Ok(())
    }
    async fn on_transfer_completed(&self, _: &CallContext, t: &TransferInfo) -> Result<(), HookError> {
        Ok(self.0.send(format!("{} completed", t.id))?)
    }
    async fn on_transfer_failed(
        &self,
        _: &CallContext,
        t: &TransferInfo,
        f: &TransferFailure,
    ) -> Result<(), HookError> {
        Ok(self.0.send(format!("{} failed: {f}", t.id))?)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (report, mut outcomes) = mpsc::unbounded_channel();
    let local = start_local(Arc::new(Transfer(report))).await?;
    local.place_call("caller-1").await?;
    print_until(&mut outcomes, |_| true).await?;
    local.shutdown().await
}
