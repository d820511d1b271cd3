//! Outgoing calls: creating one (`POST /communications/calls`) in the token's
//! tenant, and the target's behaviour as its establishing steps.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState, TenantId};
use serde_json::{Value, json};

use super::incoming::insert_call;
use super::items::{answer_step, end_step, result_info};
use super::snapshot::{call_resource, owned_call, play, str_field};
use crate::TargetBehavior;
use crate::server::{ApiError, Reply};
use crate::state::{CallRecord, Grant, Inner};

/// instance or a target application instance of another tenant is Graph's 7505.
fn check_tenants(grant: &Grant, body: &Value, targets: &Value) -> Result<(), ApiError> {
    let differs = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|t| TenantId::new(t) != grant.tenant_id)
    };
    let target_instances = targets
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t.pointer("/identity/applicationInstance/tenantId"));
    if differs(body.get("tenantId"))
        || differs(body.pointer("/source/identity/applicationInstance/tenantId"))
        || target_instances.into_iter().any(differs)
    {
        return Err(ApiError::tenant_mismatch());
    }
    Ok(())
}

pub(super) fn create_call(inner: &Arc<Inner>, grant: &Grant, body: &Value) -> Result<Reply, ApiError> {
    let Some(url) = str_field(body, "callbackUri") else {
        return Err(ApiError::bad_request("callbackUri is required."));
    };
    let Some(targets) = body
        .get("targets")
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    else {
        return Err(ApiError::bad_request("targets is required."));
    };
    check_tenants(grant, body, targets)?;
    // Graph places a PSTN call only from a resource account with a number
    // (the create-call docs, example 5); the emulator's wording.
    let calls_phone = targets
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t.pointer("/identity/phone").is_some());
    if calls_phone && body.pointer("/source/identity/applicationInstance/id").is_none() {
        return Err(ApiError::bad_request(
            "A call to a phone number needs source.identity.applicationInstance (a resource account with a number).",
        ));
    }
    let target_id = targets
        .pointer("/0/identity")
        .and_then(|i| serde_json::from_value::<graph_comms_model::IdentitySet>(i.clone()).ok())
        .and_then(|i| i.primary().and_then(|p| p.id.clone()));
    let behavior = target_id.map_or(TargetBehavior::Accept, |id| inner.target_behavior(&id));
    let id = CallId::new(uuid::Uuid::new_v4().to_string());
    let source = body
        .get("source")
        .cloned()
        .unwrap_or_else(|| json!({ "identity": { "application": { "id": grant.app_id.as_str() } } }));
    insert_call(
        inner,
        CallRecord {
            id: id.clone(),
            app_id: grant.app_id.clone(),
            tenant_id: grant.tenant_id.clone(),
            state: CallState::Establishing,
            ended: false,
            direction: "outgoing",
            callback_uri: url.to_owned(),
            source,
            targets: targets.clone(),
            group: None,
            faults: crate::DeliveryFaults::default(),
            queue: None,
            last_activity: inner.now(),
            my_participant_id: uuid::Uuid::new_v4().to_string(),
            call_chain_id: uuid::Uuid::new_v4().to_string(),
            notifications: Vec::new(),
            tones_subscribed: false,
            tone_sequence: 0,
            last_tone: None,
            recording: crate::RecordingBehavior::default(),
            pending_ops: Vec::new(),
            meeting: false,
            answer_deadline: None,
        },
    );
    let unanswered = |code: i32, subcode: i32, message: &str, delay: Duration| {
        let mut step = end_step(
            &id,
            Some(CallState::Terminated),
            json!({ "resultInfo": result_info(json!(code), "subcode", json!(subcode), message) }),
        );
        step.delay = delay;
        step
    };
    let establishing = answer_step(&id, CallState::Establishing);
    let steps = match behavior {
        TargetBehavior::Decline => vec![
            establishing,
            unanswered(603, 0, "The callee declined the call.", Duration::ZERO),
        ],
        TargetBehavior::Busy => vec![establishing, unanswered(486, 0, "The callee is busy.", Duration::ZERO)],
        TargetBehavior::NoAnswer { after } => {
            vec![
                establishing,
                unanswered(480, 10076, "The callee is unreachable.", after),
            ]
        }
        TargetBehavior::AcceptAfter { after } => {
            let mut established = answer_step(&id, CallState::Established);
            established.delay = after;
            vec![establishing, established]
        }
        _ => vec![establishing, answer_step(&id, CallState::Established)],
    };
    play(inner, &id, url.to_owned(), steps);
    let snapshot = owned_call(inner, grant, &id)?;
    Ok(Reply {
        status: StatusCode::CREATED,
        body: Some(call_resource(inner, &snapshot)),
        location: Some(format!("{}/v1.0/communications/calls/{}", inner.base_url, id.as_str())),
    })
}
