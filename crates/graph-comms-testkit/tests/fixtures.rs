//! The fixture set: found from any crate, one copy of each payload, every file
//! catalogued in the README, and the published-invalid list telling the truth.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use graph_comms_testkit::fixtures;

#[test]
fn the_directory_is_absolute_and_every_name_reads() {
    // Absolute, so a caller's working directory does not matter.
    assert!(fixtures::dir().is_absolute(), "{}", fixtures::dir().display());
    let names = fixtures::all();
    assert_eq!(names.len(), 39, "{names:?}");
    for name in &names {
        assert!(fixtures::path(name).is_file(), "{name}");
        assert!(!fixtures::read(name).is_empty(), "{name}");
    }
}

#[test]
fn no_payload_is_kept_twice() {
    let mut seen: HashMap<String, String> = HashMap::new();
    for name in fixtures::all() {
        if let Some(first) = seen.insert(fixtures::read(&name), name.clone()) {
            panic!("{name} has the same bytes as {first}: keep one and list the other source in the README");
        }
    }
}

#[test]
fn the_readme_catalogues_every_fixture_and_no_other() {
    let readme = std::fs::read_to_string(fixtures::dir().join("README.md")).unwrap();
    let rows: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(rows, fixtures::all(), "one README row per fixture, in name order");
}

#[test]
fn exactly_the_published_invalid_fixtures_are_not_json() {
    let not_json: Vec<String> = fixtures::all()
        .into_iter()
        .filter(|name| serde_json::from_str::<serde_json::Value>(&fixtures::read(name)).is_err())
        .collect();
    assert_eq!(not_json, fixtures::PUBLISHED_INVALID);
}

#[test]
fn notifications_are_the_valid_notification_bodies() {
    let notifications = fixtures::notifications();
    assert_eq!(notifications.len(), 20, "{notifications:?}");
    for name in &notifications {
        let body = fixtures::json(name);
        let items = body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no value array"));
        assert!(!items.is_empty(), "{name}");
        assert!(items.iter().all(|item| item["changeType"].is_string()), "{name}");
    }
    assert!(
        !notifications
            .iter()
            .any(|n| n.contains(".request.") || n.contains(".response."))
    );
}

#[test]
#[should_panic(expected = "fixture \"no-such-payload.json\" not found in")]
fn a_missing_fixture_panics_naming_it() {
    fixtures::read("no-such-payload.json");
}

#[test]
#[should_panic(expected = "fixture \"teams-call-notifications.legacy-sample.notify.json\" is not valid JSON")]
fn json_on_a_published_invalid_fixture_panics_naming_it() {
    fixtures::json("teams-call-notifications.legacy-sample.notify.json");
}
