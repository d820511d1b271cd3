//! `transfer-bot inspect`: how the framework reads one notification body.

use std::fmt;

use graph_comms_handler::{Classification, HookName, classify};
use graph_comms_model::{CommsNotification, CommsNotifications, ParseError, ResourceData, ResourceTarget, ResultInfo};

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
    /// The event the item becomes and the hooks it fires, as the handler
    /// runtime dispatches it; `None` when the resource names no call (the
    /// notification endpoint refuses the whole body then).
    pub classification: Option<Classification>,
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
    let (call_id, target, classification) = match &resource {
        Ok(url) => (
            Ok(url.call_id.to_string()),
            describe_target(&url.target),
            Some(classify(item, url)),
        ),
        Err(e) => (Err(e.to_string()), "-".to_owned(), None),
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
        classification,
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
        let Some(c) = &self.classification else {
            return write!(f, "  event:       (none: the endpoint refuses a body naming no call)");
        };
        write!(f, "  event:       {}", c.kind.name())?;
        write!(f, "\n  hooks:       {}", hook_list(&c.hooks))?;
        if c.hooks_during_transfer != c.hooks {
            write!(f, "\n  in transfer: {}", hook_list(&c.hooks_during_transfer))?;
        }
        if c.hooks_during_consultative_transfer != c.hooks_during_transfer {
            write!(
                f,
                "\n  in consultative transfer: {}",
                hook_list(&c.hooks_during_consultative_transfer)
            )?;
        }
        Ok(())
    }
}

/// `on_a, on_b`, or `(none)`.
fn hook_list(hooks: &[HookName]) -> String {
    if hooks.is_empty() {
        return "(none)".to_owned();
    }
    hooks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn opt(value: Option<i32>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
