//! The retry rules against the emulator's injected faults: throttling is
//! retried honouring Retry-After, storms stop at the budget, and a
//! non-idempotent action is never sent twice after an ambiguous failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use common::{Setup, WAIT};
use graph_comms_client::{GraphClientError, RequestInfo, RequestObserver, RetryPolicy};
use graph_comms_emulator::{ApiFault, Endpoint, FaultKind};
use graph_comms_model::{CallState, TransferRequest};

fn fault(endpoint: Endpoint, kind: FaultKind, count: u32) -> ApiFault {
    ApiFault { endpoint, kind, count }
}

fn transfer_request() -> TransferRequest {
    TransferRequest::to_user("target-user-id", None).build()
}

#[derive(Default)]
struct Recorder(Mutex<Vec<RequestInfo>>);

impl RequestObserver for Recorder {
    fn on_response(&self, info: &RequestInfo) {
        self.0.lock().unwrap().push(info.clone());
    }
}

#[tokio::test]
async fn throttling_is_retried_after_the_fractional_retry_after() {
    let setup = Setup::start().await;
    let recorder = Arc::new(Recorder::default());
    let client = setup.client_builder().observer(recorder.clone()).build().unwrap();
    let call = setup.incoming_call().await;
    client.ensure_token().await.unwrap();

    let retry_after = FaultKind::TooManyRequests {
        retry_after: "0.2".into(),
    };
    setup
        .emulator
        .inject_api_fault(fault(Endpoint::GetCall, retry_after, 1));
    let started = Instant::now();
    let fetched = client.get_call(&call).await.expect("succeeds after the retry");
    let waited = started.elapsed();

    assert!(
        waited >= Duration::from_millis(200),
        "Retry-After not honoured: {waited:?}"
    );
    let sent = setup.requests_to(Endpoint::GetCall);
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
    assert_eq!(
        sent[0].client_request_id, sent[1].client_request_id,
        "one logical request"
    );
    assert_eq!(
        sent[1].client_request_id.as_deref(),
        Some(fetched.client_request_id.as_str())
    );

    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the observer sees every attempt");
    assert_eq!((seen[0].attempt, seen[0].status), (1, Some(429)));
    assert_eq!((seen[1].attempt, seen[1].status), (2, Some(200)));
    assert!(seen.iter().all(|i| i.action == "get_call" && i.method == "GET"));
    setup.shutdown().await;
}

#[tokio::test]
async fn throttled_transfers_are_retried_too() {
    let setup = Setup::start().await;
    let client = setup.client();
    let call = setup.established_call(&client).await;

    // An HTTP-date Retry-After (whole seconds, so it may round down to no wait).
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1));
    setup.emulator.inject_api_fault(fault(
        Endpoint::Transfer,
        FaultKind::TooManyRequests { retry_after: at },
        1,
    ));
    client
        .transfer(&call, &transfer_request())
        .await
        .expect("accepted after the retry");
    let statuses: Vec<u16> = setup.requests_to(Endpoint::Transfer).iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [429, 202],
        "Graph did not process a throttled request, so it is re-sent"
    );
    setup.shutdown().await;
}

#[tokio::test]
async fn a_503_storm_gives_up_at_max_attempts() {
    let setup = Setup::start().await;
    let policy = RetryPolicy {
        max_attempts: 3,
        max_elapsed: Duration::from_secs(10),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let client = setup.client_builder().retry_policy(policy).build().unwrap();
    let call = setup.incoming_call().await;
    setup
        .emulator
        .inject_api_fault(fault(Endpoint::GetCall, FaultKind::Status(503), 100));

    let err = client.get_call(&call).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err:?}");
    assert!(err.graph_code().is_some());
    assert_eq!(setup.requests_to(Endpoint::GetCall).len(), 3);
    setup.shutdown().await;
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_returns_the_throttling_error() {
    let setup = Setup::start().await;
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(2),
        ..RetryPolicy::default()
    };
    let client = setup.client_builder().retry_policy(policy).build().unwrap();
    let call = setup.incoming_call().await;
    let throttle = FaultKind::TooManyRequests {
        retry_after: "30".into(),
    };
    setup.emulator.inject_api_fault(fault(Endpoint::GetCall, throttle, 1));

    let err = client.get_call(&call).await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(setup.requests_to(Endpoint::GetCall).len(), 1);
    setup.shutdown().await;
}

#[tokio::test]
async fn a_transfer_that_times_out_is_outcome_unknown_and_sent_once() {
    let setup = Setup::start().await;
    let recorder = Arc::new(Recorder::default());
    let client = setup
        .client_builder()
        .request_timeout(Duration::from_millis(300))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let call = setup.established_call(&client).await;
    let slow = FaultKind::Delay(Duration::from_millis(1500));
    setup.emulator.inject_api_fault(fault(Endpoint::Transfer, slow, 1));

    let err = client.transfer(&call, &transfer_request()).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert!(matches!(
        err,
        GraphClientError::OutcomeUnknown { action: "transfer", .. }
    ));
    let transfers: Vec<_> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.action == "transfer")
        .cloned()
        .collect();
    assert_eq!(transfers.len(), 1, "one attempt: {transfers:?}");
    assert_eq!(transfers[0].status, None);

    // Graph did act on it: the transfer runs to completion.
    setup
        .emulator
        .wait_for_state(&call, CallState::Terminated, WAIT)
        .await
        .unwrap();
    // Past the delay, the emulator's log holds exactly the one transfer it received.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let logged = setup.requests_to(Endpoint::Transfer);
    assert_eq!(logged.len(), 1, "a timed-out transfer is never re-sent: {logged:?}");
    assert!(
        logged
            .iter()
            .all(|r| r.client_request_id.as_deref() == err.client_request_id())
    );
    setup.shutdown().await;
}

#[tokio::test]
async fn a_500_is_retried_for_get_but_not_for_transfer() {
    let setup = Setup::start().await;
    let client = setup.client();
    let call = setup.established_call(&client).await;

    setup
        .emulator
        .inject_api_fault(fault(Endpoint::Transfer, FaultKind::Status(500), 1));
    let err = client.transfer(&call, &transfer_request()).await.unwrap_err();
    assert!(err.is_outcome_unknown(), "{err:?}");
    assert_eq!(
        setup.requests_to(Endpoint::Transfer).len(),
        1,
        "a transfer is never re-sent after a 500"
    );

    setup
        .emulator
        .inject_api_fault(fault(Endpoint::GetCall, FaultKind::Status(500), 1));
    client.get_call(&call).await.expect("GET is retried after a 500");
    let statuses: Vec<u16> = setup.requests_to(Endpoint::GetCall).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 200]);
    setup.shutdown().await;
}

#[tokio::test]
async fn a_get_that_times_out_is_retried() {
    let setup = Setup::start().await;
    let recorder = Arc::new(Recorder::default());
    let client = setup
        .client_builder()
        .request_timeout(Duration::from_millis(300))
        .observer(recorder.clone())
        .build()
        .unwrap();
    let call = setup.incoming_call().await;
    let slow = FaultKind::Delay(Duration::from_millis(800));
    setup.emulator.inject_api_fault(fault(Endpoint::GetCall, slow, 1));

    let fetched = client
        .get_call(&call)
        .await
        .expect("the second attempt answers in time");
    let attempts: Vec<_> = recorder
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|i| (i.attempt, i.status))
        .collect();
    assert_eq!(attempts, [(1, None), (2, Some(200))]);
    let answered = setup.requests_to(Endpoint::GetCall);
    assert!(answered.iter().any(|r| r.status == 200));
    assert!(
        answered
            .iter()
            .all(|r| r.client_request_id.as_deref() == Some(fetched.client_request_id.as_str()))
    );
    setup.shutdown().await;
}

#[tokio::test]
async fn a_request_that_cannot_connect_is_a_network_error_not_an_unknown_outcome() {
    let setup = Setup::start().await;
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let policy = RetryPolicy {
        max_attempts: 2,
        max_elapsed: Duration::from_secs(5),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let client = setup
        .client_builder()
        .graph_base_url(format!("http://{closed}/v1.0"))
        .retry_policy(policy)
        .build()
        .unwrap();
    let err = client
        .transfer(&"some-call".into(), &transfer_request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphClientError::Network { action: "transfer", .. }),
        "{err:?}"
    );
    setup.shutdown().await;
}
