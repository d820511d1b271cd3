//! Federated identity credentials over the control API and the token
//! endpoint, as a client in another language sees them: the raw form posts
//! and the AAD-shaped refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::start;
use graph_comms_emulator::{Emulator, NotificationSigner, RegisteredApp};
use serde_json::{Value, json};

const ISSUER: &str = "https://oidc.prod-aks.azure.com/tenant/issuer/";
const SUBJECT: &str = "system:serviceaccount:telephony:transfer-bot";

fn claims(subject: &str) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    json!({
        "iss": ISSUER, "sub": subject, "aud": "api://AzureADTokenExchange",
        "iat": now, "nbf": now, "exp": now + 3600,
    })
}

/// A client-credentials request with `assertion` as the client assertion.
async fn exchange(emu: &Emulator, app: &RegisteredApp, assertion: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/{}/oauth2/v2.0/token", emu.login_base_url(), app.tenant_id))
        .form(&[
            ("client_id", app.app_id.as_str()),
            ("scope", "https://graph.microsoft.com/.default"),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn register(emu: &Emulator, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/_emulator/federated-identities", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_federated_identity_registered_over_http_lets_its_tokens_in() {
    let emu = start().await;
    let app = emu.default_app();
    let issuer_key = NotificationSigner::new().unwrap();
    let token = issuer_key.sign_claims(&claims(SUBJECT)).unwrap();
    // Nothing registered yet: no record for the issuer.
    let (status, body) = exchange(&emu, &app, &token).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"], json!([700211]));
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS700211"));

    let (status, _) = register(
        &emu,
        json!({ "tenantId": app.tenant_id, "appId": app.app_id, "issuer": ISSUER, "subject": SUBJECT,
                "jwks": issuer_key.jwks() }),
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = exchange(&emu, &app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    // The access token works on the calls API.
    let calls = reqwest::Client::new()
        .get(format!("{}/communications/calls/unknown-call", emu.graph_base_url()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(calls.status(), 404, "authorized, the call is unknown");

    // Another service account of the same cluster is another subject.
    let other = issuer_key
        .sign_claims(&claims("system:serviceaccount:default:default"))
        .unwrap();
    let (status, body) = exchange(&emu, &app, &other).await;
    assert_eq!((status, body["error_codes"].clone()), (401, json!([700213])), "{body}");

    // One JWK instead of a JWKS is fine too; a JWKS without an RSA key is not.
    let (status, _) = register(
        &emu,
        json!({ "tenantId": app.tenant_id, "appId": app.app_id, "issuer": ISSUER,
                "subject": "system:serviceaccount:default:default", "jwks": issuer_key.jwk() }),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(exchange(&emu, &app, &other).await.0, 200);
    let (status, body) = register(
        &emu,
        json!({ "tenantId": app.tenant_id, "appId": app.app_id, "issuer": ISSUER, "subject": SUBJECT,
                "jwks": { "keys": [{ "kty": "EC", "crv": "P-256" }] } }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("no RSA key"), "{body}");
    emu.shutdown().await;
}

/// An assertion whose issuer is the app itself is still a certificate
/// assertion: with no certificate registered, AADSTS700027.
#[tokio::test]
async fn an_assertion_issued_by_the_app_itself_is_a_certificate_assertion() {
    let emu = start().await;
    let app = emu.default_app();
    let key = NotificationSigner::new().unwrap();
    emu.register_federated_identity(&app, ISSUER, SUBJECT, &key.jwks())
        .unwrap();
    let mut own = claims(SUBJECT);
    own["iss"] = json!(app.app_id.as_str());
    own["sub"] = json!(app.app_id.as_str());
    let (status, body) = exchange(&emu, &app, &key.sign_claims(&own).unwrap()).await;
    assert_eq!((status, body["error_codes"].clone()), (401, json!([700027])), "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not registered on application"),
        "{body}"
    );
    // And garbage is malformed either way.
    let (status, body) = exchange(&emu, &app, "not-a-jwt").await;
    assert_eq!((status, body["error_codes"].clone()), (401, json!([50027])), "{body}");
    emu.shutdown().await;
}
