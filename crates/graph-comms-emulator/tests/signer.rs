//! `NotificationSigner` on its own: its tokens verify with an independent JWT
//! library against the JWKS it publishes, and each variant differs from a
//! valid token in exactly the way its name says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graph_comms_emulator::NotificationSigner;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

const ISSUER: &str = "https://api.botframework.com";
const APP: &str = "0efc74f7-41c3-47a4-8775-7259bfef4241";
const TENANT: &str = "1fdd12d0-4620-44ed-baec-459b611f84b2";
const HOUR: Duration = Duration::from_secs(3600);

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Verifies `token` as a bot would: RS256, the kid found in `jwks`, aud/iss checked, exp and nbf.
fn verify(jwks: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token)?.kid.expect("kid header");
    let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[APP]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    validation.validate_nbf = true;
    validation.leeway = 0;
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[test]
fn a_signed_token_verifies_against_the_published_jwks() {
    let signer = NotificationSigner::new().unwrap();
    let jwks = signer.jwks();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0], signer.jwk());
    assert_eq!(signer.jwk()["kid"], signer.kid());
    assert_eq!(signer.jwk()["alg"], "RS256");

    let token = signer.sign(ISSUER, APP, TENANT, HOUR).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(signer.kid()));
    let claims = verify(&jwks, &token).unwrap();
    assert_eq!(claims["tid"], TENANT);
    let exp = claims["exp"].as_u64().unwrap();
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 3600);
    assert!(iat.abs_diff(now()) <= 5, "issued now");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(
        NotificationSigner::claims(ISSUER, APP, TENANT, HOUR)
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        claims.as_object().unwrap().keys().collect::<Vec<_>>(),
        "sign uses the claims Graph sends"
    );
}

#[test]
fn the_variants_fail_verification_for_their_own_reason() {
    use jsonwebtoken::errors::ErrorKind;
    let signer = NotificationSigner::new().unwrap();
    let other = NotificationSigner::new().unwrap();
    assert_ne!(signer.kid(), other.kid(), "each signer has its own kid");
    let jwks = signer.jwks();

    let expired = signer
        .sign_expired(ISSUER, APP, TENANT, Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        verify(&jwks, &expired).unwrap_err().kind(),
        &ErrorKind::ExpiredSignature
    );
    let wrong_audience = signer.sign(ISSUER, "another-app", TENANT, HOUR).unwrap();
    assert_eq!(
        verify(&jwks, &wrong_audience).unwrap_err().kind(),
        &ErrorKind::InvalidAudience
    );
    let wrong_issuer = signer.sign("https://evil.example", APP, TENANT, HOUR).unwrap();
    assert_eq!(
        verify(&jwks, &wrong_issuer).unwrap_err().kind(),
        &ErrorKind::InvalidIssuer
    );
    // Another key claiming this signer's kid: the signature does not match.
    let forged = other
        .sign_claims_as(signer.kid(), &NotificationSigner::claims(ISSUER, APP, TENANT, HOUR))
        .unwrap();
    assert_eq!(verify(&jwks, &forged).unwrap_err().kind(), &ErrorKind::InvalidSignature);
    // Any claims, signed as they are.
    let custom = signer
        .sign_claims(&json!({ "iss": ISSUER, "aud": APP, "tid": "t", "nbf": now(), "exp": now() + 60, "x": 1 }))
        .unwrap();
    assert_eq!(verify(&jwks, &custom).unwrap()["x"], 1);
}

#[test]
fn the_pkcs8_key_is_the_signing_key() {
    use aws_lc_rs::signature::KeyPair as _;
    let signer = NotificationSigner::new().unwrap();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&signer.pkcs8_der().unwrap()).unwrap();
    let public = pair.public_key();
    let n = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        public.modulus().big_endian_without_leading_zero(),
    );
    assert_eq!(signer.jwk()["n"], n);
    assert!(!format!("{signer:?}").contains(&n[..16]), "Debug names the kid only");
}
