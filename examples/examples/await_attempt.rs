//! Awaiting `TransferAttempt::outcome` from a spawned task instead of using the
//! outcome hooks: try each target in turn until one takes the call.
//!
//! Awaiting the outcome inside a hook of the same call would deadlock that
//! call's ordered queue, so the hook hands the work to a task and returns.

use std::sync::Arc;
use std::time::Duration;

use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, TargetBehavior};
use graph_comms_handler::model::TransferRequest;
use graph_comms_handler::{Bot, CallContext, CallHandler, HookError, TransferOutcome, async_trait};
use graph_comms_handler::{client::GraphClient, notify::NotifyConfig};
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
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
    emulator.script_target("agent-busy", TargetBehavior::Busy);
    let app = emulator.default_app();
    let client = GraphClient::builder()
        .credentials(app.tenant_id.clone(), app.app_id.clone(), app.client_secret.clone())
        .graph_base_url(emulator.graph_base_url())
        .login_base_url(emulator.login_base_url())
        .build()?;
    let mut notify = NotifyConfig::new(app.app_id.clone());
    notify.issuers = vec![emulator.issuer()];
    notify.openid_configuration_url = emulator.openid_configuration_url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback = format!("http://{}/api/calls", listener.local_addr()?);
    let (report, mut lines) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .client(client)
        .notify(notify)
        .handler(Arc::new(Sequential(report)))
        .callback_uri(callback.clone())
        .build()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn({
        let bot = bot.clone();
        async move { bot.serve(listener, async { drop(stopped.await) }).await }
    });

    emulator
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller-1", "Caller"))
        .await?;
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv()).await?;
        let Some(line) = line else { break };
        println!("{line}");
        if !line.contains("failed") {
            break;
        }
    }

    let _ = stop.send(());
    server.await??;
    emulator.shutdown().await;
    Ok(())
}
