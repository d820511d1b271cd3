//! Micro-benchmarks of the per-notification hot paths, each next to its baseline:
//! envelope parsing vs `serde_json::Value`, a token-cache hit through the notify
//! router vs a bare axum router, one step of the pure transfer machine, and a
//! `CallId` map lookup vs a `String` key with the same text.
//! Under `cargo test` criterion runs each once, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/token.rs"]
#[allow(dead_code, unreachable_pub)]
mod token;

use std::hint::black_box;
use std::sync::Arc;

use axum::body::Body;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use graph_comms_core::transfer_machine::{AttemptInput, TransferMachine};
use graph_comms_model::CommsNotifications;
use graph_comms_notify::{NotifyConfig, NotifyEndpoint};
use http::Request;
use tower::ServiceExt as _;

/// The docs' transfer-accepted notification.
fn body() -> &'static [u8] {
    static BODY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BODY.get_or_init(|| graph_comms_testkit::fixtures::read("call-transfer.ex1.notify.transfer-accepted.json"))
        .as_bytes()
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope_parse");
    let body = body();
    group.bench_function("CommsNotifications::from_slice", |b| {
        b.iter(|| CommsNotifications::from_slice(black_box(body)).unwrap())
    });
    group.bench_function("baseline serde_json::Value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap())
    });
    group.finish();
}

fn request(token: &str) -> Request<Body> {
    Request::post("/api/calls")
        .header("content-type", "application/json")
        .header("authorization", token)
        .body(Body::from(body()))
        .unwrap()
}

fn token_cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = graph_comms_emulator::NotificationSigner::new().unwrap();
    let token = format!(
        "Bearer {}",
        key.sign(
            "https://api.botframework.com",
            "bench-app",
            "bench-tenant",
            std::time::Duration::from_secs(3600)
        )
        .unwrap()
    );
    let keys = token::StaticKeys {
        keys: token::jwks(&key).unwrap(),
        also: None,
    };
    let (endpoint, mut events) =
        NotifyEndpoint::with_key_source(NotifyConfig::new("bench-app"), Arc::new(keys)).unwrap();
    runtime.block_on(endpoint.refresh_keys()).unwrap();
    let notify = endpoint.router_at("/api/calls");
    let bare = axum::Router::new().route(
        "/api/calls",
        axum::routing::post(|body: bytes::Bytes| async move {
            black_box(body);
            http::StatusCode::ACCEPTED
        }),
    );
    // The first request verifies the signature and fills the cache.
    let first = runtime.block_on(notify.clone().oneshot(request(&token))).unwrap();
    assert_eq!(first.status(), http::StatusCode::ACCEPTED);
    let mut group = c.benchmark_group("webhook_request");
    group.bench_function("notify router, cached token", |b| {
        b.iter(|| {
            let response = runtime.block_on(notify.clone().oneshot(request(&token))).unwrap();
            assert_eq!(response.status(), http::StatusCode::ACCEPTED);
            while events.try_recv().is_some() {}
        })
    });
    group.bench_function("baseline bare axum router", |b| {
        b.iter(|| {
            let response = runtime.block_on(bare.clone().oneshot(request(&token))).unwrap();
            assert_eq!(response.status(), http::StatusCode::ACCEPTED);
        })
    });
    group.finish();
}

fn machine_step(c: &mut Criterion) {
    let mut transferring = TransferMachine::new(false);
    transferring.handle(AttemptInput::Transferring);
    let mut group = c.benchmark_group("transfer_machine");
    group.bench_function("transferring -> transferAccepted", |b| {
        b.iter_batched(
            || transferring.clone(),
            |mut machine| machine.handle(black_box(AttemptInput::TransferAccepted)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A lookup in a map of 1,000 calls, keyed by `CallId` (case- and dash-insensitive)
/// and by `String` (exact); both use std's SipHash with a random key.
fn call_id_lookup(c: &mut Criterion) {
    use graph_comms_model::CallId;
    use std::collections::HashMap;
    let texts: Vec<String> = (0..1000u32)
        .map(|n| format!("{n:08x}-894c-409a-b240-bd8beae78896"))
        .collect();
    let by_id: HashMap<CallId, u32> = texts
        .iter()
        .zip(0..)
        .map(|(t, n)| (CallId::new(t.clone()), n))
        .collect();
    let by_string: HashMap<String, u32> = texts.iter().cloned().zip(0..).collect();
    let wanted_id = CallId::new(texts[500].clone());
    let wanted_text = texts[500].clone();
    let mut group = c.benchmark_group("call_id_lookup");
    group.bench_function("HashMap<CallId, _>::get", |b| {
        b.iter(|| by_id.get(black_box(&wanted_id)))
    });
    group.bench_function("baseline HashMap<String, _>::get", |b| {
        b.iter(|| by_string.get(black_box(&wanted_text)))
    });
    group.finish();
}

criterion_group!(benches, parse, token_cache_hit, machine_step, call_id_lookup);
criterion_main!(benches);
