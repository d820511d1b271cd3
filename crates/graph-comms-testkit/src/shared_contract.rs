//! The [`SharedCallStore`] contract (inbox, leases, fencing) as runnable
//! checks, for any shared store's tests. Like [`store_contract`](crate::store_contract),
//! each check panics when the store breaks the contract and uses call ids of
//! its own; [`orphans_are_calls_with_items_and_no_live_lease`] needs no other
//! writer leaving orphans on the same store (give it a store of its own).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use graph_comms_core::model::{CallId, CommsNotification, TenantId};
use graph_comms_core::{CallRecord, Claim, InboxItem, Lease, Released, SharedCallStore, StoreError};

use crate::records::{empty_record, unique_call_id};

/// A lease long enough never to expire during a check.
const LONG: Duration = Duration::from_secs(30);
/// A lease that expires during a check.
const SHORT: Duration = Duration::from_millis(200);

/// Runs every check, one after the other.
pub async fn run_all<S: SharedCallStore>(store: Arc<S>) {
    one_holder_at_a_time(&*store).await;
    items_are_read_in_order_and_dropped_when_handled(&*store).await;
    an_expired_lease_fences_its_holder(&*store).await;
    commits_keep_the_version_compare_and_set(&*store).await;
    release_reports_items_appended_meanwhile(&*store).await;
    orphans_are_calls_with_items_and_no_live_lease(&*store).await;
    steps_left_in_an_outbox_make_an_orphan(&*store).await;
    a_transfer_not_known_sent_makes_an_orphan(&*store).await;
    peek_reads_items_without_taking_them(&*store).await;
}

/// A notification item for `call_id`, numbered `n` (its `sequenceId`).
pub fn notification_item(call_id: &CallId, n: u64) -> InboxItem {
    let notification: CommsNotification = serde_json::from_value(serde_json::json!({
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": "updated",
        "resourceUrl": format!("/communications/calls/{call_id}"),
        "resourceData": {
            "@odata.type": "#microsoft.graph.call",
            "state": "established",
            "sequenceId": n,
        }
    }))
    .unwrap_or_else(|e| panic!("the test notification does not parse: {e}"));
    InboxItem::Notification {
        tenant_id: TenantId::from("tenant-1"),
        received_at: crate::records::now_millis(),
        notification: Box::new(notification),
        delivery: Default::default(),
    }
}

async fn claim_ok<S: SharedCallStore + ?Sized>(store: &S, call_id: &CallId, owner: &str, ttl: Duration) -> Claim {
    match store.claim(call_id, owner, ttl, 64).await {
        Ok(Some(claim)) => claim,
        Ok(None) => panic!("{owner} could not claim the free call {call_id}"),
        Err(error) => panic!("{owner} claiming {call_id} failed: {error}"),
    }
}

async fn release<S: SharedCallStore + ?Sized>(store: &S, lease: &Lease, consumed: usize) -> Released {
    match store.release(lease, consumed, None, LONG, 64).await {
        Ok(released) => released,
        Err(error) => panic!("releasing {} failed: {error}", lease.call_id),
    }
}

/// Releases and expects the lease free (nothing waiting).
async fn release_free<S: SharedCallStore + ?Sized>(store: &S, lease: &Lease, consumed: usize, what: &str) {
    match release(store, lease, consumed).await {
        Released::Free => {}
        other => panic!("{what}: expected the lease released with nothing waiting, got {other:?}"),
    }
}

/// Releases and expects the lease kept for `waiting` items.
async fn release_kept<S: SharedCallStore + ?Sized>(
    store: &S,
    lease: &Lease,
    consumed: usize,
    waiting: usize,
    what: &str,
) -> Claim {
    match release(store, lease, consumed).await {
        Released::Kept(claim) => {
            assert_eq!(claim.inbox.len(), waiting, "{what}: items still waiting");
            assert_eq!(&claim.lease, lease, "{what}: the same lease continues");
            claim
        }
        other => panic!("{what}: expected the lease kept for {waiting} waiting items, got {other:?}"),
    }
}

async fn append_ok<S: SharedCallStore + ?Sized>(store: &S, items: &[(CallId, InboxItem)]) {
    if let Err(error) = store.append(items).await {
        panic!("append failed: {error}");
    }
}

fn assert_lease_lost<T: std::fmt::Debug>(result: Result<T, StoreError>, lease: &Lease, what: &str) {
    match result {
        Err(StoreError::LeaseLost { call_id }) => assert_eq!(call_id, lease.call_id, "{what}"),
        other => panic!("{what}: expected StoreError::LeaseLost, got {other:?}"),
    }
}

/// A held lease refuses other claimants until released; tokens are unique.
pub async fn one_holder_at_a_time<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("one-holder");
    let first = claim_ok(store, &call, "a", LONG).await;
    match store.claim(&call, "b", LONG, 64).await {
        Ok(None) => {}
        other => panic!("a second claim of a held lease must be refused, got {other:?}"),
    }
    match store.claim(&call, "a", LONG, 64).await {
        Ok(None) => {}
        other => panic!("the holder's own second claim must be refused too, got {other:?}"),
    }
    release_free(store, &first.lease, 0, "release").await;
    let second = claim_ok(store, &call, "b", LONG).await;
    assert_ne!(first.lease.token, second.lease.token, "every claim has a fresh token");
    release_free(store, &second.lease, 0, "release").await;
}

/// Items come back in append order, with the record; handled items are
/// dropped by the commit or the release that names them, and only those.
pub async fn items_are_read_in_order_and_dropped_when_handled<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("inbox-order");
    let items: Vec<(CallId, InboxItem)> = (1..=3).map(|n| (call.clone(), notification_item(&call, n))).collect();
    append_ok(store, &items[..2]).await;
    append_ok(store, &items[2..]).await;
    let claim = claim_ok(store, &call, "a", LONG).await;
    assert!(claim.record.is_none(), "no record yet");
    let read: Vec<InboxItem> = claim.inbox.clone();
    let expected: Vec<InboxItem> = items.iter().map(|(_, item)| item.clone()).collect();
    assert_eq!(read, expected, "items in append order, unchanged");

    let mut record = empty_record(call.clone());
    record.version = 1;
    let record = Arc::new(record);
    if let Err(error) = store.commit(&claim.lease, Some(Arc::clone(&record)), 1, LONG).await {
        panic!("commit under the lease failed: {error}");
    }
    let again = release_kept(store, &claim.lease, 1, 1, "two items handled, one waits").await;
    assert_eq!(
        again.record.as_deref(),
        Some(&*record),
        "the committed record is read back"
    );
    assert_eq!(again.inbox, expected[2..].to_vec(), "only the unhandled item is left");
    release_free(store, &again.lease, 1, "all handled").await;
    let next = claim_ok(store, &call, "b", LONG).await;
    assert!(next.inbox.is_empty(), "nothing left: {:?}", next.inbox);
    release_free(store, &next.lease, 0, "empty").await;
}

/// `peek` reads items from a position on, in append order, without taking
/// them: a claim still reads them all.
pub async fn peek_reads_items_without_taking_them<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("peek");
    let peek = async |from, limit| match store.peek(&call, from, limit).await {
        Ok(items) => items,
        Err(error) => panic!("peek({from}, {limit}) failed: {error}"),
    };
    assert!(peek(0, 8).await.is_empty(), "no inbox: nothing to read");
    let items: Vec<(CallId, InboxItem)> = (1..=3).map(|n| (call.clone(), notification_item(&call, n))).collect();
    append_ok(store, &items).await;
    let expected: Vec<InboxItem> = items.iter().map(|(_, item)| item.clone()).collect();
    assert_eq!(peek(0, 8).await, expected, "all items, in order");
    assert_eq!(
        peek(1, 1).await,
        expected[1..2].to_vec(),
        "from a position, at most the limit"
    );
    assert!(peek(3, 8).await.is_empty(), "past the end: nothing");
    assert!(peek(0, 0).await.is_empty(), "a limit of 0 reads nothing");
    let claim = claim_ok(store, &call, "a", LONG).await;
    assert_eq!(claim.inbox, expected, "peeking took nothing");
    release_free(store, &claim.lease, 3, "all handled").await;
}

/// A holder whose lease expired and was taken can commit, renew and release
/// nothing; the new holder can.
pub async fn an_expired_lease_fences_its_holder<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("fenced");
    append_ok(store, &[(call.clone(), notification_item(&call, 1))]).await;
    let stale = claim_ok(store, &call, "paused", SHORT).await;
    tokio::time::sleep(SHORT * 2).await;
    let fresh = claim_ok(store, &call, "taker", LONG).await;
    assert_eq!(fresh.inbox.len(), 1, "the taker sees the unhandled item");

    let mut record = empty_record(call.clone());
    record.version = 1;
    let result = store
        .commit(&stale.lease, Some(Arc::new(record.clone())), 1, LONG)
        .await;
    assert_lease_lost(result, &stale.lease, "a commit with an expired token");
    assert_lease_lost(
        store.renew(&stale.lease, LONG).await,
        &stale.lease,
        "a renewal with an expired token",
    );
    assert_lease_lost(
        store.release(&stale.lease, 1, None, LONG, 64).await,
        &stale.lease,
        "a release with an expired token",
    );
    let still = release_kept(store, &fresh.lease, 0, 1, "the stale holder dropped no item").await;
    assert!(still.record.is_none(), "the stale commit wrote nothing");

    if let Err(error) = store.commit(&still.lease, Some(Arc::new(record)), 1, LONG).await {
        panic!("the holder's commit failed: {error}");
    }
    release_free(store, &still.lease, 0, "the holder handled the item").await;
}

/// Under a lease, a record write still needs the stored version plus one.
pub async fn commits_keep_the_version_compare_and_set<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("commit-cas");
    let claim = claim_ok(store, &call, "a", LONG).await;
    let mut record = empty_record(call.clone());
    record.version = 2;
    match store.commit(&claim.lease, Some(Arc::new(record)), 0, LONG).await {
        Err(StoreError::Conflict {
            written: 2, stored: 0, ..
        }) => {}
        other => panic!("version 2 on an empty store must conflict, got {other:?}"),
    }
    if let Err(error) = store.commit(&claim.lease, None, 0, LONG).await {
        panic!("a commit without a record (only the lease and the inbox) failed: {error}");
    }
    release_free(store, &claim.lease, 0, "nothing appended").await;
}

/// Items appended while the lease is held are handed back by the release,
/// with the lease kept; a release with a record writes it in the same step.
pub async fn release_reports_items_appended_meanwhile<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("release-waiting");
    let claim = claim_ok(store, &call, "a", LONG).await;
    append_ok(store, &[(call.clone(), notification_item(&call, 1))]).await;
    let kept = release_kept(store, &claim.lease, 0, 1, "one item appended meanwhile").await;
    match store.claim(&call, "b", LONG, 64).await {
        Ok(None) => {}
        other => panic!("a kept lease refuses claims, got {other:?}"),
    }
    let mut record = empty_record(call.clone());
    record.version = 1;
    let record = Arc::new(record);
    match store.release(&kept.lease, 1, Some(Arc::clone(&record)), LONG, 64).await {
        Ok(Released::Free) => {}
        other => panic!("release with a record: expected Free, got {other:?}"),
    }
    let next = claim_ok(store, &call, "b", LONG).await;
    assert_eq!(next.record.as_deref(), Some(&*record), "the release wrote the record");
    assert!(next.inbox.is_empty());
    release_free(store, &next.lease, 0, "empty").await;
}

/// A call with items is an orphan only while no live lease covers it.
pub async fn orphans_are_calls_with_items_and_no_live_lease<S: SharedCallStore + ?Sized>(store: &S) {
    let call = unique_call_id("orphan");
    append_ok(store, &[(call.clone(), notification_item(&call, 1))]).await;
    assert!(orphans(store).await.contains(&call), "unclaimed items make an orphan");
    let claim = claim_ok(store, &call, "dies", SHORT).await;
    assert!(!orphans(store).await.contains(&call), "not while its lease lives");
    let deadline = SystemTime::now() + Duration::from_secs(5);
    while !orphans(store).await.contains(&call) {
        assert!(
            SystemTime::now() < deadline,
            "the call is an orphan once its lease expired"
        );
        tokio::time::sleep(SHORT / 2).await;
    }
    let taken = claim_ok(store, &call, "taker", LONG).await;
    release_free(store, &taken.lease, 1, "the orphan's item handled").await;
    assert!(!orphans(store).await.contains(&call), "handled: no orphan");
    drop(claim);
}

async fn orphans<S: SharedCallStore + ?Sized>(store: &S) -> Vec<CallId> {
    match store.orphans(10_000).await {
        Ok(calls) => calls,
        Err(error) => panic!("orphans failed: {error}"),
    }
}

/// A holder that committed hook steps and stopped before running them (no
/// items left in the inbox) leaves an orphan, until a release records the
/// steps as run.
pub async fn steps_left_in_an_outbox_make_an_orphan<S: SharedCallStore + ?Sized>(store: &S) {
    work_left_makes_an_orphan(
        store,
        "outbox-orphan",
        |record| record.outbox = vec![graph_comms_core::lifecycle::Step::Established],
        |record| record.outbox.clear(),
    )
    .await;
}

/// A holder that committed a transfer attempt and stopped before recording
/// its `POST /transfer` as sent leaves an orphan, so another instance asks
/// Graph about it, until a release records the check.
pub async fn a_transfer_not_known_sent_makes_an_orphan<S: SharedCallStore + ?Sized>(store: &S) {
    work_left_makes_an_orphan(
        store,
        "unsent-orphan",
        |record| {
            let typical = crate::records::typical_record(record.call_id().clone(), crate::records::now_millis());
            record.attempt = typical.attempt;
            if let Some(attempt) = record.attempt.as_mut() {
                attempt.sending = true;
            }
        },
        |record| {
            if let Some(attempt) = record.attempt.as_mut() {
                attempt.sending = false;
            }
        },
    )
    .await;
}

/// The holder commits a record `leave` marked as needing a holder and stops;
/// the call must be an orphan once its lease expired, and no longer once a
/// taker releases it with `finish` applied.
async fn work_left_makes_an_orphan<S: SharedCallStore + ?Sized>(
    store: &S,
    label: &str,
    leave: impl Fn(&mut CallRecord),
    finish: impl Fn(&mut CallRecord),
) {
    let call = unique_call_id(label);
    append_ok(store, &[(call.clone(), notification_item(&call, 1))]).await;
    let dies = claim_ok(store, &call, "dies", SHORT).await;
    let mut record = empty_record(call.clone());
    record.version = 1;
    leave(&mut record);
    assert!(record.awaits_holder(), "{label}: the record needs a holder");
    if let Err(error) = store
        .commit(&dies.lease, Some(Arc::new(record.clone())), 1, SHORT)
        .await
    {
        panic!("{label}: commit failed: {error}");
    }
    let deadline = SystemTime::now() + Duration::from_secs(5);
    while !orphans(store).await.contains(&call) {
        assert!(
            SystemTime::now() < deadline,
            "{label}: a call whose record needs a holder is an orphan once its holder's lease expired"
        );
        tokio::time::sleep(SHORT / 2).await;
    }
    let taker = claim_ok(store, &call, "taker", LONG).await;
    assert!(taker.inbox.is_empty(), "{label}: the item was handled by the commit");
    let stored = taker.record.clone().expect("the committed record");
    assert_eq!(*stored, record, "{label}: the record is read back");
    let mut done = CallRecord::clone(&stored);
    finish(&mut done);
    done.version += 1;
    match store.release(&taker.lease, 0, Some(Arc::new(done)), LONG, 64).await {
        Ok(Released::Free) => {}
        other => panic!("{label}: release recording the work as done: expected Free, got {other:?}"),
    }
    assert!(
        !orphans(store).await.contains(&call),
        "{label}: nothing left: no orphan"
    );
}
