//! Per-call records and where they are kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use graph_comms_model::{
    Call, CallDirection, CallId, CallState, InvitationParticipantInfo, ParticipantInfo, ResultInfo, TenantId,
};

use crate::attempt::TransferInfo;
use crate::machine::TransferMachine;

/// What the bot knows about a call right now.
///
/// Kept small (large parts are boxed) because the runtime copies it on every event.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSnapshot {
    /// The call.
    pub call_id: CallId,
    /// Its tenant (from the notification's token).
    pub tenant_id: TenantId,
    /// The last state reported (stale duplicates excluded).
    pub state: Option<CallState>,
    /// The last `resultInfo` reported.
    pub result_info: Option<ResultInfo>,
    /// Incoming or outgoing.
    pub direction: Option<CallDirection>,
    /// The caller (boxed: it is large and often absent).
    pub source: Option<Box<ParticipantInfo>>,
    /// Who was called.
    pub targets: Vec<InvitationParticipantInfo>,
    /// A group call (its `chatInfo.threadId` is set): transfers need a `transferee`.
    pub is_group: bool,
    /// The last `callbackUri` a call resource reported (used when answering).
    pub callback_uri: Option<String>,
    /// When the call first reached `established`.
    pub established_at: Option<Instant>,
}

impl CallSnapshot {
    /// An empty snapshot for a call seen for the first time.
    pub fn new(call_id: CallId, tenant_id: TenantId) -> Self {
        Self {
            call_id,
            tenant_id,
            state: None,
            result_info: None,
            direction: None,
            source: None,
            targets: Vec::new(),
            is_group: false,
            callback_uri: None,
            established_at: None,
        }
    }

    /// Folds in what a notification's call resource says.
    pub(crate) fn apply(&mut self, call: &Call) {
        if let Some(state) = &call.state {
            self.state = Some(state.clone());
        }
        if call.result_info.is_some() {
            self.result_info.clone_from(&call.result_info);
        }
        if call.direction.is_some() {
            self.direction.clone_from(&call.direction);
        }
        if let Some(source) = &call.source {
            self.source = Some(Box::new(source.clone()));
        }
        if let Some(targets) = &call.targets {
            self.targets.clone_from(targets);
        }
        if call.chat_info.as_ref().is_some_and(|c| c.thread_id.is_some()) {
            self.is_group = true;
        }
        if call.callback_uri.is_some() {
            self.callback_uri.clone_from(&call.callback_uri);
        }
    }
}

/// One transfer attempt's record.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The attempt as started.
    pub info: TransferInfo,
    /// Its progress.
    pub machine: TransferMachine,
}

/// Everything the runtime keeps about one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The call's state.
    pub snapshot: CallSnapshot,
    /// The latest transfer attempt, finished or not (boxed: it is large and often absent).
    pub attempt: Option<Box<AttemptRecord>>,
    /// How many attempts were started on the call.
    pub attempts_started: u32,
    /// Whether the runtime sends `keepAlive` for the call.
    pub keep_alive: bool,
    /// Bumped whenever keep-alive is rescheduled, so stale timers are ignored.
    pub keep_alive_generation: u64,
    /// Whether the incoming-call decision has been taken.
    pub incoming_handled: bool,
    /// Whether `on_call_established` has fired.
    pub established_fired: bool,
    /// Whether the call has ended.
    pub ended: bool,
    /// Bumped on every change; a shared store can drop writes older than what it holds.
    pub version: u64,
}

impl CallRecord {
    /// A fresh record.
    pub fn new(snapshot: CallSnapshot) -> Self {
        Self {
            snapshot,
            attempt: None,
            attempts_started: 0,
            keep_alive: true,
            keep_alive_generation: 0,
            incoming_handled: false,
            established_fired: false,
            ended: false,
            version: 0,
        }
    }

    /// The attempt that has no outcome yet, if any.
    pub fn pending_attempt(&self) -> Option<&AttemptRecord> {
        self.attempt.as_deref().filter(|a| !a.machine.is_finished())
    }
}

/// A call store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where call records are kept.
///
/// The runtime keeps each live call's record in memory and writes it through
/// to the store after every change; it loads from the store when an event
/// arrives for a call it does not hold (for example after a restart), and
/// removes the record when the call ends. [`InMemoryCallStore`] is the default;
/// a store shared by several instances can implement this trait.
#[async_trait]
pub trait CallStore: Send + Sync + 'static {
    /// The record of a call, if stored.
    async fn load(&self, call_id: &CallId) -> Result<Option<CallRecord>, StoreError>;
    /// Stores (or replaces) a record.
    async fn save(&self, record: &CallRecord) -> Result<(), StoreError>;
    /// Stores (or replaces) a record the caller shares. The runtime writes through
    /// with this; a store that keeps records in memory can keep the `Arc` instead
    /// of copying the record. By default it calls [`save`](Self::save).
    async fn save_shared(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        self.save(&record).await
    }
    /// Forgets a call.
    async fn remove(&self, call_id: &CallId) -> Result<(), StoreError>;
    /// How many calls are stored.
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The default [`CallStore`]: a map in this process.
///
/// It shares records with the runtime (`Arc`), so a write-through copies no record.
#[derive(Debug, Default)]
pub struct InMemoryCallStore {
    records: Mutex<HashMap<CallId, Arc<CallRecord>>>,
}

impl InMemoryCallStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Arc<CallRecord>>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl CallStore for InMemoryCallStore {
    async fn load(&self, call_id: &CallId) -> Result<Option<CallRecord>, StoreError> {
        Ok(self.map().get(call_id).map(|record| CallRecord::clone(record)))
    }

    async fn save(&self, record: &CallRecord) -> Result<(), StoreError> {
        self.save_shared(Arc::new(record.clone())).await
    }

    async fn save_shared(&self, record: Arc<CallRecord>) -> Result<(), StoreError> {
        let mut map = self.map();
        // Writes can race; keep the newest version.
        match map.get_mut(&record.snapshot.call_id) {
            Some(existing) if existing.version > record.version => {}
            Some(existing) => *existing = record,
            None => {
                map.insert(record.snapshot.call_id.clone(), record);
            }
        }
        Ok(())
    }

    async fn remove(&self, call_id: &CallId) -> Result<(), StoreError> {
        self.map().remove(call_id);
        Ok(())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.map().len())
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// The runtime copies a record on every event: large inline fields (a whole
    /// `Call`, a `ParticipantInfo`, an attempt) once made that 15 KB.
    #[test]
    fn call_record_stays_small_so_events_do_not_copy_kilobytes() {
        let (record, snapshot) = (size_of::<CallRecord>(), size_of::<CallSnapshot>());
        println!(
            "size_of: CallRecord {record} B, CallSnapshot {snapshot} B, AttemptRecord {} B (boxed), ParticipantInfo {} B (boxed), Call {} B (not kept)",
            size_of::<AttemptRecord>(),
            size_of::<ParticipantInfo>(),
            size_of::<Call>(),
        );
        assert!(record < 512, "CallRecord is {record} bytes");
        assert!(snapshot < 512, "CallSnapshot is {snapshot} bytes");
    }

    #[tokio::test]
    async fn in_memory_store_keeps_the_shared_record_and_the_newest_version() {
        let store = InMemoryCallStore::new();
        let mut record = CallRecord::new(CallSnapshot::new(CallId::from("c1"), TenantId::from("t1")));
        record.version = 2;
        let shared = Arc::new(record.clone());
        store.save_shared(Arc::clone(&shared)).await.unwrap();
        assert_eq!(Arc::strong_count(&shared), 2, "the store keeps the Arc, not a copy");

        let mut older = record.clone();
        older.version = 1;
        older.ended = true;
        store.save(&older).await.unwrap();
        assert_eq!(store.load(&record.snapshot.call_id).await.unwrap(), Some(record));
        assert_eq!(store.count().await.unwrap(), 1);
    }
}
