//! What a notification is to the runtime, decided from the notification alone.

use graph_comms_model::{
    CallState, ChangeType, CommsNotification, OperationStatus, ResourceTarget, ResourceUrl, ResultInfo,
};

use crate::transfer_machine::AttemptInput;

/// What a notification is to the runtime, decided from the notification alone.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// `created` with state `incoming`: a call offered to the bot.
    IncomingCall,
    /// State `established`. A non-zero subcode fails a pending transfer (the
    /// call came back); otherwise it is the answer, or a duplicate of it.
    CallEstablished {
        /// The `resultInfo` it carried.
        result_info: Option<ResultInfo>,
    },
    /// State `transferring`.
    Transferring,
    /// State `transferAccepted`.
    TransferAccepted,
    /// State `terminated`, or the call was deleted: the call is over. It
    /// completes a pending transfer when the subcode says so (or with
    /// `terminationReason: AppTransferred` for a consultative one).
    CallTerminated {
        /// The `resultInfo` it carried.
        result_info: Option<ResultInfo>,
        /// The undeclared `terminationReason`.
        termination_reason: Option<String>,
    },
    /// Any other change to the call (`establishing`, `terminating`, no state):
    /// recorded, no hook.
    CallUpdated {
        /// The state it reported, if any.
        state: Option<CallState>,
    },
    /// An operation reached `completed` or `failed`, or was deleted.
    OperationFinished,
    /// An operation that is still running.
    OperationUpdated,
    /// A resource the runtime does not track (roster, content sharing, ...):
    /// only `on_notification` sees it.
    Ignored,
}

impl EventKind {
    /// A short name for logs and tools (`CallTerminated`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::IncomingCall => "IncomingCall",
            Self::CallEstablished { .. } => "CallEstablished",
            Self::Transferring => "Transferring",
            Self::TransferAccepted => "TransferAccepted",
            Self::CallTerminated { .. } => "CallTerminated",
            Self::CallUpdated { .. } => "CallUpdated",
            Self::OperationFinished => "OperationFinished",
            Self::OperationUpdated => "OperationUpdated",
            Self::Ignored => "Ignored",
        }
    }

    /// Whether the notification is about the call resource itself (and so
    /// creates, moves or ends the call's record).
    pub fn is_call(&self) -> bool {
        matches!(
            self,
            Self::IncomingCall
                | Self::CallEstablished { .. }
                | Self::Transferring
                | Self::TransferAccepted
                | Self::CallTerminated { .. }
                | Self::CallUpdated { .. }
        )
    }

    /// Whether the call is over.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::CallTerminated { .. })
    }

    /// What the event tells a pending transfer attempt's machine, if anything.
    pub fn attempt_input(&self) -> Option<AttemptInput> {
        match self {
            Self::CallEstablished { result_info } => Some(AttemptInput::Established {
                result_info: result_info.clone(),
            }),
            Self::Transferring => Some(AttemptInput::Transferring),
            Self::TransferAccepted => Some(AttemptInput::TransferAccepted),
            Self::CallTerminated {
                result_info,
                termination_reason,
            } => Some(AttemptInput::Terminated {
                result_info: result_info.clone(),
                termination_reason: termination_reason.clone(),
            }),
            _ => None,
        }
    }
}

/// Reads one notification item as an [`EventKind`]. `resource` is its parsed `resourceUrl`.
pub fn event_kind(notification: &CommsNotification, resource: &ResourceUrl) -> EventKind {
    let deleted = notification.change_type == ChangeType::Deleted;
    match &resource.target {
        ResourceTarget::Call => {
            let call = notification.call();
            let state = call.and_then(|c| c.state.clone());
            let result_info = call.and_then(|c| c.result_info.clone());
            if deleted || state == Some(CallState::Terminated) {
                return EventKind::CallTerminated {
                    result_info,
                    termination_reason: call.and_then(|c| c.termination_reason().map(str::to_owned)),
                };
            }
            match state {
                Some(CallState::Incoming) if notification.change_type == ChangeType::Created => EventKind::IncomingCall,
                Some(CallState::Established) => EventKind::CallEstablished { result_info },
                Some(CallState::Transferring) => EventKind::Transferring,
                Some(CallState::TransferAccepted) => EventKind::TransferAccepted,
                state => EventKind::CallUpdated { state },
            }
        }
        ResourceTarget::Operation(_) => match notification.operation() {
            Some(operation)
                if deleted
                    || matches!(
                        operation.status,
                        Some(OperationStatus::Completed | OperationStatus::Failed)
                    ) =>
            {
                EventKind::OperationFinished
            }
            Some(_) => EventKind::OperationUpdated,
            None => EventKind::Ignored,
        },
        _ => EventKind::Ignored,
    }
}
