//! An RS256 key made for the run: signs the bearer tokens the load generators send,
//! and is handed to the notification endpoint as a static key set.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_comms_notify::{Jwks, KeySource, NotifyError};
use serde_json::json;

/// The `kid` of the bench key.
pub(crate) const KID: &str = "bench-key";

/// A freshly generated RSA-2048 key.
pub(crate) struct BenchKey {
    pair: KeyPair,
    jwk: serde_json::Value,
}

impl BenchKey {
    /// Generates the key.
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
        let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
            "n": URL_SAFE_NO_PAD.encode(&parts.n), "e": URL_SAFE_NO_PAD.encode(&parts.e),
        });
        Ok(Self { pair, jwk })
    }

    /// The public key as a JWKS.
    pub(crate) fn jwks(&self) -> anyhow::Result<Jwks> {
        serde_json::from_value(json!({ "keys": [self.jwk] })).context("bench JWKS")
    }

    /// A notification token as Graph sends it: iss, aud = app id, tid, valid for `lifetime_secs`.
    pub(crate) fn sign(
        &self,
        issuer: &str,
        app_id: &str,
        tenant_id: &str,
        lifetime_secs: u64,
    ) -> anyhow::Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": KID });
        let claims = json!({
            "iss": issuer, "aud": app_id, "tid": tenant_id,
            "iat": now, "nbf": now, "exp": now + lifetime_secs,
        });
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
            .map_err(|_| anyhow!("RS256 signing failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A key source that always answers with the same keys (plus, optionally, those of another source).
pub(crate) struct StaticKeys {
    /// The fixed keys.
    pub(crate) keys: Jwks,
    /// Keys fetched on each call and merged in (the emulator's, in the full server).
    pub(crate) also: Option<Box<dyn KeySource>>,
}

#[async_trait::async_trait]
impl KeySource for StaticKeys {
    async fn fetch(&self) -> Result<Jwks, NotifyError> {
        let mut keys = self.keys.clone();
        if let Some(other) = &self.also {
            keys.keys.extend(other.fetch().await?.keys);
        }
        Ok(keys)
    }
}
