//! The callback receiver records what is POSTed, answers as told and wakes
//! waiters on arrival; the shared signers are two distinct keys.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use graph_comms_testkit::fixtures;
use graph_comms_testkit::receiver::CallbackReceiver;
use graph_comms_testkit::signer;

async fn post(url: &str, token: Option<&str>, body: String) -> u16 {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn it_records_each_post_and_answers_202() {
    let receiver = CallbackReceiver::start().await;
    assert!(receiver.url().starts_with("http://127.0.0.1:"), "{}", receiver.url());
    assert!(receiver.url().ends_with("/api/calls"));
    assert!(receiver.received().is_empty());

    let body = fixtures::read("call-transfer.ex1.notify.transfer-accepted.json");
    let token = signer::token("app", "tenant");
    assert_eq!(post(&receiver.url(), Some(&token), body.clone()).await, 202);
    assert_eq!(post(&receiver.url_for("/other"), None, "{}".into()).await, 202);

    let all = receiver.received();
    assert_eq!(all.len(), 2);
    let first = &all[0];
    assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/api/calls"));
    assert_eq!(first.body, body.as_bytes(), "byte for byte");
    assert_eq!(first.bearer_token(), Some(token.as_str()));
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        first.states(),
        [("updated".to_owned(), Some("transferAccepted".to_owned()))]
    );
    assert_eq!(first.call_id().as_str(), "341a0500-d4bf-4224-8b19-1581168d328b");
    assert_eq!(first.json()["value"][0]["changeType"], "updated");
    assert_eq!(all[1].authorization, None);
    assert_eq!(receiver.received_on("/other"), all[1..]);
    assert!(receiver.received_on("/nowhere").is_empty());
}

#[tokio::test]
async fn it_answers_with_the_status_it_is_told() {
    let receiver = CallbackReceiver::start().await;
    receiver.fail_next(2);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(post(&receiver.url(), None, "{}".into()).await);
    }
    assert_eq!(statuses, [500, 500, 202], "two failures, then the usual answer");
    receiver.respond_with(503);
    assert_eq!(post(&receiver.url(), None, "{}".into()).await, 503);
    assert_eq!(receiver.received().len(), 4, "failed requests are recorded too");
}

#[tokio::test]
async fn waiters_wake_when_enough_arrived() {
    let receiver = CallbackReceiver::start().await;
    let url = receiver.url_for("/late");
    let sender = tokio::spawn(async move {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            post(&url, None, "{}".into()).await;
        }
    });
    let on_path = receiver.wait_for_on("/late", 3, Duration::from_secs(10)).await;
    assert_eq!(on_path.len(), 3);
    assert_eq!(receiver.wait_for(3, Duration::from_secs(1)).await.len(), 3);
    sender.await.unwrap();
    let early = receiver
        .wait_until(Duration::from_millis(50), |all| all.len() > 3)
        .await;
    assert_eq!(early.unwrap_err().len(), 3, "a timeout returns what arrived");
}

#[tokio::test]
#[should_panic(expected = "waited 50ms for 1 requests on /api/calls; got nothing")]
async fn a_wait_that_times_out_panics_saying_what_arrived() {
    let receiver = CallbackReceiver::start().await;
    receiver.wait_for_on("/api/calls", 1, Duration::from_millis(50)).await;
}

#[test]
fn the_shared_signers_are_two_keys_published_together() {
    let (shared, other) = (signer::shared(), signer::other());
    assert_ne!(shared.kid(), other.kid());
    assert!(std::ptr::eq(shared, signer::shared()), "generated once");
    let jwks = signer::jwks(&[shared, other]);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [shared.kid(), other.kid()]);
    let token = signer::token("app", "tenant");
    let header = token.split('.').next().unwrap();
    assert!(!header.is_empty());
    assert_eq!(token.split('.').count(), 3);
}
