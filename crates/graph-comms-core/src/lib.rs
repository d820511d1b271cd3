#![doc = include_str!("../README.md")]

pub mod attempt;
pub mod decision;
pub mod error;
pub mod event;
pub mod lifecycle;
pub mod memory;
pub mod record;
pub mod shared_store;
pub mod stepping;
pub mod store;
pub mod sync;
pub mod transfer_machine;
pub mod wall;

pub use attempt::{
    AttemptId, AttemptIdError, ClientErrorSummary, TransferError, TransferFailure, TransferInfo, TransferOutcome,
};
pub use decision::{AnswerOptions, CallEnd, ConsultationEvent, EndCause, IncomingDecision};
pub use error::StoreError;
pub use event::{EventKind, event_kind};
pub use memory::InMemoryCallStore;
pub use record::{AttemptRecord, CallLinks, CallRecord, CallSnapshot, Packed, RECORD_SCHEMA};
pub use shared_store::{Claim, InboxDelivery, InboxItem, Lease, Released, SharedCallStore};
pub use store::CallStore;

/// The Graph resource types (re-exported `graph-comms-model`).
pub use graph_comms_model as model;
