//! The token checks made before and besides the RS256 signature, callable one by one: the fuzz
//! targets in `fuzz/` drive these real code paths without a key, a runtime or a socket.
//!
//! Only with the `fuzzing` feature (off by default). Not a stable API.

use std::sync::Arc;

use graph_comms_model::TenantId;

use super::{Authenticator, bearer_token, screen_header, single_authorization, time_claim};
use crate::keys::{Jwks, KeySource, KeyStore};
use crate::metrics::{Counters, RejectReason};
use crate::{NotifyConfig, NotifyError};

/// A refusal: the reason it is counted under and the detail that would be logged.
pub type Refusal = (RejectReason, String);

fn refusal(failure: super::AuthFailure) -> Refusal {
    (failure.reason, failure.detail)
}

/// A key source with no keys; the checks here never ask for one.
struct NoKeys;

#[async_trait::async_trait]
impl KeySource for NoKeys {
    async fn fetch(&self) -> Result<Jwks, NotifyError> {
        Ok(Jwks { keys: Vec::new() })
    }
}

/// The endpoint's token checks for one configuration.
pub struct TokenChecks {
    auth: Authenticator,
}

impl TokenChecks {
    /// The checks the endpoint makes with `config` (its issuers, app id, tenants and clock skew).
    pub fn new(config: &NotifyConfig) -> Self {
        let counters = Arc::new(Counters::default());
        let keys = Arc::new(KeyStore::new(
            Arc::new(NoKeys),
            config.key_refresh_interval,
            config.min_key_refetch_interval,
            Arc::clone(&counters),
        ));
        Self {
            auth: Authenticator::new(config, keys, counters),
        }
    }

    /// The bearer token of a request with these headers: the one `Authorization` header, its
    /// scheme and the token's length and alphabet.
    pub fn bearer_token(headers: &http::HeaderMap) -> Result<&str, Refusal> {
        single_authorization(headers).and_then(bearer_token).map_err(refusal)
    }

    /// The protected header checks made before the signature (three parts, base64url JSON, no
    /// `crit`, `alg` RS256, a `kid`); the `kid`.
    pub fn header(token: &str) -> Result<String, Refusal> {
        screen_header(token).map_err(refusal)
    }

    /// The claim checks made on a token whose signature verified, at `now` (Unix seconds): the
    /// tenant and `exp` it is accepted for.
    pub fn claims(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<(TenantId, i64), Refusal> {
        self.auth
            .check_claims(claims, now)
            .map(|verdict| (verdict.tenant, verdict.exp))
            .map_err(refusal)
    }

    /// The `exp` check a cached token gets at `now`.
    pub fn exp(&self, exp: i64, now: i64) -> Result<(), Refusal> {
        self.auth.check_exp(exp, now).map_err(refusal)
    }

    /// A time claim (`exp`, `nbf`, `iat`) read as a NumericDate: absent is `None`.
    pub fn time_claim(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Result<Option<i64>, Refusal> {
        time_claim(claims, name).map_err(refusal)
    }
}
