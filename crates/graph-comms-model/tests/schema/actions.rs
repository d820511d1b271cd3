//! Actions: every request body has exactly the schema's parameters, and the
//! non-nullable ones are required.

use std::collections::BTreeSet;

use graph_comms_model::{
    AnswerRequest, ChangeScreenSharingRoleRequest, ClientContextRequest, InviteParticipantsRequest, PlayPromptRequest,
    RecordResponseRequest, RedirectRequest, RejectRequest, SendDtmfTonesRequest, StartHoldMusicRequest,
    TransferRequest, UpdateRecordingStatusRequest,
};
use serde_json::{Map, Value, json};

use crate::loading::{sample, schema};
use crate::models::Model;

/// Checks one action against its request body type.
pub(crate) type ActionCheck = fn(&Value, &str);

/// Request-body keys beyond an action's schema parameters, with the reason.
pub(crate) const ACTION_EXTRAS: &[(&str, &str, &str)] = &[(
    "transfer",
    "clientContext",
    "sent top-level by the PSTN transfer examples; not a v1.0 parameter",
)];

/// Checks an action's request body: a body with every parameter (plus the
/// documented extras) is read into declared fields only, every field is set,
/// and it is written back with exactly those keys. Removing a non-nullable
/// parameter makes the body unreadable: such fields are not `Option`.
pub(crate) fn check_action<T: Model>(schema: &Value, action: &str) {
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
pub(crate) fn every_action_body_has_exactly_the_schema_parameters() {
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
