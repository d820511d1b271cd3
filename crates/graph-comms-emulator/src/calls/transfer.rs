//! Transfers: the checks Graph makes, the target's behaviour as steps, and
//! the consultative transfer's end of the call it replaces.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState, TransferRequest};
use serde_json::{Value, json};

use super::items::{end_step, result_info, update_step};
use super::snapshot::{Snapshot, expect_state, play, set_state};
use crate::TargetBehavior;
use crate::server::{ApiError, Reply};
use crate::state::{Grant, Inner, lock};

pub(super) fn transfer(
    inner: &Arc<Inner>,
    grant: &Grant,
    call: &CallId,
    snapshot: &Snapshot,
    body: Value,
) -> Result<Reply, ApiError> {
    if !body.get("transferTarget").is_some_and(Value::is_object) {
        return Err(ApiError::bad_request("transferTarget is required."));
    }
    let request: TransferRequest =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("Invalid transfer body: {e}")))?;
    expect_state(snapshot, &[CallState::Established], "transfer")?;
    if snapshot.meeting {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "8523",
            "Cannot do transfer for meeting mode.",
        ));
    }
    if snapshot.group.is_some() {
        match &request.transferee {
            None => {
                return Err(ApiError::bad_request(
                    "transferee is required when transferring from a group call.",
                ));
            }
            Some(transferee) if transferee.participant_id.is_none() => {
                return Err(ApiError::bad_request(
                    "transferee.participantId is required when transferring from a group call.",
                ));
            }
            Some(_) => {}
        }
    }
    let Some(target_id) = request
        .transfer_target
        .identity
        .as_ref()
        .and_then(|i| i.primary())
        .and_then(|i| i.id.clone())
    else {
        return Err(ApiError::bad_request("transferTarget.identity has no id."));
    };
    // An application instance (resource account) must be in the call's tenant.
    let instance_tenant = request
        .transfer_target
        .identity
        .as_ref()
        .and_then(|i| i.application_instance.as_ref())
        .and_then(|i| i.tenant_id.as_ref());
    if instance_tenant.is_some_and(|t| t != &snapshot.tenant_id) {
        return Err(ApiError::tenant_mismatch());
    }
    let replaced = request.transfer_target.replaces_call_id.clone();
    let behavior = inner.target_behavior(&target_id);
    set_state(inner, call, CallState::Transferring);

    let transferring = update_step(call, CallState::Transferring, json!({}));
    let failed = |subcode: i32, message: &str, delay: Duration| {
        let mut fields = json!({ "resultInfo": result_info(json!(500), "subCode", json!(subcode), message) });
        if replaced.is_some() {
            fields["replacesContext"] = json!(uuid::Uuid::new_v4().to_string());
        }
        let mut step = update_step(call, CallState::Established, fields);
        step.delay = delay;
        step
    };
    let consultative_subcode = if replaced.is_some() { 7700 } else { 7000 };
    // The emulator's choice: Graph documents no code for a consultation
    // call that ended before the transfer replacing it; 7700 is its
    // consultative-transfer failure.
    let replaced_gone = replaced.as_ref().is_some_and(|id| {
        lock(&inner.calls)
            .get(id)
            .is_none_or(|r| r.is_gone() || matches!(r.state, CallState::Terminating | CallState::Terminated))
    });
    let steps = match behavior {
        _ if replaced_gone => vec![
            transferring,
            failed(
                7700,
                "Consultative call transfer failed: the call to be replaced has ended.",
                Duration::ZERO,
            ),
        ],
        TargetBehavior::Accept | TargetBehavior::AcceptAfter { .. } => {
            // The target rings this long before it picks up; the call stays `transferring`.
            let ring = match behavior {
                TargetBehavior::AcceptAfter { after } => after,
                _ => Duration::ZERO,
            };
            let completed = match &replaced {
                Some(_) => end_step(
                    call,
                    Some(CallState::Terminated),
                    json!({ "terminationReason": "AppTransferred" }),
                ),
                None => end_step(
                    call,
                    Some(CallState::Terminated),
                    json!({ "resultInfo": result_info(json!(0), "subcode", json!(7015), "GracefulTransferCompleted") }),
                ),
            };
            if let Some(replaced) = &replaced {
                end_replaced_call(inner, grant, replaced, ring);
            }
            let mut accepted = update_step(call, CallState::TransferAccepted, json!({}));
            accepted.delay = ring;
            vec![transferring, accepted, completed]
        }
        TargetBehavior::Decline => vec![
            transferring,
            failed(
                consultative_subcode,
                "Call transfer failed: the target declined.",
                Duration::ZERO,
            ),
        ],
        TargetBehavior::Busy => vec![
            transferring,
            failed(
                consultative_subcode,
                "Call transfer failed: the target is busy.",
                Duration::ZERO,
            ),
        ],
        TargetBehavior::NoAnswer { after } => {
            vec![
                transferring,
                failed(
                    consultative_subcode,
                    "Call transfer failed: the target did not answer.",
                    after,
                ),
            ]
        }
        TargetBehavior::ConsultativeFails => {
            vec![
                transferring,
                failed(7700, "Consultative call transfer failed.", Duration::ZERO),
            ]
        }
    };
    play(inner, call, snapshot.callback_uri.clone(), steps);
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// A consultative transfer drops the call it replaces once the target joins (after `ring`).
fn end_replaced_call(inner: &Inner, grant: &Grant, replaced: &CallId, ring: Duration) {
    let url = {
        let calls = lock(&inner.calls);
        match calls.get(replaced) {
            Some(r) if !r.is_gone() && r.app_id == grant.app_id => Some((r.id.clone(), r.callback_uri.clone())),
            _ => None,
        }
    };
    if let Some((id, url)) = url {
        let mut step = end_step(
            &id,
            Some(CallState::Terminated),
            json!({ "terminationReason": "AppTransferred" }),
        );
        // After the transferred call's own three notifications.
        step.delay = ring + inner.config.step_delay * 3;
        play(inner, &id, url, vec![step]);
    }
}
