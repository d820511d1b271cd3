//! The store sync: a cache of records in memory, loads on a miss, and
//! compare-and-set commits that reload and decide again on a conflict.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph_comms_model::{CallId, TenantId};

use super::Runtime;
use crate::report::RuntimeFailure;
use graph_comms_core::error::StoreError;
use graph_comms_core::record::{CallRecord, CallSnapshot};
use graph_comms_core::sync::lock;

/// Commits that conflict this many times in a row give up (another writer keeps winning).
const MAX_CONFLICTS: usize = 16;
/// Tries of an unavailable store for one change, with growing pauses between them.
const MAX_STORE_TRIES: u32 = 8;

/// The live calls' records, shared with the store where it keeps `Arc`s.
#[derive(Debug, Default)]
pub(super) struct Cache {
    records: Mutex<HashMap<CallId, Arc<CallRecord>>>,
}

impl Cache {
    pub(super) fn get(&self, call_id: &CallId) -> Option<Arc<CallRecord>> {
        lock(&self.records).get(call_id).cloned()
    }

    pub(super) fn contains(&self, call_id: &CallId) -> bool {
        lock(&self.records).contains_key(call_id)
    }

    /// Keeps the record; an ended one only with `keep_ended` (while a lease
    /// holder still works on it), else it is dropped.
    fn put(&self, record: &Arc<CallRecord>, keep_ended: bool) {
        let mut records = lock(&self.records);
        if record.is_ended() && !keep_ended {
            records.remove(record.call_id());
        } else if let Some(slot) = records.get_mut(record.call_id()) {
            *slot = Arc::clone(record);
        } else {
            records.insert(record.call_id().clone(), Arc::clone(record));
        }
    }

    /// Sets the call's record as just read from the store.
    pub(super) fn replace(&self, call_id: &CallId, record: Option<Arc<CallRecord>>) {
        match record {
            Some(record) => {
                lock(&self.records).insert(call_id.clone(), record);
            }
            None => self.remove(call_id),
        }
    }

    pub(super) fn remove(&self, call_id: &CallId) {
        lock(&self.records).remove(call_id);
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.records).len()
    }
}

/// Who writes a record: the call's own worker (under its lease, when held),
/// or another task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writer {
    Worker,
    Outsider,
}

/// Whether [`Runtime::update`] may create a record for a call the store does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    Create,
    Skip,
}

impl Runtime {
    /// The record of a call as this process last saw it (cache, else store).
    pub(crate) async fn current(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError> {
        if let Some(record) = self.cache.get(call_id) {
            return Ok(Some(record));
        }
        let loaded = self.store.load(call_id).await?;
        if let Some(record) = loaded.as_ref().filter(|r| !r.is_ended()) {
            self.cache.put(record, false);
        }
        Ok(loaded)
    }

    /// Puts a changed record in the cache to be written by the next write
    /// under the call's lease; `false` (nothing changed) without a lease.
    pub(super) fn cache_deferred(&self, record: &Arc<CallRecord>) -> bool {
        if !self.held.defer_write(record.call_id()) {
            return false;
        }
        self.cache.put(record, true);
        true
    }

    /// The cached record, without going to the store.
    pub(crate) fn cached(&self, call_id: &CallId) -> Option<Arc<CallRecord>> {
        self.cache.get(call_id)
    }

    /// Applies `change` to the call's record and commits it with compare-and-set.
    ///
    /// On a version conflict the record is reloaded and `change` runs again on
    /// the newer one, so what it returns always matches what was committed.
    /// Returns `None` when the call has no record (and `missing` is
    /// [`Missing::Skip`]). An unchanged record is not written.
    pub(super) async fn update<R>(
        &self,
        call_id: &CallId,
        tenant_id: &TenantId,
        missing: Missing,
        change: impl FnMut(&mut CallRecord) -> R,
    ) -> Result<Option<(R, Arc<CallRecord>)>, StoreError> {
        self.update_as(call_id, tenant_id, missing, Writer::Worker, change)
            .await
    }

    /// [`update`](Self::update) as `writer`: a write from outside the call's
    /// worker (linking a consultation call from its parent's hook) never uses
    /// the lease the worker may hold, only the version compare-and-set.
    pub(super) async fn update_as<R>(
        &self,
        call_id: &CallId,
        tenant_id: &TenantId,
        missing: Missing,
        writer: Writer,
        mut change: impl FnMut(&mut CallRecord) -> R,
    ) -> Result<Option<(R, Arc<CallRecord>)>, StoreError> {
        let mut conflicts = 0;
        loop {
            let lease = match writer {
                Writer::Worker => self.held.for_commit(call_id),
                Writer::Outsider => None,
            };
            // Under a lease the cache is what the claim read and what was
            // committed since: no load (after a conflict, reload).
            let current = match &lease {
                Some(_) if conflicts == 0 => self.cache.get(call_id),
                _ => self.with_store_retries(|| self.current(call_id)).await?,
            };
            let mut record = match (&current, missing) {
                (Some(current), _) => CallRecord::clone(current),
                (None, Missing::Create) => CallRecord::new(CallSnapshot::new(call_id.clone(), tenant_id.clone())),
                (None, Missing::Skip) => return Ok(None),
            };
            let deliveries = match &lease {
                Some(_) => self.held.deliveries(call_id),
                None => 0,
            };
            // Delivered steps go first: `change` may append new ones.
            super::lease::record_deliveries(&mut record, deliveries);
            let result = change(&mut record);
            if let Some(current) = current.as_ref().filter(|c| ***c == record) {
                return Ok(Some((result, Arc::clone(current))));
            }
            record.version = current.as_ref().map_or(0, |c| c.version) + 1;
            let record = Arc::new(record);
            let saved = match (&self.sharing, &lease) {
                (Some(sharing), Some((lease, consumed))) => {
                    let ttl = self.timings.lease_ttl;
                    let mut committed = self
                        .with_store_retries(|| sharing.store.commit(lease, Some(Arc::clone(&record)), *consumed, ttl))
                        .await;
                    if let Err(StoreError::Conflict { .. }) = &committed
                        && self.landed_earlier(call_id, &record).await
                    {
                        committed = Ok(());
                    }
                    if committed.is_ok() {
                        self.held.committed(lease, *consumed);
                        self.held.recorded(call_id, deliveries);
                    }
                    committed
                }
                _ => self.with_store_retries(|| self.store.save(Arc::clone(&record))).await,
            };
            match saved {
                Ok(()) => {
                    if current.is_none() {
                        self.counters.calls_seen.fetch_add(1, Ordering::Relaxed);
                    }
                    // Without the lease, another instance may change the call next: not cached.
                    if self.sharing.is_none() || lease.is_some() {
                        self.cache.put(&record, lease.is_some());
                    }
                    self.after_commit(current.as_deref(), &record);
                    return Ok(Some((result, record)));
                }
                Err(StoreError::Conflict { .. }) if conflicts < MAX_CONFLICTS => {
                    conflicts += 1;
                    self.counters.store_conflicts.fetch_add(1, Ordering::Relaxed);
                    // The lease holder's cached record is its truth (a commit under the
                    // lease reads no other): an outsider's conflict must not drop it.
                    if lease.is_some() || !self.held.holds(call_id) {
                        self.cache.remove(call_id);
                    }
                }
                Err(error) => {
                    if let (StoreError::LeaseLost { .. }, Some((lease, _))) = (&error, &lease) {
                        self.lease_lost(lease);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Whether a commit refused for its version is in the store already: an
    /// earlier try landed and its answer was lost. Counted as done, its handled
    /// items and delivered steps are not dropped a second time by the next
    /// write (which would drop ones not handled yet).
    async fn landed_earlier(&self, call_id: &CallId, record: &Arc<CallRecord>) -> bool {
        let stored = self.with_store_retries(|| self.store.load(call_id)).await;
        matches!(stored, Ok(Some(stored)) if *stored == **record)
    }

    /// Runs a store operation, retrying while the store is unavailable, so an
    /// acknowledged event survives a short outage.
    pub(super) async fn with_store_retries<T, F>(&self, mut op: impl FnMut() -> F) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, StoreError>>,
    {
        let mut pause = Duration::from_millis(50);
        let mut tries = 0;
        // With a shared store, retry as long as a lease taken now could still be valid.
        let give_up = tokio::time::Instant::now() + self.timings.lease_ttl;
        let more = |tries: u32| match self.sharing {
            Some(_) => tokio::time::Instant::now() < give_up,
            None => tries + 1 < MAX_STORE_TRIES,
        };
        loop {
            let result = op().await;
            self.observe_store(&result);
            match result {
                Err(StoreError::Unavailable(message)) if more(tries) => {
                    tries += 1;
                    self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(tries, "call store unavailable, retrying: {message}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    /// Reports a store failure for a call.
    pub(super) fn store_failed(&self, call_id: &CallId, error: StoreError) {
        self.held.failed(call_id);
        self.come_back_later(call_id);
        self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
        self.errors.runtime_failed(call_id, &RuntimeFailure::Store(error));
    }

    /// With a shared store: the sweep claims the call again until a claim
    /// succeeds, for a few lease times (its own lease may still be kept).
    pub(super) fn come_back_later(&self, call_id: &CallId) {
        if self.is_shared() {
            self.held.unfinished(call_id, self.timings.lease_ttl * 3);
        }
    }

    /// Forgets an idle call, unless it changed since `version`.
    pub(super) async fn evict(&self, call_id: &CallId, version: u64) {
        match self.store.delete(call_id, version).await {
            Ok(()) => {
                self.cache.remove(call_id);
                self.counters.calls_evicted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(call_id = %call_id, "call forgotten after the idle time");
            }
            Err(StoreError::Conflict { .. }) => self.cache.remove(call_id),
            Err(error) => self.store_failed(call_id, error),
        }
    }
}
