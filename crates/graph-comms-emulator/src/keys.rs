//! RS256 signing keys, the JWKS they publish, and notification JWTs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::EmulatorError;

/// One RSA key with its id.
pub(crate) struct SigningKey {
    kid: String,
    pair: KeyPair,
    n: String,
    e: String,
}

impl SigningKey {
    pub(crate) fn generate() -> Result<Self, EmulatorError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| EmulatorError::Key("RSA key generation failed"))?;
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Ok(Self {
            kid: uuid::Uuid::new_v4().simple().to_string(),
            n: URL_SAFE_NO_PAD.encode(&parts.n),
            e: URL_SAFE_NO_PAD.encode(&parts.e),
            pair,
        })
    }

    pub(crate) fn jwk(&self) -> Value {
        json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e })
    }

    /// Signs `claims` as a compact RS256 JWS with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> Result<String, EmulatorError> {
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": self.kid });
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
}

struct CachedToken {
    token: String,
    exp: u64,
}

/// The current key, retired keys still published until their grace ends, and
/// the notification tokens minted per (app, tenant).
pub(crate) struct KeyRing {
    current: Arc<SigningKey>,
    /// Retired keys with the emulator time at which they leave the JWKS.
    retired: Vec<(Arc<SigningKey>, Duration)>,
    tokens: HashMap<(String, String), CachedToken>,
}

impl KeyRing {
    pub(crate) fn new() -> Result<Self, EmulatorError> {
        Ok(Self {
            current: Arc::new(SigningKey::generate()?),
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
    pub(crate) fn rotate(&mut self, fresh: SigningKey, until: Duration) {
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
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let lifetime = lifetime.as_secs().max(1);
        let key = (app_id.to_owned(), tenant_id.to_owned());
        if let Some(cached) = self.tokens.get(&key)
            && cached.exp > now + lifetime / 4
        {
            return Ok(cached.token.clone());
        }
        let exp = now + lifetime;
        let claims = json!({
            "iss": issuer, "aud": app_id, "tid": tenant_id,
            "iat": now, "nbf": now, "exp": exp,
        });
        let token = self.current.sign(&claims)?;
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
