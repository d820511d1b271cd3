//! Test helpers: a minimal Graph caller and JWT verification; the callback
//! receiver is the testkit's.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

pub mod recorder;

use std::time::Duration;

use axum::http::HeaderMap;
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, RegisteredApp};
use graph_comms_model::CallId;
pub use graph_comms_testkit::receiver::{CallbackReceiver, Received};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(10);

/// Waits for `n` POSTs on `path` and returns every (changeType, state) in order.
pub async fn wait_states(recv: &CallbackReceiver, path: &str, n: usize) -> Vec<(String, Option<String>)> {
    recv.wait_for_on(path, n, WAIT)
        .await
        .iter()
        .flat_map(Received::states)
        .collect()
}

/// Waits until the emulator logged `n` answered delivery attempts of `call`'s notifications.
pub async fn wait_logged(emu: &Emulator, call: &CallId, n: usize) -> Vec<graph_comms_emulator::SentNotification> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = emu.notifications(call);
        if log.iter().filter(|sent| sent.response_status.is_some()).count() >= n {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} attempts not logged: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn st(change: &str, state: Option<&str>) -> (String, Option<String>) {
    (change.to_owned(), state.map(str::to_owned))
}

pub async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
}

/// The default configuration with redelivery after 20 ms (doubling) instead of 1 s.
pub fn quick_retries() -> EmulatorConfig {
    EmulatorConfig {
        delivery_retry_initial: Duration::from_millis(20),
        ..EmulatorConfig::default()
    }
}

/// A bot's side of the Graph API.
pub struct Bot {
    pub graph: String,
    pub http: reqwest::Client,
    pub token: String,
}

pub async fn access_token(emu: &Emulator, app: &RegisteredApp) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/{}/oauth2/v2.0/token", emu.login_base_url(), app.tenant_id))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.app_id.as_str()),
            ("client_secret", app.client_secret.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
}

impl Bot {
    pub async fn new(emu: &Emulator, app: &RegisteredApp) -> Self {
        let response = access_token(emu, app).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Self {
            graph: emu.graph_base_url(),
            http: reqwest::Client::new(),
            token: body["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Sends a request; returns status, headers and JSON body (Null when empty).
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, HeaderMap, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.graph))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, json)
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self.send("POST", path, Some(body)).await;
        (status, body)
    }

    pub async fn action(&self, call: &CallId, action: &str, body: Value) -> (u16, Value) {
        self.post(&format!("/communications/calls/{call}/{action}"), body).await
    }
}

/// Places a call from a user, answers it with callback `path` and waits until it is established.
pub async fn established_call(emu: &Emulator, bot: &Bot, recv: &CallbackReceiver, path: &str) -> CallId {
    let app = emu.default_app();
    let global = format!("{path}/global");
    let id = emu
        .place_incoming_call(IncomingCall::from_user(
            &app,
            recv.url_for(&global),
            "caller-1",
            "Ann Caller",
        ))
        .await
        .unwrap();
    answer(emu, bot, recv, path, &id).await;
    id
}

pub async fn answer(emu: &Emulator, bot: &Bot, recv: &CallbackReceiver, path: &str, id: &CallId) {
    let (status, _) = bot
        .action(
            id,
            "answer",
            json!({
                "callbackUri": recv.url_for(path),
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
                "acceptedModalities": ["audio"],
            }),
        )
        .await;
    assert_eq!(status, 202);
    emu.wait_for_state(id, graph_comms_model::CallState::Established, WAIT)
        .await
        .unwrap();
    recv.wait_for_on(path, 2, WAIT).await;
}

pub fn blind_transfer(target: &str) -> Value {
    json!({
        "transferTarget": {
            "@odata.type": "#microsoft.graph.invitationParticipantInfo",
            "endpointType": "default",
            "identity": { "user": { "id": target, "displayName": "Target" } }
        }
    })
}

/// Verifies a notification's `Authorization` header against the emulator's published keys.
pub async fn verify(emu: &Emulator, app: &RegisteredApp, authorization: &str) -> Value {
    let token = authorization.strip_prefix("Bearer ").expect("bearer scheme");
    let config: Value = reqwest::get(emu.openid_configuration_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], emu.issuer());
    let jwks: JwkSet = reqwest::get(config["jwks_uri"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("kid header");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[app.app_id.as_str()]);
    validation.set_issuer(&[emu.issuer()]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    validation.validate_nbf = true;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap().claims;
    assert_eq!(claims["tid"], app.tenant_id.as_str());
    assert!(claims["iat"].is_u64());
    claims
}
