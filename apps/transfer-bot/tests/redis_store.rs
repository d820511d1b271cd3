//! The bot with `store.kind = "redis"`, end to end against the Graph emulator
//! over real HTTP: calls are written to Redis, and readiness follows Redis.
//!
//! The tests that need a Redis use `GRAPH_COMMS_REDIS_URL` (`scripts/test.sh`
//! starts a private one); without it they are skipped locally and fail under CI.

#![cfg(feature = "demo")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use graph_comms_handler::CallStore as _;
use graph_comms_redis::{RedisCallStore, RedisStoreConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use transfer_bot::bot::{BotEventKind, CallOutcome};
use transfer_bot::config::{RedisUrl, StoreSettings};
use transfer_bot::demo::{DemoEnvironment, Scenario, scenarios};

mod openmetrics;

/// Every family the Redis store registers (`RedisCallStore::register_metrics`).
const REDIS_FAMILIES: &[&str] = &[
    "graph_comms_redis_operations",
    "graph_comms_redis_round_trips",
    "graph_comms_redis_conflicts",
    "graph_comms_redis_fenced_writes",
    "graph_comms_redis_index_repairs",
    "graph_comms_redis_index_errors",
    "graph_comms_redis_script_loads",
];

/// A key prefix no other test run uses.
fn unique_prefix() -> String {
    format!(
        "transfer-bot-test-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )
}

fn scenario(name: &str) -> Scenario {
    scenarios().unwrap().into_iter().find(|s| s.name == name).unwrap()
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of an unlabelled or labelled sample line, e.g. `name{op="save"}`.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_call_is_kept_in_redis() {
    let Some(url) = graph_comms_testkit::redis_url() else {
        return;
    };
    let prefix = unique_prefix();
    let blind = scenario("blind transfer");
    let mut store = StoreSettings::redis(RedisUrl::parse(&url).unwrap(), prefix.clone());
    // A fixed id: the default (the host name) is not the label check's business.
    store.instance_id = "redis-test-a".into();
    let mut env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_with_store(std::slice::from_ref(&blind), store),
    )
    .await
    .expect("start timed out")
    .expect("the bot did not start");
    assert!(
        env.bot.redis_store.is_some(),
        "store.kind = redis builds the Redis store"
    );

    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("call_store: true\n"), "{body}");

    let call = env.placer.place(&blind, 0).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = env.events.recv().await.unwrap();
            if event.call_id == call
                && let BotEventKind::Finished { outcome, .. } = event.kind
            {
                return outcome;
            }
        }
    })
    .await
    .expect("the call did not finish");
    assert_eq!(
        outcome,
        CallOutcome::Transferred {
            target: "user:alice".into()
        }
    );

    // Read the call back through a connection of our own, as another instance would.
    let inspect = RedisCallStore::connect(RedisStoreConfig::new(url.clone()).prefix(prefix.clone()))
        .await
        .expect("connecting to the test Redis");
    let key = inspect.record_key(&call);
    assert!(key.starts_with(&format!("{prefix}:{{")), "{key}");
    // The record's last write may still be in flight when the hook reports the outcome.
    let deadline = Instant::now() + Duration::from_secs(5);
    let record = loop {
        let record = inspect
            .load(&call)
            .await
            .unwrap()
            .expect("the call's record is in Redis");
        let done = record
            .attempt
            .as_ref()
            .and_then(|a| a.machine.outcome())
            .is_some_and(|o| o.is_completed());
        if done || Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(record.call_id(), &call);
    assert!(
        record.version >= 2,
        "every change is a versioned write: {}",
        record.version
    );
    let attempt = record.attempt.as_ref().expect("the transfer attempt is recorded");
    assert!(
        attempt.machine.outcome().is_some_and(|o| o.is_completed()),
        "the stored attempt completed: {:?}",
        attempt.machine.outcome()
    );
    assert_eq!(record.attempts_started, 1);

    let (status, metrics) = http_get(env.bot.addr, "/metrics").await;
    assert_eq!(status, 200);
    let scrape = openmetrics::parse(&metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    for family in REDIS_FAMILIES {
        assert!(scrape.families.contains_key(*family), "no {family} in:\n{metrics}");
    }
    assert_eq!(openmetrics::identifying_label_values(&scrape), Vec::<String>::new());
    assert!(
        metrics.contains("transfer_bot_instance_info{instance_id=\"redis-test-a\""),
        "{metrics}"
    );
    assert!(metrics.contains(",store=\"redis\"} 1"), "{metrics}");
    // Instances on Redis share calls: notifications are appended before 202 and
    // every write is a commit under the call's lease.
    assert!(
        sample(&metrics, "graph_comms_redis_operations_total{op=\"append\"}") >= 2,
        "{metrics}"
    );
    assert!(
        sample(&metrics, "graph_comms_redis_operations_total{op=\"commit\"}") >= 2,
        "{metrics}"
    );
    assert!(sample(&metrics, "graph_comms_redis_round_trips_total{op=\"commit\"}") >= 2);
    assert!(sample(&metrics, "graph_comms_call_claims_total") >= 1, "{metrics}");
    assert_eq!(sample(&metrics, "graph_comms_leases_lost_total"), 0);
    assert_eq!(sample(&metrics, "graph_comms_redis_conflicts_total"), 0);
    assert_eq!(sample(&metrics, "graph_comms_store_errors_total"), 0);

    // Round trips on the notification path (the periodic sweeps aside) per
    // notification item received: append-and-claim, commit, release.
    let store_metrics = env.bot.redis_store.as_ref().unwrap().metrics();
    let path = [
        store_metrics.append,
        store_metrics.claim,
        store_metrics.commit,
        store_metrics.release,
        store_metrics.renew,
        store_metrics.load,
        store_metrics.save,
        store_metrics.delete,
    ];
    // A script's first use on a Redis costs one more round trip (NOSCRIPT, then EVAL): not per notification.
    let round_trips: u64 = path.iter().map(|op| op.round_trips).sum::<u64>() - store_metrics.script_loads;
    let notifications = env.bot.bot.notify_endpoint().metrics().queued_events;
    #[allow(clippy::cast_precision_loss)]
    let per_notification = round_trips as f64 / notifications as f64;
    println!(
        "redis round trips: {round_trips} for {notifications} notifications = {per_notification:.2} each; {store_metrics:?}"
    );
    assert!(notifications >= 3, "{notifications}");
    assert!(
        per_notification <= 3.0,
        "{per_notification:.2} round trips per notification: {store_metrics:?}"
    );

    env.shutdown().await;

    // Leave the shared test Redis clean.
    let mut connection = inspect.connection();
    let _: redis::RedisResult<u64> = redis::cmd("DEL")
        .arg(&key)
        .arg(inspect.due_index_key())
        .arg(inspect.calls_index_key())
        .query_async(&mut connection)
        .await;
}

/// With `store.outage_journal = 0` nothing can take notifications while Redis
/// is down, so the instance is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_says_call_store_false_when_redis_does_not_answer() {
    // A loopback port nobody listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = RedisUrl::parse(&format!("redis://:not-shown@127.0.0.1:{closed}/")).unwrap();
    let blind = scenario("blind transfer");
    // Starts (keys and token come from the emulator) although Redis is down.
    let without_journal = StoreSettings {
        outage_journal: 0,
        ..StoreSettings::redis(url, unique_prefix())
    };
    let env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_with_store(std::slice::from_ref(&blind), without_journal),
    )
    .await
    .expect("start timed out")
    .expect("the bot must start while Redis is down");

    let started = Instant::now();
    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("call_store: false\n"), "{body}");
    assert!(
        body.contains("signing_keys: true\n"),
        "only the store is missing: {body}"
    );
    assert!(body.contains("graph_token: true\n"), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the probe is bounded: {:?}",
        started.elapsed()
    );
    assert!(!env.bot.call_store_ready().await);

    // The rest of the app keeps serving.
    let (status, _) = http_get(env.bot.addr, "/healthz").await;
    assert_eq!(status, 200);
    let (status, metrics) = http_get(env.bot.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("graph_comms_redis_operations_total{op=\"load\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("not-shown"));

    tokio::time::timeout(Duration::from_secs(20), env.shutdown())
        .await
        .expect("shutdown with Redis down timed out");
}

/// With the outage journal (the default) an instance stays ready while Redis
/// does not answer: were every instance unready at once, Graph would have no
/// address to deliver to, where the journal can take its notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_stays_on_while_redis_does_not_answer_and_the_outage_journal_has_room() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = RedisUrl::parse(&format!("redis://127.0.0.1:{closed}/")).unwrap();
    let blind = scenario("blind transfer");
    let env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_with_store(std::slice::from_ref(&blind), StoreSettings::redis(url, unique_prefix())),
    )
    .await
    .expect("start timed out")
    .expect("the bot must start while Redis is down");
    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("call_store: false\n"), "{body}");
    assert!(body.contains("outage_journal: 0\n"), "{body}");
    tokio::time::timeout(Duration::from_secs(20), env.shutdown())
        .await
        .expect("shutdown with Redis down timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_is_always_ready() {
    let blind = scenario("blind transfer");
    let env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start(std::slice::from_ref(&blind)),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(env.bot.redis_store.is_none());
    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("call_store: true\n"), "{body}");
    let (_, metrics) = http_get(env.bot.addr, "/metrics").await;
    assert!(metrics.contains(",store=\"memory\"} 1"), "{metrics}");
    assert!(!metrics.contains("graph_comms_redis_"), "{metrics}");
    env.shutdown().await;
}

/// `store.redis_url = "rediss://..."` with `store.tls_ca_file`: the bot gets
/// ready on a Redis that serves only TLS on that port, and a transferred
/// call's record is there. As Azure Cache for Redis (6380) and Azure Managed
/// Redis (10000) serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_on_a_tls_redis_with_its_ca_keeps_its_calls_there() {
    let dir = tempfile::tempdir().unwrap();
    let pki = graph_comms_testkit::TestPki::generate().unwrap();
    let files = pki.write_to(dir.path()).unwrap();
    let redis = graph_comms_testkit::RedisServer::start_tls(&files, false);
    let url = redis.tls_url().unwrap();
    let prefix = unique_prefix();
    let blind = scenario("blind transfer");
    let mut store = StoreSettings::redis(RedisUrl::parse(&url).unwrap(), prefix.clone());
    store.instance_id = "redis-tls-test".into();
    store.tls = transfer_bot::config::StoreTls {
        ca_pem: Some(pki.ca_cert.clone()),
        ..Default::default()
    };
    let mut env = tokio::time::timeout(
        Duration::from_secs(20),
        DemoEnvironment::start_with_store(std::slice::from_ref(&blind), store),
    )
    .await
    .expect("start timed out")
    .expect("the bot did not start");
    let (status, body) = http_get(env.bot.addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("call_store: true\n"), "{body}");
    let call = env.placer.place(&blind, 0).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let event = env.events.recv().await.unwrap();
            if event.call_id == call && matches!(event.kind, BotEventKind::Finished { .. }) {
                return;
            }
        }
    })
    .await
    .expect("the call did not finish");
    let tls = graph_comms_redis::RedisTls::new().ca_pem(pki.ca_cert.as_bytes());
    let inspect = RedisCallStore::connect(RedisStoreConfig::new(url).prefix(prefix).tls(tls))
        .await
        .expect("connecting over TLS");
    assert!(
        inspect.load(&call).await.unwrap().is_some(),
        "the call's record is in the TLS Redis"
    );
}
