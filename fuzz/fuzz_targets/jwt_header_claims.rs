//! The bearer-token checks the notification endpoint makes before and besides
//! the RS256 signature, on the real code paths exposed by
//! `graph_comms_notify::fuzzing` (feature `fuzzing`): the one `Authorization`
//! header, the `Bearer` scheme and token alphabet, the protected header (`crit`,
//! `alg`, `kid`) and the claims (`iss`, `aud`, `exp`/`nbf`/`iat` as NumericDates
//! with the clock skew, `tid`). Nothing may panic, and what passes must satisfy
//! what docs/security.md says a request must carry.
//!
//! The first byte picks the input's shape:
//! - `0`: the rest is one `Authorization` value; a token that passes has its
//!   second part decoded as the claims (as the verifier would after the signature);
//! - `1`: the rest is the claims JSON itself;
//! - `2`: the rest is several `Authorization` values, one per line.
//!
//! The second byte picks the clock (`now`) relative to the claims' own times,
//! so the boundaries of the skew are reached.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_comms_model::AppId;
use graph_comms_notify::fuzzing::TokenChecks;
use graph_comms_notify::{NotifyConfig, RejectReason};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The `aud` of the published token-claims fixture, so its seeds pass.
const APP_ID: &str = "0efc74f7-41c3-47a4-8775-7259bfef4241";
const SKEW: i64 = 60;
const MAX_TOKEN_BYTES: usize = 16 * 1024;

static CONFIG: LazyLock<NotifyConfig> = LazyLock::new(|| NotifyConfig::new(APP_ID));
static CHECKS: LazyLock<TokenChecks> = LazyLock::new(|| TokenChecks::new(&CONFIG));

fn time(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    TokenChecks::time_claim(claims, name).ok().flatten()
}

/// A clock near one of the claims' times, or an extreme.
fn clock(selector: u8, claims: &Map<String, Value>) -> i64 {
    let exp = time(claims, "exp").unwrap_or(0);
    let nbf = time(claims, "nbf").unwrap_or(0);
    let delta = i64::from(selector >> 4) - 8;
    match selector & 0x0f {
        0 => 1_796_169_600, // 2026-12-02
        1 => exp.saturating_add(SKEW).saturating_add(delta),
        2 => nbf.saturating_sub(SKEW).saturating_add(delta),
        3 => time(claims, "iat").unwrap_or(0).saturating_add(delta),
        4 => i64::MIN.saturating_add(i64::from(selector >> 4)),
        5 => i64::MAX.saturating_sub(i64::from(selector >> 4)),
        _ => exp.saturating_sub(i64::from(selector)),
    }
}

fn check_claims(claims: &Map<String, Value>, now: i64) {
    let verdict = CHECKS.claims(claims, now);
    // The same claims at the same time always get the same answer.
    assert_eq!(format!("{:?}", CHECKS.claims(claims, now)), format!("{verdict:?}"));
    match verdict {
        Ok((tenant, exp)) => {
            let iss = claims.get("iss").and_then(Value::as_str);
            assert!(iss.is_some_and(|iss| CONFIG.issuers.iter().any(|i| i == iss)));
            let app = AppId::from(APP_ID);
            let aud_ok = match claims.get("aud") {
                Some(Value::String(aud)) => AppId::from(aud.as_str()) == app,
                Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(|a| AppId::from(a) == app),
                _ => false,
            };
            assert!(aud_ok, "accepted with aud {:?}", claims.get("aud"));
            assert_eq!(time(claims, "exp"), Some(exp));
            assert!(
                now <= exp.saturating_add(SKEW),
                "accepted expired: exp {exp}, now {now}"
            );
            if let Some(nbf) = time(claims, "nbf") {
                assert!(now.saturating_add(SKEW) >= nbf, "accepted early: nbf {nbf}, now {now}");
            }
            for name in ["exp", "nbf", "iat"] {
                assert!(
                    TokenChecks::time_claim(claims, name).is_ok(),
                    "{name} malformed yet accepted"
                );
            }
            assert!(!tenant.as_str().trim().is_empty());
            assert_eq!(claims.get("tid").and_then(Value::as_str), Some(tenant.as_str()));
            // A cached verdict is checked with the same exp rule.
            assert!(CHECKS.exp(exp, now).is_ok());
        }
        Err((reason, detail)) => {
            assert!(!detail.is_empty());
            match reason {
                RejectReason::Expired => {
                    let exp = time(claims, "exp").expect("expired names an exp");
                    assert!(now > exp.saturating_add(SKEW));
                    assert!(CHECKS.exp(exp, now).is_err());
                }
                RejectReason::NotYetValid => {
                    let nbf = time(claims, "nbf").expect("not yet valid names an nbf");
                    assert!(now.saturating_add(SKEW) < nbf);
                }
                RejectReason::WrongIssuer
                | RejectReason::WrongAudience
                | RejectReason::BadToken
                | RejectReason::MissingTenant => {}
                other => panic!("the claim checks refused with {other:?}: {detail}"),
            }
        }
    }
}

fn check_token(token: &str, selector: u8) {
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    );
    match TokenChecks::header(token) {
        Ok(kid) => {
            // Only a three-part token whose header is RS256 with a kid and no crit passes.
            let mut parts = token.split('.');
            let header = parts.next().expect("a header part");
            assert_eq!(token.split('.').count(), 3);
            let json = URL_SAFE_NO_PAD.decode(header).expect("base64url");
            // A member the checks skip may hold what a `Value` refuses (a lone surrogate
            // escape, valid JSON text): then only the members the checks read are read.
            if let Ok(header) = serde_json::from_slice::<Map<String, Value>>(&json) {
                assert_eq!(header.get("alg").and_then(Value::as_str), Some("RS256"));
                assert_eq!(header.get("kid").and_then(Value::as_str), Some(kid.as_str()));
                assert!(!header.contains_key("crit"));
            } else {
                #[derive(serde::Deserialize)]
                struct Read {
                    alg: Option<String>,
                    kid: Option<String>,
                }
                let header: Read = serde_json::from_slice(&json).expect("a JSON object");
                assert_eq!(header.alg.as_deref(), Some("RS256"));
                assert_eq!(header.kid, Some(kid));
            }
        }
        Err((reason, detail)) => {
            assert!(!detail.is_empty());
            assert!(
                matches!(
                    reason,
                    RejectReason::BadToken | RejectReason::BadAlgorithm | RejectReason::UnknownKey
                ),
                "the header checks refused with {reason:?}: {detail}"
            );
            // A refusal detail never carries the token itself (values are clipped to 64 characters).
            assert!(token.len() < 64 || !detail.contains(token), "{detail}");
        }
    }
    // The claims, as the verifier would hand them over once the signature checked out.
    if let Some(claims) = token.split('.').nth(1)
        && let Ok(json) = URL_SAFE_NO_PAD.decode(claims)
        && let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(&json)
    {
        check_claims(&claims, clock(selector, &claims));
    }
}

fn headers(values: &[&[u8]]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for value in values {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            map.append(http::header::AUTHORIZATION, value);
        }
    }
    map
}

fuzz_target!(|data: &[u8]| {
    let [shape, selector, rest @ ..] = data else {
        return;
    };
    match shape % 3 {
        0 | 2 => {
            let values: Vec<&[u8]> = if shape % 3 == 0 {
                vec![rest]
            } else {
                rest.split(|b| *b == b'\n').collect()
            };
            let map = headers(&values);
            let count = map.get_all(http::header::AUTHORIZATION).iter().count();
            match TokenChecks::bearer_token(&map) {
                Ok(token) => {
                    assert_eq!(count, 1);
                    check_token(token, *selector);
                }
                Err((reason, _)) => match reason {
                    RejectReason::MissingToken => assert_eq!(count, 0),
                    RejectReason::DuplicateAuthorization => assert!(count >= 2),
                    RejectReason::BadToken => assert_eq!(count, 1),
                    other => panic!("the bearer checks refused with {other:?}"),
                },
            }
        }
        _ => {
            if let Ok(claims) = serde_json::from_slice::<Map<String, Value>>(rest) {
                check_claims(&claims, clock(*selector, &claims));
            }
        }
    }
});
