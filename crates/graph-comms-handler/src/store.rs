//! Per-call records and where they are kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use graph_comms_model::{
    Call, CallDirection, CallId, CallState, InvitationParticipantInfo, ParticipantInfo, ResultInfo, TenantId,
};

use crate::attempt::TransferInfo;
use crate::machine::TransferMachine;

/// What the bot knows about a call right now.
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
    /// The caller.
    pub source: Option<ParticipantInfo>,
    /// Who was called.
    pub targets: Vec<InvitationParticipantInfo>,
    /// A group call (its `chatInfo.threadId` is set): transfers need a `transferee`.
    pub is_group: bool,
    /// The call resource from the last notification that carried one.
    pub last_call: Option<Call>,
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
            last_call: None,
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
        if call.source.is_some() {
            self.source.clone_from(&call.source);
        }
        if let Some(targets) = &call.targets {
            self.targets.clone_from(targets);
        }
        if call.chat_info.as_ref().is_some_and(|c| c.thread_id.is_some()) {
            self.is_group = true;
        }
        self.last_call = Some(call.clone());
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
    /// The latest transfer attempt, finished or not.
    pub attempt: Option<AttemptRecord>,
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
        self.attempt.as_ref().filter(|a| !a.machine.is_finished())
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
    /// Forgets a call.
    async fn remove(&self, call_id: &CallId) -> Result<(), StoreError>;
    /// How many calls are stored.
    async fn count(&self) -> Result<usize, StoreError>;
}

/// The default [`CallStore`]: a map in this process.
#[derive(Debug, Default)]
pub struct InMemoryCallStore {
    records: Mutex<HashMap<CallId, CallRecord>>,
}

impl InMemoryCallStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, CallRecord>> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl CallStore for InMemoryCallStore {
    async fn load(&self, call_id: &CallId) -> Result<Option<CallRecord>, StoreError> {
        Ok(self.map().get(call_id).cloned())
    }

    async fn save(&self, record: &CallRecord) -> Result<(), StoreError> {
        let mut map = self.map();
        // Writes can race; keep the newest version.
        match map.get(&record.snapshot.call_id) {
            Some(existing) if existing.version > record.version => {}
            _ => {
                map.insert(record.snapshot.call_id.clone(), record.clone());
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
