//! Where call records are kept: the [`CallStore`] contract.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use graph_comms_model::CallId;

use crate::error::StoreError;
use crate::record::CallRecord;

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
///   deadline ([`Deadlines::next_due`](crate::lifecycle::Deadlines::next_due)) has passed.
///
/// [`InMemoryCallStore`](crate::memory::InMemoryCallStore) is the default; `graph-comms-redis` shares calls among processes.
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
