//! The Graph emulator with what a bot needs to talk to it, and a bot served
//! on a loopback port: the one set-up behind the handler's tests, the
//! examples, the app's demo and the bench.

use std::net::SocketAddr;

use graph_comms_emulator::{Emulator, EmulatorConfig, EmulatorError, RegisteredApp};
use graph_comms_handler::client::{GraphClient, GraphClientBuilder, GraphClientError};
use graph_comms_handler::notify::NotifyConfig;
use graph_comms_handler::{Bot, ShutdownReport};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where a served bot takes notifications.
pub const CALLBACK_PATH: &str = "/api/calls";

/// Why a local set-up could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum LocalError {
    /// The emulator did not start.
    Emulator(EmulatorError),
    /// The client for the emulator's app could not be built.
    Client(Box<GraphClientError>),
    /// No loopback port for the bot.
    Bind(std::io::Error),
}

impl std::fmt::Display for LocalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Emulator(error) => write!(f, "starting the Graph emulator: {error}"),
            Self::Client(error) => write!(f, "building the client for the emulator: {error}"),
            Self::Bind(error) => write!(f, "binding a loopback port for the bot: {error}"),
        }
    }
}

impl std::error::Error for LocalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Emulator(error) => Some(error),
            Self::Client(error) => Some(&**error),
            Self::Bind(error) => Some(error),
        }
    }
}

/// A running emulator, its default app, a client for that app and the
/// notification settings that trust the emulator's signed tokens.
pub struct LocalGraph {
    /// The emulator.
    pub emulator: Emulator,
    /// Its default app (tenant, app id, secret).
    pub app: RegisteredApp,
    /// A client for the default app.
    pub client: GraphClient,
    /// Notification settings for the default app, trusting the emulator.
    pub notify: NotifyConfig,
}

impl LocalGraph {
    /// Starts the emulator with `config`.
    ///
    /// # Errors
    ///
    /// [`LocalError`] when the emulator does not start or the client does not build.
    pub async fn start(config: EmulatorConfig) -> Result<Self, LocalError> {
        let emulator = Emulator::start(config).await.map_err(LocalError::Emulator)?;
        let app = emulator.default_app();
        let client = client_builder(&emulator, &app)
            .build()
            .map_err(|error| LocalError::Client(Box::new(error)))?;
        let mut notify = NotifyConfig::new(app.app_id.clone());
        notify.issuers = vec![emulator.issuer()];
        notify.openid_configuration_url = emulator.openid_configuration_url();
        Ok(Self {
            emulator,
            app,
            client,
            notify,
        })
    }

    /// A client builder for the default app, to change settings before building.
    pub fn client_builder(&self) -> GraphClientBuilder {
        client_builder(&self.emulator, &self.app)
    }
}

/// A client builder for `app` of `emulator` (see [`Emulator::default_app`]),
/// to change settings before building.
pub fn client_builder(emulator: &Emulator, app: &RegisteredApp) -> GraphClientBuilder {
    GraphClient::builder()
        .credentials(app.tenant_id.clone(), app.app_id.clone(), app.client_secret.clone())
        .graph_base_url(emulator.graph_base_url())
        .login_base_url(emulator.login_base_url())
}

/// A loopback listener for a bot and the callback URL that reaches it.
///
/// # Errors
///
/// [`LocalError::Bind`] when no port is free.
pub async fn bot_listener() -> Result<(TcpListener, String), LocalError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(LocalError::Bind)?;
    let addr = listener.local_addr().map_err(LocalError::Bind)?;
    Ok((listener, format!("http://{addr}{CALLBACK_PATH}")))
}

/// A bot serving its webhook on a loopback listener until stopped.
pub struct ServedBot {
    /// The bot.
    pub bot: Bot,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<ShutdownReport>>,
}

impl ServedBot {
    /// Serves `bot` on `listener` (see [`bot_listener`]).
    ///
    /// # Errors
    ///
    /// [`LocalError::Bind`] when the listener has no local address.
    pub fn serve(bot: Bot, listener: TcpListener) -> Result<Self, LocalError> {
        let addr = listener.local_addr().map_err(LocalError::Bind)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = bot.clone();
        let server = tokio::spawn(async move {
            serving
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            bot,
            addr,
            stop: Some(stop),
            server,
        })
    }

    /// Stops serving and shuts the bot down gracefully; its report, unless
    /// the server failed.
    pub async fn stop(mut self) -> Option<ShutdownReport> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.server).await {
            Ok(Ok(report)) => Some(report),
            _ => None,
        }
    }

    /// Stops serving at once, without the graceful shutdown (a crash).
    pub fn abort(self) {
        self.server.abort();
    }
}
