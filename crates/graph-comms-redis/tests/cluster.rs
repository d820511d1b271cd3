//! `RedisCallStore` on a three-node Redis Cluster: the store contracts (the
//! same checks the single-Redis tests run), pipelines that span nodes,
//! scripts each node must load for itself, and a node stopped with a signal
//! in the middle. The contract tests use the cluster `scripts/test.sh`
//! exports (`GRAPH_COMMS_REDIS_CLUSTER_URL`) or start their own; the restart
//! test always starts its own, since it stops one of its nodes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graph_comms_core::model::CallId;
use graph_comms_core::{CallRecord, CallStore, SharedCallStore, StoreError};
use graph_comms_redis::{ConnectError, RedisCallStore, RedisStoreConfig};
use graph_comms_testkit::records::{empty_record, now_millis, typical_record, unique_call_id};
use graph_comms_testkit::shared_contract::notification_item;
use graph_comms_testkit::signal::Signal;
use graph_comms_testkit::{RedisCluster, shared_contract, shared_or_private_cluster, store_contract};

fn config(seeds: &[String], tag: &str) -> RedisStoreConfig {
    RedisStoreConfig::cluster(seeds.iter().cloned()).prefix(format!("test:{}", unique_call_id(tag)))
}

async fn connect(seeds: &[String], tag: &str) -> RedisCallStore {
    RedisCallStore::connect(config(seeds, tag))
        .await
        .expect("connect to the Redis Cluster")
}

#[tokio::test]
async fn cluster_store_keeps_the_call_store_contract() {
    let (seeds, _cluster) = shared_or_private_cluster();
    let store = connect(&seeds, "contract").await;
    assert!(store.connection().is_cluster());
    store_contract::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn cluster_store_keeps_the_shared_store_contract() {
    let (seeds, _cluster) = shared_or_private_cluster();
    let store = connect(&seeds, "shared").await;
    shared_contract::run_all(Arc::new(store)).await;
}

#[test]
fn cluster_two_writers_lose_no_update() {
    let (seeds, _cluster) = shared_or_private_cluster();
    store_contract::no_lost_updates_with_two_writers(16, || {
        let seeds = seeds.clone();
        async move { Arc::new(connect(&seeds, "two-writers").await) as Arc<dyn CallStore> }
    });
}

/// Call ids whose keys land on every node (the slot decides the node).
fn spread_ids(tag: &str, n: usize) -> Vec<CallId> {
    (0..n).map(|_| unique_call_id(tag)).collect()
}

#[tokio::test]
async fn cluster_pipelines_spanning_nodes_are_split_and_counted() {
    let (seeds, _cluster) = shared_or_private_cluster();
    let store = connect(&seeds, "spread").await;
    let now = now_millis();
    let ids = spread_ids("spread", 24);
    for id in &ids {
        let mut record = empty_record(id.clone());
        record.version = 1;
        record.lifecycle.deadlines.idle = Some(now - Duration::from_secs(1));
        store.save(Arc::new(record)).await.unwrap();
    }
    let before = store.metrics();
    // `due` reads every candidate's record in one pipeline: 24 calls, many slots.
    let due: HashSet<CallId> = store.due(now, 100).await.unwrap().into_iter().collect();
    assert_eq!(due, ids.iter().cloned().collect(), "every due call, from every node");
    let after = store.metrics();
    let trips = after.due.round_trips - before.due.round_trips;
    assert!(
        trips > 2,
        "the GETs go out as one request per slot (honestly counted), counted {trips}"
    );

    // Items for many calls at once: the pushes (many slots), then the index.
    let items: Vec<_> = ids.iter().map(|id| (id.clone(), notification_item(id, 1))).collect();
    store.append(&items).await.unwrap();
    let claims = store
        .append_and_claim(&items, "owner-a", Duration::from_secs(30), 16)
        .await
        .unwrap();
    assert_eq!(claims.len(), ids.len(), "every call claimed");
    assert!(
        claims.iter().all(|c| c.inbox.len() == 2),
        "both items of each call read back"
    );
    for claim in claims {
        store
            .commit(&claim.lease, None, 2, Duration::from_secs(30))
            .await
            .unwrap();
    }
    assert_eq!(store.count().await.unwrap(), ids.len());
}

/// What a cluster costs in round trips: a write sends its index entries,
/// then its script (two requests in turn); a read is one. A private cluster,
/// so no other test flushes the scripts meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_round_trips_per_operation() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap();
    let store = connect(&cluster.urls(), "round-trips").await;
    // Warm-up: every node caches the scripts (the first use on each costs a full EVAL).
    for id in spread_ids("warm", 30) {
        let mut record = empty_record(id.clone());
        record.version = 1;
        store.save(Arc::new(record)).await.unwrap();
        store.delete(&id, 1).await.unwrap();
    }
    let before = store.metrics();
    let n = 10u64;
    for id in spread_ids("rt", n as usize) {
        let mut record = empty_record(id.clone());
        record.version = 1;
        store.save(Arc::new(record)).await.unwrap();
        store.load(&id).await.unwrap().unwrap();
        store.delete(&id, 1).await.unwrap();
    }
    store.count().await.unwrap();
    let after = store.metrics();
    let trips = |b: graph_comms_redis::OpStats, a: graph_comms_redis::OpStats| a.round_trips - b.round_trips;
    assert_eq!(
        trips(before.save, after.save),
        2 * n,
        "save: index entries, then the script"
    );
    assert_eq!(trips(before.load, after.load), n, "load: one GET");
    assert_eq!(
        trips(before.delete, after.delete),
        2 * n,
        "delete: the script, then the calls index"
    );
    assert_eq!(trips(before.count, after.count), 1, "count: one slot, one pipeline");
    assert_eq!(after.script_loads, before.script_loads, "no script sent again");
    drop(cluster);
}

#[tokio::test]
async fn cluster_script_flushed_from_every_node_is_sent_again() {
    let (seeds, _cluster) = shared_or_private_cluster();
    let store = connect(&seeds, "noscript").await;
    let mut conn = store.connection();
    let ids = spread_ids("noscript", 8);
    for id in &ids {
        let mut record = empty_record(id.clone());
        record.version = 1;
        store.save(Arc::new(record)).await.unwrap();
    }
    // SCRIPT FLUSH goes to every node: each caches scripts of its own.
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut conn).await.unwrap();
    let loads = store.metrics().script_loads;
    for id in &ids {
        store.delete(id, 1).await.unwrap();
        assert!(store.load(id).await.unwrap().is_none());
    }
    assert!(store.metrics().script_loads > loads, "{:?}", store.metrics());
}

/// A resharding moves a call's slot to another node: the store, which knew
/// the old owner, gets `MOVED` inside its pipelines and must follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_store_follows_a_slot_moved_to_another_node() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap();
    let store = connect(&cluster.urls(), "moved").await;
    let now = now_millis();
    let mut record = typical_record(unique_call_id("moved"), now);
    record.version = 0;
    record.lifecycle.deadlines.idle = Some(now - Duration::from_secs(1));
    bump(&store, &mut record).await.unwrap();
    // The client knows the slot map now.
    assert_eq!(store.due(now, 10).await.unwrap(), vec![record.call_id().clone()]);

    let key = store.record_key(record.call_id());
    let from = cluster.node_for_key(&key).unwrap();
    let to = (from + 1) % cluster.len();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.move_slot_of(&key, to).expect("the slot moves");
        cluster
    })
    .await
    .unwrap();
    assert_eq!(cluster.node_for_key(&store.record_key(record.call_id())).unwrap(), to);

    // A write (its script sent in a pipeline), the GETs of `due`, a claim
    // and a commit under it, all to the node that owns the slot now.
    bump(&store, &mut record).await.expect("the write follows MOVED");
    assert_eq!(store.due(now, 10).await.unwrap(), vec![record.call_id().clone()]);
    let loaded = store.load(record.call_id()).await.unwrap().unwrap();
    assert_eq!(loaded.version, record.version);
    let items = [(record.call_id().clone(), notification_item(record.call_id(), 1))];
    let claims = store
        .append_and_claim(&items, "owner", Duration::from_secs(30), 8)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    store
        .commit(&claims[0].lease, None, 1, Duration::from_secs(30))
        .await
        .unwrap();
}

fn quick(seeds: &[String], tag: &str) -> RedisStoreConfig {
    config(seeds, tag)
        .connect_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .reconnect_retries(1)
}

/// Saves `record` as the next version, returning the version committed.
async fn bump(store: &RedisCallStore, record: &mut CallRecord) -> Result<u64, StoreError> {
    let mut next = record.clone();
    next.version += 1;
    store.save(Arc::new(next.clone())).await?;
    *record = next;
    Ok(record.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_node_restart_fails_operations_as_unavailable_and_loses_no_committed_record() {
    let mut cluster = tokio::task::spawn_blocking(RedisCluster::start).await.unwrap();
    let seeds = cluster.urls();
    let config = quick(&seeds, "restart");
    let prefix = config.prefix_str().to_owned();
    let store = RedisCallStore::connect(config).await.expect("connect");
    let deadline = Duration::from_secs(5);

    // Calls on every node, each committed a few times.
    let now = now_millis();
    let mut records: Vec<CallRecord> = spread_ids("restart", 30)
        .into_iter()
        .map(|id| typical_record(id, now))
        .collect();
    for record in &mut records {
        record.version = 0;
        for _ in 0..3 {
            bump(&store, record).await.unwrap();
        }
    }
    // The node holding the first call's keys goes down (and with it, maybe, the indexes).
    let victim_key = store.record_key(records[0].call_id());
    let victim = cluster.node_for_key(&victim_key).unwrap();
    let index_node = cluster.node_for_key(store.due_index_key()).unwrap();
    let mut on_victim = 0;
    for record in &records {
        if cluster.node_for_key(&store.record_key(record.call_id())).unwrap() == victim {
            on_victim += 1;
        }
    }
    assert!(on_victim > 0 && on_victim < records.len(), "calls on every node");
    println!("stopping node {victim} ({on_victim} calls; the indexes are on node {index_node}), prefix {prefix}");
    let status = cluster.stop_node(victim, Signal::Kill).unwrap();
    assert!(!status.success(), "killed by the signal: {status}");

    // While it is down: every operation ends in time, as done or Unavailable.
    let mut unavailable = 0;
    for record in &mut records {
        let started = Instant::now();
        let before = record.version;
        let saved = bump(&store, record).await;
        let loaded = store.load(record.call_id()).await;
        assert!(
            started.elapsed() < deadline,
            "an operation hung for {:?}",
            started.elapsed()
        );
        match saved {
            Ok(_) => {}
            Err(StoreError::Unavailable(_)) => {
                unavailable += 1;
                assert_eq!(record.version, before);
            }
            Err(other) => panic!("a save during the restart failed with {other:?}"),
        }
        match loaded {
            Ok(Some(loaded)) => assert_eq!(loaded.version, record.version),
            Ok(None) => panic!("{} read as missing while its node was up", record.call_id()),
            Err(StoreError::Unavailable(_)) => {}
            Err(other) => panic!("a load during the restart failed with {other:?}"),
        }
    }
    assert!(
        unavailable >= on_victim,
        "the down node's calls fail as Unavailable ({unavailable} of {on_victim})"
    );
    let claim = store
        .claim(records[0].call_id(), "owner", Duration::from_secs(5), 8)
        .await;
    assert!(matches!(claim, Err(StoreError::Unavailable(_))), "{claim:?}");

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_node(victim).expect("the node comes back");
        cluster
    })
    .await
    .unwrap();

    // Back (the client reconnects within a few attempts): every committed
    // version is there, and writes go on.
    let back = Instant::now();
    for record in &mut records {
        let stored = loop {
            match store.load(record.call_id()).await {
                Ok(stored) => break stored,
                Err(StoreError::Unavailable(e)) if back.elapsed() < Duration::from_secs(20) => {
                    println!("not back yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(other) => panic!("load after the restart: {other:?}"),
            }
        };
        let stored = stored.expect("no committed record lost");
        assert_eq!(stored.version, record.version, "{}", record.call_id());
        bump(&store, record).await.expect("writes go on after the restart");
    }
    assert_eq!(store.count().await.unwrap(), records.len());
    drop(cluster);
}

#[tokio::test]
async fn cluster_configuration_mistakes_are_refused_before_connecting() {
    let none: [&str; 0] = [];
    let error = RedisCallStore::connect(RedisStoreConfig::cluster(none))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ConnectError::InvalidConfig(ref m) if m.contains("no Redis URL")),
        "{error}"
    );
    // The seeds are one cluster: one password, one TLS mode.
    let mixed = RedisStoreConfig::cluster(["redis://:a@127.0.0.1:7000", "redis://:b@127.0.0.1:7001"]);
    let error = RedisCallStore::connect_lazy(mixed).unwrap_err();
    assert!(
        matches!(error, ConnectError::InvalidConfig(ref m) if !m.contains(":a@")),
        "{error}"
    );
    let mixed = RedisStoreConfig::cluster(["rediss://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
    assert!(matches!(
        RedisCallStore::connect_lazy(mixed).unwrap_err(),
        ConnectError::InvalidConfig(_)
    ));
    // TLS settings need rediss:// seeds.
    let plain = RedisStoreConfig::cluster(["redis://127.0.0.1:7000"]).tls(graph_comms_redis::RedisTls::new());
    assert!(matches!(
        RedisCallStore::connect_lazy(plain).unwrap_err(),
        ConnectError::InvalidConfig(_)
    ));
    let config = RedisStoreConfig::cluster(["redis://127.0.0.1:7000"]);
    assert!(config.is_cluster() && !RedisStoreConfig::new("redis://127.0.0.1/").is_cluster());
}

/// The one id shape without a usable hash tag is refused, not sent as a
/// script whose keys span nodes.
#[tokio::test]
async fn cluster_call_id_without_a_hash_tag_is_refused() {
    let (seeds, _cluster) = shared_or_private_cluster();
    let store = connect(&seeds, "no-tag").await;
    let id = CallId::from("}no-tag");
    let error = store.claim(&id, "owner", Duration::from_secs(5), 8).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Unavailable(ref m) if m.contains("span")),
        "{error}"
    );
    let error = store
        .append_and_claim(
            &[(id.clone(), notification_item(&id, 1))],
            "owner",
            Duration::from_secs(5),
            8,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Unavailable(ref m) if m.contains("span")),
        "{error}"
    );
}
