//! The calls API: validation, state rules, and the notification scripts each action plays.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use graph_comms_model::{CallId, CallState, ParticipantInfo, TenantId, Tone, TransferRequest};
use serde_json::{Map, Value, json};

use crate::server::{ApiError, Reply};
use crate::state::{CallRecord, Grant, Inner, Script, Step, lock};
use crate::{Caller, EmulatorError, Endpoint, IncomingCall, RecordingBehavior, TargetBehavior, delivery, unanswered};

// ---------------------------------------------------------------------------
// Notification items, shaped like the documented payloads.

/// `/communications/calls/{ID}` with the id upper-case and without dashes, as the answer and
/// playPrompt examples write it.
fn compact_url(call: &CallId) -> String {
    format!("/communications/calls/{}", call.canonical().to_uppercase())
}

/// `/communications/calls/{id}` as given, as the transfer and delete examples write it.
fn plain_url(call: &CallId) -> String {
    format!("/communications/calls/{}", call.as_str())
}

fn item(change: &str, resource_url: &str, data: Value) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change,
        "resourceUrl": resource_url,
        "resourceData": data,
    })
}

fn call_data(state: Option<&str>, fields: Value) -> Value {
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
fn answer_step(call: &CallId, state: CallState) -> Step {
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
fn update_step(call: &CallId, state: CallState, fields: Value) -> Step {
    Step {
        delay: Duration::ZERO,
        item: item("updated", &plain_url(call), call_data(Some(state.as_str()), fields)),
        state: Some(state),
        terminal: false,
    }
}

/// The `deleted` notification that ends a call.
fn end_step(call: &CallId, state: Option<CallState>, fields: Value) -> Step {
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

fn result_info(code: Value, subcode_key: &str, subcode: Value, message: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.resultInfo", "code": code, subcode_key: subcode, "message": message })
}

/// The `deleted` notification of an operation that completed.
fn operation_done(call: &CallId, odata_type: &str, op_id: &str, client_context: Option<&str>, extra: Value) -> Step {
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

// ---------------------------------------------------------------------------
// Incoming calls.

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

fn insert_call(inner: &Arc<Inner>, mut record: CallRecord) {
    record.queue = Some(delivery::spawn(inner, record.id.clone()));
    lock(&inner.calls).insert(record.id.clone(), record);
    inner.bump();
}

// ---------------------------------------------------------------------------
// The API.

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

/// What handlers need to know about a call, copied out of the lock.
struct Snapshot {
    id: CallId,
    tenant_id: TenantId,
    meeting: bool,
    state: CallState,
    callback_uri: String,
    group: Option<Vec<ParticipantInfo>>,
    resource: Value,
}

fn owned_call(inner: &Inner, grant: &Grant, call: &CallId) -> Result<Snapshot, ApiError> {
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

fn call_resource(inner: &Inner, snapshot: &Snapshot) -> Value {
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

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn expect_state(snapshot: &Snapshot, allowed: &[CallState], action: &str) -> Result<(), ApiError> {
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
fn expect_media(snapshot: &Snapshot) -> Result<(), ApiError> {
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

fn set_state(inner: &Inner, call: &CallId, state: CallState) {
    if let Some(record) = lock(&inner.calls).get_mut(call).filter(|r| !r.is_gone()) {
        record.state = state;
    }
    inner.bump();
}

fn play(inner: &Inner, call: &CallId, url: String, steps: Vec<Step>) {
    inner.enqueue(call, Script { url, steps });
}

fn operation_reply(
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

fn answer(inner: &Arc<Inner>, call: &CallId, snapshot: &Snapshot, body: &Value) -> Result<Reply, ApiError> {
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

fn transfer(
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

/// A call is created in the token's tenant: a `tenantId`, a source application
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

fn create_call(inner: &Arc<Inner>, grant: &Grant, body: &Value) -> Result<Reply, ApiError> {
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

/// A participant action on a group call must name one of its participants.
fn expect_participant(snapshot: &Snapshot, participant: Option<&str>) -> Result<(), ApiError> {
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

/// The `deleted` notification of an operation that failed.
fn operation_failed(
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
fn record_response(inner: &Inner, call: &CallId, snapshot: &Snapshot, body: &Value) -> Result<Reply, ApiError> {
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

/// The caller's key presses, as `toneInfo` call updates (only once subscribed).
pub(crate) fn caller_tones(inner: &Inner, call: &CallId, tones: &[Tone]) -> Result<bool, EmulatorError> {
    let (url, first, state) = {
        let mut calls = lock(&inner.calls);
        let record = calls
            .get_mut(call)
            .filter(|r| !r.is_gone())
            .ok_or_else(|| EmulatorError::UnknownCall(call.clone()))?;
        if !record.tones_subscribed {
            return Ok(false);
        }
        let first = record.tone_sequence + 1;
        record.tone_sequence += i64::try_from(tones.len()).unwrap_or(i64::MAX);
        (record.callback_uri.clone(), first, record.state.clone())
    };
    let steps = tones
        .iter()
        .zip(first..)
        .map(|(tone, sequence)| {
            let info = json!({ "@odata.type": "#microsoft.graph.toneInfo", "sequenceId": sequence, "tone": tone });
            // The call's state is unchanged by a tone.
            let mut step = update_step(call, state.clone(), json!({ "toneInfo": info }));
            step.state = None;
            step
        })
        .collect();
    play(inner, call, url, steps);
    Ok(true)
}

/// The caller hangs up: the call ends `terminated` with 200/4097 ("ended by
/// other participant", as Graph's resultInfo table lists it).
pub(crate) fn caller_hangs_up(inner: &Inner, call: &CallId) -> Result<(), EmulatorError> {
    let url = {
        let calls = lock(&inner.calls);
        let record = calls
            .get(call)
            .filter(|r| !r.is_gone())
            .ok_or_else(|| EmulatorError::UnknownCall(call.clone()))?;
        record.callback_uri.clone()
    };
    set_state(inner, call, CallState::Terminating);
    let result = result_info(
        json!(200),
        "subcode",
        json!(4097),
        "The call was ended by the other participant.",
    );
    play(
        inner,
        call,
        url,
        vec![end_step(
            call,
            Some(CallState::Terminated),
            json!({ "resultInfo": result }),
        )],
    );
    Ok(())
}

/// Redirect: the call ends `terminated` with the
/// call's resource as the redirect examples show it (`answeredBy`, `resultInfo`, ...).
fn redirect_steps(snapshot: &Snapshot, body: &Value) -> Vec<Step> {
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
