//! Abstract schema types: the `@odata.type` of each subtype selects the
//! right variant of its model enum.

use graph_comms_model::{MediaConfig, MeetingInfo, Prompt};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::loading::{full_object, schema, schema_type};

/// Checks that the `@odata.type` of each subtype of an abstract schema type
/// selects the right variant of its model enum.
pub(crate) fn check_polymorphic<T: DeserializeOwned + Serialize>(
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
pub(crate) fn abstract_types_select_their_subtype_by_odata_type() {
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
