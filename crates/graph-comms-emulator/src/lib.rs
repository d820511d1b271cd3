#![doc = include_str!("../README.md")]

mod assertion;
mod calls;
mod control;
mod delivery;
mod error;
mod federated;
mod keys;
mod redelivery;
mod server;
mod state;
mod types;
mod unanswered;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graph_comms_model::{CallId, CallState, Tone};
use tokio::sync::watch;

pub use error::EmulatorError;
pub use types::{
    ApiFault, Caller, DeliveryFaults, DuplicateLater, EmulatorConfig, Endpoint, FaultKind, IncomingCall,
    RecordedRequest, RecordingBehavior, RegisteredApp, SentNotification, TargetBehavior,
};

pub use keys::NotificationSigner;

use crate::keys::KeyRing;
use crate::state::{Inner, Script, lock, target_key};

/// How long a rotated-out signing key stays in the JWKS (emulator clock) with [`Emulator::rotate_signing_key`].
pub const DEFAULT_KEY_GRACE: Duration = Duration::from_secs(3600);

/// A running emulator. Cheap to clone; the server runs on a spawned tokio task until [`Emulator::shutdown`].
#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
    server: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Binds the listen address, generates a signing key and a default app, and starts serving.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
        let keys = tokio::task::spawn_blocking(KeyRing::new)
            .await
            .map_err(|_| EmulatorError::Key("key generation task failed"))??;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| EmulatorError::HttpClient(e.to_string()))?;
        let default_app = RegisteredApp::random();
        let (shutdown, mut stop) = watch::channel(false);
        let inner = Arc::new(Inner {
            config,
            base_url: format!("http://{addr}"),
            default_app: default_app.clone(),
            started: Instant::now(),
            clock_offset: Mutex::new(Duration::ZERO),
            apps: Mutex::new(vec![default_app]),
            certificates: Mutex::new(Vec::new()),
            federated: Mutex::new(Vec::new()),
            roles: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            keys: Mutex::new(keys),
            calls: Mutex::new(HashMap::new()),
            targets: Mutex::new(HashMap::new()),
            api_faults: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            changes: watch::channel(0).0,
            shutdown,
            http,
        });
        let router = control::router().fallback(server::entry).with_state(Arc::clone(&inner));
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
                tracing::error!(%error, "emulator server failed");
            }
        });
        Ok(Emulator {
            inner,
            server: Arc::new(Mutex::new(Some(server))),
        })
    }

    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            server: Arc::new(Mutex::new(None)),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `{base}/v1.0`: the calls API is at `{graph}/communications/calls`.
    pub fn graph_base_url(&self) -> String {
        format!("{}/v1.0", self.inner.base_url)
    }

    /// `{base}`: the token endpoint is at `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn login_base_url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// `{base}/v1/.well-known/OpenIdConfiguration`, naming the issuer and the JWKS.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/v1/.well-known/OpenIdConfiguration", self.inner.base_url)
    }

    /// The `iss` of notification JWTs.
    pub fn issuer(&self) -> String {
        self.inner.config.issuer.clone()
    }

    /// The app registered at start, with random tenant id, app id and secret.
    pub fn default_app(&self) -> RegisteredApp {
        self.inner.default_app.clone()
    }

    /// Registers another app (replacing one with the same tenant and app id).
    pub fn register_app(&self, app: RegisteredApp) {
        let mut apps = lock(&self.inner.apps);
        apps.retain(|a| !(a.tenant_id == app.tenant_id && a.app_id == app.app_id));
        apps.push(app);
    }

    /// Sets the application permissions `app` has in its tenant: the `roles`
    /// claim of the access tokens the token endpoint issues to it from now
    /// on (by default every calling permission). The calls API does not
    /// enforce them; a check such as `transfer-bot doctor` reads them.
    pub fn set_app_roles(&self, app: &RegisteredApp, roles: &[&str]) {
        lock(&self.inner.roles).insert(
            (app.tenant_id.clone(), app.app_id.clone()),
            roles.iter().map(|r| (*r).to_owned()).collect(),
        );
    }

    /// Registers an X.509 certificate (PEM) on `app` in its tenant: the token
    /// endpoint then accepts client assertions signed with its key (`x5t` or
    /// `x5t#S256` names it), and answers AAD errors otherwise (AADSTS700027 for
    /// an unknown key or a bad signature, AADSTS700024 when expired, ...).
    pub fn register_certificate(&self, app: &RegisteredApp, certificate_pem: &str) -> Result<(), EmulatorError> {
        let certificate =
            assertion::RegisteredCertificate::from_pem(app.tenant_id.clone(), app.app_id.clone(), certificate_pem)?;
        lock(&self.inner.certificates).push(certificate);
        Ok(())
    }

    /// Registers a federated identity credential on `app` in its tenant
    /// (workload identity federation): the token endpoint then accepts, as the
    /// client assertion, an RS256 token whose `iss` is `issuer` and `sub` is
    /// `subject`, signed by a key of `jwks` (the issuer's JWKS, `{"keys": [...]}`,
    /// or a single RSA JWK; the token's `kid` picks the key when it names one),
    /// with `aud` `api://AzureADTokenExchange` and within its `nbf`/`exp`.
    ///
    /// Registering the same issuer and subject again replaces the keys (the
    /// issuer rotated its signing key): tokens signed by the old ones are then
    /// refused. Other subjects of one issuer are added alongside.
    ///
    /// A refused token gets the AAD code for the check that failed:
    /// AADSTS700211 (no record for the issuer), AADSTS700213 (no record for the
    /// subject), AADSTS700212 (audience), AADSTS700024 (outside `nbf`/`exp`,
    /// 5 minutes of skew allowed). AADSTS700027 for a bad signature or an
    /// unknown `kid`, AADSTS50027 for a malformed token and AADSTS5002738 for
    /// another algorithm are the emulator's choice. An assertion whose `iss` is
    /// the app id is a certificate assertion ([`Emulator::register_certificate`]).
    pub fn register_federated_identity(
        &self,
        app: &RegisteredApp,
        issuer: &str,
        subject: &str,
        jwks: &serde_json::Value,
    ) -> Result<(), EmulatorError> {
        let identity =
            federated::FederatedIdentity::new(app.tenant_id.clone(), app.app_id.clone(), issuer, subject, jwks)?;
        let mut identities = lock(&self.inner.federated);
        identities.retain(|known| !known.same_record(&identity));
        identities.push(identity);
        Ok(())
    }

    /// Registers the default app in a new random tenant with its own secret and
    /// returns it: calls placed with it belong to that tenant, and a token of
    /// another tenant on them gets Graph's 403 `7505`.
    pub fn add_tenant(&self) -> RegisteredApp {
        let app = self.inner.default_app.in_tenant(uuid::Uuid::new_v4().to_string());
        self.register_app(app.clone());
        app
    }

    /// Signs with a new key (new `kid`) from now on; the old key stays in the JWKS for
    /// [`DEFAULT_KEY_GRACE`] on the emulator clock.
    pub fn rotate_signing_key(&self) {
        self.rotate_signing_key_with_grace(DEFAULT_KEY_GRACE);
    }

    /// Like [`Emulator::rotate_signing_key`], with the old key published for `grace` (emulator clock).
    pub fn rotate_signing_key_with_grace(&self, grace: Duration) {
        match NotificationSigner::new() {
            Ok(fresh) => {
                let until = self.inner.now() + grace;
                lock(&self.inner.keys).rotate(fresh, until);
            }
            Err(error) => tracing::error!(%error, "key rotation failed"),
        }
    }

    /// Offers a call to a bot: a `created` `incoming` notification goes to `call.callback_uri`.
    /// Unless answered, rejected or redirected within its answer timeout
    /// ([`IncomingCall::answer_timeout`], else [`EmulatorConfig::incoming_answer_timeout`]), the call
    /// ends with `deleted` `terminated` 408/1106.
    pub async fn place_incoming_call(&self, call: IncomingCall) -> Result<CallId, EmulatorError> {
        if self.inner.find_app(&call.tenant_id, &call.app_id).is_none() {
            return Err(EmulatorError::UnknownApp(format!(
                "{} in tenant {}",
                call.app_id, call.tenant_id
            )));
        }
        Ok(calls::place_incoming(&self.inner, call))
    }

    /// Scripts how a transfer (or outgoing call) target responds, by user id, phone number or
    /// application-instance id. Targets not scripted accept at once. While a target rings
    /// ([`TargetBehavior::AcceptAfter`], [`TargetBehavior::NoAnswer`]) the call is `transferring`.
    pub fn script_target(&self, target_id: &str, behavior: TargetBehavior) {
        lock(&self.inner.targets).insert(target_key(target_id), behavior);
    }

    /// Replaces a call's delivery faults (applied from its next scripted action).
    pub fn set_delivery_faults(&self, call: &CallId, faults: DeliveryFaults) {
        if let Some(record) = lock(&self.inner.calls).get_mut(call) {
            record.faults = faults;
        }
    }

    /// Adds a fault for the next `fault.count` requests to `fault.endpoint`.
    pub fn inject_api_fault(&self, fault: ApiFault) {
        if fault.count > 0 {
            lock(&self.inner.api_faults).push(fault);
        }
    }

    /// The caller presses keys: each tone arrives as an `updated` call
    /// notification with `toneInfo` (`sequenceId` counting from 1), and later
    /// call updates repeat the last `toneInfo`, as Graph does. Tones reach the
    /// bot only after it called subscribeToTone; returns whether they were sent.
    pub fn send_tones(&self, call: &CallId, tones: &[Tone]) -> Result<bool, EmulatorError> {
        calls::caller_tones(&self.inner, call, tones)
    }

    /// The caller hangs up: the bot gets the call's `deleted` notification
    /// (`terminated`, 200/4097 ended by the other participant).
    pub fn caller_hangs_up(&self, call: &CallId) -> Result<(), EmulatorError> {
        calls::caller_hangs_up(&self.inner, call)
    }

    /// How the call's next recordResponse ends (default: completes).
    pub fn script_recording(&self, call: &CallId, behavior: RecordingBehavior) {
        if let Some(record) = lock(&self.inner.calls).get_mut(call) {
            record.recording = behavior;
        }
    }

    /// Escalates a call to a meeting (as inviting a participant into a P2P call
    /// does): a transfer then gets Graph's 400 `8523` "Cannot do transfer for meeting mode".
    pub fn escalate_to_meeting(&self, call: &CallId) -> Result<(), EmulatorError> {
        match lock(&self.inner.calls).get_mut(call) {
            Some(record) => {
                record.meeting = true;
                Ok(())
            }
            None => Err(EmulatorError::UnknownCall(call.clone())),
        }
    }

    /// A call's current state; `None` if unknown.
    pub fn call_state(&self, call: &CallId) -> Option<CallState> {
        lock(&self.inner.calls).get(call).map(|c| c.state.clone())
    }

    /// Every request received outside the control API, in order, with the status returned.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Every delivery attempt of a call's notifications (late copies among them), in the order
    /// they were answered.
    pub fn notifications(&self, call: &CallId) -> Vec<SentNotification> {
        lock(&self.inner.calls)
            .get(call)
            .map(|c| c.notifications.clone())
            .unwrap_or_default()
    }

    /// Waits until a call is in `state`.
    pub async fn wait_for_state(
        &self,
        call: &CallId,
        state: CallState,
        timeout: Duration,
    ) -> Result<(), EmulatorError> {
        let mut changes = self.inner.changes.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                match self.call_state(call) {
                    None => return Err(EmulatorError::UnknownCall(call.clone())),
                    Some(current) if current == state => return Ok(()),
                    Some(_) => {}
                }
                if changes.changed().await.is_err() {
                    return Err(EmulatorError::UnknownCall(call.clone()));
                }
            }
        })
        .await;
        match reached {
            Ok(result) => result,
            Err(_) => Err(EmulatorError::StateTimeout {
                call: call.clone(),
                state,
                current: self
                    .call_state(call)
                    .map_or_else(|| "unknown".into(), |s| s.to_string()),
                timeout,
            }),
        }
    }

    /// Moves the emulator clock forward. Incoming calls moved past their answer timeout
    /// ([`EmulatorConfig::incoming_answer_timeout`]) end at once with `deleted terminated` 408/1106;
    /// calls idle (no keepAlive since established or the last keepAlive) longer than
    /// `keep_alive_timeout` end at once with `deleted terminated` 408/8537.
    pub fn advance_clock(&self, by: Duration) {
        *lock(&self.inner.clock_offset) += by;
        // Incoming calls past their answer timeout end first, with 408/1106.
        unanswered::end(&self.inner, None);
        let now = self.inner.now();
        let timeout = self.inner.config.keep_alive_timeout;
        let expired: Vec<(CallId, String)> = {
            let mut calls = lock(&self.inner.calls);
            calls
                .values_mut()
                .filter(|c| !c.is_gone() && now.saturating_sub(c.last_activity) > timeout)
                .map(|c| {
                    c.state = CallState::Terminated;
                    (c.id.clone(), c.callback_uri.clone())
                })
                .collect()
        };
        for (call, url) in expired {
            let steps = vec![calls::keep_alive_timeout_step(&call)];
            self.inner.enqueue(&call, Script { url, steps });
        }
        self.inner.bump();
    }

    /// Stops the server and every delivery task.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let server = lock(&self.server).take();
        if let Some(mut server) = server
            && tokio::time::timeout(Duration::from_secs(5), &mut server).await.is_err()
        {
            server.abort();
        }
    }
}
