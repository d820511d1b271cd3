//! Test keys, tokens, key sources and requests shared by the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::KeyPair as _;
use axum::body::Body;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_comms_notify::{EventReceiver, Jwks, KeySource, NotifyConfig, NotifyEndpoint, NotifyError};
use http::{Request, Response, StatusCode};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tower::ServiceExt;

pub const APP_ID: &str = "0efc74f7-41c3-47a4-8775-7259bfef4241";
pub const TENANT: &str = "1fdd12d0-4620-44ed-baec-459b611f84b2";
pub const ISSUER: &str = "https://api.botframework.com";
pub const PATH: &str = "/api/calls";

pub const KEY_A: &[u8] = include_bytes!("../keys/rsa_a.der");
pub const KEY_B: &[u8] = include_bytes!("../keys/rsa_b.der");

/// A PKCS#1 private key and the `kid` it signs with.
#[derive(Clone, Copy)]
pub struct TestKey {
    pub der: &'static [u8],
    pub kid: &'static str,
}

pub const A: TestKey = TestKey {
    der: KEY_A,
    kid: "key-a",
};
pub const B: TestKey = TestKey {
    der: KEY_B,
    kid: "key-b",
};

impl TestKey {
    /// The public key as an RSA JWK.
    pub fn jwk(&self) -> Value {
        let pair = aws_lc_rs::rsa::KeyPair::from_der(self.der).unwrap();
        let public = pair.public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The public key's DER bytes (what an HS256 key-confusion attack would use as the secret).
    pub fn public_der(&self) -> Vec<u8> {
        let pair = aws_lc_rs::rsa::KeyPair::from_der(self.der).unwrap();
        pair.public_key().as_ref().to_vec()
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    /// Signs with this key but names another `kid` in the header.
    pub fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(self.der)).unwrap()
    }
}

pub fn jwks(keys: &[TestKey]) -> Jwks {
    serde_json::from_value(json!({ "keys": keys.iter().map(TestKey::jwk).collect::<Vec<_>>() })).unwrap()
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Claims Graph would send: valid for an hour.
pub fn claims() -> Value {
    let now = now();
    json!({ "aud": APP_ID, "iss": ISSUER, "tid": TENANT, "iat": now, "nbf": now, "exp": now + 3600 })
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

pub const TRANSFER_ACCEPTED: &str = include_str!("../fixtures/call-transfer.ex1.notify.transfer-accepted.json");

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
