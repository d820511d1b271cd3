//! Enums: every schema member reads as itself and is written back
//! unchanged, and the models know no member the schema lacks.

use std::collections::BTreeSet;

use graph_comms_model::{
    CallDirection, CallState, CallTranscriptionState, ChangeType, EndpointType, MediaDirection, MediaState, Modality,
    OnlineMeetingContentSharingDisabledReason, OnlineMeetingVideoDisabledReason, OperationStatus, RecordingStatus,
    RejectReason, RoutingType, ScreenSharingRole, SendDtmfCompletionReason, Tone,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::loading::{schema, schema_type};

/// A Graph string enum as the models declare it.
pub(crate) trait GraphEnum: Serialize + DeserializeOwned {
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
pub(crate) type EnumCheck = fn(&Value, &str) -> usize;

/// Members a model enum knows beyond the schema, with the reason.
pub(crate) const EXTRA_MEMBERS: &[(&str, &str, &str)] = &[(
    "changeType",
    "unknownFutureValue",
    "listed by the newer commsNotification docs; not yet in the CSDL",
)];

/// Reads every schema member, checks it is known and written back unchanged,
/// and that the model knows no member the schema lacks (beyond [`EXTRA_MEMBERS`]).
/// Returns the number of members checked.
pub(crate) fn check_enum<E: GraphEnum>(schema: &Value, name: &str) -> usize {
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
pub(crate) fn every_enum_member_reads_and_writes_as_itself() {
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
