//! Token checks through the router without a socket: what is accepted, what is
//! refused and counted under which reason, key refetching and the token cache.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use graph_comms_model::{CallId, TenantId};
use graph_comms_notify::{NotifyEndpoint, RejectReason};
use http::StatusCode;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// Sends the transfer-accepted body with this token and expects a 401 counted under `reason`.
async fn assert_refused(endpoint: &NotifyEndpoint, token: &str, reason: RejectReason) {
    let before = endpoint.metrics().rejected(reason);
    let (status, response) = send(endpoint, json_post(token, transfer_accepted())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expected {reason}");
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        r#"Bearer error="invalid_token""#
    );
    let body = body_text(response).await;
    assert_eq!(body, "invalid or missing bearer token", "the body names no reason");
    assert_eq!(endpoint.metrics().rejected(reason), before + 1, "counted as {reason}");
}

#[tokio::test]
async fn a_valid_token_is_accepted_and_its_event_queued() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, mut events) = endpoint(config(), &source);
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let event = events.try_recv().expect("one event queued");
    assert_eq!(event.call_id, CallId::from("341a0500-d4bf-4224-8b19-1581168d328b"));
    assert_eq!(event.tenant_id, TenantId::from(TENANT));
    assert_eq!(event.sequence, 0);
    assert!(events.try_recv().is_none());
    let metrics = endpoint.metrics();
    assert_eq!((metrics.accepted_requests, metrics.queued_events), (1, 1));
    assert_eq!(metrics.rejected_total(), 0);
    assert!(endpoint.keys_loaded());
}

#[tokio::test]
async fn tokens_with_bad_claims_are_refused_with_their_reason() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.clock_skew = Duration::from_secs(60);
    let (endpoint, _events) = endpoint(config, &source);
    let now = now();
    let cases = [
        (claims_with("exp", json!(now - 120)), RejectReason::Expired),
        (claims_with("nbf", json!(now + 600)), RejectReason::NotYetValid),
        (
            claims_with("aud", json!("00000000-0000-0000-0000-000000000000")),
            RejectReason::WrongAudience,
        ),
        (
            claims_with("aud", json!(["other", "another"])),
            RejectReason::WrongAudience,
        ),
        (claims_without("aud"), RejectReason::WrongAudience),
        (
            claims_with("iss", json!("https://evil.example")),
            RejectReason::WrongIssuer,
        ),
        (claims_without("iss"), RejectReason::WrongIssuer),
        (claims_without("tid"), RejectReason::MissingTenant),
        (claims_with("tid", json!("")), RejectReason::MissingTenant),
        (claims_without("exp"), RejectReason::BadToken),
    ];
    for (claims, reason) in cases {
        assert_refused(&endpoint, &A.sign(&claims), reason).await;
    }
    // Within the skew is still fine.
    let (status, _) = send(
        &endpoint,
        json_post(&A.sign(&claims_with("exp", json!(now - 5))), transfer_accepted()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // An audience list that holds the app id (in another spelling) is fine too.
    let aud = json!(["x", APP_ID.to_uppercase()]);
    let (status, _) = send(
        &endpoint,
        json_post(&A.sign(&claims_with("aud", aud)), transfer_accepted()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn only_allowed_tenants_get_in_when_a_list_is_set() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.allowed_tenants = Some(vec![TenantId::from(TENANT)]);
    let (endpoint, _events) = endpoint(config, &source);
    let other = claims_with("tid", json!("9b0c2d4e-0000-4000-8000-000000000001"));
    assert_refused(&endpoint, &A.sign(&other), RejectReason::TenantNotAllowed).await;
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_refused() {
    let source = TestKeySource::new(&[A, B]);
    let (endpoint, _events) = endpoint(config(), &source);
    let claims = claims();

    // Signed by B but claiming A's kid.
    assert_refused(&endpoint, &B.sign_as(A.kid(), &claims), RejectReason::BadSignature).await;
    // A valid token with its payload swapped.
    let valid = A.sign(&claims);
    let parts: Vec<&str> = valid.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(claims_with("tid", json!("evil")).to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_refused(&endpoint, &tampered, RejectReason::BadSignature).await;

    // alg none, with and without a signature part.
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": A.kid()}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_refused(
        &endpoint,
        &format!("{none_header}.{payload}."),
        RejectReason::BadAlgorithm,
    )
    .await;
    assert_refused(
        &endpoint,
        &format!("{none_header}.{payload}.{}", parts[2]),
        RejectReason::BadAlgorithm,
    )
    .await;

    // HS256 keyed with the public key (the classic key-confusion attack), in two encodings.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(A.kid().into());
    for secret in [A.public_der(), A.jwk()["n"].as_str().unwrap().as_bytes().to_vec()] {
        let token = jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_refused(&endpoint, &token, RejectReason::BadAlgorithm).await;
    }
    // Other RSA flavours are refused as well: RS256 only. PS256, properly signed with A's own key.
    let ps_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "PS256", "typ": "JWT", "kid": A.kid()}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let pair = A.key_pair();
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        ps_input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    // The signature is good, so the refusal is the algorithm's.
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256, A.public_der())
        .verify(ps_input.as_bytes(), &signature)
        .unwrap();
    let token = format!("{ps_input}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_refused(&endpoint, &token, RejectReason::BadAlgorithm).await;

    // Garbage in the token or the header.
    for garbage in [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.!!!.!!!",
        "bnVsbA.e30.e30",
        "W10.e30.e30",
    ] {
        assert_refused(&endpoint, garbage, RejectReason::BadToken).await;
    }
    // A header without alg; a kid-less RS256 header; a known kid with a garbage payload (the signature is checked first).
    assert_refused(&endpoint, "e30.e30.e30", RejectReason::BadAlgorithm).await;
    assert_refused(&endpoint, "eyJhbGciOiJSUzI1NiJ9.e30.", RejectReason::UnknownKey).await;
    let garbage_payload = format!("{}.Zm9v.{}", parts[0], parts[2]);
    assert_refused(&endpoint, &garbage_payload, RejectReason::BadSignature).await;
    // A header without kid.
    let no_kid = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256"}).to_string());
    assert_refused(
        &endpoint,
        &format!("{no_kid}.{payload}.{}", parts[2]),
        RejectReason::UnknownKey,
    )
    .await;

    // Authorization headers that carry no bearer token.
    let cases = [
        (None, RejectReason::MissingToken),
        (Some("Basic dXNlcjpwYXNz"), RejectReason::BadToken),
        (Some(valid.as_str()), RejectReason::BadToken), // no scheme
        (Some("Bearer"), RejectReason::BadToken),
        (Some("Bearer    "), RejectReason::BadToken),
    ];
    for (header, reason) in cases {
        let mut request = http::Request::post(PATH).header("content-type", "application/json");
        if let Some(header) = header {
            request = request.header("authorization", header);
        }
        let before = endpoint.metrics().rejected(reason);
        let (status, response) = send(&endpoint, request.body(transfer_accepted().into()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(
            endpoint.metrics().rejected(reason),
            before + 1,
            "{header:?} counted as {reason}"
        );
    }
    assert_eq!(endpoint.metrics().accepted_requests, 0);
}

#[tokio::test]
async fn an_unknown_kid_triggers_a_refetch_that_can_find_it() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.min_key_refetch_interval = Duration::ZERO;
    let (endpoint, _events) = endpoint(config, &source);
    endpoint.refresh_keys().await.unwrap();
    assert_eq!(source.fetches(), 1);

    // B is not published yet: one refetch, then refused.
    assert_refused(&endpoint, &B.sign(&claims()), RejectReason::UnknownKey).await;
    assert_eq!(source.fetches(), 2);

    // Once published, the next unknown-kid refetch finds it.
    source.set(&[A, B]);
    let (status, _) = send(&endpoint, json_post(&B.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(source.fetches(), 3);
    // Known kids cause no fetch.
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(source.fetches(), 3);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_one_fetch_per_interval() {
    // The fetch is slow, so the flood arrives while it runs.
    let source = TestKeySource::slow(&[A], Duration::from_millis(100));
    let (endpoint, _events) = endpoint(config(), &source);
    let claims = claims();
    let requests = (0..100).map(|i| {
        let endpoint = endpoint.clone();
        let token = B.sign_as(&format!("unknown-{i}"), &claims);
        tokio::spawn(async move { send(&endpoint, json_post(&token, transfer_accepted())).await.0 })
    });
    for status in futures::future::join_all(requests).await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(source.fetches(), 1, "one fetch for the whole flood");
    assert_eq!(endpoint.metrics().rejected(RejectReason::UnknownKey), 100);
    assert_eq!(endpoint.metrics().key_fetches, 1);
    // The fetch that did happen loaded the keys, so valid tokens pass without another fetch.
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(source.fetches(), 1);
}

#[tokio::test]
async fn a_key_endpoint_that_is_down_keeps_the_last_good_keys() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.min_key_refetch_interval = Duration::ZERO;
    let (endpoint, _events) = endpoint(config, &source);
    assert!(!endpoint.keys_loaded());
    endpoint.refresh_keys().await.unwrap();
    source.failing.store(true, Ordering::SeqCst);
    assert!(endpoint.refresh_keys().await.is_err());
    assert!(endpoint.keys_loaded());
    // A valid token still verifies with the kept key; an unknown kid tries once more and is refused.
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_refused(&endpoint, &B.sign(&claims()), RejectReason::UnknownKey).await;
    let metrics = endpoint.metrics();
    assert_eq!(metrics.key_fetches, 3);
    assert_eq!(metrics.key_fetch_failures, 2);
    // An empty key set counts as a failure too, and the keys stay.
    source.failing.store(false, Ordering::SeqCst);
    source.set(&[]);
    assert!(endpoint.refresh_keys().await.is_err());
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn keys_are_refreshed_once_older_than_the_refresh_interval() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.key_refresh_interval = Duration::ZERO;
    config.min_key_refetch_interval = Duration::ZERO;
    config.token_cache = false;
    let (endpoint, _events) = endpoint(config, &source);
    endpoint.refresh_keys().await.unwrap();
    let (status, _) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The refresh runs beside the request; wait for it, bounded.
    tokio::time::timeout(Duration::from_secs(5), async {
        while source.fetches() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("a background refresh happened");
}

#[tokio::test]
async fn the_token_cache_skips_the_signature_check_and_still_honours_exp() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.clock_skew = Duration::ZERO;
    let (endpoint, _events) = endpoint(config, &source);
    let token = A.sign(&claims_with("exp", json!(now() + 1)));
    for _ in 0..3 {
        let (status, _) = send(&endpoint, json_post(&token, transfer_accepted())).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let metrics = endpoint.metrics();
    assert_eq!(
        metrics.token_verifications, 1,
        "only the first request checks the signature"
    );
    assert_eq!(metrics.token_cache_hits, 2);
    // Once past exp the cached verdict no longer admits the token.
    tokio::time::timeout(Duration::from_secs(5), async {
        while now() <= token_exp(&token) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_refused(&endpoint, &token, RejectReason::Expired).await;
    assert_eq!(endpoint.metrics().token_cache_hits, 3, "refused from the cache");
    assert_eq!(endpoint.metrics().token_verifications, 1);
}

#[tokio::test]
async fn without_the_token_cache_every_request_is_verified() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.token_cache = false;
    let (endpoint, _events) = endpoint(config, &source);
    let token = A.sign(&claims());
    for _ in 0..3 {
        let (status, _) = send(&endpoint, json_post(&token, transfer_accepted())).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let metrics = endpoint.metrics();
    assert_eq!((metrics.token_verifications, metrics.token_cache_hits), (3, 0));
}

fn token_exp(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn a_cached_forgery_of_a_good_token_is_still_refused() {
    // The cache is keyed by the whole token string, so changing any byte misses it.
    let source = TestKeySource::new(&[A]);
    let (endpoint, _events) = endpoint(config(), &source);
    let token = A.sign(&claims());
    let (status, _) = send(&endpoint, json_post(&token, transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let (status, _) = send(&endpoint, json_post(&forged, transfer_accepted())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Posts the transfer-accepted body with one `Authorization` header per value, in order.
fn post_with_authorizations(values: &[String]) -> http::Request<axum::body::Body> {
    let mut request = http::Request::post(PATH).header("content-type", "application/json");
    for value in values {
        request = request.header("authorization", value);
    }
    request.body(transfer_accepted().into()).unwrap()
}

#[tokio::test]
async fn two_authorization_headers_are_refused_whatever_their_order() {
    let source = TestKeySource::new(&[A, B]);
    // Without the cache too, so the valid token is not let in by an earlier verdict.
    let mut config = config();
    config.token_cache = false;
    let (endpoint, mut events) = endpoint(config, &source);
    let valid = format!("Bearer {}", A.sign(&claims()));
    let other_app = format!("Bearer {}", B.sign(&claims_with("aud", json!("another-app"))));
    let cases = [
        vec![valid.clone(), "Bearer garbage".to_owned()],
        vec!["Bearer garbage".to_owned(), valid.clone()],
        vec![valid.clone(), other_app.clone()],
        vec![other_app, valid.clone()],
        vec![valid.clone(), valid.clone()],
        vec![valid.clone(), valid.clone(), valid.clone()],
    ];
    for values in &cases {
        let before = endpoint.metrics().rejected(RejectReason::DuplicateAuthorization);
        let (status, response) = send(&endpoint, post_with_authorizations(values)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{} headers", values.len());
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(
            endpoint.metrics().rejected(RejectReason::DuplicateAuthorization),
            before + 1,
            "counted as duplicate_authorization"
        );
    }
    assert!(events.try_recv().is_none(), "nothing queued");
    // Refused before any token is looked at: no signature check, no key fetch.
    let metrics = endpoint.metrics();
    assert_eq!((metrics.token_verifications, metrics.key_fetches), (0, 0));
    assert_eq!(metrics.rejected_total(), cases.len() as u64);
    // The valid token alone still gets in.
    let (status, _) = send(&endpoint, post_with_authorizations(&[valid])).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// A properly RS256-signed token with any header (the testkit signer always writes `alg`, `typ`, `kid`).
fn sign_with_header(key: TestKey, header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let pair = key.key_pair();
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[tokio::test]
async fn a_header_with_crit_is_refused() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, _events) = endpoint(config(), &source);
    let claims = claims();
    // The same header without crit is fine, so the refusal is crit's.
    let plain = sign_with_header(A, &json!({"alg": "RS256", "typ": "JWT", "kid": A.kid()}), &claims);
    let (status, _) = send(&endpoint, json_post(&plain, transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null), json!("x")] {
        let mut header = json!({"alg": "RS256", "typ": "JWT", "kid": A.kid(), "crit": crit});
        if crit == json!(["b64"]) {
            header["b64"] = json!(false);
        }
        assert_refused(
            &endpoint,
            &sign_with_header(A, &header, &claims),
            RejectReason::BadToken,
        )
        .await;
    }
    // Refused before the signature check (only the plain token was verified).
    assert_eq!(endpoint.metrics().token_verifications, 1);
}

#[tokio::test]
async fn time_claims_that_are_not_numbers_are_refused() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, _events) = endpoint(config(), &source);
    let far_future = now() + 24 * 3600;
    for name in ["nbf", "exp", "iat"] {
        for value in [
            json!(far_future.to_string()),
            json!("soon"),
            json!(true),
            json!(null),
            json!({"t": far_future}),
            json!([far_future]),
        ] {
            let token = A.sign(&claims_with(name, value.clone()));
            let before = endpoint.metrics().rejected(RejectReason::BadToken);
            let (status, _) = send(&endpoint, json_post(&token, transfer_accepted())).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {value}");
            assert_eq!(
                endpoint.metrics().rejected(RejectReason::BadToken),
                before + 1,
                "{name}: {value} counted as bad_token"
            );
        }
    }
    // A fractional NumericDate is a number, and accepted.
    let fractional = claims_with("nbf", json!(now() as f64 - 0.5));
    let (status, _) = send(&endpoint, json_post(&A.sign(&fractional), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(endpoint.metrics().accepted_requests, 1);
}

/// Log lines written while `f` runs on this thread (a current-thread test runtime keeps the request on it).
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLog {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn long_caller_controlled_values_are_refused_and_logged_short() {
    let log = CapturedLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let source = TestKeySource::new(&[A]);
    let (endpoint, _events) = endpoint(config(), &source);
    let long = |c: char| c.to_string().repeat(10 * 1024);
    // A 10 KB kid (unknown, so it costs one refetch), and 10 KB issuer, audience and tenant.
    assert_refused(&endpoint, &A.sign_as(&long('k'), &claims()), RejectReason::UnknownKey).await;
    assert_refused(
        &endpoint,
        &A.sign(&claims_with("iss", json!(long('i')))),
        RejectReason::WrongIssuer,
    )
    .await;
    assert_refused(
        &endpoint,
        &A.sign(&claims_with("aud", json!([long('a')]))),
        RejectReason::WrongAudience,
    )
    .await;
    let mut allowed = config();
    allowed.allowed_tenants = Some(vec![TenantId::from(TENANT)]);
    let (restricted, _restricted_events) = common::endpoint(allowed, &source);
    assert_refused(
        &restricted,
        &A.sign(&claims_with("tid", json!(long('t')))),
        RejectReason::TenantNotAllowed,
    )
    .await;
    // A 10 KB content type: the 400's message carries it clipped too.
    let request = post(Some(&A.sign(&claims())), Some(&long('c')), transfer_accepted());
    let (status, response) = send(&endpoint, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body_text(response).await;
    assert!(message.len() < 200, "{} bytes: {message:.200}", message.len());
    assert!(message.ends_with("…(10240 bytes)"), "{message}");

    let text = log.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("notification refused")).collect();
    assert_eq!(lines.len(), 5, "{text:.2000}");
    for (line, c) in lines.iter().zip(['k', 'i', 'a', 't', 'c']) {
        assert!(line.len() < 1024, "a {}-byte log line", line.len());
        // The first 64 characters (the audience's include its JSON quotes), then the full length.
        assert!(
            line.contains(&c.to_string().repeat(60)),
            "the value's start is logged: {line}"
        );
        assert!(!line.contains(&c.to_string().repeat(65)), "only its start: {line:.300}");
        assert!(line.contains("…(1024"), "its length is logged: {line}");
    }
}

#[tokio::test]
async fn a_newly_published_key_is_used_after_the_short_interval_and_a_flood_stays_bounded() {
    const INTERVAL: Duration = Duration::from_millis(200);
    // Each fetch takes longer than the interval, so an interval counted from a fetch's start
    // would let every request that waited for it fetch again in turn.
    let source = TestKeySource::slow(&[A], Duration::from_millis(300));
    let mut config = config();
    config.min_key_refetch_interval = INTERVAL;
    let (endpoint, _events) = endpoint(config, &source);
    endpoint.refresh_keys().await.unwrap();
    assert_eq!(source.fetches(), 1);

    // B is published; once the interval has passed, the first token signed with it fetches it.
    source.set(&[A, B]);
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let (status, _) = send(&endpoint, json_post(&B.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the new key is fetched and accepted");
    assert_eq!(source.fetches(), 2);

    // 200 tokens naming unknown kids at once, after the interval: they share one fetch.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let claims = claims();
    let tokens: Vec<String> = (0..200).map(|i| B.sign_as(&format!("unknown-{i}"), &claims)).collect();
    let requests = tokens.into_iter().map(|token| {
        let endpoint = endpoint.clone();
        tokio::spawn(async move { send(&endpoint, json_post(&token, transfer_accepted())).await.0 })
    });
    for status in futures::future::join_all(requests).await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let flood_fetches = source.fetches() - 2;
    assert!(
        (1..=2).contains(&flood_fetches),
        "{flood_fetches} fetches for 200 unknown kids"
    );
    assert_eq!(endpoint.metrics().rejected(RejectReason::UnknownKey), 200);
    assert_eq!(endpoint.metrics().key_fetches, source.fetches() as u64);
    // Known keys still verify without a fetch.
    let before = source.fetches();
    for key in [A, B] {
        let (status, _) = send(&endpoint, json_post(&key.sign(&claims), transfer_accepted())).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert_eq!(source.fetches(), before);
}
