//! Notification items shaped like the documented payloads: `updated` and
//! `deleted` call steps, operation results, and the timeouts' ends.

use std::time::Duration;

use graph_comms_model::{CallId, CallState};
use serde_json::{Map, Value, json};

use crate::state::Step;

/// `/communications/calls/{ID}` with the id upper-case and without dashes, as the answer and
/// playPrompt examples write it.
pub(super) fn compact_url(call: &CallId) -> String {
    format!("/communications/calls/{}", call.canonical().to_uppercase())
}

/// `/communications/calls/{id}` as given, as the transfer and delete examples write it.
fn plain_url(call: &CallId) -> String {
    format!("/communications/calls/{}", call.as_str())
}

pub(super) fn item(change: &str, resource_url: &str, data: Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change,
        "resourceUrl": resource_url,
        "resourceData": data,
    })
}

pub(super) fn call_data(state: Option<&str>, fields: Value) -> Value {
    let mut data = Map::new();
    data.insert("@odata.type".into(), json!("#microsoft.graph.call"));
    if let Some(state) = state {
        data.insert("state".into(), json!(state));
    }
    if let Value::Object(fields) = fields {
        data.extend(fields);
    }
    Value::Object(data)
}

/// An `updated` call notification in the answer examples' shape (`@odata.id`, `@odata.etag`).
pub(super) fn answer_step(call: &CallId, state: CallState) -> Step {
    let url = compact_url(call);
    let data = call_data(
        Some(state.as_str()),
        json!({ "@odata.id": url, "@odata.etag": "W/\"5445\"" }),
    );
    Step {
        delay: Duration::ZERO,
        item: item("updated", &url, data),
        state: Some(state),
        terminal: false,
    }
}

/// An `updated` call notification in the transfer examples' shape.
pub(super) fn update_step(call: &CallId, state: CallState, fields: Value) -> Step {
    Step {
        delay: Duration::ZERO,
        item: item("updated", &plain_url(call), call_data(Some(state.as_str()), fields)),
        state: Some(state),
        terminal: false,
    }
}

/// The `deleted` notification that ends a call.
pub(super) fn end_step(call: &CallId, state: Option<CallState>, fields: Value) -> Step {
    Step {
        delay: Duration::ZERO,
        item: item(
            "deleted",
            &plain_url(call),
            call_data(state.as_ref().map(CallState::as_str), fields),
        ),
        state: Some(CallState::Terminated),
        terminal: true,
    }
}

pub(super) fn result_info(code: Value, subcode_key: &str, subcode: Value, message: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.resultInfo", "code": code, subcode_key: subcode, "message": message })
}

/// The `deleted` notification of an operation that completed.
pub(super) fn operation_done(
    call: &CallId,
    odata_type: &str,
    op_id: &str,
    client_context: Option<&str>,
    extra: Value,
) -> Step {
    let url = format!(
        "{}/operations/{}",
        compact_url(call),
        op_id.replace('-', "").to_uppercase()
    );
    let mut data = Map::new();
    data.insert("@odata.type".into(), json!(odata_type));
    data.insert("@odata.id".into(), json!(url));
    data.insert("@odata.etag".into(), json!("W/\"54451\""));
    data.insert(
        "resultInfo".into(),
        result_info(json!(200), "subcode", json!(0), "Action completed successfully."),
    );
    if let Some(context) = client_context {
        data.insert("clientContext".into(), json!(context));
    }
    data.insert("status".into(), json!("Completed"));
    if let Value::Object(extra) = extra {
        data.extend(extra);
    }
    Step {
        delay: Duration::ZERO,
        item: item("deleted", &url, Value::Object(data)),
        state: None,
        terminal: false,
    }
}

/// The end of a call that was idle past the keep-alive timeout.
pub(crate) fn keep_alive_timeout_step(call: &CallId) -> Step {
    end_step(
        call,
        Some(CallState::Terminated),
        json!({ "resultInfo": result_info(json!(408), "subcode", json!(8537), "Keep Alive timeout, cleaned up inactive call") }),
    )
}

/// The end of an incoming call nobody answered, rejected or redirected in time.
pub(crate) fn answer_timeout_step(call: &CallId) -> Step {
    let subcode = graph_comms_model::subcodes::CALL_ACCEPTANCE_TIMEOUT;
    let message = "No acknowledgment of call acceptance in time.";
    end_step(
        call,
        Some(CallState::Terminated),
        json!({ "resultInfo": result_info(json!(408), "subcode", json!(subcode), message) }),
    )
}
