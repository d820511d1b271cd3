#![doc = include_str!("../README.md")]

mod attempt;
mod bot;
mod classify;
mod context;
mod handler;
pub mod machine;
mod metrics;
mod outcome;
mod runtime;
mod store;

pub use async_trait::async_trait;
pub use attempt::{AttemptId, TransferAttempt, TransferInfo};
pub use bot::{Bot, BotBuilder, BuildError, DEFAULT_CALLBACK_PATH, ShutdownReport, Timings};
pub use classify::{Classification, EventKind, classify};
pub use context::CallContext;
pub use handler::{
    AnswerOptions, CallEnd, CallHandler, EndCause, ErrorHandler, HookError, HookFailure, HookName, IncomingDecision,
    LogErrors, RuntimeFailure,
};
pub use metrics::BotMetrics;
pub use outcome::{ClientErrorSummary, TransferError, TransferFailure, TransferOutcome};
pub use store::{AttemptRecord, CallRecord, CallSnapshot, CallStore, InMemoryCallStore, StoreError};

/// The Graph client (re-exported `graph-comms-client`).
pub use graph_comms_client as client;
/// The Graph resource types (re-exported `graph-comms-model`).
pub use graph_comms_model as model;
/// The notification endpoint (re-exported `graph-comms-notify`).
pub use graph_comms_notify as notify;
