//! Awaiting `TransferAttempt::outcome` from a spawned task instead of using the
//! outcome hooks: try each target in turn until one takes the call.
//!
//! Awaiting the outcome inside a hook of the same call would deadlock that
//! call's ordered queue, so the hook hands the work to a task and returns.

use std::sync::Arc;

use examples::{print_until, start_local};
use graph_comms_emulator::TargetBehavior;
use graph_comms_handler::prelude::*;
use tokio::sync::mpsc;

const TARGETS: [&str; 2] = ["agent-busy", "agent-free"];

struct Sequential(mpsc::UnboundedSender<String>);

#[async_trait]
impl CallHandler for Sequential {
    async fn on_call_established(&self, ctx: &CallContext) -> Result<(), HookError> {
        let ctx = ctx.clone();
        let report = self.0.clone();
        tokio::spawn(async move {
            for target in TARGETS {
                let attempt = match ctx.transfer(TransferRequest::to_user(target, None).build()).await {
                    Ok(attempt) => attempt,
                    Err(refused) => {
                        let _ = report.send(format!("{target}: refused: {refused}"));
                        break;
                    }
                };
                match attempt.outcome().await {
                    TransferOutcome::Completed => {
                        let _ = report.send(format!("{target}: completed"));
                        return;
                    }
                    TransferOutcome::Failed(failure) => {
                        let _ = report.send(format!("{target}: failed: {failure}"));
                    }
                }
            }
            let _ = report.send("no target took the call".into());
        });
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (report, mut lines) = mpsc::unbounded_channel();
    let local = start_local(Arc::new(Sequential(report))).await?;
    local.emulator.script_target("agent-busy", TargetBehavior::Busy);
    local.place_call("caller-1").await?;
    print_until(&mut lines, |line| !line.contains("failed")).await?;
    local.shutdown().await
}
