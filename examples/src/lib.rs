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
use graph_comms_handler::model::CommsNotifications;
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{Bot, CallHandler};
use tokio::net::{TcpListener, TcpStream};
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

/// A bare HTTP endpoint on `127.0.0.1:0` that answers every POST with 202 and
/// forwards the notification bodies, for examples that use the client without a bot.
/// Returns its callback URI.
pub async fn callback_receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<CommsNotifications>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let uri = format!("http://{}/api/calls", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(body) = read_request(&stream).await {
                    if let Ok(batch) = CommsNotifications::from_slice(&body) {
                        let _ = tx.send(batch);
                    }
                    if write_all(&stream, b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    Ok((uri, rx))
}

/// Reads one request from a keep-alive connection and returns its body.
async fn read_request(stream: &TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        read_some(stream, &mut buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        read_some(stream, &mut buf).await?;
    }
    Ok(buf[head_end..head_end + length].to_vec())
}

async fn read_some(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
