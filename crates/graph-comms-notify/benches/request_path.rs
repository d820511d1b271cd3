//! The cost of the notification request path, beside a bare axum handler that
//! only reads the body and answers 202, measured in the same run.
//!
//! `cargo bench -p graph-comms-notify` (add `-- --warm-up-time 1 --measurement-time 3` for a short run).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use common::{A, PATH, TestKeySource, transfer_accepted};
use criterion::Criterion;
use graph_comms_notify::EventReceiver;
use http::{Request, StatusCode};
use tower::ServiceExt;

struct Path {
    name: &'static str,
    router: Router,
    events: Option<EventReceiver>,
}

fn request(token: &str) -> Request<Body> {
    Request::post(PATH)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(transfer_accepted()))
        .unwrap()
}

fn notify_path(name: &'static str, token_cache: bool) -> Path {
    let mut config = common::config();
    config.token_cache = token_cache;
    let (endpoint, events) = common::endpoint(config, &TestKeySource::new(&[A]));
    Path {
        name,
        router: endpoint.router_at(PATH),
        events: Some(events),
    }
}

fn bare_path() -> Path {
    let router = Router::new().route(
        PATH,
        post(|body: bytes::Bytes| async move {
            black_box(body);
            StatusCode::ACCEPTED
        }),
    );
    Path {
        name: "bare_axum_202",
        router,
        events: None,
    }
}

impl Path {
    fn run(&mut self, runtime: &tokio::runtime::Runtime, token: &str) {
        let response = runtime.block_on(self.router.clone().oneshot(request(token))).unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        if let Some(events) = &mut self.events {
            black_box(events.try_recv());
        }
    }

    /// Mean time per request over a fixed loop, for the printed ratio.
    fn mean(&mut self, runtime: &tokio::runtime::Runtime, token: &str, iterations: u32) -> Duration {
        let start = Instant::now();
        for _ in 0..iterations {
            self.run(runtime, token);
        }
        start.elapsed() / iterations
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let token = A.sign(&common::claims());
    let mut paths = [
        bare_path(),
        notify_path("notify_cached_token", true),
        notify_path("notify_uncached_token", false),
    ];
    for path in &mut paths {
        path.run(&runtime, &token); // load keys, fill the token cache
    }

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("request_path");
    for path in &mut paths {
        let name = path.name;
        group.bench_function(name, |b| b.iter(|| path.run(&runtime, &token)));
    }
    group.finish();
    criterion.final_summary();

    // Under `cargo test --benches` each benchmark runs once; the ratio only means something in a bench run.
    if std::env::args().any(|a| a == "--bench") {
        let iterations = 2_000;
        let [bare, cached, uncached] = &mut paths;
        let bare = bare.mean(&runtime, &token, iterations);
        let cached = cached.mean(&runtime, &token, iterations);
        let uncached = uncached.mean(&runtime, &token, iterations);
        let ratio = |d: Duration| d.as_secs_f64() / bare.as_secs_f64();
        println!(
            "request_path ratio over {iterations} requests: bare {bare:?}, cached {cached:?} ({:.2}x), uncached {uncached:?} ({:.2}x)",
            ratio(cached),
            ratio(uncached)
        );
    }
}
