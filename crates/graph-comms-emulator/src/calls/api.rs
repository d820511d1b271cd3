//! The calls API's entry: one request from an authorized app, routed by
//! endpoint to the rules and scripts of the action.

use std::sync::Arc;

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState};
use serde_json::{Value, json};

use super::incoming::{answer, redirect_steps};
use super::items::{end_step, operation_done, result_info, update_step};
use super::operations::{operation_failed, operation_reply, record_response};
use super::outgoing::create_call;
use super::snapshot::{
    call_resource, expect_media, expect_participant, expect_state, owned_call, play, set_state, str_field,
};
use super::transfer::transfer;
use crate::Endpoint;
use crate::server::{ApiError, Reply};
use crate::state::{Grant, Inner, lock};

/// Serves one calls-API request from an authorized app.
pub(crate) async fn handle(
    inner: &Arc<Inner>,
    grant: &Grant,
    endpoint: Endpoint,
    call: Option<CallId>,
    participant: Option<String>,
    body: Option<Value>,
) -> Result<Reply, ApiError> {
    let body = body.unwrap_or(Value::Null);
    let Some(call) = call else {
        return create_call(inner, grant, &body);
    };
    let snapshot = owned_call(inner, grant, &call)?;
    let call = snapshot.id.clone();
    match endpoint {
        Endpoint::GetCall => Ok(Reply {
            status: StatusCode::OK,
            body: Some(call_resource(inner, &snapshot)),
            location: None,
        }),
        Endpoint::Answer => answer(inner, &call, &snapshot, &body),
        Endpoint::Reject => {
            expect_state(&snapshot, &[CallState::Incoming], "reject")?;
            let url = str_field(&body, "callbackUri")
                .unwrap_or(&snapshot.callback_uri)
                .to_owned();
            set_state(inner, &call, CallState::Terminating);
            play(inner, &call, url, vec![end_step(&call, None, json!({}))]);
            Ok(Reply::empty(StatusCode::ACCEPTED))
        }
        Endpoint::Redirect => {
            expect_state(&snapshot, &[CallState::Incoming], "redirect")?;
            if body.get("targets").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                return Err(ApiError::bad_request("targets is required."));
            }
            let url = str_field(&body, "callbackUri")
                .unwrap_or(&snapshot.callback_uri)
                .to_owned();
            set_state(inner, &call, CallState::Redirecting);
            let steps = redirect_steps(&snapshot, &body);
            play(inner, &call, url, steps);
            Ok(Reply::empty(StatusCode::ACCEPTED))
        }
        Endpoint::Transfer => transfer(inner, grant, &call, &snapshot, body),
        Endpoint::KeepAlive => {
            // Graph keeps only established calls alive; the others are refused.
            expect_state(&snapshot, &[CallState::Established], "keep alive")?;
            let now = inner.now();
            if let Some(record) = lock(&inner.calls).get_mut(&call) {
                record.last_activity = now;
            }
            Ok(Reply::empty(StatusCode::OK))
        }
        Endpoint::HangUp => {
            set_state(inner, &call, CallState::Terminating);
            // Numbers, as the schema's Int32 (a docs example writes strings; SDKs parse numbers).
            let result = result_info(json!(200), "subcode", json!(5001), "The conversation has ended.");
            play(
                inner,
                &call,
                snapshot.callback_uri.clone(),
                vec![
                    update_step(&call, CallState::Terminating, json!({})),
                    end_step(&call, Some(CallState::Terminated), json!({ "resultInfo": result })),
                ],
            );
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        Endpoint::PlayPrompt => {
            expect_media(&snapshot)?;
            if body.get("prompts").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                return Err(ApiError::bad_request("prompts is required."));
            }
            let context = str_field(&body, "clientContext");
            let (reply, op_id) = operation_reply(
                inner,
                &call,
                "#microsoft.graph.playPromptOperation",
                "Running",
                context,
                None,
            );
            let done = operation_done(
                &call,
                "#microsoft.graph.playPromptOperation",
                &op_id,
                context,
                json!({}),
            );
            play(inner, &call, snapshot.callback_uri.clone(), vec![done]);
            Ok(reply)
        }
        Endpoint::CancelMediaProcessing => {
            expect_media(&snapshot)?;
            let context = str_field(&body, "clientContext");
            let (reply, _) = operation_reply(
                inner,
                &call,
                "#microsoft.graph.cancelMediaProcessingOperation",
                "Completed",
                context,
                None,
            );
            let pending = lock(&inner.calls)
                .get_mut(&call)
                .map(|r| std::mem::take(&mut r.pending_ops))
                .unwrap_or_default();
            let steps = pending
                .iter()
                .map(|(op_id, odata_type, context)| {
                    operation_failed(
                        &call,
                        odata_type,
                        op_id,
                        context.as_deref(),
                        (400, 8508, "Action failed, the operation was cancelled."),
                        json!({ "completionReason": "operationCanceled" }),
                    )
                })
                .collect();
            play(inner, &call, snapshot.callback_uri.clone(), steps);
            Ok(reply)
        }
        Endpoint::Mute | Endpoint::Unmute => {
            expect_media(&snapshot)?;
            let odata_type = if endpoint == Endpoint::Mute {
                "#microsoft.graph.muteParticipantOperation"
            } else {
                "#microsoft.graph.unmuteParticipantOperation"
            };
            let context = str_field(&body, "clientContext");
            let (reply, _) = operation_reply(inner, &call, odata_type, "Completed", context, None);
            Ok(reply)
        }
        Endpoint::RecordResponse => record_response(inner, &call, &snapshot, &body),
        Endpoint::SubscribeToTone => {
            expect_media(&snapshot)?;
            if let Some(record) = lock(&inner.calls).get_mut(&call) {
                record.tones_subscribed = true;
            }
            let context = str_field(&body, "clientContext");
            let odata_type = "#microsoft.graph.subscribeToToneOperation";
            Ok(operation_reply(inner, &call, odata_type, "Completed", context, None).0)
        }
        Endpoint::SendDtmfTones => {
            expect_media(&snapshot)?;
            if body.get("tones").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                return Err(ApiError::bad_request("tones is required."));
            }
            let context = str_field(&body, "clientContext");
            let odata_type = "#microsoft.graph.sendDtmfTonesOperation";
            let (reply, op_id) = operation_reply(inner, &call, odata_type, "Running", context, None);
            let done = operation_done(
                &call,
                odata_type,
                &op_id,
                context,
                json!({ "completionReason": "completedSuccessfully" }),
            );
            play(inner, &call, snapshot.callback_uri.clone(), vec![done]);
            Ok(reply)
        }
        Endpoint::UpdateRecordingStatus => {
            expect_media(&snapshot)?;
            let known = ["notRecording", "recording", "failed"];
            let Some(status) = str_field(&body, "status") else {
                return Err(ApiError::bad_request("status is required."));
            };
            if !known.iter().any(|k| k.eq_ignore_ascii_case(status)) {
                return Err(ApiError::bad_request(format!("Invalid recording status {status:?}.")));
            }
            let context = str_field(&body, "clientContext");
            let odata_type = "#microsoft.graph.updateRecordingStatusOperation";
            Ok(operation_reply(inner, &call, odata_type, "Completed", context, None).0)
        }
        Endpoint::ChangeScreenSharingRole => {
            expect_media(&snapshot)?;
            match str_field(&body, "role") {
                Some(role) if ["viewer", "sharer"].iter().any(|r| r.eq_ignore_ascii_case(role)) => {
                    Ok(Reply::empty(StatusCode::ACCEPTED))
                }
                _ => Err(ApiError::bad_request("role must be viewer or sharer.")),
            }
        }
        Endpoint::AddLargeGalleryView => {
            expect_media(&snapshot)?;
            let context = str_field(&body, "clientContext");
            let odata_type = "#microsoft.graph.addLargeGalleryViewOperation";
            let (reply, op_id) = operation_reply(inner, &call, odata_type, "Running", context, None);
            let done = operation_done(&call, odata_type, &op_id, context, json!({}));
            play(inner, &call, snapshot.callback_uri.clone(), vec![done]);
            Ok(reply)
        }
        Endpoint::MuteParticipant | Endpoint::StartHoldMusic | Endpoint::StopHoldMusic => {
            expect_media(&snapshot)?;
            expect_participant(&snapshot, participant.as_deref())?;
            let context = str_field(&body, "clientContext");
            let odata_type = match endpoint {
                Endpoint::MuteParticipant => "#microsoft.graph.muteParticipantOperation",
                Endpoint::StartHoldMusic => "#microsoft.graph.startHoldMusicOperation",
                _ => "#microsoft.graph.stopHoldMusicOperation",
            };
            let (reply, op_id) = operation_reply(inner, &call, odata_type, "Running", context, None);
            let done = operation_done(&call, odata_type, &op_id, context, json!({}));
            play(inner, &call, snapshot.callback_uri.clone(), vec![done]);
            Ok(reply)
        }
        Endpoint::DeleteParticipant => {
            expect_media(&snapshot)?;
            expect_participant(&snapshot, participant.as_deref())?;
            if let (Some(record), Some(pid)) = (lock(&inner.calls).get_mut(&call), participant.as_deref())
                && let Some(group) = record.group.as_mut()
            {
                group.retain(|p| {
                    p.participant_id
                        .as_ref()
                        .is_none_or(|id| !id.as_str().eq_ignore_ascii_case(pid))
                });
            }
            Ok(Reply::empty(StatusCode::NO_CONTENT))
        }
        Endpoint::Invite => {
            expect_media(&snapshot)?;
            let Some(participants) = body
                .get("participants")
                .filter(|p| p.as_array().is_some_and(|a| !a.is_empty()))
            else {
                return Err(ApiError::bad_request("participants is required."));
            };
            // Inviting into a call escalates it to a meeting: no transfer afterwards (8523).
            if let Some(record) = lock(&inner.calls).get_mut(&call) {
                record.meeting = true;
            }
            let context = str_field(&body, "clientContext");
            let odata_type = "#microsoft.graph.inviteParticipantsOperation";
            let (reply, op_id) = operation_reply(inner, &call, odata_type, "Running", context, Some(participants));
            let done = operation_done(
                &call,
                odata_type,
                &op_id,
                context,
                json!({ "participants": participants }),
            );
            play(inner, &call, snapshot.callback_uri.clone(), vec![done]);
            Ok(reply)
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "UnknownError",
            "Resource not found for the segment.",
        )),
    }
}
