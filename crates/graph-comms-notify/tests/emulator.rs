//! Over real HTTP: the endpoint, served on 127.0.0.1, fetches the emulator's
//! OpenID configuration and JWKS and accepts its RS256-signed notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use graph_comms_emulator::{EmulatorConfig, IncomingCall};
use graph_comms_model::{CallState, ChangeType};
use graph_comms_notify::{EventReceiver, NotificationEvent, NotifyEndpoint};
use graph_comms_testkit::LocalGraph;

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
