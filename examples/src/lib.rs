#![doc = include_str!("../README.md")]
//!
//! This library is the shared set-up: the Graph emulator in-process, a Graph
//! client and a bot against it, so each example shows only its own handler.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use graph_comms_client::GraphClient;
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, RegisteredApp};
use graph_comms_handler::model::CallId;
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{Bot, CallHandler};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long an example waits for the next thing it expects before giving up.
pub const WAIT: Duration = Duration::from_secs(20);

/// The emulator, a client for it and a bot serving on loopback.
pub struct LocalSetup {
    /// The in-process Graph emulator.
    pub emulator: Emulator,
    /// The app the emulator registered for the bot.
    pub app: RegisteredApp,
    /// A Graph client signed in as that app (the bot uses a clone).
    pub client: GraphClient,
    /// Where the bot receives notifications.
    pub callback_uri: String,
    /// The bot.
    pub bot: Bot,
    stop: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<graph_comms_handler::ShutdownReport>>,
}

/// A Graph client signed in as the emulator's default app.
pub fn client_for(emulator: &Emulator) -> anyhow::Result<GraphClient> {
    let app = emulator.default_app();
    Ok(GraphClient::builder()
        .credentials(app.tenant_id.clone(), app.app_id.clone(), app.client_secret.clone())
        .graph_base_url(emulator.graph_base_url())
        .login_base_url(emulator.login_base_url())
        .build()?)
}

/// Starts the emulator, then a bot running `handler` against it on
/// `127.0.0.1:0` that accepts the emulator's signed notifications.
pub async fn start_local(handler: Arc<dyn CallHandler>) -> anyhow::Result<LocalSetup> {
    let emulator = Emulator::start(EmulatorConfig::default())
        .await
        .context("starting the emulator")?;
    let app = emulator.default_app();
    let client = client_for(&emulator)?;
    let mut notify = NotifyConfig::new(app.app_id.clone());
    notify.issuers = vec![emulator.issuer()];
    notify.openid_configuration_url = emulator.openid_configuration_url();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let callback_uri = format!("http://{}/api/calls", listener.local_addr()?);
    let bot = Bot::builder()
        .client(client.clone())
        .notify(notify)
        .handler(handler)
        .callback_uri(callback_uri.clone())
        .build()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn({
        let bot = bot.clone();
        async move { bot.serve(listener, async { drop(stopped.await) }).await }
    });
    Ok(LocalSetup {
        emulator,
        app,
        client,
        callback_uri,
        bot,
        stop,
        server,
    })
}

impl LocalSetup {
    /// Offers the bot a call from the Teams user `caller`.
    pub async fn place_call(&self, caller: &str) -> anyhow::Result<CallId> {
        let call = IncomingCall::from_user(&self.app, &self.callback_uri, caller, "Caller");
        Ok(self.emulator.place_incoming_call(call).await?)
    }

    /// Stops the bot (handling what it already acknowledged), then the emulator.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        // The server may already have stopped; its result says how.
        let _ = self.stop.send(());
        self.server.await??;
        self.emulator.shutdown().await;
        Ok(())
    }
}

/// Prints the lines a handler reports until one satisfies `last`; fails when
/// none arrives within [`WAIT`] or the handler is gone.
pub async fn print_until(
    lines: &mut mpsc::UnboundedReceiver<String>,
    last: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    loop {
        let line = tokio::time::timeout(WAIT, lines.recv())
            .await
            .context("no report in time")?
            .context("the handler stopped reporting")?;
        println!("{line}");
        if last(&line) {
            return Ok(());
        }
    }
}
