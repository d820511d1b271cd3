//! The optional stage observer: one report per answered request, stages in
//! order, the request's extensions passed through, nothing reached after a refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use graph_comms_notify::{RequestStages, StageObserver};
use http::StatusCode;

/// What a server would insert to join the endpoint's stages with its own.
#[derive(Debug, Clone, PartialEq)]
struct RequestTag(u32);

#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(RequestStages, Option<RequestTag>)>>,
}

impl StageObserver for Recorder {
    fn observe(&self, stages: &RequestStages, extensions: &http::Extensions) {
        let tag = extensions.get::<RequestTag>().cloned();
        self.seen.lock().unwrap().push((*stages, tag));
    }
}

#[tokio::test]
async fn each_answered_request_reports_its_stages_in_order_once_its_body_is_done() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, mut events) = endpoint(config(), &source);
    let recorder = Arc::new(Recorder::default());
    assert!(endpoint.set_stage_observer(recorder.clone()));
    assert!(!endpoint.set_stage_observer(recorder.clone()), "installed once");

    let mut request = json_post(&A.sign(&claims()), transfer_accepted());
    request.extensions_mut().insert(RequestTag(7));
    let (status, response) = send(&endpoint, request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(
        recorder.seen.lock().unwrap().is_empty(),
        "reported when the body is done"
    );
    body_text(response).await;

    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (stages, tag) = &seen[0];
    assert_eq!(tag, &Some(RequestTag(7)), "the request's extensions reach the observer");
    assert_eq!(stages.status, StatusCode::ACCEPTED);
    let authenticated = stages.authenticated.expect("authenticated");
    let parsed = stages.parsed.expect("parsed");
    let queued = stages.queued.expect("queued");
    assert!(stages.received <= authenticated);
    assert!(authenticated <= parsed);
    assert!(parsed <= queued);
    assert!(queued <= stages.responded);
    let event = events.try_recv().expect("queued event");
    assert_eq!(
        event.received_at, stages.received,
        "the events' received_at is the first stage"
    );
}

#[tokio::test]
async fn a_refused_request_reports_only_the_stages_it_reached() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, _events) = endpoint(config(), &source);
    let recorder = Arc::new(Recorder::default());
    endpoint.set_stage_observer(recorder.clone());

    let (status, response) = send(&endpoint, post(None, Some("application/json"), transfer_accepted())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop(response);
    let (status, response) = send(&endpoint, json_post(&A.sign(&claims()), "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    body_text(response).await;

    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one report per request, dropped body or read body");
    let (unauthorized, _) = &seen[0];
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.authenticated, None);
    assert_eq!(unauthorized.parsed, None);
    let (malformed, _) = &seen[1];
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.authenticated.is_some());
    assert_eq!(malformed.parsed, None);
    assert_eq!(malformed.queued, None);
}

#[tokio::test]
async fn without_an_observer_nothing_changes() {
    let source = TestKeySource::new(&[A]);
    let (endpoint, mut events) = endpoint(config(), &source);
    let (status, response) = send(&endpoint, json_post(&A.sign(&claims()), transfer_accepted())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body_text(response).await, "");
    assert!(events.try_recv().is_some());
}
