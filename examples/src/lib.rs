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
use graph_comms_handler::{Bot, CallHandler};
use graph_comms_testkit::{LocalGraph, ServedBot, bot_listener};
use tokio::sync::mpsc;

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
    served: ServedBot,
}

/// Starts the emulator, then a bot running `handler` against it on
/// `127.0.0.1:0` that accepts the emulator's signed notifications.
pub async fn start_local(handler: Arc<dyn CallHandler>) -> anyhow::Result<LocalSetup> {
    let LocalGraph {
        emulator,
        app,
        client,
        notify,
    } = LocalGraph::start(EmulatorConfig::default()).await?;
    let (listener, callback_uri) = bot_listener().await?;
    let bot = Bot::builder()
        .client(client.clone())
        .notify(notify)
        .handler(handler)
        .callback_uri(callback_uri.clone())
        .build()?;
    let served = ServedBot::serve(bot.clone(), listener)?;
    Ok(LocalSetup {
        emulator,
        app,
        client,
        callback_uri,
        bot,
        served,
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
        let report = self.served.stop().await;
        self.emulator.shutdown().await;
        report.map(drop).context("the bot's server failed")
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
