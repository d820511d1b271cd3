//! Transfer attempts: their identity, description and outcome, and why one
//! could not start.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use graph_comms_model::{CallId, CallState, FailureCause, ResultInfo, TransferKind, TransferRequest};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Identifies one transfer attempt, unique across processes and restarts
/// (a random UUID), so it can key deduplication in user code.
///
/// Written as `attempt-<32 hex digits>`; [`FromStr`] reads that form or a bare UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(uuid::Uuid);

impl AttemptId {
    /// A fresh random id.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id as a UUID.
    pub fn as_uuid(&self) -> uuid::Uuid {
        self.0
    }
}

impl Default for AttemptId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<uuid::Uuid> for AttemptId {
    fn from(id: uuid::Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt-{}", self.0.simple())
    }
}

/// A string is not an attempt id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an attempt id (expected attempt-<32 hex digits>): {0:?}")]
pub struct AttemptIdError(String);

impl FromStr for AttemptId {
    type Err = AttemptIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = s.strip_prefix("attempt-").unwrap_or(s);
        uuid::Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| AttemptIdError(s.to_owned()))
    }
}

impl Serialize for AttemptId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttemptId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What the transfer hooks are told about an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", from = "StoredInfo")]
#[non_exhaustive]
pub struct TransferInfo {
    /// The attempt.
    pub id: AttemptId,
    /// The call being transferred.
    pub call_id: CallId,
    /// Blind, consultative, PSTN or out of a group call (derived from `request`).
    #[serde(skip_serializing)]
    pub kind: TransferKind,
    /// The body that was POSTed.
    pub request: TransferRequest,
    /// 1 for the call's first attempt, 2 for the next, ...
    pub number: u32,
    /// Taken just before the POST; notifications received earlier are never
    /// attributed to this attempt.
    #[serde(with = "crate::wall::millis")]
    pub started_at: SystemTime,
    /// True when this hook already ran for this attempt, on an instance that
    /// stopped before recording so (hooks run at least once; deduplicate by `id`).
    #[serde(skip)]
    pub redelivered: bool,
}

impl TransferInfo {
    /// Describes a new attempt on `call_id`.
    pub fn new(call_id: CallId, request: TransferRequest, number: u32, started_at: SystemTime) -> Self {
        Self {
            id: AttemptId::new(),
            call_id,
            kind: request.kind(),
            request,
            number,
            started_at,
            redelivered: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredInfo {
    id: AttemptId,
    call_id: CallId,
    request: TransferRequest,
    number: u32,
    #[serde(with = "crate::wall::millis")]
    started_at: SystemTime,
}

impl From<StoredInfo> for TransferInfo {
    fn from(s: StoredInfo) -> Self {
        Self {
            id: s.id,
            call_id: s.call_id,
            kind: s.request.kind(),
            request: s.request,
            number: s.number,
            started_at: s.started_at,
            redelivered: false,
        }
    }
}

/// How a transfer attempt ended: exactly one per attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
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
    /// Nothing decisive arrived before the attempt's timeout, and Graph, asked
    /// about the call, had it back to `established` without a failure: the
    /// transfer's own notifications were lost. (A call still `transferring`
    /// keeps the attempt pending: see [`TransferFailure::RangOut`].)
    TimedOut,
    /// The target rang past the ring limit (the handler's `Timings::ring_limit`):
    /// Graph still said `transferring` at every lookup since the attempt's
    /// timeout. Graph may still have the transfer under way.
    RangOut,
    /// Nothing decisive arrived before the attempt's timeout, and looking the call
    /// up in Graph failed too, so the transfer may yet have happened.
    TimedOutUnverified {
        /// Why the lookup failed.
        lookup_error: ClientErrorSummary,
    },
    /// With a shared store: the instance that decided the attempt stopped
    /// before its `POST /transfer` was known to be sent, and Graph, asked by
    /// the instance that took the call over, had the call `established`.
    /// Either the POST never left, or Graph already declined it; it is not
    /// sent again, because a second POST could transfer the call twice.
    Unconfirmed,
    /// The consultation call ended before it was answered (declined, not
    /// reached, busy, or hung up): no `POST /transfer` was sent.
    ConsultationEnded {
        /// The consultation call's end `resultInfo`, if known.
        result: Option<ResultInfo>,
    },
    /// A newer attempt on the same call replaced this one (only when concurrent
    /// attempts are allowed).
    Superseded,
    /// This bot stopped before the outcome was known (shutdown). Only a
    /// `TransferAttempt` handle sees this; the attempt stays in the store, and
    /// the bot that resumes the call fires its real outcome hook.
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
            Self::RangOut => "rang_out",
            Self::TimedOutUnverified { .. } => "timed_out_unverified",
            Self::Unconfirmed => "unconfirmed",
            Self::ConsultationEnded { .. } => "consultation_ended",
            Self::Superseded => "superseded",
            Self::Abandoned => "abandoned",
        }
    }

    /// The named cause Graph gave: the `resultInfo` subcode the call came back
    /// or ended with, or the code of a refused `POST /transfer` (7505 tenant
    /// mismatch, 8523 meeting mode, 7503/7504 registration and permissions, ...).
    /// Unknown subcodes are kept as [`FailureCause::Other`].
    pub fn cause(&self) -> Option<FailureCause> {
        match self {
            Self::ReturnedToEstablished { result }
            | Self::CallEnded { result: Some(result) }
            | Self::ConsultationEnded { result: Some(result) } => result.failure_cause(),
            Self::Rejected { error } => {
                FailureCause::from_error_parts(error.code.as_deref().unwrap_or_default(), &error.message)
            }
            _ => None,
        }
    }

    /// A one-line hint at the likely cause, when Graph named one.
    pub fn hint(&self) -> Option<&'static str> {
        self.cause().map(FailureCause::hint)
    }

    /// The subcode Graph gave, when the failure came with a `resultInfo`.
    pub fn subcode(&self) -> Option<i32> {
        match self {
            Self::ReturnedToEstablished { result } => result.subcode,
            Self::CallEnded { result: Some(result) } | Self::ConsultationEnded { result: Some(result) } => {
                result.subcode
            }
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
            Self::TimedOut => f.write_str("transfer timed out (Graph has the call back, established)"),
            Self::RangOut => f.write_str("the target rang past the ring limit (Graph still transferring)"),
            Self::TimedOutUnverified { lookup_error } => {
                write!(f, "transfer timed out; looking the call up failed: {lookup_error}")
            }
            Self::Unconfirmed => {
                f.write_str("not known to be sent: the instance that decided it stopped, and the call is established")
            }
            Self::ConsultationEnded { result: Some(result) } => {
                write!(f, "consultation call ended before it was answered ({})", code(result))
            }
            Self::ConsultationEnded { result: None } => f.write_str("consultation call ended before it was answered"),
            Self::Superseded => f.write_str("superseded by a newer transfer"),
            Self::Abandoned => f.write_str("abandoned: this bot stopped before the outcome"),
        }
    }
}

/// The useful parts of a Graph client error, cloneable and comparable.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientErrorSummary {
    /// The HTTP status, when there was a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Graph's error code (`error.code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Graph's `request-id`, for support cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The error as text.
    pub message: String,
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
    /// The call store could not record the attempt, so nothing was sent.
    #[error("the call store failed: {0}")]
    Store(crate::error::StoreError),
}

impl TransferError {
    /// A short name for metrics and spans (`transfer.cause`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotEstablished { .. } => "not_established",
            Self::GroupCallWithoutTransferee => "group_call_without_transferee",
            Self::TransferPending { .. } => "transfer_pending",
            Self::CallGone => "call_gone",
            Self::ShuttingDown => "shutting_down",
            Self::Store(_) => "store",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_their_cause_with_a_hint() {
        let declined = TransferFailure::ReturnedToEstablished {
            result: ResultInfo::new(500, 7000, "declined"),
        };
        assert_eq!(declined.cause(), Some(FailureCause::TargetNotReached));
        let tenant = TransferFailure::Rejected {
            error: ClientErrorSummary {
                status: Some(403),
                code: Some("7505".into()),
                request_id: None,
                message: "Forbidden".into(),
            },
        };
        assert_eq!(tenant.cause(), Some(FailureCause::TenantMismatch));
        assert!(
            tenant.hint().is_some_and(|h| h.contains("tenant")),
            "{:?}",
            tenant.hint()
        );
        let odd = TransferFailure::CallEnded {
            result: Some(ResultInfo::new(500, 9999, "odd")),
        };
        assert_eq!(odd.cause(), Some(FailureCause::Other(9999)));
        assert_eq!(TransferFailure::TimedOut.cause(), None);
    }

    #[test]
    fn attempt_ids_print_and_parse_back() {
        let id = AttemptId::new();
        let text = id.to_string();
        assert!(text.starts_with("attempt-") && text.len() == 8 + 32, "{text}");
        assert_eq!(text.parse::<AttemptId>(), Ok(id));
        assert_eq!(id.as_uuid().to_string().parse::<AttemptId>(), Ok(id));
        assert!("attempt-42".parse::<AttemptId>().is_err());
    }
}
