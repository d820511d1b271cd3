//! Entity and complex types: each covered schema type against its model
//! struct, the documented extras, and that every schema type is covered.

use std::collections::BTreeSet;

use graph_comms_model::{
    AppHostedMediaConfig, Call, CallMediaState, CallOptions, CallRoute, CallTranscriptionInfo, ChatInfo,
    CommsNotification, CommsNotifications, CommsOperation, Identity, IdentitySet, IncomingContext,
    InvitationParticipantInfo, JoinMeetingIdMeetingInfo, MediaInfo, MediaPrompt, MediaStream, OnlineMeetingRestricted,
    OperationKind, OrganizerMeetingInfo, Participant, ParticipantInfo, RecordingInfo, RemovedState, ResultInfo,
    ServiceHostedMediaConfig, TokenMeetingInfo, ToneInfo,
};
use serde_json::{Value, json};

use crate::loading::{all_properties, full_object, property, sample, schema, schema_type};
use crate::models::Model;

/// Schema properties a model deliberately does not declare, with the reason.
/// (None at present: every property of every covered type is a field.)
pub(crate) const OMISSIONS: &[(&str, &str, &str)] = &[];

/// Fields the identity subtypes declare, folded into the one `Identity` type.
/// `tenantId` is declared only on the user and application-instance subtypes,
/// but Graph and the docs put it inside any identity.
pub(crate) const FOLDED_IDENTITY: &[&str] = &[
    "tenantId",
    "applicationType",
    "hidden",
    "email",
    "azureCommunicationServicesResourceId",
];
/// Fields the `commsOperation` subtypes declare, folded into `CommsOperation`.
pub(crate) const FOLDED_OPERATION: &[&str] = &[
    "participants",
    "recordingAccessToken",
    "recordingLocation",
    "completionReason",
];
/// `communicationsIdentitySet`'s own fields, folded into `IdentitySet`.
pub(crate) const FOLDED_IDENTITY_SET: &[&str] = &[
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
pub(crate) const INVITATION_EXTRAS: &[&str] = &["endpointType", "languageId", "region"];
/// `resource` is the legacy spelling of `resourceUrl`; `resourceData` is
/// "available as additional data" per the docs and is what a bot reads.
pub(crate) const NOTIFICATION_EXTRAS: &[&str] = &["resource", "resourceData"];

/// Declared fields beyond the schema, for a schema type.
pub(crate) fn documented_extras(type_name: &str) -> &'static [&'static str] {
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
pub(crate) fn extra_sample(schema: &Value, name: &str) -> Value {
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
pub(crate) fn check_type<T: Model>(schema: &Value, type_name: &str) -> T {
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
pub(crate) fn every_covered_type_matches_the_schema() {
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
pub(crate) fn every_operation_subtype_is_a_comms_operation_of_its_kind() {
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
pub(crate) const NOT_MODELED: &[(&str, &str)] = &[
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
pub(crate) fn every_schema_type_is_covered() {
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
