//! Media and participant operations: the operation reply, a failed
//! operation's notification, and `recordResponse` with its scripted end.

use axum::http::StatusCode;
use graph_comms_model::CallId;
use serde_json::{Value, json};

use super::items::{operation_done, result_info};
use super::snapshot::{Snapshot, expect_media, play, str_field};
use crate::RecordingBehavior;
use crate::server::{ApiError, Reply};
use crate::state::{Inner, Step, lock};

pub(super) fn operation_reply(
    inner: &Inner,
    call: &CallId,
    odata_type: &str,
    status: &str,
    client_context: Option<&str>,
    participants: Option<&Value>,
) -> (Reply, String) {
    let op_id = uuid::Uuid::new_v4().to_string();
    let mut body = json!({ "@odata.type": odata_type, "id": op_id, "status": status });
    if let Some(context) = client_context {
        body["clientContext"] = json!(context);
    }
    if let Some(participants) = participants {
        body["participants"] = participants.clone();
    }
    let reply = Reply {
        status: StatusCode::OK,
        body: Some(body),
        location: Some(format!(
            "{}/v1.0/communications/calls/{}/operations/{op_id}",
            inner.base_url,
            call.as_str()
        )),
    };
    (reply, op_id)
}

/// The `deleted` notification of an operation that failed.
pub(super) fn operation_failed(
    call: &CallId,
    odata_type: &str,
    op_id: &str,
    client_context: Option<&str>,
    (code, subcode, message): (i32, i32, &str),
    extra: Value,
) -> Step {
    let mut step = operation_done(call, odata_type, op_id, client_context, extra);
    if let Some(data) = step.item.get_mut("resourceData") {
        data["status"] = json!("Failed");
        data["resultInfo"] = result_info(json!(code), "subcode", json!(subcode), message);
    }
    step
}

/// `recordResponse`: a running `recordOperation`, then its end as scripted.
pub(super) fn record_response(
    inner: &Inner,
    call: &CallId,
    snapshot: &Snapshot,
    body: &Value,
) -> Result<Reply, ApiError> {
    expect_media(snapshot)?;
    if body.get("prompts").is_some_and(|p| !p.is_array()) {
        return Err(ApiError::bad_request("prompts must be an array."));
    }
    let context = str_field(body, "clientContext");
    let odata_type = "#microsoft.graph.recordOperation";
    let (reply, op_id) = operation_reply(inner, call, odata_type, "Running", context, None);
    let behavior = lock(&inner.calls)
        .get(call)
        .map(|r| r.recording.clone())
        .unwrap_or_default();
    let step = match behavior {
        RecordingBehavior::Complete => Some(operation_done(
            call,
            odata_type,
            &op_id,
            context,
            json!({
                "recordingLocation": format!("{}/recordings/{op_id}.wav", inner.base_url),
                "recordingAccessToken": format!("emu-rec.{}", uuid::Uuid::new_v4().simple()),
                "completionReason": "stopToneDetected",
            }),
        )),
        RecordingBehavior::Fail => Some(operation_failed(
            call,
            odata_type,
            &op_id,
            context,
            (500, 0, "Action failed, the recording could not be made."),
            json!({}),
        )),
        RecordingBehavior::Pending => {
            if let Some(record) = lock(&inner.calls).get_mut(call) {
                record
                    .pending_ops
                    .push((op_id.clone(), odata_type.to_owned(), context.map(str::to_owned)));
            }
            None
        }
    };
    if let Some(step) = step {
        play(inner, call, snapshot.callback_uri.clone(), vec![step]);
    }
    Ok(reply)
}
