//! What a call store's operations fail with.

use graph_comms_model::CallId;

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
    /// A write under a lease carried a token that no longer holds the call's
    /// lease (it expired and may be another instance's now): nothing changed.
    #[error("call {call_id}: the lease was lost")]
    LeaseLost {
        /// The call.
        call_id: CallId,
    },
}

impl StoreError {
    /// Whether this is a version conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Whether the store could not be reached (the operation may be retried).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}
