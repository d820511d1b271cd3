//! RS256 signing keys, the JWKS they publish, and notification JWTs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::{AsDer as _, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::EmulatorError;

/// Signs notification tokens as Graph does: compact RS256 JWTs whose header
/// names the key (`kid`) and whose claims are `iss`, `aud` (the bot's app id),
/// `tid`, `iat`, `nbf` and `exp`. The emulator signs the tokens on the
/// notifications it POSTs with one of these; tests use one directly to make
/// valid Graph-like tokens and the JWKS that verifies them.
///
/// The variants tests need are made from these parts: another key is another
/// signer; a wrong audience, issuer or tenant is [`sign`](Self::sign) with
/// that value; an expired token is [`sign_expired`](Self::sign_expired); a
/// forged `kid` is [`sign_claims_as`](Self::sign_claims_as); any other claims
/// go through [`sign_claims`](Self::sign_claims) (start from
/// [`claims`](Self::claims)). Tokens in other algorithms can be crafted from
/// [`pkcs8_der`](Self::pkcs8_der).
///
/// ```
/// use std::time::Duration;
/// use graph_comms_emulator::NotificationSigner;
///
/// # fn main() -> Result<(), graph_comms_emulator::EmulatorError> {
/// let signer = NotificationSigner::new()?;
/// let token = signer.sign("https://api.botframework.com", "app-id", "tenant-id", Duration::from_secs(3600))?;
/// assert_eq!(token.split('.').count(), 3);
/// assert_eq!(signer.jwks()["keys"][0]["kid"], signer.kid());
/// # Ok(())
/// # }
/// ```
pub struct NotificationSigner {
    kid: String,
    pair: KeyPair,
    n: String,
    e: String,
}

impl std::fmt::Debug for NotificationSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key is never printed.
        f.debug_struct("NotificationSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl NotificationSigner {
    /// A fresh RSA-2048 key with a random `kid`. Generating one takes tens of
    /// milliseconds or more; tests that sign often share one.
    pub fn new() -> Result<Self, EmulatorError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| EmulatorError::Key("RSA key generation failed"))?;
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Ok(Self {
            kid: uuid::Uuid::new_v4().simple().to_string(),
            n: URL_SAFE_NO_PAD.encode(&parts.n),
            e: URL_SAFE_NO_PAD.encode(&parts.e),
            pair,
        })
    }

    /// The key id the tokens name in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (`kty` RSA, `use` sig, `alg` RS256, `kid`, `n`, `e`).
    pub fn jwk(&self) -> Value {
        json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e })
    }

    /// A JWKS holding only this key, as a Graph JWKS endpoint answers.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// The claims Graph puts in a notification token, valid from now for `lifetime`.
    pub fn claims(issuer: &str, app_id: &str, tenant_id: &str, lifetime: Duration) -> Value {
        claims_at(issuer, app_id, tenant_id, unix_now(), lifetime.as_secs())
    }

    /// A valid notification token for the bot `app_id` in `tenant_id`, issued
    /// now by `issuer` and valid for `lifetime`.
    pub fn sign(
        &self,
        issuer: &str,
        app_id: &str,
        tenant_id: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        self.sign_claims(&Self::claims(issuer, app_id, tenant_id, lifetime))
    }

    /// A token that was valid for an hour and expired `ago`.
    pub fn sign_expired(
        &self,
        issuer: &str,
        app_id: &str,
        tenant_id: &str,
        ago: Duration,
    ) -> Result<String, EmulatorError> {
        let exp = unix_now().saturating_sub(ago.as_secs());
        let issued = exp.saturating_sub(3600);
        self.sign_claims(&claims_at(issuer, app_id, tenant_id, issued, 3600))
    }

    /// Signs any `claims` as a compact RS256 JWS naming this key's `kid`.
    pub fn sign_claims(&self, claims: &Value) -> Result<String, EmulatorError> {
        self.sign_claims_as(&self.kid, claims)
    }

    /// Signs `claims` with this key but names `kid` in the header: a forgery
    /// claiming another key's id, or an id no JWKS publishes.
    pub fn sign_claims_as(&self, kid: &str, claims: &Value) -> Result<String, EmulatorError> {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| EmulatorError::Key("RS256 signing failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    /// The private key as PKCS#8 DER, for tests that craft tokens in other
    /// algorithms with the same key (PS256, or HS256 keyed with the public key).
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, EmulatorError> {
        let der: Pkcs8V1Der<'static> = self
            .pair
            .as_der()
            .map_err(|_| EmulatorError::Key("PKCS#8 encoding failed"))?;
        Ok(der.as_ref().to_vec())
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Graph's notification claims, issued at `now` (Unix seconds) for `lifetime_secs`.
fn claims_at(issuer: &str, app_id: &str, tenant_id: &str, now: u64, lifetime_secs: u64) -> Value {
    json!({
        "iss": issuer, "aud": app_id, "tid": tenant_id,
        "iat": now, "nbf": now, "exp": now + lifetime_secs,
    })
}

struct CachedToken {
    token: String,
    exp: u64,
}

/// The current key, retired keys still published until their grace ends, and
/// the notification tokens minted per (app, tenant).
pub(crate) struct KeyRing {
    current: Arc<NotificationSigner>,
    /// Retired keys with the emulator time at which they leave the JWKS.
    retired: Vec<(Arc<NotificationSigner>, Duration)>,
    tokens: HashMap<(String, String), CachedToken>,
}

impl KeyRing {
    pub(crate) fn new() -> Result<Self, EmulatorError> {
        Ok(Self {
            current: Arc::new(NotificationSigner::new()?),
            retired: Vec::new(),
            tokens: HashMap::new(),
        })
    }

    /// Keys published at emulator time `now`.
    pub(crate) fn jwks(&mut self, now: Duration) -> Value {
        self.retired.retain(|(_, until)| *until > now);
        let keys: Vec<Value> = std::iter::once(&self.current)
            .chain(self.retired.iter().map(|(k, _)| k))
            .map(|k| k.jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// Signs with a new key from now on; the old one stays published until `until`.
    pub(crate) fn rotate(&mut self, fresh: NotificationSigner, until: Duration) {
        let old = std::mem::replace(&mut self.current, Arc::new(fresh));
        self.retired.push((old, until));
        self.tokens.clear();
    }

    /// The notification token for (app, tenant), reused until a quarter of its lifetime is left.
    pub(crate) fn notification_token(
        &mut self,
        issuer: &str,
        app_id: &str,
        tenant_id: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        let now = unix_now();
        let lifetime = lifetime.as_secs().max(1);
        let key = (app_id.to_owned(), tenant_id.to_owned());
        if let Some(cached) = self.tokens.get(&key)
            && cached.exp > now + lifetime / 4
        {
            return Ok(cached.token.clone());
        }
        let exp = now + lifetime;
        let token = self
            .current
            .sign_claims(&claims_at(issuer, app_id, tenant_id, now, lifetime))?;
        self.tokens.insert(
            key,
            CachedToken {
                token: token.clone(),
                exp,
            },
        );
        Ok(token)
    }
}
