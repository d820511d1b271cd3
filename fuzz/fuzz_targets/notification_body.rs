//! Arbitrary bytes as a notification POST body: the envelope parser
//! (`CommsNotifications::from_slice`) and everything that interprets its items
//! (`resourceUrl` parsing, the call, operation and participant payloads, the
//! runtime's event classification). Nothing may panic.
//!
//! A body that parses is written back and read again: the model crate promises
//! `deserialize(serialize(x)) == x` (see its `tests/proptest.rs`), so the second
//! read must give the same value, and writing that again the same bytes.
#![no_main]

use std::hash::{DefaultHasher, Hash, Hasher};

use graph_comms_handler::{classify, event_kind};
use graph_comms_model::{CommsNotifications, ResourceTarget, ResourceUrl};
use libfuzzer_sys::fuzz_target;

fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn check_resource_url(path: &str) {
    let Ok(url) = ResourceUrl::parse(path) else {
        return;
    };
    // A call id is a non-empty path segment.
    let id = url.call_id.as_str();
    assert!(!id.is_empty() && !id.contains('/'), "{path:?} gave call id {id:?}");
    // Ids that compare equal hash alike (their canonical forms are equal).
    let canonical = graph_comms_model::CallId::new(url.call_id.canonical());
    assert_eq!(canonical, url.call_id);
    assert_eq!(hash_of(&canonical), hash_of(&url.call_id));
    match &url.target {
        ResourceTarget::Operation(id) => assert!(!id.as_str().is_empty()),
        ResourceTarget::Participant(id) => assert!(!id.as_str().is_empty()),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let envelope = match CommsNotifications::from_slice(data) {
        Ok(envelope) => envelope,
        Err(err) => {
            // The error names a position inside the input (0 when serde_json has none).
            assert!(!err.message.is_empty());
            let lines = data.iter().filter(|b| **b == b'\n').count() + 1;
            assert!(err.line <= lines, "line {} of {lines}: {err}", err.line);
            let _ = err.to_string();
            return;
        }
    };

    for item in &envelope.value {
        if let Some(path) = item.resource_path() {
            check_resource_url(path);
        }
        if let Ok(url) = item.resource() {
            let kind = event_kind(item, &url);
            let _ = kind.attempt_input();
            let _ = classify(item, &url);
        }
        if let Some(call) = item.call() {
            let _ = call.termination_reason();
        }
        if let Some(operation) = item.operation() {
            let _ = operation.kind();
        }
    }

    let written = serde_json::to_vec(&envelope).expect("a parsed envelope serialises");
    let reread = CommsNotifications::from_slice(&written).unwrap_or_else(|err| {
        panic!(
            "the written envelope does not parse: {err}\n{}",
            String::from_utf8_lossy(&written)
        )
    });
    assert_eq!(
        reread,
        envelope,
        "the envelope changed on the round trip\n{}",
        String::from_utf8_lossy(&written)
    );
    let rewritten = serde_json::to_vec(&reread).expect("serialises");
    assert_eq!(rewritten, written, "writing the re-read envelope gives other bytes");
});
