//! Incoming calls: placing one (its record, answer timer and `created`
//! notification), answering it and redirecting it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState};
use serde_json::{Value, json};

use super::items::{answer_step, call_data, compact_url, end_step, item, result_info};
use super::snapshot::{Snapshot, expect_state, play, str_field};
use crate::server::{ApiError, Reply};
use crate::state::{CallRecord, Inner, Script, Step, lock};
use crate::{Caller, IncomingCall, delivery, unanswered};

fn caller_source(from: &Caller) -> Value {
    let identity = match from {
        Caller::User { id, display_name } => json!({ "user": { "displayName": display_name, "id": id } }),
        Caller::Phone(number) => json!({ "phone": { "id": number } }),
    };
    json!({ "identity": identity, "region": "westus", "languageId": "en-US" })
}

/// Registers an incoming call, starts its delivery task and queues the `created` notification.
pub(crate) fn place_incoming(inner: &Arc<Inner>, call: IncomingCall) -> CallId {
    let id = CallId::new(uuid::Uuid::new_v4().to_string());
    let mut source = caller_source(&call.from);
    // In a group call the caller is a participant with an id: the transferee needs it.
    if call.group.is_some() {
        source["participantId"] = json!(uuid::Uuid::new_v4().to_string());
    }
    let called = match &call.to {
        Some(set) => serde_json::to_value(set).unwrap_or(Value::Null),
        None => json!({ "application": { "displayName": "Emulated bot", "id": call.app_id.as_str() } }),
    };
    let targets = json!([{ "identity": called }]);
    let url = compact_url(&id);
    let call_chain_id = uuid::Uuid::new_v4().to_string();
    // Graph's call resource names its chain (the policy-recording example shows it).
    let mut fields = json!({
        "@odata.id": url, "@odata.etag": "W/\"5445\"", "direction": "incoming",
        "source": source, "targets": targets, "requestedModalities": ["audio"],
        "callChainId": call_chain_id,
    });
    // Group calls carry their chat thread; that is how a bot tells them from P2P calls.
    if call.group.is_some() {
        fields["chatInfo"] = json!({
            "@odata.type": "#microsoft.graph.chatInfo",
            "threadId": format!("19:meeting_{}@thread.v2", uuid::Uuid::new_v4().simple()),
            "messageId": "0",
        });
    }
    let data = call_data(Some("incoming"), fields);
    let created = Step {
        delay: Duration::ZERO,
        item: item("created", &url, data),
        state: Some(CallState::Incoming),
        terminal: false,
    };
    let answer_timeout = call.answer_timeout.unwrap_or(inner.config.incoming_answer_timeout);
    insert_call(
        inner,
        CallRecord {
            id: id.clone(),
            app_id: call.app_id,
            tenant_id: call.tenant_id,
            state: CallState::Incoming,
            ended: false,
            direction: "incoming",
            callback_uri: call.callback_uri.clone(),
            source,
            targets,
            group: call.group,
            faults: call.faults,
            queue: None,
            last_activity: inner.now(),
            my_participant_id: uuid::Uuid::new_v4().to_string(),
            call_chain_id,
            notifications: Vec::new(),
            tones_subscribed: false,
            tone_sequence: 0,
            last_tone: None,
            recording: crate::RecordingBehavior::default(),
            pending_ops: Vec::new(),
            meeting: false,
            answer_deadline: inner.now().checked_add(answer_timeout),
        },
    );
    unanswered::start_timer(inner, &id, answer_timeout);
    inner.enqueue(
        &id,
        Script {
            url: call.callback_uri,
            steps: vec![created],
        },
    );
    id
}

pub(super) fn insert_call(inner: &Arc<Inner>, mut record: CallRecord) {
    record.queue = Some(delivery::spawn(inner, record.id.clone()));
    lock(&inner.calls).insert(record.id.clone(), record);
    inner.bump();
}

pub(super) fn answer(inner: &Arc<Inner>, call: &CallId, snapshot: &Snapshot, body: &Value) -> Result<Reply, ApiError> {
    let Some(url) = str_field(body, "callbackUri") else {
        return Err(ApiError::bad_request("callbackUri is required."));
    };
    expect_state(snapshot, &[CallState::Incoming], "answer")?;
    if let Some(record) = lock(&inner.calls).get_mut(call) {
        record.callback_uri = url.to_owned();
        record.state = CallState::Establishing;
    }
    inner.bump();
    play(
        inner,
        call,
        url.to_owned(),
        vec![
            answer_step(call, CallState::Establishing),
            answer_step(call, CallState::Established),
        ],
    );
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

/// Redirect: the call ends `terminated` with the
/// call's resource as the redirect examples show it (`answeredBy`, `resultInfo`, ...).
pub(super) fn redirect_steps(snapshot: &Snapshot, body: &Value) -> Vec<Step> {
    let call = &snapshot.id;
    let targets = body.get("targets").cloned().unwrap_or_else(|| json!([]));
    let first = targets.pointer("/0/identity").cloned().unwrap_or(Value::Null);
    // A phone answers as an encrypted identity in the PSTN example.
    let answered_identity = if first.get("phone").is_some() {
        json!({ "@odata.type": "#microsoft.graph.identitySet", "encrypted": {
            "@odata.type": "#microsoft.graph.identity", "id": uuid::Uuid::new_v4().simple().to_string() } })
    } else {
        first
    };
    let mut fields = snapshot.resource.clone();
    if let Value::Object(map) = &mut fields {
        map.insert("id".into(), json!(call));
        map.insert("@odata.id".into(), json!(compact_url(call)));
        map.insert("@odata.etag".into(), json!("W/\"5445\""));
        map.insert("targets".into(), targets);
        map.insert(
            "answeredBy".into(),
            json!({ "@odata.type": "#microsoft.graph.participantInfo", "identity": answered_identity, "endpointType": "default" }),
        );
        map.insert("terminationReason".into(), json!("AppRedirected"));
        map.insert(
            "resultInfo".into(),
            result_info(json!(200), "subcode", json!(0), "The call was redirected."),
        );
        map.insert("requestedModalities".into(), json!(["audio"]));
    }
    // The v1.0 examples show only the end (beta adds `updated redirecting`).
    vec![end_step(call, Some(CallState::Terminated), fields)]
}
