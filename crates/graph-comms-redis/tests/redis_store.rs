//! `RedisCallStore` against the real Redis named by `GRAPH_COMMS_REDIS_URL`
//! (`./scripts/test.sh` starts a private one). Every test uses a key prefix of
//! its own, so the tests run in parallel on one Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_comms_core::{CallStore, StoreError};
use graph_comms_redis::{ConnectError, RedisCallStore, RedisStoreConfig};
use graph_comms_testkit::records::{empty_record, now_millis, typical_record, unique_call_id};
use graph_comms_testkit::{redis_url, store_contract};
use redis::AsyncCommands;

fn config(url: &str, tag: &str) -> RedisStoreConfig {
    RedisStoreConfig::new(url).prefix(format!("test:{}", unique_call_id(tag)))
}

async fn store(tag: &str) -> Option<RedisCallStore> {
    let url = redis_url()?;
    Some(
        RedisCallStore::connect(config(&url, tag))
            .await
            .expect("connect to GRAPH_COMMS_REDIS_URL"),
    )
}

macro_rules! contract_test {
    ($name:ident, $check:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(store) = store(stringify!($name)).await else {
                return;
            };
            store_contract::$check(Arc::new(store)).await;
        }
    };
}

contract_test!(redis_first_write_must_be_version_one, first_write_must_be_version_one);
contract_test!(
    redis_stale_write_is_refused_and_changes_nothing,
    stale_write_is_refused_and_changes_nothing
);
contract_test!(redis_load_returns_what_was_saved, load_returns_what_was_saved);
contract_test!(redis_delete_is_compare_and_set, delete_is_compare_and_set);
contract_test!(redis_due_lists_exactly_the_due_calls, due_lists_exactly_the_due_calls);
contract_test!(
    redis_ended_records_are_forgotten_after_expiry,
    ended_records_are_forgotten_after_expiry
);
contract_test!(redis_count_counts_stored_calls, count_counts_stored_calls);
contract_test!(redis_whole_contract_on_one_store, run_all);

macro_rules! shared_contract_test {
    ($name:ident, $check:ident) => {
        #[tokio::test]
        async fn $name() {
            let Some(store) = store(stringify!($name)).await else {
                return;
            };
            graph_comms_testkit::shared_contract::$check(&store).await;
        }
    };
}

shared_contract_test!(redis_one_lease_holder_at_a_time, one_holder_at_a_time);
shared_contract_test!(
    redis_inbox_items_are_read_in_order_and_dropped_when_handled,
    items_are_read_in_order_and_dropped_when_handled
);
shared_contract_test!(
    redis_an_expired_lease_fences_its_holder,
    an_expired_lease_fences_its_holder
);
shared_contract_test!(
    redis_commits_under_a_lease_keep_the_version_compare_and_set,
    commits_keep_the_version_compare_and_set
);
shared_contract_test!(
    redis_release_reports_items_appended_meanwhile,
    release_reports_items_appended_meanwhile
);
shared_contract_test!(
    redis_orphans_are_calls_with_items_and_no_live_lease,
    orphans_are_calls_with_items_and_no_live_lease
);
shared_contract_test!(
    redis_steps_left_in_an_outbox_make_an_orphan,
    steps_left_in_an_outbox_make_an_orphan
);
shared_contract_test!(
    redis_a_transfer_not_known_sent_makes_an_orphan,
    a_transfer_not_known_sent_makes_an_orphan
);
shared_contract_test!(
    redis_peek_reads_inbox_items_without_taking_them,
    peek_reads_items_without_taking_them
);

#[test]
fn redis_two_writers_lose_no_update() {
    let Some(url) = redis_url() else { return };
    store_contract::no_lost_updates_with_two_writers(32, || async move {
        let store = RedisCallStore::connect(config(&url, "two-writers"))
            .await
            .expect("connect");
        Arc::new(store) as Arc<dyn CallStore>
    });
}

#[tokio::test]
async fn redis_record_is_stored_as_its_json_and_read_back_schema_checked() {
    let Some(store) = store("json").await else { return };
    let mut record = typical_record(unique_call_id("json"), now_millis());
    record.version = 1;
    let record = Arc::new(record);
    store.save(Arc::clone(&record)).await.unwrap();
    let mut conn = store.connection();
    let raw: Vec<u8> = conn.get(store.record_key(record.call_id())).await.unwrap();
    assert_eq!(raw, record.to_json().unwrap(), "the value is CallRecord::to_json()");
    assert_eq!(store.load(record.call_id()).await.unwrap().as_deref(), Some(&*record));

    // Another schema is refused by load with a clear error, not misread.
    let mut json: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    json["schema"] = 99.into();
    let other = unique_call_id("json-schema");
    let _: () = conn.set(store.record_key(&other), json.to_string()).await.unwrap();
    let error = store.load(&other).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Corrupt(ref m) if m.contains("schema 99")),
        "{error}"
    );
}

#[tokio::test]
async fn redis_ids_differing_in_case_and_dashes_are_one_call() {
    let Some(store) = store("canonical").await else { return };
    let id = unique_call_id("Canon-ID");
    let shouted = graph_comms_core::model::CallId::from(id.as_str().to_uppercase().replace('-', ""));
    let mut record = empty_record(id.clone());
    record.version = 1;
    store.save(Arc::new(record)).await.unwrap();
    assert_eq!(store.load(&shouted).await.unwrap().map(|r| r.version), Some(1));
    assert_eq!(store.record_key(&id), store.record_key(&shouted));
}

#[tokio::test]
async fn redis_ended_record_has_a_ttl_at_its_forget_time() {
    let Some(store) = store("ttl").await else { return };
    let now = now_millis();
    let mut conn = store.connection();

    let mut live = typical_record(unique_call_id("ttl-live"), now);
    live.version = 1;
    store.save(Arc::new(live.clone())).await.unwrap();
    let ttl: i64 = conn.pttl(store.record_key(live.call_id())).await.unwrap();
    assert_eq!(ttl, -1, "a live call does not expire");

    let mut ended = live.clone();
    ended.version = 2;
    ended.lifecycle.ended = true;
    ended.lifecycle.deadlines = Default::default();
    ended.lifecycle.deadlines.forget = Some(now + Duration::from_secs(60));
    store.save(Arc::new(ended)).await.unwrap();
    let ttl: i64 = conn.pttl(store.record_key(live.call_id())).await.unwrap();
    println!("PTTL of an ended call kept 60 s: {ttl} ms");
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");

    // Without a forget time, the configured retention applies.
    let url = redis_url().unwrap();
    let store = RedisCallStore::connect(config(&url, "ttl-default").ended_retention(Duration::from_secs(90)))
        .await
        .unwrap();
    let mut no_forget = empty_record(unique_call_id("ttl-no-forget"));
    no_forget.version = 1;
    no_forget.lifecycle.ended = true;
    store.save(Arc::new(no_forget.clone())).await.unwrap();
    let ttl: i64 = conn.pttl(store.record_key(no_forget.call_id())).await.unwrap();
    assert!(
        ttl > 60_000 && ttl <= 90_000,
        "PTTL {ttl} with a 90 s default retention"
    );
}

#[tokio::test]
async fn redis_keys_carry_the_call_hash_tag() {
    let Some(store) = store("hash-tag").await else { return };
    let id = unique_call_id("Hash-Tag");
    let mut record = empty_record(id.clone());
    record.version = 1;
    record.lifecycle.deadlines.idle = Some(now_millis() + Duration::from_secs(60));
    store.save(Arc::new(record)).await.unwrap();

    let key = store.record_key(&id);
    let tag = |key: &str| -> String {
        let open = key.find('{').expect("a hash tag opens");
        let close = open + key[open..].find('}').expect("a hash tag closes");
        key[open + 1..close].to_owned()
    };
    println!(
        "record key {key}, indexes {} and {}",
        store.due_index_key(),
        store.calls_index_key()
    );
    assert_eq!(tag(&key), id.canonical(), "the record's hash tag is the call id");
    assert_eq!(
        tag(store.due_index_key()),
        tag(store.calls_index_key()),
        "the indexes share a slot"
    );
    let mut conn = store.connection();
    let exists: bool = conn.exists(&key).await.unwrap();
    assert!(exists, "the record is at {key}");
    let member: Option<f64> = conn.zscore(store.due_index_key(), id.canonical()).await.unwrap();
    assert!(member.is_some(), "the call is in the due index");
}

#[tokio::test]
async fn redis_memory_usage_of_a_typical_record_is_under_2_kib() {
    let Some(store) = store("memory").await else { return };
    let mut record = typical_record(unique_call_id("memory"), now_millis());
    record.version = 1;
    let json_len = record.to_json().unwrap().len();
    store.save(Arc::new(record.clone())).await.unwrap();
    let mut conn = store.connection();
    let bytes: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(store.record_key(record.call_id()))
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut conn)
        .await
        .unwrap();
    println!("MEMORY USAGE of a typical call record: {bytes} B (JSON {json_len} B)");
    assert!(bytes > 0 && bytes < 2048, "MEMORY USAGE {bytes} B");
}

#[tokio::test]
async fn redis_round_trips_per_operation() {
    let Some(store) = store("round-trips").await else {
        return;
    };
    let now = now_millis();
    // Warm-up: the scripts get cached (the first use may cost a full EVAL).
    let mut warm = empty_record(unique_call_id("warm"));
    warm.version = 1;
    store.save(Arc::new(warm.clone())).await.unwrap();
    store.delete(warm.call_id(), 1).await.unwrap();
    let before = store.metrics();

    let n = 20u64;
    for i in 0..n {
        let mut record = typical_record(unique_call_id("rt"), now);
        record.version = 1;
        let record = Arc::new(record);
        store.save(Arc::clone(&record)).await.unwrap();
        store.load(record.call_id()).await.unwrap().unwrap();
        let mut v2 = (*record).clone();
        v2.version = 2;
        v2.data = Some(serde_json::json!(i));
        store.save(Arc::new(v2)).await.unwrap();
        store.delete(record.call_id(), 2).await.unwrap();
    }
    store.due(now, 100).await.unwrap();
    store.count().await.unwrap();
    let after = store.metrics();
    let per = |b: graph_comms_redis::OpStats, a: graph_comms_redis::OpStats| {
        #[allow(clippy::cast_precision_loss)]
        let ratio = (a.round_trips - b.round_trips) as f64 / (a.calls - b.calls).max(1) as f64;
        ratio
    };
    let (save, load, delete) = (
        per(before.save, after.save),
        per(before.load, after.load),
        per(before.delete, after.delete),
    );
    let (due, count) = (per(before.due, after.due), per(before.count, after.count));
    println!("round trips per operation: save {save}, load {load}, delete {delete}, due {due}, count {count}");
    assert_eq!(after.save.calls - before.save.calls, 2 * n);
    assert!(
        (save - 1.0).abs() < f64::EPSILON,
        "save takes one round trip, took {save}"
    );
    assert!(
        (load - 1.0).abs() < f64::EPSILON,
        "load takes one round trip, took {load}"
    );
    assert!(
        (delete - 2.0).abs() < f64::EPSILON,
        "delete takes two round trips, took {delete}"
    );
    assert!(
        (count - 1.0).abs() < f64::EPSILON,
        "count takes one round trip, took {count}"
    );
    assert!(due <= 5.0, "due took {due} round trips");
}

#[tokio::test]
async fn redis_script_flushed_from_the_server_is_sent_again() {
    let Some(store) = store("noscript").await else { return };
    let mut conn = store.connection();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    let mut record = empty_record(unique_call_id("noscript"));
    record.version = 1;
    store.save(Arc::new(record.clone())).await.unwrap();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    store.delete(record.call_id(), 1).await.unwrap();
    assert!(store.load(record.call_id()).await.unwrap().is_none());
    assert!(store.metrics().script_loads >= 2, "{:?}", store.metrics());
}

#[tokio::test]
async fn redis_due_repairs_entries_of_missing_or_later_records() {
    let Some(store) = store("repair").await else { return };
    let now = now_millis();
    let mut conn = store.connection();
    // An entry for a record that was never written (its write failed).
    let ghost = unique_call_id("ghost");
    let _: () = conn
        .zadd(store.due_index_key(), ghost.canonical(), 1_000.0)
        .await
        .unwrap();
    // An entry earlier than its record's deadline (a refused write lowered it).
    let mut later = empty_record(unique_call_id("later"));
    later.version = 1;
    let later_at = now + Duration::from_secs(300);
    later.lifecycle.deadlines.idle = Some(later_at);
    store.save(Arc::new(later.clone())).await.unwrap();
    let _: () = conn
        .zadd(store.due_index_key(), later.call_id().canonical(), 2_000.0)
        .await
        .unwrap();

    assert!(store.due(now, 10).await.unwrap().is_empty());
    assert_eq!(store.metrics().index_repairs, 2);
    let ghost_score: Option<f64> = conn.zscore(store.due_index_key(), ghost.canonical()).await.unwrap();
    assert_eq!(ghost_score, None, "the entry of a missing record is removed");
    let later_score: Option<f64> = conn
        .zscore(store.due_index_key(), later.call_id().canonical())
        .await
        .unwrap();
    let expected = later_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as f64;
    assert_eq!(later_score, Some(expected), "the entry moves to the record's deadline");
    assert_eq!(
        store.due(later_at, 10).await.unwrap(),
        vec![later.call_id().clone()],
        "and is due then"
    );
}

#[tokio::test]
async fn redis_closed_port_is_unavailable_quickly() {
    // A port nothing listens on: bound, then released.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let started = Instant::now();
    let error = RedisCallStore::connect(RedisStoreConfig::new(&url)).await.unwrap_err();
    println!("connect to a closed port: {error} (after {:?})", started.elapsed());
    assert!(matches!(error, ConnectError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );

    let store = RedisCallStore::connect_lazy(RedisStoreConfig::new(&url)).unwrap();
    let started = Instant::now();
    let error = store.load(&unique_call_id("closed")).await.unwrap_err();
    println!("load from a closed port: {error} (after {:?})", started.elapsed());
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    let mut record = empty_record(unique_call_id("closed"));
    record.version = 1;
    let error = store.save(Arc::new(record)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[test]
fn bad_configuration_is_refused() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let error =
            RedisCallStore::connect_lazy(RedisStoreConfig::new("redis://127.0.0.1:1/").prefix("a{b}")).unwrap_err();
        assert!(matches!(error, ConnectError::InvalidConfig(_)), "{error:?}");
        let error = RedisCallStore::connect_lazy(RedisStoreConfig::new("not a url")).unwrap_err();
        assert!(matches!(error, ConnectError::InvalidConfig(_)), "{error:?}");
    });
}
