//! `inspect` on every notification fixture (as Graph POSTs them) and on broken
//! input, through the library and through the built binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use graph_comms_testkit::fixtures;
use transfer_bot::inspect::inspect;

/// What each fixture must become, by what its name says it is: the event, the
/// hooks on a call with no transfer pending, and the hooks while a
/// consultative transfer is pending (a blind one differs only for
/// `AppTransferred`, checked below).
fn expected(name: &str) -> (&'static str, &'static [&'static str], &'static [&'static str]) {
    type Row = (
        &'static str,
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    );
    const TERMINATED: &[&str] = &["on_call_terminated"];
    let table: &[Row] = &[
        (
            "transfer-completed",
            "CallTerminated",
            TERMINATED,
            &[
                "on_transferring",
                "on_transfer_accepted",
                "on_transfer_completed",
                "on_call_terminated",
            ],
        ),
        // A failed transfer returns the call to `established` with a non-zero subcode.
        (
            "transfer-failed",
            "CallEstablished",
            &["on_call_established"],
            &["on_transfer_failed"],
        ),
        (
            "transfer-accepted",
            "TransferAccepted",
            &[],
            &["on_transferring", "on_transfer_accepted"],
        ),
        ("transferring", "Transferring", &[], &["on_transferring"]),
        ("incoming", "IncomingCall", &["on_incoming_call"], &[]),
        ("establishing", "CallUpdated", &[], &[]),
        ("established", "CallEstablished", &["on_call_established"], &[]),
        ("terminating", "CallUpdated", &[], &[]),
        (
            "terminated",
            "CallTerminated",
            TERMINATED,
            &["on_transfer_failed", "on_call_terminated"],
        ),
        (
            "operation-completed",
            "OperationFinished",
            &["on_operation_completed"],
            &["on_operation_completed"],
        ),
        (
            "operation-canceled",
            "OperationFinished",
            &["on_operation_completed"],
            &["on_operation_completed"],
        ),
        ("content-sharing", "Ignored", &[], &[]),
    ];
    table
        .iter()
        .find(|(part, ..)| name.contains(part))
        .map(|(_, event, hooks, in_transfer)| (*event, *hooks, *in_transfer))
        .unwrap_or_else(|| panic!("no expectation for {name}"))
}

fn names(hooks: &[graph_comms_handler::HookName]) -> Vec<String> {
    hooks.iter().map(ToString::to_string).collect()
}

#[test]
fn every_fixture_is_read_and_classified() {
    let bodies = fixtures::notifications();
    assert_eq!(bodies.len(), 20, "every published notification body: {bodies:?}");
    for name in bodies {
        let report = inspect(fixtures::read(&name).as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.items.len(), 1, "{name}");
        let item = &report.items[0];
        let call_id = item.call_id.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!call_id.is_empty());
        let (event, hooks, in_transfer) = expected(&name);
        let c = item
            .classification
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: not classified"));
        assert_eq!(c.kind.name(), event, "{name}");
        assert_eq!(names(&c.hooks), hooks, "{name}");
        assert_eq!(names(&c.hooks_during_consultative_transfer), in_transfer, "{name}");
        let app_transferred = item.termination_reason.as_deref() == Some("AppTransferred");
        if app_transferred {
            // Without replacesCallId, AppTransferred is just the call ending.
            assert_eq!(
                names(&c.hooks_during_transfer),
                ["on_transfer_failed", "on_call_terminated"],
                "{name}"
            );
        } else {
            assert_eq!(c.hooks_during_transfer, c.hooks_during_consultative_transfer, "{name}");
        }
        if name.contains("transfer-failed") {
            let result = item.result_info.as_ref().expect("failure carries resultInfo");
            assert!(matches!(result.subcode, Some(7000 | 7700)), "{name}: {result:?}");
        }
    }
}

#[test]
fn the_report_shows_codes_and_the_hook() {
    let body = fixtures::read("call-transfer.ex1.notify.transfer-failed.json");
    let text = inspect(body.as_bytes()).unwrap().to_string();
    assert!(text.contains("change type: updated"), "{text}");
    assert!(text.contains("state:       established"), "{text}");
    assert!(text.contains("subcode 7000"), "{text}");
    assert!(text.contains("hooks:       on_call_established"), "{text}");
    assert!(text.contains("in transfer: on_transfer_failed"), "{text}");
}

#[test]
fn a_batched_body_lists_every_item() {
    let body = br##"{"value": [
        {"changeType": "updated", "resourceUrl": "/communications/calls/a1",
         "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "transferring"}},
        {"changeType": "deleted", "resourceUrl": "/communications/calls/a1",
         "resourceData": {"@odata.type": "#microsoft.graph.call", "state": "terminated", "terminationReason": "AppTransferred"}},
        {"changeType": "updated", "resourceUrl": "/users/nobody"}
    ]}"##;
    let report = inspect(body).unwrap();
    let events: Vec<_> = report
        .items
        .iter()
        .map(|i| i.classification.as_ref().map(|c| c.kind.name()))
        .collect();
    assert_eq!(events, [Some("Transferring"), Some("CallTerminated"), None]);
    assert!(report.items[2].call_id.is_err());
    let text = report.to_string();
    assert!(
        text.contains("in consultative transfer: on_transferring, on_transfer_accepted, on_transfer_completed"),
        "{text}"
    );
}

#[test]
fn broken_input_reports_line_and_column() {
    let body = b"{\n  \"value\": [\n    {\"changeType\": \"updated\",}\n  ]\n}\n";
    let err = inspect(body).unwrap_err();
    assert_eq!((err.line, err.column), (3, 29), "{err}");
    // The envelope without `value` is the wrong shape.
    let err = inspect(b"{\"values\": []}").unwrap_err();
    assert!(err.to_string().contains("value"), "{err}");
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_transfer-bot"))
}

#[test]
fn the_binary_inspects_a_file_and_exits_zero() {
    let file = fixtures::path("call-answer.ex1.notify.incoming.json");
    let out = binary().arg("inspect").arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("hooks:       on_incoming_call"), "{stdout}");
}

#[test]
fn the_binary_rejects_broken_input_with_position_and_non_zero_exit() {
    // The Teams docs' legacy sample: a bare `"value": [...]`, not JSON.
    let file = fixtures::path("teams-call-notifications.legacy-sample.notify.json");
    let out = binary().arg("inspect").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("line 1, column 7"), "{stderr}");

    let mut child = binary()
        .args(["inspect", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"{\n  \"value\": [\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("truncated JSON at line 3"), "{stderr}");

    let out = binary().args(["inspect", "does-not-exist.json"]).output().unwrap();
    assert!(!out.status.success());
}
