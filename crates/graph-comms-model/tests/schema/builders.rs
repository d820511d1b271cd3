//! Builders: every `@odata.type` the model builders write is a schema type.

use std::collections::BTreeSet;

use graph_comms_model::{AnswerRequest, CallOptions, CommsNotifications, Prompt, ResultInfo, TransferRequest};
use serde_json::Value;

use crate::loading::schema;

#[test]
pub(crate) fn builders_write_schema_odata_types() {
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

pub(crate) fn collect_odata_types(value: &Value, out: &mut Vec<String>) {
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
