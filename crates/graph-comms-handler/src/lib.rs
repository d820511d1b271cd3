#![doc = include_str!("../README.md")]

mod attempt;
mod bot;
pub mod call_machine;
mod context;
mod decision;
mod digits;
mod event;
mod hooks;
mod inspect;
pub mod machine;
mod metrics;
mod operation;
mod prometheus;
mod record;
mod report;
mod runtime;
mod serve;
mod shared;
mod store;
mod sync;
mod timings;
mod wall;

pub use async_trait::async_trait;
pub use attempt::{
    AttemptId, AttemptIdError, ClientErrorSummary, TransferAttempt, TransferError, TransferFailure, TransferInfo,
    TransferOutcome,
};
pub use bot::{
    Bot, BotBuilder, BuildError, DEFAULT_CALLBACK_PATH, DEFAULT_MAX_QUEUED_PER_CALL, DEFAULT_OUTAGE_JOURNAL_CAPACITY,
    ShutdownReport,
};
pub use context::{CallContext, ConsultError, ConsultationError, DataError, HangUpError};
pub use decision::{AnswerOptions, CallEnd, ConsultationEvent, EndCause, IncomingDecision};
pub use digits::{CollectDigits, CollectDigitsError, CollectError};
pub use event::{EventKind, event_kind};
pub use hooks::{CallHandler, HookError, RetryLater};
pub use inspect::{Classification, classify};
pub use metrics::BotMetrics;
pub use operation::{OperationError, PendingOperation};
pub use record::{AttemptRecord, CallLinks, CallRecord, CallSnapshot, Packed, RECORD_SCHEMA};
pub use report::{ErrorHandler, HookFailure, HookName, LogErrors, RuntimeFailure};
pub use serve::{ServerLimits, serve_with_limits};
pub use shared::{Claim, InboxDelivery, InboxItem, Lease, Released, SharedCallStore};
pub use store::{CallStore, InMemoryCallStore, StoreError};
pub use timings::Timings;

/// The Graph client (re-exported `graph-comms-client`).
pub use graph_comms_client as client;
/// The Graph resource types (re-exported `graph-comms-model`).
pub use graph_comms_model as model;
/// The notification endpoint (re-exported `graph-comms-notify`).
pub use graph_comms_notify as notify;
/// The Prometheus client library the framework registers its metrics with
/// (re-exported `prometheus-client`; see [`Bot::register_metrics`]).
pub use prometheus_client;
