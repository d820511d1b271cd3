//! App-only auth against the emulator's token endpoint: one token request for
//! many concurrent callers, refresh before expiry, a fresh token after a 401,
//! and clear errors that never show the secret.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Setup;
use graph_comms_client::{
    AccessToken, ClientSecretCredential, GraphClient, GraphClientError, TokenError, TokenProvider, async_trait,
};
use graph_comms_emulator::{EmulatorConfig, Endpoint};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_an_empty_cache_fetch_one_token() {
    let setup = Setup::start().await;
    let client = setup.client();
    let call = setup.incoming_call().await;

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            let call = call.clone();
            tokio::spawn(async move { client.get_call(&call).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("get_call succeeds");
    }
    assert_eq!(setup.requests_to(Endpoint::Token).len(), 1);
    assert_eq!(setup.requests_to(Endpoint::GetCall).len(), 20);
    setup.shutdown().await;
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_expire() {
    let setup = Setup::with_config(EmulatorConfig {
        access_token_lifetime: Duration::from_secs(2),
        ..EmulatorConfig::default()
    })
    .await;
    let client = setup.client();
    let call = setup.incoming_call().await;

    client.get_call(&call).await.unwrap();
    client.get_call(&call).await.unwrap();
    assert_eq!(
        setup.requests_to(Endpoint::Token).len(),
        1,
        "the cached token is reused"
    );

    // Refresh is due 10% of the lifetime (200 ms) before expiry.
    tokio::time::sleep(Duration::from_millis(1900)).await;
    client.get_call(&call).await.unwrap();
    assert_eq!(setup.requests_to(Endpoint::Token).len(), 2);
    assert!(
        setup.requests_to(Endpoint::GetCall).iter().all(|r| r.status == 200),
        "no request went out with an expired token"
    );
    setup.shutdown().await;
}

#[tokio::test]
async fn a_bad_secret_is_an_auth_error_with_the_aad_code_and_no_secret() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let secret = "wrong-secret-5f7d0c1e";
    let client = GraphClient::builder()
        .credentials(app.tenant_id, app.app_id, secret)
        .graph_base_url(setup.emulator.graph_base_url())
        .login_base_url(setup.emulator.login_base_url())
        .build()
        .unwrap();
    let call = setup.incoming_call().await;

    let err = client.get_call(&call).await.unwrap_err();
    let GraphClientError::Auth(token_err) = &err else {
        panic!("expected an auth error, got {err:?}");
    };
    assert_eq!(token_err.aad_code(), Some("AADSTS7000215"));
    assert!(matches!(token_err, TokenError::Rejected { status: 401, error, .. } if error == "invalid_client"));
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    assert!(
        setup.requests_to(Endpoint::GetCall).is_empty(),
        "nothing is sent to Graph without a token"
    );

    let probe = client.ensure_token().await.unwrap_err();
    assert!(matches!(probe, GraphClientError::Auth(_)));
    setup.shutdown().await;
}

/// Hands out a token Graph refuses first, then real ones.
struct StaleFirst {
    real: ClientSecretCredential,
    calls: AtomicU32,
}

#[async_trait]
impl TokenProvider for StaleFirst {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(AccessToken::expiring_in("revoked-token", Duration::from_secs(3600)));
        }
        self.real.token().await
    }
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let real = ClientSecretCredential::new(
        &setup.emulator.login_base_url(),
        &app.tenant_id,
        app.app_id.clone(),
        app.client_secret.clone(),
    )
    .unwrap();
    let provider = Arc::new(StaleFirst {
        real,
        calls: AtomicU32::new(0),
    });
    let client = setup.client_builder().token_provider(provider.clone()).build().unwrap();
    let call = setup.incoming_call().await;

    client.get_call(&call).await.expect("succeeds with the fresh token");
    let statuses: Vec<u16> = setup.requests_to(Endpoint::GetCall).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200]);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    setup.shutdown().await;
}

/// Always a token Graph refuses.
struct AlwaysRevoked;

#[async_trait]
impl TokenProvider for AlwaysRevoked {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        Ok(AccessToken::expiring_in("revoked-token", Duration::from_secs(3600)))
    }
}

#[tokio::test]
async fn a_token_refused_twice_is_a_graph_401() {
    let setup = Setup::start().await;
    let client = setup
        .client_builder()
        .token_provider(Arc::new(AlwaysRevoked))
        .build()
        .unwrap();
    let call = setup.incoming_call().await;

    let err = client.get_call(&call).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.graph_code(), Some("InvalidAuthenticationToken"));
    assert_eq!(
        setup.requests_to(Endpoint::GetCall).len(),
        2,
        "one retry with a new token, no more"
    );
    setup.shutdown().await;
}
