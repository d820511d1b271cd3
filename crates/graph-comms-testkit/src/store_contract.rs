//! The [`CallStore`] contract as runnable checks, for any store's tests.
//!
//! Each `async fn` takes the store under test and panics (like `assert!`) when
//! the store breaks the contract. They use call ids of their own (random), so
//! they can share a store with other tests; only [`count_counts_stored_calls`]
//! needs no one else writing to the store while it runs.
//!
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use graph_comms_core::{CallStore, InMemoryCallStore};
//!
//! let store: Arc<dyn CallStore> = Arc::new(InMemoryCallStore::new());
//! graph_comms_testkit::store_contract::run_all(store).await;
//! # }
//! ```
//!
//! The property test [`no_lost_updates_with_two_writers`] is synchronous (it
//! drives its own tokio runtime); call it from a plain `#[test]`.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use graph_comms_core::model::CallId;
use graph_comms_core::{CallRecord, CallStore, StoreError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::records::{empty_record, now_millis, typical_record, unique_call_id};

/// Runs every async check of the contract, one after the other.
pub async fn run_all(store: Arc<dyn CallStore>) {
    first_write_must_be_version_one(Arc::clone(&store)).await;
    stale_write_is_refused_and_changes_nothing(Arc::clone(&store)).await;
    load_returns_what_was_saved(Arc::clone(&store)).await;
    delete_is_compare_and_set(Arc::clone(&store)).await;
    due_lists_exactly_the_due_calls(Arc::clone(&store)).await;
    ended_records_are_forgotten_after_expiry(Arc::clone(&store)).await;
    count_counts_stored_calls(store).await;
}

fn versioned(mut record: CallRecord, version: u64) -> Arc<CallRecord> {
    record.version = version;
    Arc::new(record)
}

async fn save_ok(store: &dyn CallStore, record: Arc<CallRecord>) {
    let (id, version) = (record.call_id().clone(), record.version);
    if let Err(error) = store.save(record).await {
        panic!("saving {id} version {version} failed: {error}");
    }
}

async fn load_ok(store: &dyn CallStore, call_id: &CallId) -> Option<Arc<CallRecord>> {
    match store.load(call_id).await {
        Ok(record) => record,
        Err(error) => panic!("loading {call_id} failed: {error}"),
    }
}

fn assert_conflict(result: Result<(), StoreError>, call_id: &CallId, written: u64, stored: u64, what: &str) {
    match result {
        Err(StoreError::Conflict {
            call_id: c,
            written: w,
            stored: s,
        }) => {
            assert_eq!(&c, call_id, "{what}: the conflict names another call");
            assert_eq!(w, written, "{what}: the conflict's written version");
            assert_eq!(s, stored, "{what}: the conflict's stored version");
        }
        other => {
            panic!("{what}: expected StoreError::Conflict {{ written: {written}, stored: {stored} }}, got {other:?}")
        }
    }
}

/// A call not stored has version 0: only version 1 may create it; versions 0
/// and 2 are refused with [`StoreError::Conflict`] (stored 0) and store nothing.
pub async fn first_write_must_be_version_one(store: Arc<dyn CallStore>) {
    let id = unique_call_id("first-write");
    for version in [0, 2, 7] {
        let result = store.save(versioned(empty_record(id.clone()), version)).await;
        assert_conflict(result, &id, version, 0, &format!("first write with version {version}"));
        assert!(
            load_ok(&*store, &id).await.is_none(),
            "a refused first write (version {version}) stored a record"
        );
    }
    save_ok(&*store, versioned(empty_record(id.clone()), 1)).await;
    let loaded = load_ok(&*store, &id).await.map(|r| r.version);
    assert_eq!(loaded, Some(1), "version 1 creates the call");
}

/// A write carrying a stale (or skipped-ahead) version is refused with
/// [`StoreError::Conflict`] naming the stored version, and changes nothing.
pub async fn stale_write_is_refused_and_changes_nothing(store: Arc<dyn CallStore>) {
    let now = now_millis();
    let id = unique_call_id("stale-write");
    let v1 = versioned(typical_record(id.clone(), now), 1);
    save_ok(&*store, Arc::clone(&v1)).await;
    let mut v2 = CallRecord::clone(&v1);
    v2.version = 2;
    v2.data = Some(serde_json::json!({ "writer": "a" }));
    let v2 = Arc::new(v2);
    save_ok(&*store, Arc::clone(&v2)).await;

    for version in [1, 2, 4] {
        let mut stale = CallRecord::clone(&v1);
        stale.version = version;
        stale.data = Some(serde_json::json!({ "writer": "stale" }));
        stale.lifecycle.deadlines.attempt_timeout = Some(now - Duration::from_secs(1));
        let result = store.save(Arc::new(stale)).await;
        assert_conflict(
            result,
            &id,
            version,
            2,
            &format!("write with version {version} over version 2"),
        );
        let loaded = load_ok(&*store, &id).await;
        assert_eq!(
            loaded.as_deref(),
            Some(&*v2),
            "a refused write (version {version}) changed the stored record"
        );
    }
}

/// `load` returns exactly what was saved: snapshot, attempt, deadlines, links, data.
pub async fn load_returns_what_was_saved(store: Arc<dyn CallStore>) {
    let now = now_millis();
    let id = unique_call_id("round-trip");
    let mut record = typical_record(id.clone(), now);
    record.version = 1;
    record.links.consultation = Some(unique_call_id("consultation"));
    record.lifecycle.deadlines.unknown_outcome = Some(now + Duration::from_millis(1234));
    record.data = Some(serde_json::json!({
        "nested": { "list": [1, 2, 3], "flag": true, "none": null },
        "text": "ünïcödé ☎",
    }));
    let record = Arc::new(record);
    save_ok(&*store, Arc::clone(&record)).await;
    let loaded = load_ok(&*store, &id).await;
    assert_eq!(loaded.as_deref(), Some(&*record), "load returned another record");

    let mut bare = empty_record(unique_call_id("round-trip-bare"));
    bare.version = 1;
    let bare = Arc::new(bare);
    save_ok(&*store, Arc::clone(&bare)).await;
    let loaded = load_ok(&*store, bare.call_id()).await;
    assert_eq!(loaded.as_deref(), Some(&*bare), "load returned another (bare) record");

    assert!(
        load_ok(&*store, &unique_call_id("never-saved")).await.is_none(),
        "a call never saved loads as a record"
    );
}

/// `delete` with a stale version is refused and keeps the call; with the
/// stored version it removes it (a new version 1 may then create it again).
pub async fn delete_is_compare_and_set(store: Arc<dyn CallStore>) {
    let id = unique_call_id("delete");
    save_ok(&*store, versioned(empty_record(id.clone()), 1)).await;
    let mut v2 = empty_record(id.clone());
    v2.version = 2;
    v2.data = Some(serde_json::json!(2));
    save_ok(&*store, Arc::new(v2)).await;

    for stale in [1, 3] {
        let result = store.delete(&id, stale).await;
        assert_conflict(result, &id, stale, 2, &format!("delete with version {stale}"));
        let kept = load_ok(&*store, &id).await.map(|r| r.version);
        assert_eq!(kept, Some(2), "a refused delete (version {stale}) removed the call");
    }
    if let Err(error) = store.delete(&id, 2).await {
        panic!("delete with the stored version failed: {error}");
    }
    assert!(load_ok(&*store, &id).await.is_none(), "a deleted call still loads");
    save_ok(&*store, versioned(empty_record(id.clone()), 1)).await;
    assert_eq!(load_ok(&*store, &id).await.map(|r| r.version), Some(1));
}

/// `due(now, limit)` lists exactly the calls whose earliest deadline
/// (`lifecycle.deadlines.next_due()`) is at or before `now`, follows the
/// records as they change, and returns at most `limit` calls.
pub async fn due_lists_exactly_the_due_calls(store: Arc<dyn CallStore>) {
    let now = now_millis();
    let ms = Duration::from_millis;
    let mut ours = Vec::new();
    let mut make = |tag: &str, set: &dyn Fn(&mut CallRecord)| {
        let mut record = empty_record(unique_call_id(tag));
        record.version = 1;
        set(&mut record);
        ours.push(record.call_id().clone());
        Arc::new(record)
    };
    let idle_past = make("due-idle-past", &|r| {
        r.lifecycle.deadlines.idle = Some(now - ms(10_000))
    });
    let keep_alive_past = make("due-keepalive-past", &|r| {
        r.lifecycle.deadlines.keep_alive = Some(now - ms(1));
        r.lifecycle.deadlines.idle = Some(now + ms(600_000));
    });
    let exactly_now = make("due-exactly-now", &|r| {
        r.lifecycle.deadlines.unknown_outcome = Some(now)
    });
    let future = make("due-future", &|r| {
        r.lifecycle.deadlines.attempt_timeout = Some(now + ms(60_000));
        r.lifecycle.deadlines.idle = Some(now + ms(600_000));
    });
    let none = make("due-none", &|_| {});
    let only_forget = make("due-only-forget", &|r| {
        r.lifecycle.deadlines.forget = Some(now + ms(600_000))
    });
    for record in [&idle_past, &keep_alive_past, &exactly_now, &future, &none, &only_forget] {
        save_ok(&*store, Arc::clone(record)).await;
    }

    let ours_due = |listed: &[CallId]| -> BTreeSet<String> {
        listed
            .iter()
            .filter(|id| ours.contains(id))
            .map(|id| id.canonical())
            .collect()
    };
    let expect = |records: &[&Arc<CallRecord>]| -> BTreeSet<String> {
        records.iter().map(|r| r.call_id().canonical()).collect()
    };
    let due = |limit| {
        let store = Arc::clone(&store);
        async move {
            match store.due(now, limit).await {
                Ok(ids) => ids,
                Err(error) => panic!("due(now, {limit}) failed: {error}"),
            }
        }
    };

    let listed = due(10_000).await;
    assert_eq!(
        ours_due(&listed),
        expect(&[&idle_past, &keep_alive_past, &exactly_now]),
        "due(now) must list exactly the calls whose next_due() <= now"
    );
    let unique: BTreeSet<String> = listed.iter().map(CallId::canonical).collect();
    assert_eq!(unique.len(), listed.len(), "due listed a call twice: {listed:?}");

    for limit in [0, 1, 2] {
        let listed = due(limit).await;
        assert_eq!(
            listed.len(),
            limit,
            "due(now, {limit}) with at least 3 due calls: {listed:?}"
        );
    }

    // The records change: the idle one gets a later deadline, the future one an
    // overdue attempt timeout, one due call is deleted.
    let mut moved_later = CallRecord::clone(&idle_past);
    moved_later.version = 2;
    moved_later.lifecycle.deadlines.idle = Some(now + ms(600_000));
    save_ok(&*store, Arc::new(moved_later)).await;
    let mut moved_earlier = CallRecord::clone(&future);
    moved_earlier.version = 2;
    moved_earlier.lifecycle.deadlines.attempt_timeout = Some(now - ms(5));
    save_ok(&*store, Arc::new(moved_earlier)).await;
    if let Err(error) = store.delete(exactly_now.call_id(), 1).await {
        panic!("delete failed: {error}");
    }

    let listed = due(10_000).await;
    assert_eq!(
        ours_due(&listed),
        expect(&[&keep_alive_past, &future]),
        "after the changes, due(now) must follow the stored records"
    );
    let later = match store.due(now + ms(600_000), 10_000).await {
        Ok(ids) => ids,
        Err(error) => panic!("due(later) failed: {error}"),
    };
    assert_eq!(
        ours_due(&later),
        expect(&[&idle_past, &keep_alive_past, &future]),
        "due at a later time lists the calls due by then"
    );
}

/// An ended record is kept until `lifecycle.deadlines.forget`, then dropped:
/// after that time neither `load` nor `due` returns it. The store is given the
/// chance to drop it: a `due` call after the time (the in-memory store purges
/// there; Redis expires the key by itself).
pub async fn ended_records_are_forgotten_after_expiry(store: Arc<dyn CallStore>) {
    let now = now_millis();
    let ms = Duration::from_millis;

    // Forgotten already: the retention ended before the write.
    let mut gone = empty_record(unique_call_id("ended-past"));
    gone.version = 1;
    gone.lifecycle.ended = true;
    gone.lifecycle.deadlines.idle = Some(now - ms(1_000));
    gone.lifecycle.deadlines.forget = Some(now - ms(1));
    save_ok(&*store, Arc::new(gone.clone())).await;

    // Kept a little while.
    let mut soon = typical_record(unique_call_id("ended-soon"), now);
    soon.version = 1;
    soon.lifecycle.ended = true;
    soon.lifecycle.deadlines = Default::default();
    soon.lifecycle.deadlines.idle = Some(now - ms(1_000));
    soon.lifecycle.deadlines.forget = Some(now + ms(300));
    let soon = Arc::new(soon);
    save_ok(&*store, Arc::clone(&soon)).await;
    let kept = load_ok(&*store, soon.call_id()).await;
    assert_eq!(
        kept.as_deref(),
        Some(&*soon),
        "an ended call is kept until its forget time"
    );

    tokio::time::sleep(ms(450)).await;
    let after = now_millis();
    let listed = match store.due(after, 10_000).await {
        Ok(ids) => ids,
        Err(error) => panic!("due failed: {error}"),
    };
    for id in [gone.call_id(), soon.call_id()] {
        assert!(!listed.contains(id), "due listed {id} after its forget time");
        assert!(
            load_ok(&*store, id).await.is_none(),
            "the ended call {id} still loads after its forget time"
        );
    }
}

/// `count` counts stored calls (ended ones not yet forgotten included) and
/// follows saves and deletes. Nothing else may write to the store meanwhile.
pub async fn count_counts_stored_calls(store: Arc<dyn CallStore>) {
    let count = || {
        let store = Arc::clone(&store);
        async move {
            match store.count().await {
                Ok(n) => n,
                Err(error) => panic!("count failed: {error}"),
            }
        }
    };
    let now = now_millis();
    let before = count().await;
    let ids: Vec<CallId> = (0..3).map(|_| unique_call_id("count")).collect();
    for id in &ids {
        save_ok(&*store, versioned(empty_record(id.clone()), 1)).await;
    }
    let mut ended = empty_record(unique_call_id("count-ended"));
    ended.version = 1;
    ended.lifecycle.ended = true;
    ended.lifecycle.deadlines.forget = Some(now + Duration::from_secs(600));
    save_ok(&*store, Arc::new(ended)).await;
    assert_eq!(count().await, before + 4, "three calls and one ended call were saved");
    // A second version of a call is still one call.
    save_ok(&*store, versioned(empty_record(ids[0].clone()), 2)).await;
    assert_eq!(count().await, before + 4, "a new version is not a new call");
    if let Err(error) = store.delete(&ids[1], 1).await {
        panic!("delete failed: {error}");
    }
    assert_eq!(count().await, before + 3, "a deleted call is not counted");
}

/// One step of a writer in [`no_lost_updates_with_two_writers`].
#[derive(Debug, Default)]
struct Writer {
    want: u32,
    done: u32,
    held: Option<CallRecord>,
}

/// The property: two writers run read–modify–compare-and-set loops on the
/// same call, interleaved at random (each step is one `load` or one `save`).
/// Every successful write appends a unique token to the record's data. At the
/// end the record holds exactly the committed tokens, in commit order, and its
/// version is the number of successful writes: no update is lost, none is
/// applied twice.
///
/// `make_store` is awaited once, inside the runtime the cases run on (a store
/// holding connections must be created on the runtime that uses it).
///
/// # Panics
///
/// With proptest's minimal failing interleaving when the property fails.
pub fn no_lost_updates_with_two_writers<F, Fut>(cases: u32, make_store: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Arc<dyn CallStore>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => panic!("cannot build a tokio runtime: {error}"),
    };
    let store = runtime.block_on(make_store());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (1u32..=6, 1u32..=6, proptest::collection::vec(0u8..2, 0..48));
    let result = runner.run(&strategy, |(want0, want1, schedule)| {
        runtime.block_on(two_writers_case(&*store, [want0, want1], &schedule))
    });
    if let Err(error) = result {
        panic!("two writers lost or duplicated an update: {error}");
    }
}

async fn two_writers_case(store: &dyn CallStore, wants: [u32; 2], schedule: &[u8]) -> Result<(), TestCaseError> {
    let id = unique_call_id("two-writers");
    let mut writers = wants.map(|want| Writer {
        want,
        ..Writer::default()
    });
    let mut committed: Vec<String> = Vec::new();
    let mut conflicts = 0u32;
    let fail = |what: &str, error: StoreError| TestCaseError::fail(format!("{what} failed: {error}"));

    let mut picks = schedule.iter().map(|&w| usize::from(w)).chain((0..).map(|i| i % 2));
    for _step in 0..10_000 {
        if writers.iter().all(|w| w.done == w.want) {
            break;
        }
        let mut index = picks.next().unwrap_or(0);
        if writers[index].done == writers[index].want {
            index = 1 - index;
        }
        let writer = &mut writers[index];
        match writer.held.take() {
            None => {
                let loaded = store.load(&id).await.map_err(|e| fail("load", e))?;
                writer.held = Some(loaded.map_or_else(|| empty_record(id.clone()), |r| CallRecord::clone(&r)));
            }
            Some(mut record) => {
                let token = format!("w{index}-{}", writer.done);
                record.version += 1;
                let mut tokens = match record.data.take() {
                    Some(serde_json::Value::Array(tokens)) => tokens,
                    _ => Vec::new(),
                };
                tokens.push(serde_json::Value::String(token.clone()));
                record.data = Some(serde_json::Value::Array(tokens));
                match store.save(Arc::new(record)).await {
                    Ok(()) => {
                        writer.done += 1;
                        committed.push(token);
                    }
                    Err(StoreError::Conflict { .. }) => conflicts += 1,
                    Err(error) => return Err(fail("save", error)),
                }
            }
        }
    }
    prop_assert!(
        writers.iter().all(|w| w.done == w.want),
        "the writers did not finish in 10000 steps"
    );

    let last = store.load(&id).await.map_err(|e| fail("final load", e))?;
    let Some(last) = last else {
        return Err(TestCaseError::fail("the call has no record after the writes"));
    };
    let tokens: Vec<String> = match &last.data {
        Some(serde_json::Value::Array(tokens)) => tokens.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect(),
        other => return Err(TestCaseError::fail(format!("the record's data is {other:?}"))),
    };
    prop_assert_eq!(
        &tokens,
        &committed,
        "the record must hold every committed write, in order"
    );
    prop_assert_eq!(
        last.version,
        committed.len() as u64,
        "the version must equal the number of successful writes ({} conflicts)",
        conflicts
    );
    Ok(())
}
