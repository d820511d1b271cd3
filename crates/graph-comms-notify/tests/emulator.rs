//! Over real HTTP: the endpoint, served on 127.0.0.1, fetches the emulator's
//! OpenID configuration and JWKS and accepts its RS256-signed notifications,
//! also after the emulator rotates its signing key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use graph_comms_emulator::{EmulatorConfig, Endpoint, IncomingCall, NotificationSigner};
use graph_comms_model::{CallState, ChangeType};
use graph_comms_notify::{EventReceiver, NotificationEvent, NotifyEndpoint, RejectReason};
use graph_comms_testkit::LocalGraph;
use tower::ServiceExt;

async fn next_event(events: &mut EventReceiver) -> NotificationEvent {
    tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("a notification arrived in time")
        .expect("the queue is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_calls_from_the_emulator_are_authenticated_and_queued() {
    let LocalGraph {
        emulator,
        app,
        notify: mut config,
        ..
    } = LocalGraph::start(EmulatorConfig::default()).await.unwrap();
    config.allowed_tenants = Some(vec![app.tenant_id.clone()]);
    config.min_key_refetch_interval = Duration::ZERO;
    let (endpoint, mut events) = NotifyEndpoint::new(config).unwrap();
    endpoint
        .refresh_keys()
        .await
        .expect("the emulator's keys load over HTTP");
    assert!(endpoint.keys_loaded());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/api/calls", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, endpoint.router_at("/api/calls"))
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .into_future(),
    );

    let call_id = emulator
        .place_incoming_call(IncomingCall::from_user(&app, &callback, "caller-1", "Caller One"))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(event.call_id, call_id);
    assert_eq!(event.tenant_id, app.tenant_id);
    assert_eq!(event.notification.change_type, ChangeType::Created);
    let call = event.notification.call().expect("the item carries the call");
    assert_eq!(call.state, Some(CallState::Incoming));

    // After a key rotation the new kid is fetched and the next call gets through too.
    emulator.rotate_signing_key();
    let second = emulator
        .place_incoming_call(IncomingCall::from_phone(&app, &callback, "+14255550123"))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(event.call_id, second);
    assert!(event.sequence > 0);

    let sent = emulator.notifications(&call_id);
    assert!(sent.iter().any(|n| n.response_status == Some(202)), "{sent:?}");
    let metrics = endpoint.metrics();
    assert_eq!(metrics.rejected_total(), 0, "{metrics:?}");
    assert_eq!(metrics.accepted_requests, 2);

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_emulator_key_is_fetched_after_the_short_interval_and_unknown_kids_are_bounded() {
    const INTERVAL: Duration = Duration::from_millis(200);
    let LocalGraph {
        emulator,
        app,
        notify: mut config,
        ..
    } = LocalGraph::start(EmulatorConfig::default()).await.unwrap();
    config.min_key_refetch_interval = INTERVAL;
    let (endpoint, mut events) = NotifyEndpoint::new(config).unwrap();
    endpoint.refresh_keys().await.unwrap();
    let jwks_fetches = || {
        emulator
            .requests()
            .iter()
            .filter(|r| r.endpoint == Endpoint::Jwks)
            .count()
    };
    assert_eq!(jwks_fetches(), 1);

    // 200 requests naming kids the emulator never published, at once: the JWKS is fetched once or twice.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let forger = graph_comms_testkit::signer::other();
    let claims = NotificationSigner::claims(
        &emulator.issuer(),
        app.app_id.as_str(),
        app.tenant_id.as_str(),
        Duration::from_secs(3600),
    );
    let tokens: Vec<String> = (0..200)
        .map(|i| forger.sign_claims_as(&format!("unpublished-{i}"), &claims).unwrap())
        .collect();
    let router = endpoint.router_at("/api/calls");
    let requests = tokens.into_iter().map(|token| {
        let router = router.clone();
        tokio::spawn(async move {
            let request = http::Request::post("/api/calls")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap();
            router.oneshot(request).await.unwrap().status()
        })
    });
    for status in futures::future::join_all(requests).await {
        assert_eq!(status.unwrap(), http::StatusCode::UNAUTHORIZED);
    }
    let after_flood = jwks_fetches();
    assert!((2..=3).contains(&after_flood), "{after_flood} JWKS fetches in all");
    assert_eq!(endpoint.metrics().rejected(RejectReason::UnknownKey), 200);

    // The emulator rotates its key; once the interval has passed, the first notification
    // signed with the new key fetches it and is accepted at its first delivery.
    emulator.rotate_signing_key();
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/api/calls", listener.local_addr().unwrap());
    let server = tokio::spawn(axum::serve(listener, router).into_future());
    let call_id = emulator
        .place_incoming_call(IncomingCall::from_phone(&app, &callback, "+14255550123"))
        .await
        .unwrap();
    let event = next_event(&mut events).await;
    assert_eq!(event.call_id, call_id);
    // The event is queued before the emulator has read the answer; wait for it to record the delivery.
    let first_status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(status) = emulator.notifications(&call_id).first().and_then(|n| n.response_status) {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the emulator recorded the delivery");
    assert_eq!(first_status, 202, "the first delivery is accepted");
    assert_eq!(jwks_fetches(), after_flood + 1, "one fetch for the new key");
    let metrics = endpoint.metrics();
    assert_eq!(metrics.rejected_total(), 200, "{metrics:?}");
    assert_eq!(metrics.accepted_requests, 1);

    server.abort();
    emulator.shutdown().await;
}
