//! A multi-tenant bot: tokens are fetched for the call's tenant, one token
//! request per tenant however many requests wait, and a token of another
//! tenant gets Graph's 7505.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Setup, WAIT};
use graph_comms_client::FailureCause;
use graph_comms_emulator::{Endpoint, IncomingCall, RegisteredApp};
use graph_comms_model::{AnswerRequest, CallId, CallState, TenantId};

async fn call_in(setup: &Setup, app: &RegisteredApp) -> CallId {
    let call = IncomingCall::from_user(app, setup.callback_uri.clone(), "caller", "Caller");
    let id = setup.emulator.place_incoming_call(call).await.unwrap();
    setup
        .emulator
        .wait_for_state(&id, CallState::Incoming, WAIT)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn each_tenant_gets_its_own_token_and_a_foreign_token_is_7505() {
    let setup = Setup::start().await;
    let home = setup.emulator.default_app();
    // The same app id in a second tenant, with its own secret there.
    let other = setup.emulator.add_tenant();
    // And a third tenant where the app uses its home secret (one secret for
    // every tenant, as a real multi-tenant app registration has).
    let mut shared = setup.emulator.add_tenant();
    shared.client_secret = home.client_secret.clone();
    setup.emulator.register_app(shared.clone());

    let client = setup
        .client_builder()
        .tenant_credentials(
            other.tenant_id.clone(),
            other.app_id.clone(),
            other.client_secret.clone(),
        )
        .build()
        .unwrap();
    let shared_call = call_in(&setup, &shared).await;
    let fetched = client
        .for_tenant(&shared.tenant_id)
        .get_call(&shared_call)
        .await
        .unwrap();
    assert_eq!(fetched.status, 200);
    let home_call = call_in(&setup, &home).await;
    let other_call = call_in(&setup, &other).await;

    // The default tenant's token on the other tenant's call: 403 7505 with a hint.
    let err = client
        .answer(&other_call, &AnswerRequest::audio(setup.callback_uri.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.graph_code(), Some("7505"));
    assert_eq!(err.failure_cause(), Some(FailureCause::TenantMismatch));
    assert!(err.hint().unwrap().contains("different tenants"));

    // Per-tenant handles: concurrent requests, one token request per tenant.
    let for_other = client.for_tenant(&other.tenant_id);
    assert_eq!(for_other.tenant(), Some(&other.tenant_id));
    let for_home = client.for_tenant(&home.tenant_id);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (c, call) = if i % 2 == 0 {
            (for_other.clone(), other_call.clone())
        } else {
            (for_home.clone(), home_call.clone())
        };
        tasks.push(tokio::spawn(async move { c.get_call(&call).await }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status, 200);
    }
    let token_requests = setup.requests_to(Endpoint::Token);
    let tenants: Vec<Option<TenantId>> = token_requests.iter().map(|r| r.tenant_id.clone()).collect();
    assert_eq!(
        tenants.iter().filter(|t| t.as_ref() == Some(&other.tenant_id)).count(),
        1,
        "{tenants:?}"
    );
    assert_eq!(
        tenants.iter().filter(|t| t.as_ref() == Some(&home.tenant_id)).count(),
        1,
        "{tenants:?}"
    );
    assert!(token_requests.iter().all(|r| !r.path.contains("common")));

    // Each call's requests carried a token of the call's tenant.
    for_other
        .answer(&other_call, &AnswerRequest::audio(setup.callback_uri.clone()))
        .await
        .unwrap();
    setup
        .emulator
        .wait_for_state(&other_call, CallState::Established, WAIT)
        .await
        .unwrap();
    for request in setup.emulator.requests() {
        if request.call_id.as_ref() == Some(&other_call) && request.status < 300 {
            assert_eq!(request.tenant_id.as_ref(), Some(&other.tenant_id));
        }
        if request.call_id.as_ref() == Some(&home_call) {
            assert_eq!(request.tenant_id.as_ref(), Some(&home.tenant_id));
        }
    }
    setup.shutdown().await;
}

#[tokio::test]
async fn a_tenant_the_app_is_not_registered_in_is_an_auth_error() {
    let setup = Setup::start().await;
    let client = setup.client();
    let err = client
        .for_tenant(&TenantId::new("11111111-2222-3333-4444-555555555555"))
        .ensure_token()
        .await
        .unwrap_err();
    assert!(
        matches!(err, graph_comms_client::GraphClientError::Auth(ref e) if e.aad_code() == Some("AADSTS700016")),
        "{err:?}"
    );
    let err = client
        .for_tenant(&TenantId::new("common"))
        .ensure_token()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a tenant"), "{err}");
    assert!(
        setup
            .requests_to(Endpoint::Token)
            .iter()
            .all(|r| !r.path.contains("common"))
    );
    setup.shutdown().await;
}
