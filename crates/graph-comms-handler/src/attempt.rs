//! Transfer attempts: their identity, description, and the awaitable handle.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use graph_comms_model::{CallId, TransferKind, TransferRequest};
use tokio::sync::watch;

use crate::outcome::{TransferFailure, TransferOutcome};

/// Identifies one transfer attempt within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(u64);

impl AttemptId {
    /// A fresh id, unique within the process.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The numeric value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt-{}", self.0)
    }
}

/// What the transfer hooks are told about an attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferInfo {
    /// The attempt.
    pub id: AttemptId,
    /// The call being transferred.
    pub call_id: CallId,
    /// Blind, consultative, PSTN or out of a group call.
    pub kind: TransferKind,
    /// The body that was POSTed.
    pub request: TransferRequest,
    /// 1 for the call's first attempt, 2 for the next, ...
    pub number: u32,
    /// Taken just before the POST; notifications received earlier are never
    /// attributed to this attempt.
    pub started_at: Instant,
}

/// A handle on a started transfer, returned by
/// [`CallContext::transfer`](crate::CallContext::transfer).
///
/// The same outcome is also delivered to the hooks
/// ([`CallHandler::on_transfer_completed`](crate::CallHandler::on_transfer_completed) /
/// [`CallHandler::on_transfer_failed`](crate::CallHandler::on_transfer_failed)).
///
/// # Deadlock warning
///
/// A call's events are handled one at a time, in order. The outcome is decided by
/// later events of the same call, so awaiting [`TransferAttempt::outcome`] *inside
/// a hook of that call* blocks its queue and never returns (until the bot drops
/// the attempt at shutdown). Either react in the hooks, or move the handle into a
/// spawned task (`tokio::spawn(async move { attempt.outcome().await })`).
#[derive(Debug, Clone)]
pub struct TransferAttempt {
    info: TransferInfo,
    outcome: watch::Receiver<Option<TransferOutcome>>,
}

impl TransferAttempt {
    pub(crate) fn new(info: TransferInfo, outcome: watch::Receiver<Option<TransferOutcome>>) -> Self {
        Self { info, outcome }
    }

    /// The attempt's id.
    pub fn id(&self) -> AttemptId {
        self.info.id
    }

    /// Blind, consultative, PSTN or out of a group call.
    pub fn kind(&self) -> TransferKind {
        self.info.kind
    }

    /// Everything known about the attempt at start.
    pub fn info(&self) -> &TransferInfo {
        &self.info
    }

    /// The outcome if already decided, without waiting.
    pub fn try_outcome(&self) -> Option<TransferOutcome> {
        self.outcome.borrow().clone()
    }

    /// Waits for the attempt's outcome. Every attempt gets one: at the latest
    /// its timeout, or [`TransferFailure::Abandoned`] if the bot stops first.
    ///
    /// Do not await this inside a hook of the same call (see the type's docs).
    pub async fn outcome(&self) -> TransferOutcome {
        let mut receiver = self.outcome.clone();
        let decided = match receiver.wait_for(Option::is_some).await {
            Ok(value) => value.clone(),
            // The sender is gone: the bot dropped the attempt.
            Err(_) => None,
        };
        decided
            .or_else(|| receiver.borrow().clone())
            .unwrap_or(TransferOutcome::Failed(TransferFailure::Abandoned))
    }
}
