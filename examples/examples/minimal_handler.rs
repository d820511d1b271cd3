//! The smallest useful bot: answer every call and blind-transfer it, against
//! the in-process emulator. Exits after the first transfer outcome.

use std::sync::Arc;

use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall};
use graph_comms_handler::model::TransferRequest;
use graph_comms_handler::{Bot, CallContext, CallHandler, HookError, TransferFailure, TransferInfo, async_trait};
use graph_comms_handler::{client::GraphClient, notify::NotifyConfig};
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
    let emulator = Emulator::start(EmulatorConfig::default()).await?;
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
    let (outcomes, mut outcome) = mpsc::unbounded_channel();
    let bot = Bot::builder()
        .client(client)
        .notify(notify)
        .handler(Arc::new(Transfer(outcomes)))
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
    let result = tokio::time::timeout(std::time::Duration::from_secs(20), outcome.recv()).await?;
    println!("{}", result.unwrap_or_default());

    let _ = stop.send(());
    server.await??;
    emulator.shutdown().await;
    Ok(())
}
