//! [`TransferAttempt`]: the awaitable handle of an attempt this process started.

use graph_comms_core::attempt::{AttemptId, ClientErrorSummary, TransferFailure, TransferInfo, TransferOutcome};
use graph_comms_model::TransferKind;
use tokio::sync::watch;

/// A handle on a started transfer, returned by
/// [`CallContext::transfer`](crate::CallContext::transfer).
///
/// The same outcome is also delivered to the hooks
/// ([`CallHandler::on_transfer_completed`](crate::CallHandler::on_transfer_completed) /
/// [`CallHandler::on_transfer_failed`](crate::CallHandler::on_transfer_failed)).
/// The handle lives in this process only: if the bot stops first it resolves to
/// [`TransferFailure::Abandoned`], while the attempt itself stays in the call
/// store and its outcome hook fires in whichever bot resumes the call.
///
/// # Deadlock warning
///
/// A call's events are handled one at a time, in order. The outcome is decided by
/// later events of the same call, so awaiting [`TransferAttempt::outcome`] *inside
/// a hook of that call* blocks its queue until the hook timeout. Either react in
/// the hooks, or move the handle into a spawned task
/// (`tokio::spawn(async move { attempt.outcome().await })`).
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
    /// its timeout, or [`TransferFailure::Abandoned`] if this bot stops first.
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

/// Summarises a Graph client error for an attempt's record and outcome.
pub(crate) fn summarize(error: &graph_comms_client::GraphClientError) -> ClientErrorSummary {
    ClientErrorSummary {
        status: error.status(),
        code: error.graph_code().map(str::to_owned),
        request_id: error.request_id().map(str::to_owned),
        message: error.to_string(),
    }
}

/// The notify endpoint's delivery in stored form, and back.
pub(crate) fn stored_delivery(delivery: &graph_comms_notify::Delivery) -> graph_comms_core::InboxDelivery {
    let mut stored = graph_comms_core::InboxDelivery::default();
    stored.message_id = delivery.message_id.as_deref().map(str::to_owned);
    stored.item = delivery.item;
    stored.query = delivery.query.as_deref().map(str::to_owned);
    stored
}

pub(crate) fn delivery_of(stored: &graph_comms_core::InboxDelivery) -> graph_comms_notify::Delivery {
    graph_comms_notify::Delivery::new(stored.message_id.as_deref(), stored.item).with_query(stored.query.as_deref())
}
