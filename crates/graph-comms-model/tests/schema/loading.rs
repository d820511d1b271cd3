//! Loading the schema extract (`comms-v1.0.json`), looking up its types and
//! properties, and building sample values of its types.

use serde_json::{Map, Value, json};

pub(crate) const SCHEMA: &str = include_str!("comms-v1.0.json");

pub(crate) fn schema() -> Value {
    serde_json::from_str(SCHEMA).unwrap()
}

pub(crate) fn schema_type<'a>(schema: &'a Value, name: &str) -> &'a Value {
    schema["types"]
        .get(name)
        .unwrap_or_else(|| panic!("schema has no type {name}"))
}

pub(crate) fn all_properties(schema: &Value, name: &str) -> Vec<String> {
    schema_type(schema, name)["all_properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

/// The declaration of a property, looked up through the base types.
pub(crate) fn property<'a>(schema: &'a Value, type_name: &str, property: &str) -> &'a Value {
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
pub(crate) fn sample(schema: &Value, type_name: &str, collection: bool, depth: usize) -> Value {
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
pub(crate) fn full_object(schema: &Value, type_name: &str, depth: usize) -> Value {
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
