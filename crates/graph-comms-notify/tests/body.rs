//! Body handling through the router without a socket: every notification vector
//! is accepted, broken bodies get 400, big ones 413, a full queue 503 with
//! nothing partial queued, and events come out whole and in order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use graph_comms_model::{CallId, ChangeType, ResourceTarget};
use graph_comms_notify::{NotifyEndpoint, RejectReason};
use http::StatusCode;
use serde_json::json;

fn setup() -> (NotifyEndpoint, graph_comms_notify::EventReceiver, String) {
    let source = TestKeySource::new(&[A]);
    let (endpoint, events) = endpoint(config(), &source);
    (endpoint, events, A.sign(&claims()))
}

async fn assert_status(
    endpoint: &NotifyEndpoint,
    request: http::Request<axum::body::Body>,
    expected: StatusCode,
) -> String {
    let (status, response) = send(endpoint, request).await;
    let body = body_text(response).await;
    assert_eq!(status, expected, "body: {body}");
    body
}

#[tokio::test]
async fn every_notification_vector_is_accepted() {
    let (endpoint, mut events, token) = setup();
    let files = graph_comms_testkit::fixtures::notifications();
    assert_eq!(files.len(), 20, "every published notification body: {files:?}");
    for file in &files {
        let body = graph_comms_testkit::fixtures::read(file);
        let expected = graph_comms_testkit::fixtures::json(file);
        let items = expected["value"].as_array().unwrap();
        assert_status(&endpoint, json_post(&token, body.clone()), StatusCode::ACCEPTED).await;
        for (index, item) in items.iter().enumerate() {
            let event = events
                .try_recv()
                .unwrap_or_else(|| panic!("{file:?} item {index} queued"));
            let url = item
                .get("resourceUrl")
                .or(item.get("resource"))
                .unwrap()
                .as_str()
                .unwrap();
            assert!(
                url.to_lowercase().contains(&event.call_id.as_str().to_lowercase()),
                "{file:?}"
            );
            assert_eq!(
                serde_json::to_value(event.notification.change_type).unwrap(),
                item["changeType"],
                "{file:?}"
            );
        }
    }
    assert!(events.try_recv().is_none());
    assert_eq!(endpoint.metrics().accepted_requests, files.len() as u64);
}

#[tokio::test]
async fn events_carry_the_item_its_resource_and_arrival_order() {
    let (endpoint, mut events, token) = setup();
    let body = json!({
        "value": [
            { "changeType": "updated", "resourceUrl": "/communications/calls/57DAB8B1894C409AB240BD8BEAE78896",
              "resourceData": { "@odata.type": "#microsoft.graph.call", "state": "established" } },
            { "changeType": "deleted",
              "resourceUrl": "/communications/calls/57dab8b1-894c-409a-b240-bd8beae78896/operations/0FE0623FD62842EDB4BD8AC290072CC5" },
            { "changeType": "created", "resource": "/app/calls/8A934F51F25B4EE19613D4049491857B" }
        ]
    });
    assert_status(&endpoint, json_post(&token, body.to_string()), StatusCode::ACCEPTED).await;
    assert_status(&endpoint, json_post(&token, transfer_accepted()), StatusCode::ACCEPTED).await;
    let got: Vec<_> = std::iter::from_fn(|| events.try_recv()).collect();
    assert_eq!(got.len(), 4);
    assert_eq!(got.iter().map(|e| e.sequence).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(got[0].call_id, CallId::from("57dab8b1-894c-409a-b240-bd8beae78896"));
    assert_eq!(got[0].resource.target, ResourceTarget::Call);
    assert_eq!(
        got[0]
            .notification
            .call()
            .unwrap()
            .state
            .as_ref()
            .map(|s| s.to_string())
            .as_deref(),
        Some("established")
    );
    assert!(matches!(got[1].resource.target, ResourceTarget::Operation(_)));
    assert_eq!(got[1].notification.change_type, ChangeType::Deleted);
    assert_eq!(got[2].call_id, CallId::from("8a934f51-f25b-4ee1-9613-d4049491857b"));
    assert_eq!(got[3].call_id, CallId::from("341a0500-d4bf-4224-8b19-1581168d328b"));
    assert!(got.iter().all(|e| e.tenant_id.as_str() == TENANT));
    assert!(got[0].received_at <= got[3].received_at);
}

#[tokio::test]
async fn broken_bodies_get_400_naming_the_problem() {
    let (endpoint, mut events, token) = setup();
    let truncated = &transfer_accepted()[..transfer_accepted().len() / 2];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "line"),
        ("truncated", truncated.as_bytes().to_vec(), "truncated JSON at line"),
        ("not JSON", b"hello".to_vec(), "invalid JSON at line 1"),
        ("wrong root type", b"[1, 2]".to_vec(), "line 1"),
        ("value not an array", br#"{"value": 5}"#.to_vec(), "unexpected JSON shape"),
        ("no value", br#"{"@odata.type": "x"}"#.to_vec(), "value"),
        ("changeType wrong type", br#"{"value": [{"changeType": 5, "resourceUrl": "/communications/calls/a"}]}"#.to_vec(), "line 1"),
        ("deep nesting", "[".repeat(10_000).into_bytes(), "line 1"),
        ("deep nesting inside an item", format!(r#"{{"value": [{{"changeType": "updated", "resourceUrl": "/communications/calls/a", "resourceData": {}}}]}}"#, "[".repeat(10_000)).into_bytes(), "recursion limit"),
        ("invalid UTF-8", b"{\"value\": [\"\xff\xfe\"]}".to_vec(), "line 1"),
        ("trailing data", format!("{} {{}}", transfer_accepted()).into_bytes(), "trailing characters"),
        ("trailing comma", br#"{"value": [],}"#.to_vec(), "line 1"),
    ];
    for (name, body, needle) in cases {
        let message = assert_status(&endpoint, json_post(&token, body), StatusCode::BAD_REQUEST).await;
        assert!(message.starts_with("malformed notification body:"), "{name}: {message}");
        assert!(message.contains(needle), "{name}: {message:?} lacks {needle:?}");
    }
    // An item that names no call: the index is in the message.
    let body = json!({ "value": [
        { "changeType": "updated", "resourceUrl": "/communications/calls/abc" },
        { "changeType": "updated", "resourceUrl": "/users/abc" }
    ]});
    let message = assert_status(&endpoint, json_post(&token, body.to_string()), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("notification 1"), "{message}");
    let body = json!({ "value": [{ "changeType": "updated" }] });
    let message = assert_status(&endpoint, json_post(&token, body.to_string()), StatusCode::BAD_REQUEST).await;
    assert!(message.contains("notification 0"), "{message}");
    assert!(events.try_recv().is_none(), "nothing from a refused body is queued");
    assert_eq!(endpoint.metrics().rejected(RejectReason::MalformedBody), 14);
}

#[tokio::test]
async fn the_content_type_must_be_json() {
    let (endpoint, _events, token) = setup();
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=\"UTF-8\"",
    ] {
        let request = post(Some(&token), Some(content_type), transfer_accepted());
        assert_status(&endpoint, request, StatusCode::ACCEPTED).await;
    }
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/jsonx"),
        Some("application/json; charset=latin1"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let message = assert_status(
            &endpoint,
            post(Some(&token), content_type, transfer_accepted()),
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(message.contains("content type must be application/json"), "{message}");
    }
    assert_eq!(endpoint.metrics().rejected(RejectReason::BadContentType), 5);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let (endpoint, _events, token) = setup();
    let big = vec![b' '; 10 * 1024 * 1024];
    // Declared by Content-Length: refused before reading.
    let mut request = json_post(&token, big.clone());
    request.headers_mut().insert("content-length", big.len().into());
    let message = assert_status(&endpoint, request, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(message.contains("larger than 1048576 bytes"), "{message}");
    // Streamed without a length: refused while reading.
    let chunks =
        futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 1024 * 1024]))));
    let request = json_post(&token, axum::body::Body::from_stream(chunks));
    assert_status(&endpoint, request, StatusCode::PAYLOAD_TOO_LARGE).await;
    // The limit is configurable; exactly at the limit is fine.
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.max_body_bytes = transfer_accepted().len();
    let (small, _events) = common::endpoint(config, &source);
    assert_status(&small, json_post(&token, transfer_accepted()), StatusCode::ACCEPTED).await;
    assert_status(
        &small,
        json_post(&token, format!("{} ", transfer_accepted())),
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    assert_eq!(endpoint.metrics().rejected(RejectReason::TooLarge), 2);
}

fn batch(n: usize) -> String {
    let items: Vec<_> = (0..n)
        .map(|i| json!({ "changeType": "updated", "resourceUrl": format!("/communications/calls/call-{i}") }))
        .collect();
    json!({ "value": items }).to_string()
}

#[tokio::test]
async fn a_full_queue_gives_503_and_queues_nothing_partial() {
    let source = TestKeySource::new(&[A]);
    let mut config = config();
    config.queue_capacity = 3;
    let (endpoint, mut events) = common::endpoint(config, &source);
    let token = A.sign(&claims());
    assert_status(&endpoint, json_post(&token, batch(2)), StatusCode::ACCEPTED).await;
    // Two items do not fit in the one free slot: refused whole.
    let (status, response) = send(&endpoint, json_post(&token, batch(2))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers().get("retry-after").unwrap(), "1");
    assert_eq!(events.len(), 2, "nothing of the refused body was queued");
    // One still fits.
    assert_status(&endpoint, json_post(&token, batch(1)), StatusCode::ACCEPTED).await;
    assert_status(&endpoint, json_post(&token, batch(1)), StatusCode::SERVICE_UNAVAILABLE).await;
    // Draining makes room again.
    let drained: Vec<_> = std::iter::from_fn(|| events.try_recv()).collect();
    assert_eq!(
        drained.iter().map(|e| e.call_id.as_str()).collect::<Vec<_>>(),
        ["call-0", "call-1", "call-0"]
    );
    assert_eq!(drained.iter().map(|e| e.sequence).collect::<Vec<_>>(), [0, 1, 2]);
    assert_status(&endpoint, json_post(&token, batch(3)), StatusCode::ACCEPTED).await;
    // A body with more items than the queue can ever hold is too large, not "busy".
    let _ = std::iter::from_fn(|| events.try_recv()).count();
    assert_status(&endpoint, json_post(&token, batch(4)), StatusCode::PAYLOAD_TOO_LARGE).await;
    let metrics = endpoint.metrics();
    assert_eq!(metrics.rejected(RejectReason::QueueFull), 2);
    assert_eq!(metrics.queued_events, 6);
}

#[tokio::test]
async fn after_close_requests_get_503_and_queued_events_drain() {
    let (endpoint, mut events, token) = setup();
    assert_status(&endpoint, json_post(&token, transfer_accepted()), StatusCode::ACCEPTED).await;
    endpoint.close();
    assert!(endpoint.is_closed());
    let (status, response) = send(&endpoint, json_post(&token, transfer_accepted())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(endpoint.metrics().rejected(RejectReason::Closed), 1);
    let first = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert!(first.is_some(), "the queued event is still delivered");
    let end = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap();
    assert!(end.is_none(), "then the receiver ends");
}

#[tokio::test]
async fn a_dropped_receiver_gives_503() {
    let (endpoint, events, token) = setup();
    drop(events);
    assert_status(
        &endpoint,
        json_post(&token, transfer_accepted()),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(endpoint.metrics().rejected(RejectReason::Closed), 1);
}

#[tokio::test]
async fn only_post_on_the_mounted_path_is_served() {
    let (endpoint, _events, token) = setup();
    let get = http::Request::get(PATH)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let (status, _) = send(&endpoint, get).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    // Paths are literal: braces and a missing slash are fine.
    let router = endpoint.router_at("hooks/{tenant}");
    let request = http::Request::post("/hooks/{tenant}")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(transfer_accepted()))
        .unwrap();
    use tower::ServiceExt;
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bad_configurations_are_refused() {
    let source = TestKeySource::new(&[A]);
    for change in [
        (|c: &mut graph_comms_notify::NotifyConfig| c.queue_capacity = 0) as fn(&mut _),
        |c| c.max_body_bytes = 0,
        |c| c.issuers.clear(),
        |c| c.app_id = "".into(),
    ] {
        let mut config = config();
        change(&mut config);
        let source: std::sync::Arc<dyn graph_comms_notify::KeySource> = source.clone();
        assert!(NotifyEndpoint::with_key_source(config, source).is_err());
    }
}
