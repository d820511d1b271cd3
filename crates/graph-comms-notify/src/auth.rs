//! Bearer token checks: RS256 signature, issuer, audience, tenant, lifetime.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_comms_model::{AppId, TenantId};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize as _;

use crate::NotifyConfig;
use crate::clip::clip;
use crate::keys::KeyStore;
use crate::metrics::{Counters, RejectReason};

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

/// Longest `Authorization` value read; Graph's tokens are a few KiB.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most verified tokens remembered at once.
pub(crate) const TOKEN_CACHE_ENTRIES: usize = 1024;

/// A refused token: the counter it goes to and the detail for the log.
#[derive(Debug)]
pub(crate) struct AuthFailure {
    pub(crate) reason: RejectReason,
    pub(crate) detail: String,
}

fn fail<T>(reason: RejectReason, detail: impl Into<String>) -> Result<T, AuthFailure> {
    Err(AuthFailure {
        reason,
        detail: detail.into(),
    })
}

/// What a verified token grants, remembered until `exp`.
#[derive(Debug, Clone)]
struct Verdict {
    tenant: TenantId,
    exp: i64,
}

pub(crate) struct Authenticator {
    app_id: AppId,
    issuers: Vec<String>,
    allowed_tenants: Option<Vec<TenantId>>,
    skew_secs: i64,
    keys: Arc<KeyStore>,
    cache: Option<RwLock<HashMap<String, Verdict>>>,
    signature_only: Validation,
    counters: Arc<Counters>,
}

#[derive(serde::Deserialize)]
struct JoseHeader {
    alg: Option<String>,
    kid: Option<String>,
    /// Whether the header has a `crit` member, whatever its value (even `null` or `[]`).
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` for a member that is there, whatever it holds.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl Authenticator {
    pub(crate) fn new(config: &NotifyConfig, keys: Arc<KeyStore>, counters: Arc<Counters>) -> Self {
        // Signature and algorithm only; the claims are checked below so each failure has its own reason.
        let mut signature_only = Validation::new(Algorithm::RS256);
        signature_only.required_spec_claims.clear();
        signature_only.validate_exp = false;
        signature_only.validate_nbf = false;
        signature_only.validate_aud = false;
        Self {
            app_id: config.app_id.clone(),
            issuers: config.issuers.clone(),
            allowed_tenants: config.allowed_tenants.clone(),
            skew_secs: i64::try_from(config.clock_skew.as_secs()).unwrap_or(i64::MAX),
            keys,
            cache: config.token_cache.then(|| RwLock::new(HashMap::new())),
            signature_only,
            counters,
        }
    }

    /// The tenant of a request whose one `Authorization` header carries a valid token.
    pub(crate) async fn authenticate(&self, headers: &http::HeaderMap) -> Result<TenantId, AuthFailure> {
        let value = single_authorization(headers)?;
        let token = bearer_token(value)?;
        let now = unix_now();
        if let Some(verdict) = self.cached(token) {
            Counters::bump(&self.counters.token_cache_hits, 1);
            self.check_exp(verdict.exp, now)?;
            return Ok(verdict.tenant);
        }
        let verdict = self.verify(token, now).await?;
        if let Some(cache) = &self.cache {
            let mut cache = cache.write().unwrap_or_else(PoisonError::into_inner);
            insert_bounded(&mut cache, token, verdict.clone(), now);
        }
        Ok(verdict.tenant)
    }

    fn cached(&self, token: &str) -> Option<Verdict> {
        let cache = self.cache.as_ref()?.read().unwrap_or_else(PoisonError::into_inner);
        cache.get(token).cloned()
    }

    async fn verify(&self, token: &str, now: i64) -> Result<Verdict, AuthFailure> {
        let kid = screen_header(token)?;
        let Ok(key) = self.keys.key(&kid).await else {
            return fail(
                RejectReason::UnknownKey,
                format!("no signing key with kid {}", clip(&kid)),
            );
        };
        Counters::bump(&self.counters.token_verifications, 1);
        let claims =
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &self.signature_only)
            {
                Ok(data) => data.claims,
                Err(err) => {
                    use jsonwebtoken::errors::ErrorKind;
                    let reason = match err.kind() {
                        ErrorKind::InvalidSignature => RejectReason::BadSignature,
                        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => RejectReason::BadAlgorithm,
                        _ => RejectReason::BadToken,
                    };
                    return fail(reason, format!("token rejected by the verifier: {err}"));
                }
            };
        self.check_claims(&claims, now)
    }

    fn check_claims(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<Verdict, AuthFailure> {
        let iss = claims.get("iss").and_then(serde_json::Value::as_str);
        if !iss.is_some_and(|iss| self.issuers.iter().any(|allowed| allowed == iss)) {
            return fail(
                RejectReason::WrongIssuer,
                format!(
                    "iss {} is not an accepted issuer",
                    iss.map_or_else(|| "none".into(), clip)
                ),
            );
        }
        let audience_ok = match claims.get("aud") {
            Some(serde_json::Value::String(aud)) => AppId::from(aud.as_str()) == self.app_id,
            Some(serde_json::Value::Array(auds)) => auds
                .iter()
                .filter_map(serde_json::Value::as_str)
                .any(|aud| AppId::from(aud) == self.app_id),
            _ => false,
        };
        if !audience_ok {
            return fail(
                RejectReason::WrongAudience,
                format!(
                    "aud {} is not the app id",
                    claims
                        .get("aud")
                        .map_or_else(|| "none".into(), |aud| clip(&aud.to_string()))
                ),
            );
        }
        let Some(exp) = time_claim(claims, "exp")? else {
            return fail(RejectReason::BadToken, "the token has no exp");
        };
        self.check_exp(exp, now)?;
        if let Some(nbf) = time_claim(claims, "nbf")?
            && now.saturating_add(self.skew_secs) < nbf
        {
            return fail(RejectReason::NotYetValid, format!("nbf {nbf} is after now {now}"));
        }
        // Not otherwise used, but a malformed one is refused like exp and nbf.
        time_claim(claims, "iat")?;
        let tenant = match claims.get("tid").and_then(serde_json::Value::as_str) {
            Some(tid) if !tid.trim().is_empty() => TenantId::from(tid),
            _ => return fail(RejectReason::MissingTenant, "the token has no tid"),
        };
        if let Some(allowed) = &self.allowed_tenants
            && !allowed.contains(&tenant)
        {
            return fail(
                RejectReason::TenantNotAllowed,
                format!("tenant {} is not allowed", clip(tenant.as_str())),
            );
        }
        Ok(Verdict { tenant, exp })
    }

    fn check_exp(&self, exp: i64, now: i64) -> Result<(), AuthFailure> {
        if now > exp.saturating_add(self.skew_secs) {
            return fail(RejectReason::Expired, format!("exp {exp} is before now {now}"));
        }
        Ok(())
    }
}

/// The request's only `Authorization` header. Several are refused whatever they hold: a proxy in
/// front may check another one than the first, which this endpoint would read.
fn single_authorization(headers: &http::HeaderMap) -> Result<&http::HeaderValue, AuthFailure> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    match (values.next(), values.next()) {
        (None, _) => fail(RejectReason::MissingToken, "no Authorization header"),
        (Some(value), None) => Ok(value),
        (Some(_), Some(_)) => fail(
            RejectReason::DuplicateAuthorization,
            format!("{} Authorization headers", 2 + values.count()),
        ),
    }
}

fn bearer_token(value: &http::HeaderValue) -> Result<&str, AuthFailure> {
    let Ok(value) = value.to_str() else {
        return fail(RejectReason::BadToken, "the Authorization header is not ASCII");
    };
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return fail(RejectReason::BadToken, "the Authorization header is not a Bearer token"),
    };
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return fail(RejectReason::BadToken, format!("bearer token of {} bytes", token.len()));
    }
    // A compact JWS is base64url parts and dots: no spaces, commas or a second scheme.
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return fail(
            RejectReason::BadToken,
            "the bearer token has characters outside base64url and '.'",
        );
    }
    Ok(token)
}

/// The header checks made before the signature (`crit`, `alg`, `kid`); returns the `kid`.
fn screen_header(token: &str) -> Result<String, AuthFailure> {
    let header = decode_header(token)?;
    if header.crit {
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood, and none are.
        return fail(RejectReason::BadToken, "the token header has a crit member");
    }
    match header.alg.as_deref() {
        Some("RS256") => {}
        Some(other) => return fail(RejectReason::BadAlgorithm, format!("alg {} is not RS256", clip(other))),
        None => return fail(RejectReason::BadAlgorithm, "the token header has no alg"),
    }
    let Some(kid) = header.kid else {
        return fail(RejectReason::UnknownKey, "the token header has no kid");
    };
    Ok(kid)
}

fn decode_header(token: &str) -> Result<JoseHeader, AuthFailure> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return fail(RejectReason::BadToken, "the token is not three dot-separated parts");
    };
    let Ok(json) = URL_SAFE_NO_PAD.decode(header) else {
        return fail(RejectReason::BadToken, "the token header is not base64url");
    };
    serde_json::from_slice(&json).or_else(|e| {
        fail(
            RejectReason::BadToken,
            format!("the token header is not a JSON object: {e}"),
        )
    })
}

/// A time claim: absent is `None`; present, it must be a NumericDate (a string, a boolean, `null`,
/// an object or an out-of-range number is refused rather than ignored).
fn time_claim(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Result<Option<i64>, AuthFailure> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    match numeric_date(Some(value)) {
        Some(date) => Ok(Some(date)),
        None => fail(
            RejectReason::BadToken,
            format!("the token's {name} is not a NumericDate (a {})", json_kind(value)),
        ),
    }
}

/// The JSON type of `value`, for refusal details that must not echo the value.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number out of range",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// A JWT NumericDate (seconds, possibly fractional), rounded down.
fn numeric_date(value: Option<&serde_json::Value>) -> Option<i64> {
    let value = value?;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e15)
            .map(|f| f.floor() as i64)
    })
}

fn unix_now() -> i64 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Inserts, first dropping expired entries and then the soonest-to-expire ones when full.
fn insert_bounded(cache: &mut HashMap<String, Verdict>, token: &str, verdict: Verdict, now: i64) {
    if cache.len() >= TOKEN_CACHE_ENTRIES && !cache.contains_key(token) {
        cache.retain(|_, v| v.exp >= now);
        while cache.len() >= TOKEN_CACHE_ENTRIES {
            let Some(victim) = cache.iter().min_by_key(|(_, v)| v.exp).map(|(k, _)| k.clone()) else {
                break;
            };
            cache.remove(&victim);
        }
    }
    cache.insert(token.to_owned(), verdict);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_bounded_and_evicts_the_soonest_to_expire() {
        let mut cache = HashMap::new();
        let tenant = TenantId::from("t");
        for i in 0..TOKEN_CACHE_ENTRIES + 10 {
            let exp = 1_000 + i64::try_from(i).unwrap_or(0);
            insert_bounded(
                &mut cache,
                &format!("token-{i}"),
                Verdict {
                    tenant: tenant.clone(),
                    exp,
                },
                0,
            );
        }
        assert_eq!(cache.len(), TOKEN_CACHE_ENTRIES);
        assert!(!cache.contains_key("token-0"), "the soonest-to-expire entry stays");
        assert!(cache.contains_key(&format!("token-{}", TOKEN_CACHE_ENTRIES + 9)));
    }

    #[test]
    fn bearer_values_that_are_not_tokens_are_refused() {
        for bad in ["", "Bearer", "Bearer ", "Basic abc", "bearer"] {
            let value = http::HeaderValue::from_static(bad);
            assert!(bearer_token(&value).is_err(), "{bad:?} accepted");
        }
        let ok = http::HeaderValue::from_static("bearer a.b.c");
        assert_eq!(bearer_token(&ok).ok(), Some("a.b.c"));
        let ok = http::HeaderValue::from_static("Bearer  eyJ-_0.e30.A_b-9 ");
        assert_eq!(bearer_token(&ok).ok(), Some("eyJ-_0.e30.A_b-9"));
        for bad in [
            "Bearer a.b.c, Bearer d.e.f",
            "Bearer a.b.c d",
            "Bearer a.b.c=",
            "Bearer a+b.c/d.e",
        ] {
            let value = http::HeaderValue::from_static(bad);
            assert!(bearer_token(&value).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn numeric_dates_accept_integers_and_fractions() {
        assert_eq!(numeric_date(Some(&serde_json::json!(10))), Some(10));
        assert_eq!(numeric_date(Some(&serde_json::json!(10.9))), Some(10));
        assert_eq!(numeric_date(Some(&serde_json::json!("10"))), None);
        assert_eq!(numeric_date(Some(&serde_json::json!(1e300))), None);
    }

    #[test]
    fn time_claims_that_are_present_must_be_numeric() {
        let claims = |value: serde_json::Value| match serde_json::json!({ "nbf": value }) {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        assert!(matches!(time_claim(&claims(serde_json::json!(5)), "nbf"), Ok(Some(5))));
        assert!(matches!(time_claim(&claims(serde_json::json!(5)), "exp"), Ok(None)));
        for bad in [
            serde_json::json!("5"),
            serde_json::json!(true),
            serde_json::json!(null),
            serde_json::json!({"t": 5}),
            serde_json::json!([5]),
            serde_json::json!(1e300),
        ] {
            let refused = time_claim(&claims(bad.clone()), "nbf");
            assert!(
                matches!(
                    &refused,
                    Err(AuthFailure {
                        reason: RejectReason::BadToken,
                        ..
                    })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn a_crit_member_is_seen_whatever_it_holds() {
        let header = |json: &str| decode_header(&format!("{}.e30.e30", URL_SAFE_NO_PAD.encode(json)));
        assert!(header(r#"{"alg":"RS256","kid":"k"}"#).is_ok_and(|h| !h.crit));
        for crit in ["null", "[]", r#"["exp"]"#, r#""b64""#, "{}"] {
            let json = format!(r#"{{"alg":"RS256","kid":"k","crit":{crit}}}"#);
            assert!(header(&json).is_ok_and(|h| h.crit), "{json}");
        }
    }
}
