//! Every published payload in the testkit's fixtures (see its README) parses into
//! its model type, is written back as semantically the same JSON, and reads
//! as the facts the docs state; the payloads published as invalid JSON fail
//! with a `ParseError` that points at the mistake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use graph_comms_model::{
    AnswerRequest, CallDirection, CallId, CallState, ChangeType, ClientContextRequest, CommsNotifications,
    CommsOperation, GraphErrorBody, MediaConfig, MeetingInfo, OperationId, OperationKind, OperationStatus, ParseError,
    ParseErrorCategory, PlayPromptRequest, Prompt, ResourceTarget, ResourceUrl, TransferKind, TransferRequest,
    from_slice,
};
use graph_comms_testkit::fixtures;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

fn read(name: &str) -> Vec<u8> {
    fixtures::read(name).into_bytes()
}

/// The fixtures the README marks "valid JSON: NO", with the line of the mistake.
const INVALID: &[(&str, usize)] = &[
    // `    },` closes `transferTarget.identity` with a trailing comma; serde_json
    // notices it only at the `}` on line 10.
    ("call-transfer.ex5.request.json", 9),
    // The body starts `"value": [`: a bare string, not an object.
    ("teams-call-notifications.legacy-sample.notify.json", 1),
];

/// Members whose values are Graph enums. The models read them in any ASCII
/// case and write the schema's spelling.
const ENUM_KEYS: &[&str] = &[
    "acceptedModalities",
    "audio",
    "changeType",
    "completionReason",
    "direction",
    "endpointType",
    "mediaType",
    "reason",
    "recordingStatus",
    "requestedModalities",
    "routingType",
    "state",
    "status",
    "tone",
    "tones",
];

/// Brings a payload to the form the models write. These are the only
/// differences allowed between a fixture and its re-serialization, and each is
/// a documented model rule (see the crate README):
///
/// 1. enum values (members named in [`ENUM_KEYS`]) are written in the schema's
///    spelling, so they compare ASCII-case-insensitively (lower-cased here);
/// 2. `resultInfo.subCode` is written `subcode`;
/// 3. numeric strings in `resultInfo.code`/`subcode` are written as numbers;
/// 4. `innerError.requestId`/`clientRequestId` are written `request-id`/`client-request-id`;
/// 5. a member whose value is `null` reads as absent and is not written.
fn normalize(value: &Value) -> Value {
    normalize_in(None, value)
}

fn normalize_in(key: Option<&str>, value: &Value) -> Value {
    match value {
        Value::Object(members) => {
            let mut out = Map::new();
            for (name, member) in members {
                if member.is_null() {
                    continue; // rule 5
                }
                let name = match (key, name.as_str()) {
                    (Some("resultInfo"), "subCode") => "subcode",                   // rule 2
                    (Some("innerError"), "requestId") => "request-id",              // rule 4
                    (Some("innerError"), "clientRequestId") => "client-request-id", // rule 4
                    (_, other) => other,
                };
                let mut member = normalize_in(Some(name), member);
                if key == Some("resultInfo") && matches!(name, "code" | "subcode") {
                    // rule 3
                    if let Some(number) = member.as_str().and_then(|s| s.trim().parse::<i64>().ok()) {
                        member = Value::from(number);
                    }
                }
                out.insert(name.to_owned(), member);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|item| normalize_in(key, item)).collect()),
        // rule 1
        Value::String(s) if key.is_some_and(|k| ENUM_KEYS.contains(&k)) => Value::String(s.to_ascii_lowercase()),
        other => other.clone(),
    }
}

/// Parses a fixture as `T`, writes it back, and checks the JSON is the same
/// after [`normalize`]. Returns the parsed value.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let bytes = read(name);
    let parsed: T = from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let original: Value = serde_json::from_slice(&bytes).unwrap();
    let written = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        normalize(&written),
        normalize(&original),
        "{name} is not written back as it was read"
    );
    parsed
}

/// What a fixture's name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Notifications,
    Answer,
    Transfer,
    PlayPrompt,
    ClientContext,
    Operation,
    GraphError,
    Claims,
}

fn kind_of(name: &str) -> Kind {
    if name.contains(".notify.") {
        Kind::Notifications
    } else if name.starts_with("graph-error.") {
        Kind::GraphError
    } else if name.ends_with("token-claims.json") {
        Kind::Claims
    } else if name.contains(".response.") {
        Kind::Operation
    } else if name.contains(".request.") {
        match name.split('.').next() {
            Some("call-answer") => Kind::Answer,
            Some("call-transfer") => Kind::Transfer,
            Some("call-playprompt") => Kind::PlayPrompt,
            Some("call-cancelmediaprocessing") => Kind::ClientContext,
            _ => panic!("{name}: no request type for this action"),
        }
    } else {
        panic!("{name}: the name does not say what it holds")
    }
}

#[test]
fn the_fixture_set_is_complete() {
    let names = fixtures::all();
    assert_eq!(names.len(), 39, "{names:?}");
    let invalid: Vec<&str> = INVALID.iter().map(|(name, _)| *name).collect();
    assert_eq!(invalid, fixtures::PUBLISHED_INVALID, "the kit and this test agree");
    for name in &invalid {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
    // Every name maps to a model type (kind_of panics otherwise).
    let notifications = names.iter().filter(|n| kind_of(n) == Kind::Notifications).count();
    assert_eq!(notifications, 21);
}

#[test]
fn every_valid_fixture_round_trips_through_its_type() {
    let mut checked = 0;
    for name in fixtures::all() {
        if INVALID.iter().any(|(invalid, _)| *invalid == name) {
            continue;
        }
        match kind_of(&name) {
            Kind::Notifications => {
                let envelope: CommsNotifications = round_trip(&name);
                assert!(!envelope.value.is_empty(), "{name}");
                for item in &envelope.value {
                    let path = item.resource_path().unwrap_or_else(|| panic!("{name}: no resourceUrl"));
                    let url = ResourceUrl::parse(path).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert_eq!(item.resource().unwrap(), url);
                    if let Some(call) = item.call() {
                        assert_eq!(url.target, ResourceTarget::Call, "{name}");
                        if let Some(id) = &call.id {
                            assert_eq!(*id, url.call_id, "{name}");
                        }
                    }
                    if let Some(op) = item.operation() {
                        assert!(matches!(url.target, ResourceTarget::Operation(_)), "{name}");
                        assert!(!matches!(op.kind(), OperationKind::Unknown), "{name}");
                    }
                }
            }
            Kind::Answer => {
                round_trip::<AnswerRequest>(&name);
            }
            Kind::Transfer => {
                round_trip::<TransferRequest>(&name);
            }
            Kind::PlayPrompt => {
                round_trip::<PlayPromptRequest>(&name);
            }
            Kind::ClientContext => {
                round_trip::<ClientContextRequest>(&name);
            }
            Kind::Operation => {
                let op: CommsOperation = round_trip(&name);
                assert!(op.status.as_ref().is_some_and(|s| !s.is_unknown()), "{name}");
            }
            Kind::GraphError => {
                let body: GraphErrorBody = round_trip(&name);
                assert!(!body.error.code.is_empty(), "{name}");
                assert!(body.request_id().is_some(), "{name}");
            }
            Kind::Claims => {
                let claims: Value = round_trip(&name);
                for claim in ["aud", "iss", "iat", "nbf", "exp", "tid"] {
                    assert!(claims.get(claim).is_some(), "{name}: no {claim}");
                }
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 37);
}

#[test]
fn the_normalization_is_not_blind() {
    // Each rule accepts only its documented difference.
    let original = serde_json::json!({"resultInfo": {"subCode": "7000", "code": 500}, "state": "Established"});
    let written = serde_json::json!({"resultInfo": {"subcode": 7000, "code": 500}, "state": "established"});
    assert_eq!(normalize(&original), normalize(&written));
    for wrong in [
        serde_json::json!({"resultInfo": {"subcode": 7001, "code": 500}, "state": "established"}),
        serde_json::json!({"resultInfo": {"subcode": 7000, "code": "500x"}, "state": "established"}),
        serde_json::json!({"resultInfo": {"subcode": 7000, "code": 500}, "state": "establishing"}),
        serde_json::json!({"resultInfo": {"subcode": 7000, "code": 500}, "state": "established", "x": 1}),
    ] {
        assert_ne!(normalize(&original), normalize(&wrong), "{wrong}");
    }
    // Non-enum strings keep their case.
    assert_ne!(
        normalize(&serde_json::json!({"displayName": "Heidi"})),
        normalize(&serde_json::json!({"displayName": "heidi"}))
    );
}

fn notification(name: &str) -> CommsNotifications {
    CommsNotifications::from_slice(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const TRANSFER_CALL: &str = "341a0500-d4bf-4224-8b19-1581168d328b";

#[test]
fn transfer_notifications_say_what_happened() {
    let url = ResourceUrl::parse(&format!("/communications/calls/{TRANSFER_CALL}")).unwrap();

    // Examples 1 to 5 publish the same transferring and transfer-accepted bodies.
    let transferring = notification("call-transfer.ex1.notify.transferring.json");
    let item = &transferring.value[0];
    assert_eq!(item.change_type, ChangeType::Updated);
    assert_eq!(item.resource().unwrap(), url);
    assert_eq!(item.call().unwrap().state, Some(CallState::Transferring));

    let accepted = notification("call-transfer.ex1.notify.transfer-accepted.json");
    assert_eq!(
        accepted.value[0].call().unwrap().state,
        Some(CallState::TransferAccepted)
    );

    // A failed transfer returns the call to established: 7000 for the blind
    // examples (1, 3; 5 repeats 1), 7700 for the consultative ones (2, 4).
    for (name, subcode) in [
        ("call-transfer.ex1.notify.transfer-failed.json", 7000),
        ("call-transfer.ex2.notify.transfer-failed.json", 7700),
        ("call-transfer.ex3.notify.transfer-failed.json", 7000),
        ("call-transfer.ex4.notify.transfer-failed.json", 7700),
    ] {
        let failed = notification(name);
        let item = &failed.value[0];
        assert_eq!(item.change_type, ChangeType::Updated, "{name}");
        assert_eq!(item.resource().unwrap(), url, "{name}");
        let call = item.call().unwrap();
        assert_eq!(call.state, Some(CallState::Established), "{name}");
        let result = call.result_info.as_ref().unwrap();
        assert_eq!(result.code, Some(500), "{name}");
        assert_eq!(result.subcode, Some(subcode), "{name}: subCode is read as subcode");
        assert!(result.extra.is_empty(), "{name}: {:?}", result.extra);
    }

    // A blind transfer completes with 0/7015 (Example 1; 3 and 5 repeat it).
    let completed = notification("call-transfer.ex1.notify.transfer-completed.json");
    let item = &completed.value[0];
    assert_eq!(item.change_type, ChangeType::Deleted);
    let call = item.call().unwrap();
    assert_eq!(call.state, Some(CallState::Terminated));
    let result = call.result_info.as_ref().unwrap();
    assert_eq!((result.code, result.subcode), (Some(0), Some(7015)));
    assert_eq!(call.termination_reason(), None);

    // A consultative one with AppTransferred and no resultInfo (Example 2; 4 repeats it).
    let completed = notification("call-transfer.ex2.notify.transfer-completed.json");
    let item = &completed.value[0];
    assert_eq!(item.change_type, ChangeType::Deleted);
    let call = item.call().unwrap();
    assert_eq!(call.state, Some(CallState::Terminated));
    assert_eq!(call.termination_reason(), Some("AppTransferred"));
    assert!(call.result_info.is_none());

    // Only the ex1 and ex2 failures (5 repeats 1) carry the undeclared `replacesContext`; it is kept.
    for (name, kept) in [
        ("call-transfer.ex1.notify.transfer-failed.json", true),
        ("call-transfer.ex2.notify.transfer-failed.json", true),
        ("call-transfer.ex3.notify.transfer-failed.json", false),
    ] {
        let failed = notification(name);
        let call = failed.value[0].call().unwrap();
        assert_eq!(call.extra.contains_key("replacesContext"), kept, "{name}");
        if kept {
            assert_eq!(call.extra["replacesContext"], "<replacesContext>", "{name}");
        }
    }
}

#[test]
fn transfer_requests_are_read_as_their_kind() {
    let blind: TransferRequest = from_slice(&read("call-transfer.ex1.request.json")).unwrap();
    assert_eq!(blind.kind(), TransferKind::Blind);
    let user = blind.transfer_target.identity.as_ref().unwrap().user.as_ref().unwrap();
    assert_eq!(user.display_name.as_deref(), Some("Heidi Steen"));
    assert_eq!(
        blind.transfer_target.endpoint_type,
        Some(graph_comms_model::EndpointType::Default)
    );

    // The 2021 blind example carried a placeholder replacesCallId: read as written.
    let v2021: TransferRequest = from_slice(&read("call-transfer.ex1.request.v2021.json")).unwrap();
    assert_eq!(v2021.kind(), TransferKind::Consultative);

    let consultative: TransferRequest = from_slice(&read("call-transfer.ex2.request.json")).unwrap();
    assert_eq!(consultative.kind(), TransferKind::Consultative);
    assert_eq!(
        consultative.transfer_target.replaces_call_id,
        Some(CallId::new("e5d39592-99bd-4db8-bca8-30fb894ec51d"))
    );

    let pstn: TransferRequest = from_slice(&read("call-transfer.ex3.request.json")).unwrap();
    assert_eq!(pstn.kind(), TransferKind::Pstn);
    assert_eq!(
        pstn.client_context.as_deref(),
        Some("9e90d1c1-f61e-43e7-9f75-d420159aae08")
    );
    let phone = pstn.transfer_target.identity.as_ref().unwrap().phone.as_ref().unwrap();
    assert_eq!(phone.id.as_deref(), Some("+12345678901"));
    assert!(pstn.extra.is_empty(), "{:?}", pstn.extra);

    let pstn_consultative: TransferRequest = from_slice(&read("call-transfer.ex4.request.json")).unwrap();
    assert_eq!(pstn_consultative.kind(), TransferKind::Consultative);
    assert_eq!(pstn_consultative.transfer_target.language_id.as_deref(), Some("en-us"));
    assert_eq!(pstn_consultative.transfer_target.region.as_deref(), Some("amer"));
}

#[test]
fn answer_requests_keep_media_config_and_options() {
    let current: AnswerRequest = from_slice(&read("call-answer.ex0.request.json")).unwrap();
    assert!(matches!(current.media_config, MediaConfig::AppHosted(_)));
    assert_eq!(current.participant_capacity, Some(200));
    let options = current.call_options.unwrap();
    assert_eq!(
        options.odata_type.as_deref(),
        Some("#microsoft.graph.incomingCallOptions")
    );
    assert_eq!(options.is_interactive_roster_enabled, Some(true));

    let service: AnswerRequest = from_slice(&read("call-answer.ex1.request.json")).unwrap();
    assert_eq!(service.callback_uri, "https://bot.contoso.com/api/calls");
    let MediaConfig::ServiceHosted(config) = service.media_config else {
        panic!("expected service-hosted media");
    };
    assert_eq!(config.pre_fetch_media.unwrap().len(), 2);
}

#[test]
fn incoming_calls_read_caller_target_and_context() {
    let envelope = notification("call-answer.ex1.notify.incoming.json");
    let item = &envelope.value[0];
    assert_eq!(item.change_type, ChangeType::Created);
    let call = item.call().unwrap();
    assert_eq!(call.state, Some(CallState::Incoming));
    assert_eq!(call.direction, Some(CallDirection::Incoming));
    let source = call.source.as_ref().unwrap();
    assert_eq!(source.region.as_deref(), Some("westus"));
    let caller = source.identity.as_ref().unwrap().primary().unwrap();
    assert_eq!(caller.display_name.as_deref(), Some("Test User"));
    let target = &call.targets.as_ref().unwrap()[0];
    let bot = target.identity.as_ref().unwrap().application.as_ref().unwrap();
    assert_eq!(bot.display_name.as_deref(), Some("Test BOT"));
    assert_eq!(call.extra["@odata.etag"], "W/\"5445\"");

    let envelope = notification("call-answer.ex3.notify.incoming-policy-recording.json");
    let item = &envelope.value[0];
    assert_eq!(
        item.resource.as_deref(),
        Some("/app/calls/e71f0300-9c1f-4d99-b5f4-2722e877d497")
    );
    let call = item.call().unwrap();
    assert_eq!(
        call.tenant_id.as_ref().unwrap().as_str(),
        "932899f8-2ea1-4604-8413-27bd2892079f"
    );
    let context = call.incoming_context.as_ref().unwrap();
    assert_eq!(
        context.source_participant_id.as_deref(),
        Some("30fad2ce-8989-41a1-8a66-f6636e629a2a")
    );
    assert!(matches!(call.meeting_info, Some(MeetingInfo::Token(_))));
    assert!(call.extra["applicationMetadata"]["botData"].is_object());
    let source = call.source.as_ref().unwrap();
    assert_eq!(source.extra["id"], "90fad2ce-8989-41a1-8a66-f6636e629a2a");
    let user = source.identity.as_ref().unwrap().user.as_ref().unwrap();
    assert_eq!(user.extra["identityProvider"], "AAD");
    let target = &call.targets.as_ref().unwrap()[0];
    assert!(target.identity.as_ref().unwrap().application_instance.is_some());
    assert_eq!(target.region, None, "explicit null reads as absent");
}

#[test]
fn operations_read_kind_status_and_result() {
    let done = notification("call-playprompt.ex1.notify.operation-completed.json");
    let item = &done.value[0];
    assert_eq!(item.change_type, ChangeType::Deleted);
    assert_eq!(
        item.resource().unwrap().target,
        ResourceTarget::Operation(OperationId::new("0fe0623f-d628-42ed-b4bd-8ac290072cc5"))
    );
    let op = item.operation().unwrap();
    assert_eq!(op.kind(), OperationKind::PlayPrompt);
    assert_eq!(op.status, Some(OperationStatus::Completed));
    let result = op.result_info.as_ref().unwrap();
    assert_eq!((result.code, result.subcode), (Some(200), Some(0)));

    let canceled = notification("call-cancelmediaprocessing.ex1.notify.record-operation-canceled.json");
    let op = canceled.value[0].operation().unwrap();
    assert_eq!(op.kind(), OperationKind::Record);
    assert_eq!(op.status, Some(OperationStatus::Failed));
    assert_eq!(op.result_info.as_ref().unwrap().subcode, Some(8508));
    assert_eq!(op.recording_location.as_deref(), Some(""));

    let running: CommsOperation = from_slice(&read("call-playprompt.ex1.response.json")).unwrap();
    assert_eq!(running.kind(), OperationKind::PlayPrompt);
    assert_eq!(
        running.status,
        Some(OperationStatus::Running),
        "`running` is read case-insensitively"
    );

    let sync: CommsOperation = from_slice(&read("call-cancelmediaprocessing.ex1.response.json")).unwrap();
    assert_eq!(sync.kind(), OperationKind::CancelMediaProcessing);
    assert_eq!(sync.status, Some(OperationStatus::Completed));

    let request: PlayPromptRequest = from_slice(&read("call-playprompt.ex1.request.json")).unwrap();
    let Prompt::Media(prompt) = &request.prompts[0] else {
        panic!("expected a media prompt");
    };
    assert_eq!(
        prompt.media_info.as_ref().unwrap().uri.as_deref(),
        Some("https://cdn.contoso.com/beep.wav")
    );
}

#[test]
fn hang_up_notifications_read_string_codes() {
    let now = notification("call-delete.ex1.notify.terminated.json");
    let result = now.value[0].call().unwrap().result_info.clone().unwrap();
    assert_eq!((result.code, result.subcode), (Some(200), Some(5001)));
    let then = notification("call-delete.ex1.notify.terminated.v2021.json");
    let result = then.value[0].call().unwrap().result_info.clone().unwrap();
    assert_eq!((result.code, result.subcode), (Some(0), None));
    let terminating = notification("call-delete.ex1.notify.terminating.json");
    assert_eq!(terminating.value[0].call().unwrap().state, Some(CallState::Terminating));
}

#[test]
fn content_sharing_notifications_have_no_resource_data() {
    for name in [
        "call-answer.ex2.notify.content-sharing-started.json",
        "call-answer.ex2.notify.content-sharing-ended.json",
    ] {
        let envelope = notification(name);
        let item = &envelope.value[0];
        assert!(item.resource_data.is_none(), "{name}");
        assert_eq!(
            item.resource().unwrap().target,
            ResourceTarget::Other("contentsharingsessions/2765eb15-01f8-47c6-b12b-c32111a4a86f".into())
        );
    }
}

#[test]
fn graph_errors_expose_code_and_request_id() {
    let throttled: GraphErrorBody = from_slice(&read("graph-error.throttling-429.response.json")).unwrap();
    assert_eq!(throttled.error.code, "TooManyRequests");
    assert_eq!(throttled.request_id(), Some("94fb3b52-452a-4535-a601-69e0a90e3aa2"));
    let inner = throttled.error.inner_error.as_ref().unwrap();
    assert_eq!(inner.extra["status"], "429");

    let doc: GraphErrorBody = from_slice(&read("graph-error.errors-doc.example.json")).unwrap();
    assert_eq!(doc.request_id(), Some("request-id"), "camelCase requestId is read");

    let sdk: GraphErrorBody = from_slice(&read("graph-error.sdk-design.example.json")).unwrap();
    let inner = sdk.error.inner_error.as_ref().unwrap();
    assert_eq!(
        inner.client_request_id.as_deref(),
        Some("225aed2b-cf4a-d456-b313-16ab196c2364")
    );
}

/// Checks a fixture fails with a syntax or shape error on the expected line.
fn assert_fails_at<T: DeserializeOwned + std::fmt::Debug>(name: &str, line: usize) -> ParseError {
    let err = from_slice::<T>(&read(name)).expect_err(name);
    assert_eq!(err.line, line, "{name}: {err}");
    assert!(err.column >= 1, "{name}: {err}");
    err
}

#[test]
fn invalid_fixtures_fail_where_the_mistake_is() {
    let (ex5, line) = INVALID[0];
    let err = assert_fails_at::<TransferRequest>(ex5, line);
    assert_eq!(err.category, ParseErrorCategory::Syntax);
    assert_eq!(err.message, "trailing comma");
    // The comma after `}` on `    },`.
    assert_eq!(err.column, 6);
    let text = String::from_utf8(read(ex5)).unwrap();
    let bad_line = text.lines().nth(line - 1).unwrap();
    assert_eq!(bad_line.as_bytes()[err.column - 1], b',');
    assert!(err.to_string().contains("line 9, column 6"), "{err}");
    assert_fails_at::<Value>(ex5, line);

    let (legacy, line) = INVALID[1];
    let err = assert_fails_at::<CommsNotifications>(legacy, line);
    assert_eq!(err.category, ParseErrorCategory::Shape);
    assert!(err.message.contains("expected struct CommsNotifications"), "{err}");
    let err = CommsNotifications::from_slice(&read(legacy)).unwrap_err();
    assert_eq!(err.line, line);
    let err = assert_fails_at::<Value>(legacy, line);
    assert_eq!(err.category, ParseErrorCategory::Syntax);
}
