//! Where call records are kept: the [`CallStore`] contract and the in-memory default.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use graph_comms_model::CallId;

use crate::record::CallRecord;
use crate::sync::lock;

/// A call store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A compare-and-set write carried a stale version: someone else changed the
    /// call since the writer read it. The writer must reload and decide again.
    #[error("call {call_id}: version conflict (wrote {written}, the store holds {stored})")]
    Conflict {
        /// The call.
        call_id: CallId,
        /// The version the refused write carried.
        written: u64,
        /// The version the store holds (0: none).
        stored: u64,
    },
    /// The store could not be reached or failed; the operation may be retried.
    #[error("call store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read (bad bytes, another schema).
    #[error("corrupt call record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether this is a version conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Where call records are kept. The store is the truth; the runtime's memory is a cache.
///
/// The contract every implementation keeps:
/// - **Ids as Graph compares them.** [`CallId`] equality ignores case and
///   dashes; key records by [`CallId::canonical`] (the in-memory map does so
///   through `CallId`'s `Hash`/`Eq`).
/// - **Versioned compare-and-set.** [`save`](Self::save) stores a record only if
///   its `version` is exactly the stored version plus one (a call not stored has
///   version 0). Anything else is refused with [`StoreError::Conflict`] and
///   changes nothing. This is the fencing that lets several runtimes share calls:
///   a writer that decided on an old version cannot overwrite a newer decision.
/// - **Ended calls are kept** until their `lifecycle.deadlines.forget` time, then
///   may be dropped, so late duplicates are recognised as late.
/// - **Due calls can be found**: [`due`](Self::due) lists calls whose earliest
///   deadline ([`Deadlines::next_due`](crate::call_machine::Deadlines::next_due)) has passed.
///
/// [`InMemoryCallStore`] is the default; `graph-comms-redis` shares calls among processes.
#[async_trait]
pub trait CallStore: Send + Sync + 'static {
    /// The record of a call, if stored.
    async fn load(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError>;

    /// Stores `record` if its version is the stored version plus one.
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] for any other version; the store is unchanged then.
    async fn save(&self, record: Arc<CallRecord>) -> Result<(), StoreError>;

    /// Forgets a call, if the stored version is still `version` (a call not
    /// stored is already forgotten: `Ok`).
    ///
    /// # Errors
    ///
    /// [`StoreError::Conflict`] when the call changed since; it is kept then.
    async fn delete(&self, call_id: &CallId, version: u64) -> Result<(), StoreError>;

    /// Up to `limit` calls whose earliest deadline is at or before `now`.
    async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<CallId>, StoreError>;

    /// How many calls are stored (ended ones not yet forgotten included).
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The default [`CallStore`]: a map in this process.
///
/// It shares records with the runtime (`Arc`), so a write copies no record.
/// Several bots in one process may share one (`Arc<InMemoryCallStore>`).
#[derive(Debug, Default)]
pub struct InMemoryCallStore {
    records: Mutex<HashMap<CallId, Arc<CallRecord>>>,
}

impl InMemoryCallStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CallStore for InMemoryCallStore {
    async fn load(&self, call_id: &CallId) -> Result<Option<Arc<CallRecord>>, StoreError> {
        Ok(lock(&self.records).get(call_id).cloned())
    }

    async fn save(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        let mut map = lock(&self.records);
        let stored = map.get(record.call_id()).map_or(0, |r| r.version);
        if record.version != stored + 1 {
            return Err(StoreError::Conflict {
                call_id: record.call_id().clone(),
                written: record.version,
                stored,
            });
        }
        // Replacing in place keeps the id's allocation: one write per event is the hot path.
        match map.get_mut(record.call_id()) {
            Some(slot) => *slot = record,
            None => {
                map.insert(record.call_id().clone(), record);
            }
        }
        Ok(())
    }

    async fn delete(&self, call_id: &CallId, version: u64) -> Result<(), StoreError> {
        let mut map = lock(&self.records);
        match map.get(call_id).map(|r| r.version) {
            Some(stored) if stored != version => Err(StoreError::Conflict {
                call_id: call_id.clone(),
                written: version,
                stored,
            }),
            _ => {
                map.remove(call_id);
                Ok(())
            }
        }
    }

    async fn due(&self, now: SystemTime, limit: usize) -> Result<Vec<CallId>, StoreError> {
        let mut map = lock(&self.records);
        // The scan that finds due calls also drops ended calls past their retention.
        map.retain(|_, r| r.lifecycle.deadlines.forget.is_none_or(|at| at > now));
        Ok(map
            .iter()
            .filter(|(_, r)| r.lifecycle.deadlines.next_due().is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(lock(&self.records).len())
    }
}
