//! How hook failures and runtime failures are reported.

use std::fmt;

use graph_comms_model::CallId;

#[cfg(doc)]
use crate::hooks::CallHandler;
use crate::hooks::HookError;

/// Names a hook, for error reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookName {
    /// [`CallHandler::on_incoming_call`].
    IncomingCall,
    /// [`CallHandler::on_call_established`].
    CallEstablished,
    /// [`CallHandler::on_tone`].
    Tone,
    /// [`CallHandler::on_transferring`].
    Transferring,
    /// [`CallHandler::on_transfer_accepted`].
    TransferAccepted,
    /// [`CallHandler::on_transfer_completed`].
    TransferCompleted,
    /// [`CallHandler::on_transfer_failed`].
    TransferFailed,
    /// [`CallHandler::on_call_terminated`].
    CallTerminated,
    /// [`CallHandler::on_consultation_established`].
    ConsultationEstablished,
    /// [`CallHandler::on_consultation_ended`].
    ConsultationEnded,
    /// [`CallHandler::on_operation_completed`].
    OperationCompleted,
    /// [`CallHandler::on_notification`].
    Notification,
}

impl HookName {
    /// The hook an attempt's effect fires.
    pub(crate) fn of_effect(effect: &graph_comms_core::transfer_machine::AttemptEffect) -> Self {
        use graph_comms_core::transfer_machine::AttemptEffect;
        match effect {
            AttemptEffect::Transferring => Self::Transferring,
            AttemptEffect::Accepted { .. } => Self::TransferAccepted,
            AttemptEffect::Completed => Self::TransferCompleted,
            AttemptEffect::Failed(_) => Self::TransferFailed,
        }
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IncomingCall => "on_incoming_call",
            Self::CallEstablished => "on_call_established",
            Self::Tone => "on_tone",
            Self::Transferring => "on_transferring",
            Self::TransferAccepted => "on_transfer_accepted",
            Self::TransferCompleted => "on_transfer_completed",
            Self::TransferFailed => "on_transfer_failed",
            Self::CallTerminated => "on_call_terminated",
            Self::ConsultationEstablished => "on_consultation_established",
            Self::ConsultationEnded => "on_consultation_ended",
            Self::OperationCompleted => "on_operation_completed",
            Self::Notification => "on_notification",
        })
    }
}

/// How a hook failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum HookFailure {
    /// It returned an error.
    Error(HookError),
    /// It panicked; the panic message, when it was a string.
    Panicked(String),
    /// It did not finish within the hook timeout and was dropped.
    TimedOut(std::time::Duration),
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Error(error) => write!(f, "returned an error: {error}"),
            Self::Panicked(message) => write!(f, "panicked: {message}"),
            Self::TimedOut(after) => write!(f, "did not finish within {after:?} and was dropped"),
        }
    }
}

/// Something the runtime could not do on the handler's behalf (answering after
/// the incoming hook, sending keep-alive, ...).
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeFailure {
    /// A Graph request failed.
    Graph {
        /// What was being done (`answer`, `reject`, `redirect`, `keepAlive`).
        action: &'static str,
        /// The client's error.
        error: graph_comms_client::GraphClientError,
    },
    /// The call store failed.
    Store(graph_comms_core::error::StoreError),
}

impl fmt::Display for RuntimeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Graph { action, error } => write!(f, "{action} failed: {error}"),
            Self::Store(error) => write!(f, "call store: {error}"),
        }
    }
}

/// Receives hook failures and runtime failures. The default, [`LogErrors`],
/// logs them with `tracing`.
pub trait ErrorHandler: Send + Sync + 'static {
    /// A hook returned an error or panicked.
    fn hook_failed(&self, call_id: &CallId, hook: HookName, failure: &HookFailure);

    /// The runtime failed to do something for a call.
    fn runtime_failed(&self, call_id: &CallId, failure: &RuntimeFailure) {
        tracing::warn!(call_id = %call_id, "{failure}");
    }
}

/// The default [`ErrorHandler`]: logs at `error` level.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogErrors;

impl ErrorHandler for LogErrors {
    fn hook_failed(&self, call_id: &CallId, hook: HookName, failure: &HookFailure) {
        tracing::error!(call_id = %call_id, hook = %hook, "hook {failure}");
    }
}

impl HookName {
    /// Every hook, in the order [`CallHandler`](crate::CallHandler) declares them.
    pub const ALL: [HookName; 12] = [
        Self::IncomingCall,
        Self::CallEstablished,
        Self::Transferring,
        Self::TransferAccepted,
        Self::TransferCompleted,
        Self::TransferFailed,
        Self::CallTerminated,
        Self::ConsultationEstablished,
        Self::ConsultationEnded,
        Self::Tone,
        Self::OperationCompleted,
        Self::Notification,
    ];
}

#[cfg(test)]
mod tests {
    use super::HookName;

    /// Adding a hook to `CallHandler` without its `HookName` fails here: the
    /// trait's `async fn on_*` methods are read from its source.
    #[test]
    fn every_call_handler_hook_has_a_hook_name() {
        let source = include_str!("hooks.rs");
        let declared: Vec<&str> = source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("async fn "))
            .filter_map(|rest| rest.split('(').next())
            .filter(|name| name.starts_with("on_"))
            .collect();
        let named: Vec<String> = HookName::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(declared, named, "CallHandler's hooks and HookName::ALL differ");
    }
}
