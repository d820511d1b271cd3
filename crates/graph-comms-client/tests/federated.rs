//! Workload identity federation against the emulator's token endpoint: a
//! federated token in a file, signed by an issuer key made at test time, is
//! accepted when the app trusts that issuer and subject, read again on every
//! token fetch (the kubelet rotates it), and refused with Entra ID's codes
//! otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Setup;
use graph_comms_client::{FederatedTokenCredential, GraphClient, GraphClientError, TokenError, TokenProvider};
use graph_comms_emulator::{EmulatorConfig, Endpoint, NotificationSigner, RegisteredApp};
use serde_json::{Value, json};

/// An AKS cluster's OIDC issuer and a pod's service account.
const ISSUER: &str = "https://oidc.prod-aks.azure.com/11111111-2222-3333-4444-555555555555/";
const SUBJECT: &str = "system:serviceaccount:telephony:transfer-bot";
const AUDIENCE: &str = "api://AzureADTokenExchange";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The claims of a projected service account token, valid for an hour from now.
fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": [AUDIENCE],
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": { "namespace": "telephony", "serviceaccount": { "name": "transfer-bot" } },
    })
}

/// A directory with the token file, as the projected volume holds it.
struct TokenFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl TokenFile {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("azure-identity-token");
        Self { _dir: dir, path }
    }

    fn holding(token: &str) -> Self {
        let file = Self::new();
        file.write(token);
        file
    }

    fn write(&self, token: &str) {
        // The kubelet writes the token without a trailing newline; tools that do add one.
        std::fs::write(&self.path, format!("{token}\n")).unwrap();
    }
}

fn credential(setup: &Setup, app: &RegisteredApp, file: &Path) -> FederatedTokenCredential {
    FederatedTokenCredential::new(
        &setup.emulator.login_base_url(),
        &app.tenant_id,
        app.app_id.clone(),
        file,
    )
    .unwrap()
}

#[tokio::test]
async fn a_federated_token_gets_graph_tokens_in_each_trusting_tenant() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let issuer_key = NotificationSigner::new().unwrap();
    setup
        .emulator
        .register_federated_identity(&app, ISSUER, SUBJECT, &issuer_key.jwks())
        .unwrap();
    let file = TokenFile::holding(&issuer_key.sign_claims(&claims()).unwrap());

    let client = GraphClient::builder()
        .federated_credentials(app.tenant_id.clone(), app.app_id.clone(), &file.path)
        .graph_base_url(setup.emulator.graph_base_url())
        .login_base_url(setup.emulator.login_base_url())
        .build()
        .unwrap();
    client.ensure_token().await.unwrap();
    client.ensure_token().await.unwrap();
    assert_eq!(
        setup.requests_to(Endpoint::Token).len(),
        1,
        "the access token is cached like any other"
    );
    // The token works on the calls API.
    let call = setup.established_call(&client).await;
    assert_eq!(client.get_call(&call).await.unwrap().status, 200);

    // Per tenant: the same federated token at that tenant's token endpoint.
    let other = setup.emulator.add_tenant();
    setup
        .emulator
        .register_federated_identity(&other, ISSUER, SUBJECT, &issuer_key.jwks())
        .unwrap();
    client.for_tenant(&other.tenant_id).ensure_token().await.unwrap();
    // A tenant whose app has no federated identity credential refuses it.
    let untrusting = setup.emulator.add_tenant();
    let err = client
        .for_tenant(&untrusting.tenant_id)
        .ensure_token()
        .await
        .unwrap_err();
    match &err {
        GraphClientError::Auth(token) => assert_eq!(token.aad_code(), Some("AADSTS700211"), "{err}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    let metrics = client.token_metrics();
    assert_eq!((metrics.fetches, metrics.fetch_failures), (3, 1));
    setup.shutdown().await;
}

/// The issuer rotates its signing key and the kubelet rewrites the file: the
/// next fetch sends the new token, which the emulator accepts, while the old
/// token is refused from then on.
#[tokio::test]
async fn the_token_file_is_read_again_on_every_fetch() {
    let setup = Setup::with_config(EmulatorConfig {
        // Access tokens expire at once, so the client fetches again soon.
        access_token_lifetime: Duration::from_secs(1),
        ..EmulatorConfig::default()
    })
    .await;
    let app = setup.emulator.default_app();
    let old_key = NotificationSigner::new().unwrap();
    setup
        .emulator
        .register_federated_identity(&app, ISSUER, SUBJECT, &old_key.jwks())
        .unwrap();
    let old_token = old_key.sign_claims(&claims()).unwrap();
    let file = TokenFile::holding(&old_token);
    let direct = credential(&setup, &app, &file.path);
    direct.token().await.unwrap();
    let client = GraphClient::builder()
        .federated_credentials(app.tenant_id.clone(), app.app_id.clone(), &file.path)
        .graph_base_url(setup.emulator.graph_base_url())
        .login_base_url(setup.emulator.login_base_url())
        .build()
        .unwrap();
    client.ensure_token().await.unwrap();

    // The issuer signs with a new key; the app's credential now trusts only it.
    let new_key = NotificationSigner::new().unwrap();
    setup
        .emulator
        .register_federated_identity(&app, ISSUER, SUBJECT, &new_key.jwks())
        .unwrap();
    let stale = TokenFile::holding(&old_token);
    let err = credential(&setup, &app, &stale.path).token().await.unwrap_err();
    assert_eq!(
        err.aad_code(),
        Some("AADSTS700027"),
        "the old token is refused now: {err}"
    );

    // The kubelet rotates the file in place.
    file.write(&new_key.sign_claims(&claims()).unwrap());
    direct
        .token()
        .await
        .expect("the second fetch reads the new token from the file");
    // Through the client: the cached access token expires, the refresh reads the file again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.ensure_token().await.expect("the refresh sends the new token");
    assert_eq!(client.token_metrics().fetches, 2);
    let statuses: Vec<u16> = setup.requests_to(Endpoint::Token).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 401, 200, 200], "{statuses:?}");
    setup.shutdown().await;
}

#[tokio::test]
async fn wrong_issuer_subject_audience_key_or_lifetime_are_refused_with_aad_codes() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let issuer_key = NotificationSigner::new().unwrap();
    setup
        .emulator
        .register_federated_identity(&app, ISSUER, SUBJECT, &issuer_key.jwks())
        .unwrap();
    let other_key = NotificationSigner::new().unwrap();
    let with = |key: &str, value: Value| {
        let mut claims = claims();
        claims[key] = value;
        claims
    };
    let now = now();
    let expired = {
        let mut claims = with("exp", json!(now - 3600));
        claims["iat"] = json!(now - 7200);
        claims["nbf"] = json!(now - 7200);
        claims
    };
    let cases = [
        (
            "another issuer",
            issuer_key.sign_claims(&with("iss", json!("https://token.actions.githubusercontent.com"))),
            "AADSTS700211",
        ),
        (
            "another subject",
            issuer_key.sign_claims(&with("sub", json!("system:serviceaccount:default:default"))),
            "AADSTS700213",
        ),
        (
            "another audience",
            issuer_key.sign_claims(&with("aud", json!("api://something-else"))),
            "AADSTS700212",
        ),
        ("expired", issuer_key.sign_claims(&expired), "AADSTS700024"),
        (
            "not yet valid",
            issuer_key.sign_claims(&with("nbf", json!(now + 3600))),
            "AADSTS700024",
        ),
        (
            "a key the issuer does not publish",
            other_key.sign_claims(&claims()),
            "AADSTS700027",
        ),
        (
            "a forged signature under the issuer's kid",
            other_key.sign_claims_as(issuer_key.kid(), &claims()),
            "AADSTS700027",
        ),
    ];
    for (what, token, code) in cases {
        let token = token.unwrap();
        let file = TokenFile::holding(&token);
        let err = credential(&setup, &app, &file.path).token().await.unwrap_err();
        assert_eq!(err.aad_code(), Some(code), "{what}: {err}");
        assert!(
            matches!(err, TokenError::Rejected { status: 401, .. }),
            "{what}: {err:?}"
        );
        assert!(
            !err.to_string().contains(&token),
            "{what}: the token never shows in errors"
        );
    }
    // The issuer is named in the refusal, as Entra ID does.
    let file = TokenFile::holding(
        &issuer_key
            .sign_claims(&with("iss", json!("https://wrong.example")))
            .unwrap(),
    );
    let err = credential(&setup, &app, &file.path).token().await.unwrap_err();
    assert!(err.to_string().contains("'https://wrong.example'"), "{err}");
    setup.shutdown().await;
}

#[tokio::test]
async fn a_missing_or_empty_token_file_is_a_clear_error() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let file = TokenFile::new();
    let err = credential(&setup, &app, &file.path).token().await.unwrap_err();
    match &err {
        TokenError::Credential(message) => {
            assert!(message.contains("cannot read the federated token file"), "{message}");
            assert!(message.contains(&file.path.display().to_string()), "{message}");
        }
        other => panic!("expected a credential error, got {other:?}"),
    }
    file.write("  ");
    let err = credential(&setup, &app, &file.path).token().await.unwrap_err();
    assert!(
        matches!(&err, TokenError::Credential(m) if m.contains("is empty") && m.contains(&file.path.display().to_string())),
        "{err:?}"
    );
    // Through the client: an auth error, and nothing was sent.
    let client = GraphClient::builder()
        .federated_credentials(app.tenant_id.clone(), app.app_id.clone(), &file.path)
        .graph_base_url(setup.emulator.graph_base_url())
        .login_base_url(setup.emulator.login_base_url())
        .build()
        .unwrap();
    let err = client.ensure_token().await.unwrap_err();
    assert!(
        matches!(err, GraphClientError::Auth(TokenError::Credential(_))),
        "{err:?}"
    );
    assert!(setup.requests_to(Endpoint::Token).is_empty());
    // `common` is no tenant for an app-only token.
    let err = FederatedTokenCredential::new(
        &setup.emulator.login_base_url(),
        &"common".into(),
        app.app_id,
        &file.path,
    )
    .unwrap_err();
    assert!(matches!(err, GraphClientError::Config(_)), "{err:?}");
    setup.shutdown().await;
}

/// The variables as AKS workload identity sets them, `AZURE_AUTHORITY_HOST`
/// with its trailing slash, get a token from the emulator.
#[tokio::test]
async fn the_aks_environment_variables_make_a_working_credential() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let issuer_key = NotificationSigner::new().unwrap();
    setup
        .emulator
        .register_federated_identity(&app, ISSUER, SUBJECT, &issuer_key.jwks())
        .unwrap();
    let file = TokenFile::holding(&issuer_key.sign_claims(&claims()).unwrap());
    let vars: HashMap<&str, String> = HashMap::from([
        ("AZURE_CLIENT_ID", app.app_id.to_string()),
        ("AZURE_TENANT_ID", app.tenant_id.to_string()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.path.display().to_string()),
        ("AZURE_AUTHORITY_HOST", format!("{}/", setup.emulator.login_base_url())),
    ]);
    let credential = FederatedTokenCredential::from_variables(|name| vars.get(name).cloned()).unwrap();
    assert_eq!(credential.authority_host(), setup.emulator.login_base_url());
    credential.token().await.unwrap();
    let paths: Vec<String> = setup
        .requests_to(Endpoint::Token)
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [format!("/{}/oauth2/v2.0/token", app.tenant_id)],
        "no double slash"
    );
    setup.shutdown().await;
}
