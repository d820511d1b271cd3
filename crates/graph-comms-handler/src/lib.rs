#![doc = include_str!("../README.md")]

mod bot;
mod context;
mod digits;
mod hooks;
mod inspect;
mod metrics;
mod operation;
mod prometheus;
mod report;
mod runtime;
mod serve;
mod timings;
mod transfer_handle;

pub use async_trait::async_trait;
pub use bot::{
    Bot, BotBuilder, BuildError, DEFAULT_CALLBACK_PATH, DEFAULT_MAX_QUEUED_PER_CALL, DEFAULT_OUTAGE_JOURNAL_CAPACITY,
    ShutdownReport,
};
pub use context::{CallContext, ConsultError, ConsultationError, DataError, HangUpError};
pub use digits::{CollectDigits, CollectDigitsError, CollectError};
pub use graph_comms_core::{
    AnswerOptions, AttemptId, AttemptIdError, AttemptRecord, CallEnd, CallLinks, CallRecord, CallSnapshot, CallStore,
    Claim, ClientErrorSummary, ConsultationEvent, EndCause, EventKind, InMemoryCallStore, InboxDelivery, InboxItem,
    IncomingDecision, Lease, Packed, RECORD_SCHEMA, Released, SharedCallStore, StoreError, TransferError,
    TransferFailure, TransferInfo, TransferOutcome, event_kind,
};
pub use hooks::{CallHandler, HookError, RetryLater};
pub use inspect::{Classification, classify};
pub use metrics::BotMetrics;
pub use operation::{OperationError, PendingOperation};
pub use report::{ErrorHandler, HookFailure, HookName, LogErrors, RuntimeFailure};
pub use serve::{ServerLimits, serve_with_limits};
pub use timings::Timings;
pub use transfer_handle::TransferAttempt;

/// The names most bots use, in one import: `use graph_comms_handler::prelude::*;`.
/// The rest stays at the crate root and in the re-exported crates.
pub mod prelude {
    pub use crate::model::{CallId, TransferRequest};
    pub use crate::{
        AttemptId, Bot, CallContext, CallEnd, CallHandler, HookError, IncomingDecision, RetryLater, Timings,
        TransferFailure, TransferInfo, TransferOutcome, async_trait,
    };
}

/// The Graph client (re-exported `graph-comms-client`).
pub use graph_comms_client as client;
/// The Graph resource types (re-exported `graph-comms-model`).
pub use graph_comms_model as model;
/// The notification endpoint (re-exported `graph-comms-notify`).
pub use graph_comms_notify as notify;
/// The Prometheus client library the framework registers its metrics with
/// (re-exported `prometheus-client`; see [`Bot::register_metrics`]).
pub use prometheus_client;
