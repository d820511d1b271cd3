//! How the runtime reads one notification: the event it becomes and the hooks
//! that event fires. The runtime dispatches through [`classify`] and the same
//! planning step, so what [`Classification`] reports is what a bot does.

use graph_comms_model::{
    CallState, ChangeType, CommsNotification, OperationStatus, ResourceTarget, ResourceUrl, ResultInfo,
};

use crate::handler::HookName;
use crate::machine::{AttemptEffect, AttemptInput, TransferMachine};

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

/// The event a notification becomes and the hooks it fires (after
/// `on_notification`, which runs first for every item), in order.
///
/// Which hooks run depends on the call's state, so three typical states are
/// given; each list comes from the runtime's own dispatch and transfer machine.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Classification {
    /// What the notification is.
    pub kind: EventKind,
    /// On a call the bot tracks that has fired no hook yet and has no transfer
    /// pending (an incoming call starts being tracked by this notification).
    pub hooks: Vec<HookName>,
    /// On an established call with a blind transfer pending.
    pub hooks_during_transfer: Vec<HookName>,
    /// On an established call with a consultative transfer (`replacesCallId`) pending.
    pub hooks_during_consultative_transfer: Vec<HookName>,
}

/// Classifies one notification item exactly as the runtime dispatches it.
///
/// `resource` is the item's parsed `resourceUrl` (the notification endpoint
/// refuses items that name no call, so the runtime never sees those).
pub fn classify(notification: &CommsNotification, resource: &ResourceUrl) -> Classification {
    let kind = event_kind(notification, resource);
    let idle = CallFlags::default();
    let established = CallFlags {
        incoming_handled: true,
        established_fired: true,
    };
    Classification {
        hooks: hooks_for(&kind, idle, None),
        hooks_during_transfer: hooks_for(&kind, established, Some(TransferMachine::new(false))),
        hooks_during_consultative_transfer: hooks_for(&kind, established, Some(TransferMachine::new(true))),
        kind,
    }
}

fn event_kind(notification: &CommsNotification, resource: &ResourceUrl) -> EventKind {
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

/// The per-call facts that decide which lifecycle hooks are still due.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CallFlags {
    pub(crate) incoming_handled: bool,
    pub(crate) established_fired: bool,
}

/// One thing a call event makes the runtime do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Planned {
    Incoming,
    Attempt(Vec<AttemptEffect>),
    Established,
    Terminated,
}

/// Plans a call event's effects and updates the flags and machine to match.
/// `stale` marks a notification older than the pending attempt: it must not
/// move the attempt, and a terminal one only tells it the call is gone.
pub(crate) fn plan(
    kind: &EventKind,
    flags: &mut CallFlags,
    machine: Option<&mut TransferMachine>,
    stale: bool,
) -> Vec<Planned> {
    let mut planned = Vec::new();
    if *kind == EventKind::IncomingCall && !flags.incoming_handled {
        flags.incoming_handled = true;
        planned.push(Planned::Incoming);
    }
    let input = match (kind, stale) {
        (EventKind::CallTerminated { result_info, .. }, true) => Some(AttemptInput::CallGone {
            result_info: result_info.clone(),
        }),
        (_, true) => None,
        (kind, false) => kind.attempt_input(),
    };
    if let (Some(input), Some(machine)) = (input, machine) {
        let effects = machine.handle(input);
        if !effects.is_empty() {
            planned.push(Planned::Attempt(effects));
        }
    }
    if matches!(kind, EventKind::CallEstablished { .. }) && !stale && !flags.established_fired {
        flags.established_fired = true;
        planned.push(Planned::Established);
    }
    if kind.is_terminal() {
        planned.push(Planned::Terminated);
    }
    planned
}

fn hooks_for(kind: &EventKind, mut flags: CallFlags, mut machine: Option<TransferMachine>) -> Vec<HookName> {
    if !kind.is_call() {
        return match kind {
            EventKind::OperationFinished => vec![HookName::OperationCompleted],
            _ => Vec::new(),
        };
    }
    plan(kind, &mut flags, machine.as_mut(), false)
        .into_iter()
        .flat_map(|step| match step {
            Planned::Incoming => vec![HookName::IncomingCall],
            Planned::Attempt(effects) => effects.iter().map(AttemptEffect::hook).collect(),
            Planned::Established => vec![HookName::CallEstablished],
            Planned::Terminated => vec![HookName::CallTerminated],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_comms_model::{Call, ResourceData};

    fn call_notification(change: ChangeType, call: Call) -> (CommsNotification, ResourceUrl) {
        let n = CommsNotification::new(
            change,
            "/communications/calls/c1",
            Some(ResourceData::Call(Box::new(call))),
        );
        let resource = n.resource().unwrap_or_else(|e| panic!("{e}"));
        (n, resource)
    }

    #[test]
    fn a_transfer_failure_is_an_established_call_that_fails_the_pending_attempt() {
        let call = Call {
            state: Some(CallState::Established),
            result_info: Some(ResultInfo::new(500, 7000, "declined")),
            ..Call::default()
        };
        let (n, resource) = call_notification(ChangeType::Updated, call);
        let c = classify(&n, &resource);
        assert_eq!(c.kind.name(), "CallEstablished");
        assert_eq!(c.hooks, [HookName::CallEstablished]);
        assert_eq!(c.hooks_during_transfer, [HookName::TransferFailed]);
    }

    #[test]
    fn app_transferred_completes_only_a_consultative_transfer() {
        let mut call = Call {
            state: Some(CallState::Terminated),
            ..Call::default()
        };
        call.extra.insert("terminationReason".into(), "AppTransferred".into());
        let (n, resource) = call_notification(ChangeType::Deleted, call);
        let c = classify(&n, &resource);
        assert!(c.kind.is_terminal());
        assert_eq!(c.hooks, [HookName::CallTerminated]);
        assert_eq!(
            c.hooks_during_transfer,
            [HookName::TransferFailed, HookName::CallTerminated]
        );
        assert_eq!(
            c.hooks_during_consultative_transfer,
            [
                HookName::Transferring,
                HookName::TransferAccepted,
                HookName::TransferCompleted,
                HookName::CallTerminated
            ]
        );
    }

    #[test]
    fn a_stale_end_only_tells_the_attempt_the_call_is_gone() {
        let kind = EventKind::CallTerminated {
            result_info: Some(ResultInfo::new(0, 7015, "")),
            termination_reason: None,
        };
        let mut machine = TransferMachine::new(false);
        let mut flags = CallFlags::default();
        let planned = plan(&kind, &mut flags, Some(&mut machine), true);
        assert!(matches!(
            planned.as_slice(),
            [Planned::Attempt(effects), Planned::Terminated]
                if matches!(effects.as_slice(), [AttemptEffect::Failed(_)])
        ));
    }
}
