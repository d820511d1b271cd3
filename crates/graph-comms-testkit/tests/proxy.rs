//! The round-robin proxy in front of real HTTP servers on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use graph_comms_testkit::RoundRobinProxy;
use serde_json::{Value, json};

/// An HTTP server on a free loopback port that echoes what it received, and
/// answers `GET /busy` with 503 and `Retry-After: 7`. Returns its base URL.
async fn echo_server(name: &'static str) -> String {
    let echo = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        (
            StatusCode::ACCEPTED,
            [("x-upstream", name)],
            axum::Json(json!({
                "name": name,
                "method": method.as_str(),
                "uri": uri.to_string(),
                "authorization": header("authorization"),
                "content_type": header("content-type"),
                "body": String::from_utf8_lossy(&body),
            })),
        )
    };
    let busy = || async { (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "7")], "busy\n").into_response() };
    let router = Router::new().route("/busy", get(busy)).fallback(echo);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A loopback URL nobody listens on (the port was bound and released).
fn refused_url() -> String {
    format!("http://127.0.0.1:{}", graph_comms_testkit::free_port().unwrap())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn post(proxy: &RoundRobinProxy, n: usize) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{}/api/calls?n={n}", proxy.url()))
        .header("authorization", format!("Bearer token-{n}"))
        .header("content-type", "application/json")
        .body(format!("{{\"n\":{n}}}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_go_round_robin_with_method_path_headers_and_body() {
    let upstreams = vec![echo_server("a").await, echo_server("b").await, echo_server("c").await];
    let proxy = RoundRobinProxy::start(upstreams.clone()).await.unwrap();
    let mut names = Vec::new();
    for n in 0..6 {
        let (status, echo) = post(&proxy, n).await;
        assert_eq!(status, StatusCode::ACCEPTED, "the upstream's status comes back: {echo}");
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["uri"], format!("/api/calls?n={n}"));
        assert_eq!(echo["authorization"], format!("Bearer token-{n}"));
        assert_eq!(echo["content_type"], "application/json");
        assert_eq!(echo["body"], format!("{{\"n\":{n}}}"));
        names.push(echo["name"].as_str().unwrap().to_owned());
    }
    assert_eq!(names, ["a", "b", "c", "a", "b", "c"]);
    for counters in proxy.counters() {
        assert!(counters.active);
        assert_eq!(
            (counters.forwarded, counters.refused, counters.failed),
            (2, 0, 0),
            "{counters:?}"
        );
    }
    assert_eq!(proxy.upstreams(), upstreams);
}

#[tokio::test]
async fn status_headers_and_retry_after_come_back_unchanged() {
    let proxy = RoundRobinProxy::start(vec![echo_server("a").await]).await.unwrap();
    let response = client().get(format!("{}/busy", proxy.url())).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.text().await.unwrap(), "busy\n");
    let response = client().get(format!("{}/x", proxy.url())).send().await.unwrap();
    assert_eq!(response.headers()["x-upstream"], "a");
}

#[tokio::test]
async fn an_upstream_that_refuses_the_connection_is_skipped() {
    let dead = refused_url();
    let proxy = RoundRobinProxy::start(vec![echo_server("a").await, dead.clone(), echo_server("b").await])
        .await
        .unwrap();
    let mut names = Vec::new();
    for n in 0..6 {
        let (status, echo) = post(&proxy, n).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{echo}");
        names.push(echo["name"].as_str().unwrap().to_owned());
    }
    // Every request the dead one would have had went to the next one instead.
    assert_eq!(names, ["a", "b", "b", "a", "b", "b"]);
    let counters = proxy.counters();
    let dead = counters.iter().find(|c| c.url == dead).unwrap();
    assert_eq!((dead.forwarded, dead.refused), (0, 2), "{dead:?}");
    assert_eq!(proxy.unavailable(), 0);
}

#[tokio::test]
async fn with_no_upstream_taking_the_connection_the_answer_is_502() {
    let proxy = RoundRobinProxy::start(vec![refused_url(), refused_url()])
        .await
        .unwrap();
    let (status, _) = post(&proxy, 0).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    proxy.set_upstreams(Vec::new());
    let (status, _) = post(&proxy, 1).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.unavailable(), 2);
}

#[tokio::test]
async fn set_upstreams_changes_the_rotation_and_keeps_the_counters() {
    let (a, b) = (echo_server("a").await, echo_server("b").await);
    let proxy = RoundRobinProxy::start(vec![a.clone()]).await.unwrap();
    assert_eq!(post(&proxy, 0).await.1["name"], "a");
    // A restarted instance comes back on another port.
    proxy.set_upstreams(vec![format!("{b}/")]);
    assert_eq!(post(&proxy, 1).await.1["name"], "b");
    assert_eq!(post(&proxy, 2).await.1["name"], "b");
    let counters = proxy.counters();
    assert_eq!(counters.len(), 2, "{counters:?}");
    assert_eq!(
        (counters[0].url.as_str(), counters[0].active, counters[0].forwarded),
        (a.as_str(), false, 1)
    );
    assert_eq!(
        (counters[1].url.as_str(), counters[1].active, counters[1].forwarded),
        (b.as_str(), true, 2)
    );
    proxy.shutdown().await;
}
