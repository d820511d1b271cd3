//! The demo's environment: the embedded emulator, the bot serving against it,
//! and the caller side (placing calls, pressing keys).

use super::*;

/// The emulator and a bot serving against it, with the bot's progress events.
pub struct DemoEnvironment {
    /// The emulator.
    pub emulator: Emulator,
    /// The bot.
    pub bot: RunningBot,
    /// Places calls to the bot.
    pub placer: Arc<CallPlacer>,
    /// The receptionist's progress.
    pub events: mpsc::UnboundedReceiver<BotEvent>,
    /// The configuration the bot runs with.
    pub config: Config,
}

impl DemoEnvironment {
    /// Starts the emulator on loopback and the bot against it, routing the given scenarios.
    pub async fn start(scenarios: &[Scenario]) -> anyhow::Result<Self> {
        Self::start_with_store(scenarios, StoreSettings::default()).await
    }

    /// Like [`DemoEnvironment::start`], keeping calls where `store` says (Redis in tests).
    pub async fn start_with_store(scenarios: &[Scenario], store: StoreSettings) -> anyhow::Result<Self> {
        Self::start_configured(scenarios, store, |_, _| {}).await
    }

    /// Like [`DemoEnvironment::start_with_store`]; `configure` changes the
    /// bot's configuration (the emulator's default app, its tenant, ...) and
    /// may prepare the emulator (a certificate, a tenant) before the bot starts.
    pub async fn start_configured(
        scenarios: &[Scenario],
        store: StoreSettings,
        configure: impl FnOnce(&mut Config, &Emulator),
    ) -> anyhow::Result<Self> {
        let emulator = Emulator::start(EmulatorConfig::default())
            .await
            .context("starting the Graph emulator")?;
        let app = emulator.default_app();
        for scenario in scenarios {
            for (id, behavior) in &scenario.behaviors {
                emulator.script_target(id, behavior.clone());
            }
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let callback_uri = format!("http://{}/api/calls", listener.local_addr()?);
        let mut config = Config {
            tenant_id: app.tenant_id.clone(),
            app_id: app.app_id.clone(),
            credential: Credential::Secret(Secret::new(app.client_secret.clone())),
            graph_base_url: emulator.graph_base_url(),
            login_base_url: emulator.login_base_url(),
            openid_configuration_url: emulator.openid_configuration_url(),
            listen: listener.local_addr()?,
            admin_listen: None,
            public_callback_url: callback_uri.clone(),
            callback_path: "/api/calls".into(),
            hold_prompt_uri: Some("https://transfer-bot.invalid/audio/hold.wav".into()),
            apology_prompt_uri: Some("https://transfer-bot.invalid/audio/sorry.wav".into()),
            transfer_timeout: Duration::from_secs(10),
            ring_limit: Duration::from_secs(180),
            keep_alive_interval: Duration::from_secs(15 * 60),
            hook_timeout: Duration::from_secs(30),
            log_format: LogFormat::Plain,
            graph_client: GraphClientSettings::default(),
            routing: RoutingPolicy {
                routes: routes_of(scenarios),
                default_targets: Vec::new(),
            },
            store,
            server: ServerLimits::default(),
            menu: Some(demo_menu()),
            allowed_tenants: None,
            application_instance_id: Some(DEMO_RESOURCE_ACCOUNT.to_owned()),
            telemetry: crate::config::TelemetrySettings::default(),
        };
        configure(&mut config, &emulator);
        let (sender, events) = mpsc::unbounded_channel();
        let bot = RunningBot::start(&config, listener, Some(sender)).await?;
        if let Err(e) = bot.wait_ready(Duration::from_secs(10)).await {
            bot.shutdown().await;
            emulator.shutdown().await;
            return Err(e);
        }
        let placer = Arc::new(CallPlacer {
            emulator: emulator.clone(),
            app,
            callback_uri,
        });
        Ok(Self {
            emulator,
            bot,
            placer,
            events,
            config,
        })
    }

    /// Stops the bot, then the emulator.
    pub async fn shutdown(self) {
        self.bot.shutdown().await;
        self.emulator.shutdown().await;
    }
}

/// Offers scripted calls to the bot through the emulator.
#[derive(Debug)]
pub struct CallPlacer {
    emulator: Emulator,
    app: RegisteredApp,
    callback_uri: String,
}

impl CallPlacer {
    /// Where the bot takes notifications.
    pub fn callback_uri(&self) -> &str {
        &self.callback_uri
    }

    /// Offers calls through `emulator` as `app`'s callers; Graph posts their
    /// notifications to `callback_uri`.
    pub fn new(emulator: Emulator, app: RegisteredApp, callback_uri: String) -> Self {
        Self {
            emulator,
            app,
            callback_uri,
        }
    }

    /// Offers the scenario's call to the bot; `caller` numbers the caller.
    pub async fn place(&self, scenario: &Scenario, caller: usize) -> anyhow::Result<CallId> {
        let mut call = if scenario.from_phone {
            IncomingCall::from_phone(&self.app, self.callback_uri.clone(), "+14255550123")
        } else {
            let id = format!("caller-{caller}");
            IncomingCall::from_user(&self.app, self.callback_uri.clone(), &id, "Demo Caller")
        }
        .to(IdentitySet::application_instance(Identity::with_id(scenario.called_id)))
        .faults(scenario.faults.clone());
        if scenario.group {
            call = call.group(vec![ParticipantInfo::new(IdentitySet::user(
                Identity::with_id("colleague").display_name("Colleague"),
            ))]);
        }
        let id = self.emulator.place_incoming_call(call).await?;
        if !scenario.presses.is_empty() {
            tokio::spawn(press_when_listened(
                self.emulator.clone(),
                id.clone(),
                scenario.presses.clone(),
            ));
        }
        Ok(id)
    }
}

/// Presses `tones` on `call` once the bot subscribed to tones (for at most 10 s).
async fn press_when_listened(emulator: Emulator, call: CallId, tones: Vec<Tone>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match emulator.send_tones(&call, &tones) {
            Ok(true) | Err(_) => return,
            Ok(false) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One route per called identity (scenarios calling the same one share it).
fn routes_of(scenarios: &[Scenario]) -> Vec<Route> {
    let mut routes: Vec<Route> = Vec::new();
    for scenario in scenarios {
        if !routes.iter().any(|r| r.match_called_id == scenario.called_id) {
            routes.push(Route {
                match_called_id: scenario.called_id.to_owned(),
                targets: scenario.targets.clone(),
            });
        }
    }
    routes
}
