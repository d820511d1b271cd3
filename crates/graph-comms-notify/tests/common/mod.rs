//! Test keys, tokens, key sources and requests shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::KeyPair as _;
use axum::body::Body;
use graph_comms_notify::{EventReceiver, Jwks, KeySource, NotifyConfig, NotifyEndpoint, NotifyError};
use graph_comms_testkit::signer::{self, NotificationSigner};
use http::{Request, Response, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

pub const APP_ID: &str = "0efc74f7-41c3-47a4-8775-7259bfef4241";
pub const TENANT: &str = "1fdd12d0-4620-44ed-baec-459b611f84b2";
pub const ISSUER: &str = signer::GRAPH_ISSUER;
pub const PATH: &str = "/api/calls";

/// A signing key by the name the tests give it: `A` is the testkit's shared
/// signer, `B` its second key. The signing is the emulator's `NotificationSigner`.
#[derive(Clone, Copy)]
pub struct TestKey(fn() -> &'static NotificationSigner);

pub const A: TestKey = TestKey(signer::shared);
pub const B: TestKey = TestKey(signer::other);

impl TestKey {
    pub fn signer(self) -> &'static NotificationSigner {
        (self.0)()
    }

    pub fn kid(self) -> &'static str {
        self.signer().kid()
    }

    /// The public key as an RSA JWK.
    pub fn jwk(self) -> Value {
        self.signer().jwk()
    }

    /// The public key's DER bytes (what an HS256 key-confusion attack would use as the secret).
    pub fn public_der(self) -> Vec<u8> {
        self.key_pair().public_key().as_ref().to_vec()
    }

    /// The private key, for crafting tokens in other algorithms.
    pub fn key_pair(self) -> aws_lc_rs::rsa::KeyPair {
        aws_lc_rs::rsa::KeyPair::from_pkcs8(&self.signer().pkcs8_der().unwrap()).unwrap()
    }

    pub fn sign(self, claims: &Value) -> String {
        self.signer().sign_claims(claims).unwrap()
    }

    /// Signs with this key but names another `kid` in the header.
    pub fn sign_as(self, kid: &str, claims: &Value) -> String {
        self.signer().sign_claims_as(kid, claims).unwrap()
    }
}

pub fn jwks(keys: &[TestKey]) -> Jwks {
    let signers: Vec<&NotificationSigner> = keys.iter().map(|key| key.signer()).collect();
    serde_json::from_value(signer::jwks(&signers)).unwrap()
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims Graph would send: valid for an hour.
pub fn claims() -> Value {
    NotificationSigner::claims(ISSUER, APP_ID, TENANT, signer::TOKEN_LIFETIME)
}

pub fn claims_with(key: &str, value: Value) -> Value {
    let mut claims = claims();
    claims[key] = value;
    claims
}

pub fn claims_without(key: &str) -> Value {
    let mut claims = claims();
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// A key source whose set can change and which counts its fetches.
#[derive(Default)]
pub struct TestKeySource {
    pub keys: Mutex<Vec<TestKey>>,
    pub fetches: AtomicUsize,
    pub failing: std::sync::atomic::AtomicBool,
    /// Held inside `fetch`, so concurrent callers pile up while one fetch runs.
    pub delay: Duration,
}

impl TestKeySource {
    pub fn new(keys: &[TestKey]) -> Arc<Self> {
        Arc::new(Self {
            keys: Mutex::new(keys.to_vec()),
            ..Self::default()
        })
    }

    pub fn slow(keys: &[TestKey], delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            keys: Mutex::new(keys.to_vec()),
            delay,
            ..Self::default()
        })
    }

    pub fn set(&self, keys: &[TestKey]) {
        *self.keys.lock().unwrap() = keys.to_vec();
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl KeySource for TestKeySource {
    async fn fetch(&self) -> Result<Jwks, NotifyError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(NotifyError::KeyFetch {
                url: "test://keys".into(),
                reason: "down".into(),
            });
        }
        let keys = self.keys.lock().unwrap().clone();
        Ok(jwks(&keys))
    }
}

pub fn config() -> NotifyConfig {
    NotifyConfig::new(APP_ID)
}

pub fn endpoint(config: NotifyConfig, source: &Arc<TestKeySource>) -> (NotifyEndpoint, EventReceiver) {
    let source: Arc<dyn KeySource> = source.clone();
    NotifyEndpoint::with_key_source(config, source).unwrap()
}

/// The docs' transfer-accepted notification body (call `341a0500-d4bf-4224-8b19-1581168d328b`).
pub fn transfer_accepted() -> &'static str {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| graph_comms_testkit::fixtures::read("call-transfer.ex1.notify.transfer-accepted.json"))
}

pub fn post(token: Option<&str>, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(PATH);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(body.into()).unwrap()
}

pub fn json_post(token: &str, body: impl Into<Body>) -> Request<Body> {
    post(Some(token), Some("application/json"), body)
}

/// Sends one request through the router, without a socket.
pub async fn send(endpoint: &NotifyEndpoint, request: Request<Body>) -> (StatusCode, Response<Body>) {
    let response = tokio::time::timeout(Duration::from_secs(20), endpoint.router_at(PATH).oneshot(request))
        .await
        .expect("the endpoint answered in time")
        .unwrap();
    (response.status(), response)
}

pub async fn body_text(response: Response<Body>) -> String {
    use http_body_util::BodyExt;
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}
