//! The published Graph payloads every crate's tests read: one directory,
//! `fixtures/` in this crate, with a README naming each file's source and quirks.
//!
//! The directory is found from this crate's `CARGO_MANIFEST_DIR` (fixed when
//! the testkit is compiled), not the caller's, so the same names work from any
//! crate, test, bench or example.
//!
//! ```
//! use graph_comms_testkit::fixtures;
//!
//! let body = fixtures::json("call-transfer.ex1.notify.transfer-accepted.json");
//! assert_eq!(body["value"][0]["resourceData"]["state"], "transferAccepted");
//! ```

use std::path::{Path, PathBuf};

/// The fixtures that are invalid JSON exactly as the docs publish them (kept
/// as published; [`json`] panics on them, [`notifications`] leaves them out).
pub const PUBLISHED_INVALID: &[&str] = &[
    "call-transfer.ex5.request.json",
    "teams-call-notifications.legacy-sample.notify.json",
];

/// The directory holding every fixture.
pub fn dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// The path of fixture `name` (a file name such as
/// `"call-answer.ex1.notify.incoming.json"`).
///
/// # Panics
///
/// When there is no such fixture; the message names the file and the directory.
pub fn path(name: &str) -> PathBuf {
    let path = dir().join(name);
    assert!(
        path.is_file(),
        "fixture {name:?} not found in {}; the fixtures and their sources are listed in its README.md",
        dir().display()
    );
    path
}

/// The text of fixture `name`, byte for byte as published.
///
/// # Panics
///
/// When there is no such fixture or it cannot be read.
pub fn read(name: &str) -> String {
    let path = path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {name:?} ({}): {e}", path.display()))
}

/// Fixture `name` parsed as JSON.
///
/// # Panics
///
/// When there is no such fixture or it is not JSON (those published as invalid
/// JSON are listed in [`PUBLISHED_INVALID`]).
pub fn json(name: &str) -> serde_json::Value {
    serde_json::from_str(&read(name)).unwrap_or_else(|e| panic!("fixture {name:?} is not valid JSON: {e}"))
}

/// The names of every fixture (`*.json`), sorted.
///
/// # Panics
///
/// When the fixtures directory cannot be listed.
pub fn all() -> Vec<String> {
    let entries =
        std::fs::read_dir(dir()).unwrap_or_else(|e| panic!("cannot list the fixtures in {}: {e}", dir().display()));
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

/// The names of every notification body Graph POSTs to a bot (`*.notify*.json`)
/// that is valid JSON, sorted: what a callback endpoint must accept.
pub fn notifications() -> Vec<String> {
    all()
        .into_iter()
        .filter(|name| name.contains(".notify.") && !PUBLISHED_INVALID.contains(&name.as_str()))
        .collect()
}
