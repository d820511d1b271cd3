//! Property tests of the body path: whatever bytes arrive with a valid token,
//! the endpoint never panics and answers 202, 400 or 413 (and 202 only with events queued).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use graph_comms_notify::{EventReceiver, NotifyEndpoint};
use http::StatusCode;
use proptest::prelude::*;

struct Harness {
    runtime: tokio::runtime::Runtime,
    endpoint: NotifyEndpoint,
    events: EventReceiver,
    token: String,
}

impl Harness {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let source = TestKeySource::new(&[A]);
        let mut config = config();
        config.max_body_bytes = 2048; // small, so 413 is reachable
        let (endpoint, events) = runtime.block_on(async { endpoint(config, &source) });
        Self {
            runtime,
            endpoint,
            events,
            token: A.sign(&claims()),
        }
    }

    /// Posts the body and checks the status against what got queued.
    fn check(&mut self, body: Vec<u8>) -> Result<(), TestCaseError> {
        let request = json_post(&self.token, body);
        let (status, _) = self.runtime.block_on(send(&self.endpoint, request));
        prop_assert!(
            [
                StatusCode::ACCEPTED,
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE
            ]
            .contains(&status),
            "status {status}"
        );
        let queued = std::iter::from_fn(|| self.events.try_recv()).count();
        if status != StatusCode::ACCEPTED {
            prop_assert_eq!(queued, 0, "a refused body queued events");
        }
        Ok(())
    }
}

/// JSON-looking text: brackets, quotes, keys and values Graph bodies use.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"value\"".to_owned()),
        Just("\"changeType\"".to_owned()),
        Just("\"updated\"".to_owned()),
        Just("\"resourceUrl\"".to_owned()),
        Just("\"resource\"".to_owned()),
        Just("\"/communications/calls/abc\"".to_owned()),
        Just("\"/communications/calls\"".to_owned()),
        Just("\"resourceData\"".to_owned()),
        Just("\"@odata.type\"".to_owned()),
        Just("\"#microsoft.graph.call\"".to_owned()),
        Just("\"state\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e999".to_owned()),
        Just("-0".to_owned()),
        "\"[^\"\\\\]{0,8}\"",
        "[0-9]{1,4}",
        "\\\\u[0-9a-fA-F]{4}",
    ];
    prop::collection::vec(token, 0..64).prop_map(|parts| parts.concat())
}

/// A real notification body with a few bytes changed, cut or inserted.
fn mutated_vector() -> impl Strategy<Value = Vec<u8>> {
    let base = transfer_accepted().as_bytes().to_vec();
    let len = base.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..3), 1..6).prop_map(move |edits| {
        let mut body = base.clone();
        for (at, byte, kind) in edits {
            let at = at.min(body.len().saturating_sub(1));
            match kind {
                0 if !body.is_empty() => body[at] = byte,
                1 if !body.is_empty() => {
                    body.remove(at);
                }
                _ => body.insert(at, byte),
            }
        }
        body
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..3000)) {
        thread_local!(static HARNESS: std::cell::RefCell<Harness> = std::cell::RefCell::new(Harness::new()));
        HARNESS.with(|h| h.borrow_mut().check(body))?;
    }

    #[test]
    fn jsonish_text_never_panics(body in jsonish()) {
        thread_local!(static HARNESS: std::cell::RefCell<Harness> = std::cell::RefCell::new(Harness::new()));
        HARNESS.with(|h| h.borrow_mut().check(body.into_bytes()))?;
    }

    #[test]
    fn mutated_vectors_never_panic(body in mutated_vector()) {
        thread_local!(static HARNESS: std::cell::RefCell<Harness> = std::cell::RefCell::new(Harness::new()));
        HARNESS.with(|h| h.borrow_mut().check(body))?;
    }
}

#[test]
fn the_unmutated_vector_is_accepted() {
    let mut harness = Harness::new();
    let (status, _) = harness
        .runtime
        .block_on(send(&harness.endpoint, json_post(&harness.token, transfer_accepted())));
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(harness.events.try_recv().is_some());
}
