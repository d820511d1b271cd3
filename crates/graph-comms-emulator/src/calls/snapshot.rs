//! A call as a handler sees it ([`Snapshot`], copied out of the lock), the
//! state rules actions check, and setting a call's state or playing its steps.

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState, ParticipantInfo, TenantId};
use serde_json::{Value, json};

use super::items::call_data;
use crate::server::ApiError;
use crate::state::{Grant, Inner, Script, Step, lock};

/// What handlers need to know about a call, copied out of the lock.
pub(super) struct Snapshot {
    pub(super) id: CallId,
    pub(super) tenant_id: TenantId,
    pub(super) meeting: bool,
    pub(super) state: CallState,
    pub(super) callback_uri: String,
    pub(super) group: Option<Vec<ParticipantInfo>>,
    pub(super) resource: Value,
}

pub(super) fn owned_call(inner: &Inner, grant: &Grant, call: &CallId) -> Result<Snapshot, ApiError> {
    let calls = lock(&inner.calls);
    let record = calls
        .get(call)
        .filter(|r| !r.is_gone())
        .ok_or_else(|| ApiError::not_found(call))?;
    if record.app_id != grant.app_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "The application is not authorized to access this call.",
        ));
    }
    if record.tenant_id != grant.tenant_id {
        return Err(ApiError::tenant_mismatch());
    }
    Ok(Snapshot {
        id: record.id.clone(),
        tenant_id: record.tenant_id.clone(),
        meeting: record.meeting,
        state: record.state.clone(),
        callback_uri: record.callback_uri.clone(),
        group: record.group.clone(),
        resource: json!({
            "direction": record.direction,
            "callbackUri": record.callback_uri,
            "source": record.source,
            "targets": record.targets,
            "tenantId": record.tenant_id,
            "myParticipantId": record.my_participant_id,
            "callChainId": record.call_chain_id,
        }),
    })
}

pub(super) fn call_resource(inner: &Inner, snapshot: &Snapshot) -> Value {
    let mut resource = call_data(
        Some(snapshot.state.as_str()),
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#communications/calls/$entity", inner.base_url),
            "id": snapshot.id,
            "requestedModalities": ["audio"],
        }),
    );
    if let (Value::Object(r), Value::Object(extra)) = (&mut resource, &snapshot.resource) {
        r.extend(extra.clone());
    }
    resource
}

pub(super) fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(super) fn expect_state(snapshot: &Snapshot, allowed: &[CallState], action: &str) -> Result<(), ApiError> {
    if allowed.contains(&snapshot.state) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Cannot {action} call {} in state {}.",
            snapshot.id, snapshot.state
        )))
    }
}

/// Media operations need an answered call.
pub(super) fn expect_media(snapshot: &Snapshot) -> Result<(), ApiError> {
    expect_state(
        snapshot,
        &[
            CallState::Established,
            CallState::Transferring,
            CallState::TransferAccepted,
            CallState::Hold,
        ],
        "run a media operation on",
    )
}

pub(super) fn set_state(inner: &Inner, call: &CallId, state: CallState) {
    if let Some(record) = lock(&inner.calls).get_mut(call).filter(|r| !r.is_gone()) {
        record.state = state;
    }
    inner.bump();
}

pub(super) fn play(inner: &Inner, call: &CallId, url: String, steps: Vec<Step>) {
    inner.enqueue(call, Script { url, steps });
}

/// A participant action on a group call must name one of its participants.
pub(super) fn expect_participant(snapshot: &Snapshot, participant: Option<&str>) -> Result<(), ApiError> {
    let Some(pid) = participant else {
        return Err(ApiError::bad_request("participant id is required."));
    };
    match &snapshot.group {
        Some(group)
            if !group.iter().any(|p| {
                p.participant_id
                    .as_ref()
                    .is_some_and(|id| id.as_str().eq_ignore_ascii_case(pid))
            }) =>
        {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                format!("Participant {pid} was not found."),
            ))
        }
        _ => Ok(()),
    }
}
