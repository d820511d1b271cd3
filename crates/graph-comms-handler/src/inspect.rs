//! How the runtime reads one notification: the event it becomes and the hooks
//! that event fires. [`classify`] runs the runtime's own call machine on
//! typical records, so what [`Classification`] reports is what a bot does.

use std::time::{SystemTime, UNIX_EPOCH};

use graph_comms_model::{Call, CallId, CallState, CommsNotification, ResourceUrl, TenantId, TransferRequest};

use crate::report::HookName;
use crate::timings::Timings;
use graph_comms_core::attempt::TransferInfo;
use graph_comms_core::event::{EventKind, event_kind};
use graph_comms_core::lifecycle::{CallInput, Step};
use graph_comms_core::record::{AttemptRecord, CallRecord, CallSnapshot};
use graph_comms_core::stepping::step;
use graph_comms_core::transfer_machine::TransferMachine;

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
    let call = notification.call();
    Classification {
        hooks: hooks_for(&kind, call, fresh_call()),
        hooks_during_transfer: hooks_for(&kind, call, transferring_call(false)),
        hooks_during_consultative_transfer: hooks_for(&kind, call, transferring_call(true)),
        kind,
    }
}

fn fresh_call() -> CallRecord {
    CallRecord::new(CallSnapshot::new(CallId::from("inspected"), TenantId::from("")))
}

fn transferring_call(consultative: bool) -> CallRecord {
    let mut record = fresh_call();
    record.lifecycle.incoming_handled = true;
    record.lifecycle.established_fired = true;
    record.snapshot.state = Some(CallState::Established);
    let mut request = TransferRequest::to_user("target", None);
    if consultative {
        request = request.replaces_call("consultation");
    }
    // Started long ago, so the inspected notification is not older than the attempt.
    let info = TransferInfo::new(record.snapshot.call_id.clone(), request.build(), 1, UNIX_EPOCH);
    record.attempt = Some(Box::new(AttemptRecord::new(info, TransferMachine::new(consultative))));
    record
}

fn hooks_for(kind: &EventKind, call: Option<&Call>, mut record: CallRecord) -> Vec<HookName> {
    if !kind.is_call() {
        return match kind {
            EventKind::OperationFinished => vec![HookName::OperationCompleted],
            _ => Vec::new(),
        };
    }
    let input = CallInput::Notification {
        kind,
        call,
        message: None,
        consultation_for: None,
    };
    step(&mut record, input, SystemTime::now(), &Timings::default().machine())
        .into_iter()
        .flat_map(|step| match step {
            Step::Incoming(_) => vec![HookName::IncomingCall],
            Step::Attempt(_, effects) => effects.iter().map(HookName::of_effect).collect(),
            Step::Established => vec![HookName::CallEstablished],
            Step::Terminated(_) => vec![HookName::CallTerminated],
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use graph_comms_model::{ChangeType, ResourceData, ResultInfo};

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
}
