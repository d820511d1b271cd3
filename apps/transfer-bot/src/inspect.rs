//! `transfer-bot inspect`: how the framework reads one notification body.

use std::fmt;

use graph_comms_handler::HookName;
use graph_comms_model::{
    ChangeType, CommsNotification, CommsNotifications, ParseError, ResourceData, ResourceTarget, ResultInfo,
};

/// What one notification body contains, item by item.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectReport {
    /// The envelope's `@odata.type`, if present.
    pub odata_type: Option<String>,
    /// One entry per `value` item, in order.
    pub items: Vec<InspectedItem>,
}

/// One notification item as the framework sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectedItem {
    /// The call the item belongs to, or why its resource names no call.
    pub call_id: Result<String, String>,
    /// Which part of the call the resource names (`call`, `operation ...`, ...).
    pub resource: String,
    /// `created`, `updated`, `deleted`, ...
    pub change_type: String,
    /// The call state or operation status, when the item carries one.
    pub state: Option<String>,
    /// The `resultInfo` code, subcode and message, when present.
    pub result_info: Option<ResultInfo>,
    /// `terminationReason`, when present.
    pub termination_reason: Option<String>,
    /// The event the item becomes, and the hook it fires.
    pub classification: Classification,
}

/// The event a notification becomes and the `CallHandler` hook it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// The event's name.
    pub event: &'static str,
    /// The typed hook, or `None` when the event only updates state.
    /// (`on_notification` runs first for every item.)
    pub hook: Option<HookName>,
    /// A note on conditions (e.g. "only while a transfer is pending").
    pub note: Option<&'static str>,
}

/// Parses a body exactly as Graph would POST it and describes every item.
pub fn inspect(body: &[u8]) -> Result<InspectReport, ParseError> {
    let envelope = CommsNotifications::from_slice(body)?;
    Ok(InspectReport {
        odata_type: envelope.odata_type.clone(),
        items: envelope.value.iter().map(inspect_item).collect(),
    })
}

fn inspect_item(item: &CommsNotification) -> InspectedItem {
    let resource = item.resource();
    let (call_id, target) = match &resource {
        Ok(url) => (Ok(url.call_id.to_string()), describe_target(&url.target)),
        Err(e) => (Err(e.to_string()), "-".to_owned()),
    };
    let (state, result_info, termination_reason) = match &item.resource_data {
        Some(ResourceData::Call(call)) => (
            call.state.as_ref().map(ToString::to_string),
            call.result_info.clone(),
            call.termination_reason().map(str::to_owned),
        ),
        Some(ResourceData::Operation(op)) => (
            op.status.as_ref().map(ToString::to_string),
            op.result_info.clone(),
            None,
        ),
        _ => (None, None, None),
    };
    InspectedItem {
        call_id,
        resource: target,
        change_type: item.change_type.to_string(),
        state,
        result_info,
        termination_reason,
        classification: classify(item),
    }
}

fn describe_target(target: &ResourceTarget) -> String {
    match target {
        ResourceTarget::Call => "call".into(),
        ResourceTarget::Operation(id) => format!("operation {id}"),
        ResourceTarget::Participants => "participants".into(),
        ResourceTarget::Participant(id) => format!("participant {id}"),
        other => format!("{other:?}"),
    }
}

/// The event and hook a notification maps to, from the notification alone.
///
/// Transfer outcomes key on state plus subcode (never the code alone), as the
/// handler's transfer machine does.
pub fn classify(item: &CommsNotification) -> Classification {
    use graph_comms_model::CallState as S;
    let c = |event, hook, note| Classification { event, hook, note };
    if let Some(op) = item.operation() {
        let done = item.change_type == ChangeType::Deleted
            || op
                .status
                .as_ref()
                .is_some_and(|s| matches!(s.as_str(), "completed" | "failed"));
        return if done {
            c("OperationFinished", Some(HookName::OperationCompleted), None)
        } else {
            c("OperationUpdated", None, None)
        };
    }
    let Some(call) = item.call() else {
        return match item.resource().map(|r| r.target) {
            Ok(ResourceTarget::Participants | ResourceTarget::Participant(_)) => c(
                "ParticipantsUpdated",
                None,
                Some("roster changes are not forwarded to hooks"),
            ),
            Ok(ResourceTarget::Call) if item.change_type == ChangeType::Deleted => {
                c("CallTerminated", Some(HookName::CallTerminated), None)
            }
            _ => c("Ignored", None, Some("no call or operation in resourceData")),
        };
    };
    let subcode = call.result_info.as_ref().and_then(|r| r.subcode);
    let state = call.state.clone();
    match (state, &item.change_type) {
        (Some(S::Incoming), _) => c("IncomingCall", Some(HookName::IncomingCall), None),
        (Some(S::Establishing), _) => c("CallEstablishing", None, None),
        (Some(S::Established), _) if subcode.is_some_and(|s| s != 0) => c(
            "TransferFailed",
            Some(HookName::TransferFailed),
            Some("returned to established with a non-zero subcode; fails the pending transfer"),
        ),
        (Some(S::Established), _) => c("CallEstablished", Some(HookName::CallEstablished), None),
        (Some(S::Transferring), _) => c("Transferring", Some(HookName::Transferring), None),
        (Some(S::TransferAccepted), _) => c("TransferAccepted", Some(HookName::TransferAccepted), None),
        (Some(S::Terminating), _) => c("CallTerminating", None, None),
        (Some(S::Terminated), _) | (None, ChangeType::Deleted) => {
            let app_transferred = call
                .termination_reason()
                .is_some_and(|r| r.eq_ignore_ascii_case("AppTransferred"));
            if subcode == Some(graph_comms_model::subcodes::TRANSFER_COMPLETED) {
                c("TransferCompleted", Some(HookName::TransferCompleted), None)
            } else if app_transferred {
                c(
                    "TransferCompleted",
                    Some(HookName::TransferCompleted),
                    Some("terminationReason AppTransferred: success for a consultative transfer"),
                )
            } else {
                c(
                    "CallTerminated",
                    Some(HookName::CallTerminated),
                    Some("fails a pending transfer (call ended)"),
                )
            }
        }
        _ => c("CallUpdated", None, None),
    }
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "envelope: {} item(s){}; on_notification runs first for every item",
            self.items.len(),
            self.odata_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
        )?;
        for (i, item) in self.items.iter().enumerate() {
            writeln!(f, "[{i}]")?;
            writeln!(f, "{item}")?;
        }
        Ok(())
    }
}

impl fmt::Display for InspectedItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.call_id {
            Ok(id) => writeln!(f, "  call id:     {id}")?,
            Err(e) => writeln!(f, "  call id:     (none: {e})")?,
        }
        writeln!(f, "  resource:    {}", self.resource)?;
        writeln!(f, "  change type: {}", self.change_type)?;
        writeln!(f, "  state:       {}", self.state.as_deref().unwrap_or("-"))?;
        match &self.result_info {
            Some(r) => writeln!(
                f,
                "  resultInfo:  code {} subcode {} message {:?}",
                opt(r.code),
                opt(r.subcode),
                r.message.as_deref().unwrap_or("")
            )?,
            None => writeln!(f, "  resultInfo:  -")?,
        }
        if let Some(reason) = &self.termination_reason {
            writeln!(f, "  termination: {reason}")?;
        }
        let c = &self.classification;
        let hook = c.hook.map_or_else(|| "(none)".to_owned(), |h| h.to_string());
        write!(f, "  event:       {}\n  hook:        {hook}", c.event)?;
        if let Some(note) = c.note {
            write!(f, " [{note}]")?;
        }
        Ok(())
    }
}

fn opt(value: Option<i32>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
