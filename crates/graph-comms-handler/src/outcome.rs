//! Transfer outcomes, failures, and the errors of starting a transfer.

use std::fmt;

use graph_comms_model::{CallState, ResultInfo};

use crate::attempt::AttemptId;

/// How a transfer attempt ended: exactly one per attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferOutcome {
    /// The call left the bot: terminated with subcode 7015, or with
    /// `terminationReason: AppTransferred` after a consultative transfer.
    Completed,
    /// The transfer did not happen; the reason says how that was detected.
    Failed(TransferFailure),
}

impl TransferOutcome {
    /// Whether the transfer completed.
    pub fn is_completed(&self) -> bool {
        matches!(self, Self::Completed)
    }

    /// The failure, if the attempt failed.
    pub fn failure(&self) -> Option<&TransferFailure> {
        match self {
            Self::Completed => None,
            Self::Failed(failure) => Some(failure),
        }
    }
}

/// Why a transfer attempt failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransferFailure {
    /// The call went back to `established` with a non-zero subcode: 7000 (transfer failed),
    /// 7700 (consultative transfer failed) or any other subcode, kept as received.
    ReturnedToEstablished {
        /// The `resultInfo` the call came back with.
        result: ResultInfo,
    },
    /// Graph refused the `POST /transfer` (nothing was transferred).
    Rejected {
        /// What Graph said.
        error: ClientErrorSummary,
    },
    /// The `POST /transfer` had an ambiguous result (timeout, connection loss) and no
    /// notification about the transfer arrived within the unknown-outcome window.
    OutcomeUnknownNoNotification,
    /// The call ended without the transfer-completed signal.
    CallEnded {
        /// The end `resultInfo`, if the notification carried one.
        result: Option<ResultInfo>,
    },
    /// Nothing decisive arrived before the attempt's timeout.
    TimedOut,
    /// A newer attempt on the same call replaced this one (only when concurrent
    /// attempts are allowed).
    Superseded,
    /// The bot stopped before the outcome was known (shutdown).
    Abandoned,
}

impl TransferFailure {
    /// A short stable label, used for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ReturnedToEstablished { .. } => "returned_to_established",
            Self::Rejected { .. } => "rejected",
            Self::OutcomeUnknownNoNotification => "outcome_unknown",
            Self::CallEnded { .. } => "call_ended",
            Self::TimedOut => "timed_out",
            Self::Superseded => "superseded",
            Self::Abandoned => "abandoned",
        }
    }

    /// The subcode Graph gave, when the failure came with a `resultInfo`.
    pub fn subcode(&self) -> Option<i32> {
        match self {
            Self::ReturnedToEstablished { result } => result.subcode,
            Self::CallEnded { result: Some(result) } => result.subcode,
            _ => None,
        }
    }
}

impl fmt::Display for TransferFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = |r: &ResultInfo| {
            format!(
                "{}/{}",
                r.code.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                r.subcode.map_or_else(|| "-".to_owned(), |c| c.to_string())
            )
        };
        match self {
            Self::ReturnedToEstablished { result } => write!(f, "call returned to established ({})", code(result)),
            Self::Rejected { error } => write!(f, "transfer request rejected: {error}"),
            Self::OutcomeUnknownNoNotification => f.write_str("transfer request outcome unknown and no notification"),
            Self::CallEnded { result: Some(result) } => write!(f, "call ended ({})", code(result)),
            Self::CallEnded { result: None } => f.write_str("call ended"),
            Self::TimedOut => f.write_str("transfer timed out"),
            Self::Superseded => f.write_str("superseded by a newer transfer"),
            Self::Abandoned => f.write_str("abandoned at shutdown"),
        }
    }
}

/// The useful parts of a Graph client error, cloneable and comparable.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientErrorSummary {
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Graph's error code (`error.code`).
    pub code: Option<String>,
    /// Graph's `request-id`, for support cases.
    pub request_id: Option<String>,
    /// The error as text.
    pub message: String,
}

impl ClientErrorSummary {
    /// Summarises a client error.
    pub fn from_error(error: &graph_comms_client::GraphClientError) -> Self {
        Self {
            status: error.status(),
            code: error.graph_code().map(str::to_owned),
            request_id: error.request_id().map(str::to_owned),
            message: error.to_string(),
        }
    }
}

impl fmt::Display for ClientErrorSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        if let Some(code) = &self.code {
            write!(f, "{code} ")?;
        }
        f.write_str(&self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request-id {id})")?;
        }
        Ok(())
    }
}

/// Why a transfer could not be started. Nothing was sent to Graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Graph only transfers established calls.
    #[error("the call is not established (state: {state:?})")]
    NotEstablished {
        /// The call's current state, if known.
        state: Option<CallState>,
    },
    /// A group call needs `transferee` to say who moves.
    #[error("transfer out of a group call needs a transferee")]
    GroupCallWithoutTransferee,
    /// Another attempt on this call has no outcome yet.
    #[error("transfer {pending} is still pending on this call")]
    TransferPending {
        /// The pending attempt.
        pending: AttemptId,
    },
    /// The call has ended or is unknown to the bot.
    #[error("the call has ended or is unknown")]
    CallGone,
    /// The bot is shutting down.
    #[error("the bot is shutting down")]
    ShuttingDown,
}
