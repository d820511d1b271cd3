//! Test helpers: a callback receiver, a minimal Graph caller and JWT verification.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use graph_comms_emulator::{Emulator, EmulatorConfig, IncomingCall, RegisteredApp};
use graph_comms_model::{CallId, CommsNotifications, ResourceUrl};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(10);

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
}

impl Hit {
    pub fn notifications(&self) -> CommsNotifications {
        CommsNotifications::from_slice(&self.body).expect("notification body parses")
    }

    /// (changeType, state) of each item.
    pub fn states(&self) -> Vec<(String, Option<String>)> {
        self.notifications()
            .value
            .iter()
            .map(|n| {
                let state = n.call().and_then(|c| c.state.as_ref()).map(|s| s.to_string());
                (n.change_type.to_string(), state)
            })
            .collect()
    }
}

#[derive(Default)]
struct ReceiverState {
    hits: Mutex<HashMap<String, Vec<Hit>>>,
    status: AtomicU16,
    fail_first: AtomicU32,
}

/// A callback receiver that records every POST and answers 202 (or a configured status).
pub struct Receiver {
    base: String,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<Arc<ReceiverState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let path = uri.path().to_owned();
    state.hits.lock().unwrap().entry(path.clone()).or_default().push(Hit {
        path,
        body: body.to_vec(),
        authorization: headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
    });
    let failing = state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        state.status.store(202, Ordering::SeqCst);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(record).with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// The next `n` POSTs get 500.
    pub fn fail_next(&self, n: u32) {
        self.state.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.state.hits.lock().unwrap().get(path).cloned().unwrap_or_default()
    }

    /// Waits until the hits on `path` satisfy `done`.
    pub async fn wait(&self, path: &str, done: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let hits = self.hits(path);
            if done(&hits) {
                return hits;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting on {path}; got {:?}",
                hits.iter().map(Hit::states).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for `n` POSTs on `path` and returns every (changeType, state) in order.
    pub async fn wait_states(&self, path: &str, n: usize) -> Vec<(String, Option<String>)> {
        self.wait(path, |h| h.len() >= n)
            .await
            .iter()
            .flat_map(Hit::states)
            .collect()
    }
}

pub fn st(change: &str, state: Option<&str>) -> (String, Option<String>) {
    (change.to_owned(), state.map(str::to_owned))
}

pub async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::default()).await.unwrap()
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

/// The call id named by a notification's `resourceUrl`.
pub fn call_of(hit: &Hit) -> CallId {
    let n = hit.notifications();
    ResourceUrl::parse(n.value[0].resource_path().unwrap()).unwrap().call_id
}

/// Places a call from a user, answers it with callback `path` and waits until it is established.
pub async fn established_call(emu: &Emulator, bot: &Bot, recv: &Receiver, path: &str) -> CallId {
    let app = emu.default_app();
    let global = format!("{path}/global");
    let id = emu
        .place_incoming_call(IncomingCall::from_user(
            &app,
            recv.url(&global),
            "caller-1",
            "Ann Caller",
        ))
        .await
        .unwrap();
    answer(emu, bot, recv, path, &id).await;
    id
}

pub async fn answer(emu: &Emulator, bot: &Bot, recv: &Receiver, path: &str, id: &CallId) {
    let (status, _) = bot
        .action(
            id,
            "answer",
            json!({
                "callbackUri": recv.url(path),
                "mediaConfig": { "@odata.type": "#microsoft.graph.serviceHostedMediaConfig" },
                "acceptedModalities": ["audio"],
            }),
        )
        .await;
    assert_eq!(status, 202);
    emu.wait_for_state(id, graph_comms_model::CallState::Established, WAIT)
        .await
        .unwrap();
    recv.wait(path, |h| h.len() >= 2).await;
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
