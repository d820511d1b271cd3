//! The models against the Graph v1.0 schema extract in `tests/schema/`
//! (see its README): every schema property of every covered type is a
//! declared field and no declared field is missing from the schema (except
//! the documented extras below); every enum member reads as itself and is
//! written back unchanged; every action body has exactly the schema's
//! parameters, and the non-nullable ones are required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use graph_comms_model::{
    AnswerRequest, AppHostedMediaConfig, Call, CallDirection, CallMediaState, CallOptions, CallRoute, CallState,
    CallTranscriptionInfo, CallTranscriptionState, ChangeScreenSharingRoleRequest, ChangeType, ChatInfo,
    ClientContextRequest, CommsNotification, CommsNotifications, CommsOperation, EndpointType, Extra, Identity,
    IdentitySet, IncomingContext, InvitationParticipantInfo, InviteParticipantsRequest, JoinMeetingIdMeetingInfo,
    MediaConfig, MediaDirection, MediaInfo, MediaPrompt, MediaState, MediaStream, MeetingInfo, Modality,
    OnlineMeetingContentSharingDisabledReason, OnlineMeetingRestricted, OnlineMeetingVideoDisabledReason,
    OperationKind, OperationStatus, OrganizerMeetingInfo, Participant, ParticipantInfo, PlayPromptRequest, Prompt,
    RecordResponseRequest, RecordingInfo, RecordingStatus, RedirectRequest, RejectReason, RejectRequest, RemovedState,
    ResultInfo, RoutingType, ScreenSharingRole, SendDtmfCompletionReason, SendDtmfTonesRequest,
    ServiceHostedMediaConfig, StartHoldMusicRequest, TokenMeetingInfo, Tone, ToneInfo, TransferRequest,
    UpdateRecordingStatusRequest,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Map, Value, json};

const SCHEMA: &str = include_str!("schema/comms-v1.0.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

fn schema_type<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["types"]
        .get(name)
        .unwrap_or_else(|| panic!("schema has no type {name}"))
}

fn all_properties(schema: &Value, name: &str) -> Vec<String> {
    schema_type(schema, name)["all_properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// The declaration of a property, looked up through the base types.
fn property<'a>(schema: &'a Value, type_name: &str, property: &str) -> &'a Value {
    let ty = schema_type(schema, type_name);
    match ty["properties"].get(property) {
        Some(p) => p,
        None => {
            let base = ty["base"]
                .as_str()
                .unwrap_or_else(|| panic!("{type_name}.{property} not declared"));
            self::property(schema, base, property)
        }
    }
}

/// A plausible JSON value of a schema type. Abstract types take their first
/// derived type; collections hold one element.
fn sample(schema: &Value, type_name: &str, collection: bool, depth: usize) -> Value {
    let one = match type_name {
        "Edm.String" => json!("sample-text"),
        "Edm.Boolean" => json!(true),
        "Edm.Int32" => json!(7),
        "Edm.Int64" => json!(9_000_000_000_i64),
        "Edm.DateTimeOffset" => json!("2024-05-01T12:00:00Z"),
        name => {
            let ty = schema_type(schema, name);
            if let Some(members) = ty["members"].as_array() {
                // Not the first member, to catch an accidental default.
                members[members.len() - 1].clone()
            } else if ty["abstract"] == true && ty["base"].is_null() {
                let derived = ty["derived_types"][0].as_str().unwrap();
                full_object(schema, derived, depth)
            } else {
                full_object(schema, name, depth)
            }
        }
    };
    if collection { json!([one]) } else { one }
}

/// A JSON object with every property of a schema type set, and its `@odata.type`.
fn full_object(schema: &Value, type_name: &str, depth: usize) -> Value {
    assert!(depth < 8, "schema types nest too deep at {type_name}");
    let mut object = Map::new();
    let ty = schema_type(schema, type_name);
    object.insert("@odata.type".into(), ty["odata_type"].clone());
    for name in all_properties(schema, type_name) {
        let declared = property(schema, type_name, &name);
        let value = sample(
            schema,
            declared["type"].as_str().unwrap(),
            declared["collection"] == true,
            depth + 1,
        );
        object.insert(name, value);
    }
    Value::Object(object)
}

/// Whether a declared field holds a value.
trait IsSet {
    fn is_set(&self) -> bool;
}
impl<T> IsSet for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}
impl<T> IsSet for Vec<T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
impl IsSet for String {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}
macro_rules! always_set {
    ($($ty:ty),*) => { $( impl IsSet for $ty { fn is_set(&self) -> bool { true } } )* };
}
always_set!(
    MediaConfig,
    InvitationParticipantInfo,
    RecordingStatus,
    ScreenSharingRole,
    ChangeType
);

/// A model struct: its undeclared properties, and which declared fields are unset.
trait Model: Serialize + DeserializeOwned {
    fn extra(&self) -> &Extra;
    fn unset_fields(&self) -> Vec<&'static str>;
}

/// Implements [`Model`] with an exhaustive destructuring: a field added to
/// the struct does not compile here until it is listed, so every declared
/// field is checked below.
macro_rules! model {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Model for $ty {
            fn extra(&self) -> &Extra {
                &self.extra
            }
            fn unset_fields(&self) -> Vec<&'static str> {
                let $ty { $($field,)* extra: _ } = self;
                let mut unset = Vec::new();
                $( if !$field.is_set() { unset.push(stringify!($field)); } )*
                unset
            }
        }
    };
}

model!(Call {
    odata_type,
    id,
    callback_uri,
    call_chain_id,
    call_options,
    call_routes,
    chat_info,
    direction,
    incoming_context,
    media_config,
    media_state,
    meeting_info,
    my_participant_id,
    requested_modalities,
    result_info,
    source,
    state,
    subject,
    targets,
    tenant_id,
    tone_info,
    transcription
});
model!(CallMediaState { odata_type, audio });
model!(CallRoute {
    odata_type,
    final_,
    original,
    routing_type
});
model!(CallOptions {
    odata_type,
    hide_bot_after_escalation,
    is_content_sharing_notification_enabled,
    is_delta_roster_enabled,
    is_interactive_roster_enabled
});
model!(ChatInfo {
    odata_type,
    message_id,
    reply_chain_message_id,
    thread_id
});
model!(ToneInfo {
    odata_type,
    sequence_id,
    tone
});
model!(CallTranscriptionInfo {
    odata_type,
    last_modified_date_time,
    state
});
model!(IncomingContext {
    odata_type,
    observed_participant_id,
    on_behalf_of,
    source_participant_id,
    transferor
});
model!(MediaInfo {
    odata_type,
    resource_id,
    uri
});
model!(ServiceHostedMediaConfig {
    odata_type,
    pre_fetch_media
});
model!(AppHostedMediaConfig { odata_type, blob });
model!(OrganizerMeetingInfo { odata_type, organizer });
model!(TokenMeetingInfo { odata_type, token });
model!(JoinMeetingIdMeetingInfo {
    odata_type,
    join_meeting_id,
    passcode
});
model!(Identity {
    odata_type,
    id,
    display_name,
    tenant_id,
    application_type,
    hidden,
    email,
    azure_communication_services_resource_id
});
model!(IdentitySet {
    odata_type,
    application,
    device,
    user,
    application_instance,
    asserted_identity,
    azure_communication_services_user,
    encrypted,
    endpoint_type,
    guest,
    on_premises,
    phone
});
model!(CommsNotifications { odata_type, value });
model!(CommsNotification {
    odata_type,
    change_type,
    resource_url,
    resource,
    resource_data
});
model!(CommsOperation {
    odata_type,
    id,
    client_context,
    result_info,
    status,
    participants,
    recording_access_token,
    recording_location,
    completion_reason
});
model!(MediaPrompt { odata_type, media_info });
model!(ParticipantInfo {
    odata_type,
    country_code,
    endpoint_type,
    identity,
    language_id,
    participant_id,
    region
});
model!(InvitationParticipantInfo {
    odata_type,
    hidden,
    identity,
    participant_id,
    remove_from_default_audio_routing_group,
    replaces_call_id,
    endpoint_type,
    language_id,
    region
});
model!(MediaStream {
    odata_type,
    direction,
    label,
    media_type,
    server_muted,
    source_id
});
model!(RecordingInfo {
    odata_type,
    initiator,
    recording_status
});
model!(RemovedState { odata_type, reason });
model!(OnlineMeetingRestricted {
    odata_type,
    content_sharing_disabled,
    video_disabled
});
model!(Participant {
    odata_type,
    id,
    info,
    is_in_lobby,
    is_muted,
    media_streams,
    metadata,
    recording_info,
    removed_state,
    restricted_experience,
    roster_sequence_number
});
model!(ResultInfo {
    odata_type,
    code,
    subcode,
    message
});
model!(AnswerRequest {
    callback_uri,
    media_config,
    accepted_modalities,
    participant_capacity,
    call_options
});
model!(RejectRequest { reason, callback_uri });
model!(RedirectRequest {
    targets,
    timeout,
    callback_uri
});
model!(TransferRequest {
    transfer_target,
    transferee,
    client_context
});
model!(PlayPromptRequest {
    prompts,
    client_context
});
model!(ClientContextRequest { client_context });
model!(UpdateRecordingStatusRequest { status, client_context });
model!(SendDtmfTonesRequest {
    tones,
    delay_between_tones_ms,
    client_context
});
model!(InviteParticipantsRequest {
    participants,
    client_context
});
model!(RecordResponseRequest {
    prompts,
    barge_in_allowed,
    initial_silence_timeout_in_seconds,
    max_silence_timeout_in_seconds,
    max_record_duration_in_seconds,
    play_beep,
    stop_tones,
    client_context
});
model!(ChangeScreenSharingRoleRequest { role });
model!(StartHoldMusicRequest {
    custom_prompt,
    client_context
});

/// Schema properties a model deliberately does not declare, with the reason.
/// (None at present: every property of every covered type is a field.)
const OMISSIONS: &[(&str, &str, &str)] = &[];

/// Fields the identity subtypes declare, folded into the one `Identity` type.
/// `tenantId` is declared only on the user and application-instance subtypes,
/// but Graph and the docs put it inside any identity.
const FOLDED_IDENTITY: &[&str] = &[
    "tenantId",
    "applicationType",
    "hidden",
    "email",
    "azureCommunicationServicesResourceId",
];
/// Fields the `commsOperation` subtypes declare, folded into `CommsOperation`.
const FOLDED_OPERATION: &[&str] = &[
    "participants",
    "recordingAccessToken",
    "recordingLocation",
    "completionReason",
];
/// `communicationsIdentitySet`'s own fields, folded into `IdentitySet`.
const FOLDED_IDENTITY_SET: &[&str] = &[
    "applicationInstance",
    "assertedIdentity",
    "azureCommunicationServicesUser",
    "encrypted",
    "endpointType",
    "guest",
    "onPremises",
    "phone",
];
/// The transfer examples send `endpointType`, `languageId` and `region` on
/// the target (an open type), so they are declared fields.
const INVITATION_EXTRAS: &[&str] = &["endpointType", "languageId", "region"];
/// `resource` is the legacy spelling of `resourceUrl`; `resourceData` is
/// "available as additional data" per the docs and is what a bot reads.
const NOTIFICATION_EXTRAS: &[&str] = &["resource", "resourceData"];

/// Declared fields beyond the schema, for a schema type.
fn documented_extras(type_name: &str) -> &'static [&'static str] {
    match type_name {
        "identity"
        | "communicationsUserIdentity"
        | "communicationsApplicationIdentity"
        | "communicationsApplicationInstanceIdentity"
        | "communicationsEncryptedIdentity"
        | "communicationsGuestIdentity"
        | "communicationsPhoneIdentity"
        | "azureCommunicationServicesUserIdentity" => FOLDED_IDENTITY,
        "identitySet" => FOLDED_IDENTITY_SET,
        "invitationParticipantInfo" => INVITATION_EXTRAS,
        "commsNotification" => NOTIFICATION_EXTRAS,
        name if name == "commsOperation" || name.ends_with("Operation") => FOLDED_OPERATION,
        _ => &[],
    }
}

/// A plausible value for a documented extra.
fn extra_sample(schema: &Value, name: &str) -> Value {
    let donor = match name {
        "tenantId" => ("communicationsUserIdentity", name),
        "applicationType" => ("communicationsApplicationIdentity", name),
        "hidden" => ("communicationsApplicationIdentity", name),
        "email" => ("communicationsGuestIdentity", name),
        "azureCommunicationServicesResourceId" => ("azureCommunicationServicesUserIdentity", name),
        "participants" => ("inviteParticipantsOperation", name),
        "recordingAccessToken" | "recordingLocation" => ("recordOperation", name),
        "completionReason" => ("sendDtmfTonesOperation", name),
        "endpointType" | "languageId" | "region" => ("participantInfo", name),
        "resource" => return json!("/app/calls/sample"),
        "resourceData" => return full_object(schema, "call", 1),
        other if FOLDED_IDENTITY_SET.contains(&other) => ("communicationsIdentitySet", other),
        other => panic!("no sample for extra {other}"),
    };
    let declared = property(schema, donor.0, donor.1);
    sample(
        schema,
        declared["type"].as_str().unwrap(),
        declared["collection"] == true,
        1,
    )
}

/// Checks one schema type against its model: parses a fully populated value
/// (every schema property plus the documented extras), then checks that
/// every property landed in a declared field, every declared field is set,
/// the written keys are exactly the schema's plus the extras, and the value
/// is written back unchanged.
fn check_type<T: Model>(schema: &Value, type_name: &str) -> T {
    let mut input = full_object(schema, type_name, 0);
    let extras = documented_extras(type_name);
    for name in extras {
        input
            .as_object_mut()
            .unwrap()
            .insert((*name).to_owned(), extra_sample(schema, name));
    }
    let value: T = serde_json::from_value(input.clone()).unwrap_or_else(|e| panic!("{type_name}: {e}"));
    assert!(
        value.extra().is_empty(),
        "{type_name}: schema properties that are not declared fields: {:?}",
        value.extra().keys().collect::<Vec<_>>()
    );
    assert!(
        value.unset_fields().is_empty(),
        "{type_name}: declared fields the schema and the documented extras do not fill: {:?}",
        value.unset_fields()
    );

    let written = serde_json::to_value(&value).unwrap();
    let keys: BTreeSet<&str> = written.as_object().unwrap().keys().map(String::as_str).collect();
    let properties = all_properties(schema, type_name);
    for name in &properties {
        let omitted = OMISSIONS.iter().any(|(t, p, _)| *t == type_name && p == name);
        assert!(
            omitted || keys.contains(name.as_str()),
            "{type_name}.{name} is not written"
        );
    }
    for key in &keys {
        let known = *key == "@odata.type" || properties.iter().any(|p| p == key) || extras.contains(key);
        assert!(
            known,
            "{type_name}: {key} is declared but not in the schema or the documented extras"
        );
    }
    assert_eq!(
        written["@odata.type"],
        schema_type(schema, type_name)["odata_type"],
        "{type_name}"
    );
    assert_eq!(written, input, "{type_name} is not written back unchanged");
    value
}

#[test]
fn every_covered_type_matches_the_schema() {
    let schema = schema();
    check_type::<Call>(&schema, "call");
    check_type::<Participant>(&schema, "participant");
    check_type::<ParticipantInfo>(&schema, "participantInfo");
    check_type::<InvitationParticipantInfo>(&schema, "invitationParticipantInfo");
    check_type::<IdentitySet>(&schema, "identitySet");
    let set = check_type::<IdentitySet>(&schema, "communicationsIdentitySet");
    // Every member is an `identity` (assertedIdentity too), read into typed fields.
    let asserted = set.asserted_identity.clone();
    for member in [
        &set.application,
        &set.device,
        &set.user,
        &set.application_instance,
        &asserted,
        &set.azure_communication_services_user,
        &set.encrypted,
        &set.guest,
        &set.on_premises,
        &set.phone,
    ] {
        let identity = member.as_ref().unwrap();
        assert!(
            identity.display_name.is_some() && identity.extra.is_empty(),
            "{identity:?}"
        );
    }
    for identity in [
        "identity",
        "communicationsUserIdentity",
        "communicationsApplicationIdentity",
        "communicationsApplicationInstanceIdentity",
        "communicationsEncryptedIdentity",
        "communicationsGuestIdentity",
        "communicationsPhoneIdentity",
        "azureCommunicationServicesUserIdentity",
    ] {
        check_type::<Identity>(&schema, identity);
    }
    check_type::<ResultInfo>(&schema, "resultInfo");
    check_type::<CommsNotification>(&schema, "commsNotification");
    check_type::<CommsNotifications>(&schema, "commsNotifications");
    check_type::<MediaPrompt>(&schema, "mediaPrompt");
    check_type::<MediaInfo>(&schema, "mediaInfo");
    check_type::<ServiceHostedMediaConfig>(&schema, "serviceHostedMediaConfig");
    check_type::<AppHostedMediaConfig>(&schema, "appHostedMediaConfig");
    check_type::<CallMediaState>(&schema, "callMediaState");
    check_type::<CallRoute>(&schema, "callRoute");
    for options in ["callOptions", "incomingCallOptions", "outgoingCallOptions"] {
        check_type::<CallOptions>(&schema, options);
    }
    check_type::<OrganizerMeetingInfo>(&schema, "organizerMeetingInfo");
    check_type::<TokenMeetingInfo>(&schema, "tokenMeetingInfo");
    check_type::<JoinMeetingIdMeetingInfo>(&schema, "joinMeetingIdMeetingInfo");
    check_type::<ChatInfo>(&schema, "chatInfo");
    check_type::<ToneInfo>(&schema, "toneInfo");
    check_type::<CallTranscriptionInfo>(&schema, "callTranscriptionInfo");
    check_type::<MediaStream>(&schema, "mediaStream");
    check_type::<RecordingInfo>(&schema, "recordingInfo");
    check_type::<RemovedState>(&schema, "removedState");
    check_type::<OnlineMeetingRestricted>(&schema, "onlineMeetingRestricted");
    check_type::<IncomingContext>(&schema, "incomingContext");
}

#[test]
fn every_operation_subtype_is_a_comms_operation_of_its_kind() {
    let schema = schema();
    let base = check_type::<CommsOperation>(&schema, "commsOperation");
    assert_eq!(base.kind(), OperationKind::Generic);
    let subtypes = schema_type(&schema, "commsOperation")["derived_types"]
        .as_array()
        .unwrap();
    assert_eq!(subtypes.len(), OperationKind::ODATA_TYPES.len() - 1);
    for subtype in subtypes {
        let name = subtype.as_str().unwrap();
        let op = check_type::<CommsOperation>(&schema, name);
        let kind = op.kind();
        assert!(
            !matches!(kind, OperationKind::Unknown | OperationKind::Generic),
            "{name}: {kind:?}"
        );
        assert_eq!(
            kind.odata_type(),
            schema_type(&schema, name)["odata_type"].as_str(),
            "{name}"
        );
    }
}

/// Schema types with no model struct of their own, and why.
const NOT_MODELED: &[(&str, &str)] = &[
    (
        "entity",
        "abstract base; its one property `id` is declared on each entity",
    ),
    (
        "mediaConfig",
        "abstract, no properties: the `MediaConfig` enum over its subtypes",
    ),
    (
        "meetingInfo",
        "abstract, no properties: the `MeetingInfo` enum over its subtypes",
    ),
    ("prompt", "abstract, no properties: the `Prompt` enum over its subtypes"),
];

#[test]
fn every_schema_type_is_covered() {
    let schema = schema();
    let covered: BTreeSet<&str> = [
        "call",
        "participant",
        "participantInfo",
        "invitationParticipantInfo",
        "identitySet",
        "communicationsIdentitySet",
        "identity",
        "communicationsUserIdentity",
        "communicationsApplicationIdentity",
        "communicationsApplicationInstanceIdentity",
        "communicationsEncryptedIdentity",
        "communicationsGuestIdentity",
        "communicationsPhoneIdentity",
        "azureCommunicationServicesUserIdentity",
        "resultInfo",
        "commsNotification",
        "commsNotifications",
        "commsOperation",
        "mediaPrompt",
        "mediaInfo",
        "serviceHostedMediaConfig",
        "appHostedMediaConfig",
        "callMediaState",
        "callRoute",
        "callOptions",
        "incomingCallOptions",
        "outgoingCallOptions",
        "organizerMeetingInfo",
        "tokenMeetingInfo",
        "joinMeetingIdMeetingInfo",
        "chatInfo",
        "toneInfo",
        "callTranscriptionInfo",
        "mediaStream",
        "recordingInfo",
        "removedState",
        "onlineMeetingRestricted",
        "incomingContext",
    ]
    .into();
    for (name, ty) in schema["types"].as_object().unwrap() {
        let is_enum = ty.get("members").is_some();
        let is_operation = ty["base"] == "commsOperation";
        let not_modeled = NOT_MODELED.iter().any(|(n, _)| n == name);
        assert!(
            is_enum || is_operation || not_modeled || covered.contains(name.as_str()),
            "schema type {name} is not checked"
        );
    }
}

/// Checks that the `@odata.type` of each subtype of an abstract schema type
/// selects the right variant of its model enum.
fn check_polymorphic<T: DeserializeOwned + Serialize>(
    schema: &Value,
    base: &str,
    known: &[&str],
    pick: fn(&T) -> &str,
) {
    let derived: Vec<&str> = schema_type(schema, base)["derived_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = derived
        .iter()
        .map(|d| schema_type(schema, d)["odata_type"].as_str().unwrap().to_owned())
        .collect();
    let mut known: Vec<String> = known.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    known.sort();
    assert_eq!(known, expected, "{base}");
    for name in derived {
        let input = full_object(schema, name, 0);
        let value: T = serde_json::from_value(input.clone()).unwrap();
        assert_eq!(pick(&value), name, "{base}");
        assert_eq!(serde_json::to_value(&value).unwrap(), input, "{name}");
    }
}

#[test]
fn abstract_types_select_their_subtype_by_odata_type() {
    let schema = schema();
    check_polymorphic::<MediaConfig>(&schema, "mediaConfig", MediaConfig::ODATA_TYPES, |v| match v {
        MediaConfig::ServiceHosted(_) => "serviceHostedMediaConfig",
        MediaConfig::AppHosted(_) => "appHostedMediaConfig",
        _ => "unknown",
    });
    check_polymorphic::<MeetingInfo>(&schema, "meetingInfo", MeetingInfo::ODATA_TYPES, |v| match v {
        MeetingInfo::Organizer(_) => "organizerMeetingInfo",
        MeetingInfo::Token(_) => "tokenMeetingInfo",
        MeetingInfo::JoinMeetingId(_) => "joinMeetingIdMeetingInfo",
        _ => "unknown",
    });
    check_polymorphic::<Prompt>(&schema, "prompt", Prompt::ODATA_TYPES, |v| match v {
        Prompt::Media(_) => "mediaPrompt",
        _ => "unknown",
    });
}

/// A Graph string enum as the models declare it.
trait GraphEnum: Serialize + DeserializeOwned {
    const KNOWN_MEMBERS: &'static [&'static str];
    fn unknown(&self) -> bool;
}
macro_rules! graph_enum {
    ($($ty:ident),*) => {
        $( impl GraphEnum for $ty {
            const KNOWN_MEMBERS: &'static [&'static str] = $ty::KNOWN;
            fn unknown(&self) -> bool { self.is_unknown() }
        } )*
    };
}
graph_enum!(
    CallState,
    CallDirection,
    ChangeType,
    Modality,
    MediaState,
    MediaDirection,
    EndpointType,
    OperationStatus,
    RejectReason,
    RoutingType,
    RecordingStatus,
    CallTranscriptionState,
    ScreenSharingRole,
    SendDtmfCompletionReason,
    OnlineMeetingContentSharingDisabledReason,
    OnlineMeetingVideoDisabledReason,
    Tone
);

/// Checks one schema enum against its model enum.
type EnumCheck = fn(&Value, &str) -> usize;

/// Members a model enum knows beyond the schema, with the reason.
const EXTRA_MEMBERS: &[(&str, &str, &str)] = &[(
    "changeType",
    "unknownFutureValue",
    "listed by the newer commsNotification docs; not yet in the CSDL",
)];

/// Reads every schema member, checks it is known and written back unchanged,
/// and that the model knows no member the schema lacks (beyond [`EXTRA_MEMBERS`]).
/// Returns the number of members checked.
fn check_enum<E: GraphEnum>(schema: &Value, name: &str) -> usize {
    let members: Vec<&str> = schema_type(schema, name)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for member in &members {
        let value: E = serde_json::from_value(json!(member)).unwrap();
        assert!(!value.unknown(), "{name}: {member} reads as Unknown");
        assert_eq!(serde_json::to_value(&value).unwrap(), json!(member), "{name}");
        let upper: E = serde_json::from_value(json!(member.to_ascii_uppercase())).unwrap();
        assert_eq!(
            serde_json::to_value(&upper).unwrap(),
            json!(member),
            "{name}: case-insensitive read"
        );
    }
    for known in E::KNOWN_MEMBERS {
        let extra = EXTRA_MEMBERS.iter().any(|(e, m, _)| *e == name && m == known);
        assert!(
            extra || members.contains(known),
            "{name}: the model knows {known}, the schema does not"
        );
    }
    let unknown: E = serde_json::from_value(json!("someFutureMember")).unwrap();
    assert!(unknown.unknown());
    assert_eq!(serde_json::to_value(&unknown).unwrap(), json!("someFutureMember"));
    members.len()
}

#[test]
fn every_enum_member_reads_and_writes_as_itself() {
    let schema = schema();
    let table: &[(&str, EnumCheck)] = &[
        ("callState", check_enum::<CallState>),
        ("callDirection", check_enum::<CallDirection>),
        ("changeType", check_enum::<ChangeType>),
        ("modality", check_enum::<Modality>),
        ("mediaState", check_enum::<MediaState>),
        ("mediaDirection", check_enum::<MediaDirection>),
        ("endpointType", check_enum::<EndpointType>),
        ("operationStatus", check_enum::<OperationStatus>),
        ("rejectReason", check_enum::<RejectReason>),
        ("routingType", check_enum::<RoutingType>),
        ("recordingStatus", check_enum::<RecordingStatus>),
        ("callTranscriptionState", check_enum::<CallTranscriptionState>),
        ("screenSharingRole", check_enum::<ScreenSharingRole>),
        ("sendDtmfCompletionReason", check_enum::<SendDtmfCompletionReason>),
        (
            "onlineMeetingContentSharingDisabledReason",
            check_enum::<OnlineMeetingContentSharingDisabledReason>,
        ),
        (
            "onlineMeetingVideoDisabledReason",
            check_enum::<OnlineMeetingVideoDisabledReason>,
        ),
        ("tone", check_enum::<Tone>),
    ];
    let schema_enums: BTreeSet<&str> = schema["types"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, t)| t.get("members").is_some())
        .map(|(n, _)| n.as_str())
        .collect();
    let mapped: BTreeSet<&str> = table.iter().map(|(n, _)| *n).collect();
    assert_eq!(mapped, schema_enums, "every schema enum has a model enum");
    let checked: usize = table.iter().map(|(name, check)| check(&schema, name)).sum();
    assert!(checked > 60, "{checked}");
}

/// Checks one action against its request body type.
type ActionCheck = fn(&Value, &str);

/// Request-body keys beyond an action's schema parameters, with the reason.
const ACTION_EXTRAS: &[(&str, &str, &str)] = &[(
    "transfer",
    "clientContext",
    "sent top-level by the PSTN transfer examples; not a v1.0 parameter",
)];

/// Checks an action's request body: a body with every parameter (plus the
/// documented extras) is read into declared fields only, every field is set,
/// and it is written back with exactly those keys. Removing a non-nullable
/// parameter makes the body unreadable: such fields are not `Option`.
fn check_action<T: Model>(schema: &Value, action: &str) {
    let parameters = schema["actions"][action]["parameters"]
        .as_object()
        .unwrap_or_else(|| panic!("schema has no action {action}"));
    let mut input = Map::new();
    for (name, declared) in parameters {
        let value = sample(
            schema,
            declared["type"].as_str().unwrap(),
            declared["collection"] == true,
            1,
        );
        input.insert(name.clone(), value);
    }
    let extras: Vec<&str> = ACTION_EXTRAS
        .iter()
        .filter(|(a, _, _)| *a == action)
        .map(|(_, k, _)| *k)
        .collect();
    for extra in &extras {
        input.insert((*extra).to_owned(), json!("sample-context"));
    }
    let input = Value::Object(input);
    let body: T = serde_json::from_value(input.clone()).unwrap_or_else(|e| panic!("{action}: {e}"));
    assert!(
        body.extra().is_empty(),
        "{action}: parameters that are not fields: {:?}",
        body.extra()
    );
    assert!(
        body.unset_fields().is_empty(),
        "{action}: fields beyond the parameters: {:?}",
        body.unset_fields()
    );
    assert_eq!(serde_json::to_value(&body).unwrap(), input, "{action}");

    for (name, declared) in parameters {
        let mut without = input.clone();
        without.as_object_mut().unwrap().remove(name);
        let parsed = serde_json::from_value::<T>(without);
        if declared["nullable"] == false {
            assert!(parsed.is_err(), "{action}: non-nullable {name} may be left out");
        } else {
            assert!(parsed.is_ok(), "{action}: nullable {name} is required");
        }
    }
}

#[test]
fn every_action_body_has_exactly_the_schema_parameters() {
    let schema = schema();
    let table: &[(&str, ActionCheck)] = &[
        ("answer", check_action::<AnswerRequest>),
        ("reject", check_action::<RejectRequest>),
        ("redirect", check_action::<RedirectRequest>),
        ("transfer", check_action::<TransferRequest>),
        ("playPrompt", check_action::<PlayPromptRequest>),
        ("recordResponse", check_action::<RecordResponseRequest>),
        ("cancelMediaProcessing", check_action::<ClientContextRequest>),
        ("mute", check_action::<ClientContextRequest>),
        ("unmute", check_action::<ClientContextRequest>),
        (
            "changeScreenSharingRole",
            check_action::<ChangeScreenSharingRoleRequest>,
        ),
        ("updateRecordingStatus", check_action::<UpdateRecordingStatusRequest>),
        ("subscribeToTone", check_action::<ClientContextRequest>),
        ("sendDtmfTones", check_action::<SendDtmfTonesRequest>),
        ("addLargeGalleryView", check_action::<ClientContextRequest>),
        ("participants.invite", check_action::<InviteParticipantsRequest>),
        ("participant.mute", check_action::<ClientContextRequest>),
        ("participant.startHoldMusic", check_action::<StartHoldMusicRequest>),
        ("participant.stopHoldMusic", check_action::<ClientContextRequest>),
    ];
    for (action, check) in table {
        check(&schema, action);
    }
    // keepAlive takes no body; every other action is in the table.
    let actions: BTreeSet<&str> = schema["actions"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut mapped: BTreeSet<&str> = table.iter().map(|(a, _)| *a).collect();
    mapped.insert("keepAlive");
    assert_eq!(mapped, actions);
    assert!(
        schema["actions"]["keepAlive"]["parameters"]
            .as_object()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn builders_write_schema_odata_types() {
    let schema = schema();
    let odata_types: BTreeSet<&str> = schema["types"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|t| t["odata_type"].as_str())
        .collect();
    let body = TransferRequest::to_user("u1", None).display_name("A").build();
    let mut found = Vec::new();
    collect_odata_types(&serde_json::to_value(&body).unwrap(), &mut found);
    collect_odata_types(
        &serde_json::to_value(AnswerRequest::audio("https://bot/cb")).unwrap(),
        &mut found,
    );
    collect_odata_types(
        &serde_json::to_value(Prompt::media("https://cdn/a.wav")).unwrap(),
        &mut found,
    );
    collect_odata_types(&serde_json::to_value(CallOptions::incoming()).unwrap(), &mut found);
    collect_odata_types(&serde_json::to_value(CallOptions::outgoing()).unwrap(), &mut found);
    collect_odata_types(
        &serde_json::to_value(ResultInfo::new(500, 7000, "x")).unwrap(),
        &mut found,
    );
    collect_odata_types(
        &serde_json::to_value(CommsNotifications::new(vec![])).unwrap(),
        &mut found,
    );
    assert!(found.len() >= 10, "{found:?}");
    for odata in found {
        assert!(odata_types.contains(odata.as_str()), "{odata} is not a schema type");
    }
}

fn collect_odata_types(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (name, member) in members {
                if name == "@odata.type" {
                    out.push(member.as_str().unwrap().to_owned());
                }
                collect_odata_types(member, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_odata_types(item, out)),
        _ => {}
    }
}
