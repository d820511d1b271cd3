//! The stored call record's format: every machine state round-trips through
//! JSON, and the bytes match the golden file, so a format change is a visible
//! decision (bump `RECORD_SCHEMA` and regenerate with `UPDATE_GOLDEN=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graph_comms_core::lifecycle::{CallInput, KeepAliveResult, Step};
use graph_comms_core::stepping::{start_attempt, step};
use graph_comms_core::transfer_machine::{AttemptInput, CallLookup};
use graph_comms_handler::model::{
    Call, CallId, CallState, ChangeType, CommsNotification, Identity, IdentitySet, ParticipantInfo, ResourceData,
    ResultInfo, TenantId, TransferRequest,
};
use graph_comms_handler::{
    AttemptId, CallRecord, CallSnapshot, ClientErrorSummary, EventKind, RECORD_SCHEMA, Timings, event_kind,
};

const GOLDEN: &str = "tests/fixtures/call-record.v1.json";

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

fn kind_of(state: CallState, result: Option<ResultInfo>) -> (EventKind, Call) {
    let call = Call {
        state: Some(state),
        result_info: result,
        ..Call::default()
    };
    let notification = CommsNotification::new(
        ChangeType::Updated,
        "/communications/calls/c1",
        Some(ResourceData::Call(Box::new(call.clone()))),
    );
    (event_kind(&notification, &notification.resource().unwrap()), call)
}

fn notify(record: &mut CallRecord, state: CallState, result: Option<ResultInfo>, now: u64) -> Vec<Step> {
    let (kind, call) = kind_of(state, result);
    let input = CallInput::Notification {
        kind: &kind,
        call: Some(&call),
        message: None,
        consultation_for: None,
    };
    step(record, input, at(now), &Timings::default().machine())
}

fn established() -> CallRecord {
    let mut record = CallRecord::new(CallSnapshot::new(CallId::from("c1"), TenantId::from("t1")));
    let incoming = Call {
        state: Some(CallState::Incoming),
        source: Some(ParticipantInfo {
            identity: Some(IdentitySet {
                user: Some(Box::new(Identity::with_id("caller-1").display_name("Caller"))),
                ..IdentitySet::default()
            }),
            ..ParticipantInfo::default()
        }),
        ..Call::default()
    };
    let notification = CommsNotification::new(
        ChangeType::Created,
        "/communications/calls/c1",
        Some(ResourceData::Call(Box::new(incoming.clone()))),
    );
    let kind = event_kind(&notification, &notification.resource().unwrap());
    let input = CallInput::Notification {
        kind: &kind,
        call: Some(&incoming),
        message: None,
        consultation_for: None,
    };
    step(&mut record, input, at(0), &Timings::default().machine());
    notify(&mut record, CallState::Established, None, 1_000);
    record.version = 2;
    record
}

fn with_attempt(request: TransferRequest, id: u128) -> CallRecord {
    let mut record = established();
    let timings = Timings::default().machine();
    let id = AttemptId::from(uuid::Uuid::from_u128(id));
    start_attempt(&mut record, id, request, false, at(2_000), &timings).unwrap();
    record.version = 3;
    record
}

fn blind(id: u128) -> CallRecord {
    with_attempt(TransferRequest::to_user("agent-1", None).build(), id)
}

fn feed(record: &mut CallRecord, input: AttemptInput) {
    let id = record.attempt.as_ref().unwrap().info.id;
    step(
        record,
        CallInput::Attempt { id, input },
        at(3_000),
        &Timings::default().machine(),
    );
}

fn lookup(record: &mut CallRecord, lookup: CallLookup) {
    let id = record.attempt.as_ref().unwrap().info.id;
    step(
        record,
        CallInput::Lookup { id, lookup },
        at(62_000),
        &Timings::default().machine(),
    );
}

fn states() -> BTreeMap<&'static str, CallRecord> {
    let mut states = BTreeMap::new();
    let mut incoming = CallRecord::new(CallSnapshot::new(CallId::from("c0"), TenantId::from("t1")));
    incoming.lifecycle.incoming_handled = true;
    incoming.version = 1;
    states.insert("01 incoming, decision taken", incoming);
    states.insert("02 established, keep-alive due", established());
    let mut no_keep_alive = established();
    step(
        &mut no_keep_alive,
        CallInput::SetKeepAlive(false),
        at(1_500),
        &Timings::default().machine(),
    );
    states.insert("03 established, keep-alive off", no_keep_alive);
    let mut retry = established();
    step(
        &mut retry,
        CallInput::KeepAlive(KeepAliveResult::Failed),
        at(1_500),
        &Timings::default().machine(),
    );
    states.insert("04 keep-alive failed, retry due", retry);
    states.insert("05 blind transfer pending", blind(5));
    let mut transferring = blind(6);
    notify(&mut transferring, CallState::Transferring, None, 2_100);
    states.insert("06 transferring", transferring);
    let mut accepted = blind(7);
    notify(&mut accepted, CallState::TransferAccepted, None, 2_200);
    states.insert("07 transfer accepted", accepted);
    let mut unknown = blind(8);
    feed(&mut unknown, AttemptInput::PostOutcomeUnknown);
    states.insert("08 post outcome unknown, window open", unknown);
    let mut completed = blind(9);
    notify(
        &mut completed,
        CallState::Terminated,
        Some(ResultInfo::new(0, 7015, "GracefulTransferCompleted")),
        2_500,
    );
    states.insert("09 completed, call ended", completed);
    let mut declined = blind(10);
    notify(
        &mut declined,
        CallState::Established,
        Some(ResultInfo::new(500, 7000, "declined")),
        2_500,
    );
    states.insert("10 failed: returned to established", declined);
    let mut rejected = blind(11);
    feed(
        &mut rejected,
        AttemptInput::PostRejected(ClientErrorSummary {
            status: Some(403),
            code: Some("7505".into()),
            request_id: Some("req-1".into()),
            message: "tenant mismatch".into(),
        }),
    );
    states.insert("11 failed: rejected", rejected);
    let mut silent = blind(12);
    feed(&mut silent, AttemptInput::PostOutcomeUnknown);
    step(&mut silent, CallInput::Wake, at(20_000), &Timings::default().machine());
    states.insert("12 failed: outcome unknown", silent);
    let mut ended = blind(13);
    notify(
        &mut ended,
        CallState::Terminated,
        Some(ResultInfo::new(200, 5001, "ended")),
        2_500,
    );
    states.insert("13 failed: call ended", ended);
    let mut timed_out = blind(14);
    lookup(
        &mut timed_out,
        CallLookup::Found {
            state: Some(CallState::Established),
            result_info: None,
            termination_reason: None,
        },
    );
    states.insert("14 failed: timed out", timed_out);
    let mut unverified = blind(15);
    lookup(
        &mut unverified,
        CallLookup::Failed(ClientErrorSummary {
            status: Some(503),
            message: "service unavailable".into(),
            ..ClientErrorSummary::default()
        }),
    );
    states.insert("15 failed: timed out, lookup failed", unverified);
    let mut reconciled = blind(16);
    lookup(&mut reconciled, CallLookup::NotFound);
    states.insert("16 completed by lookup (404), call ended", reconciled);
    let mut claimed = blind(17);
    step(&mut claimed, CallInput::Wake, at(62_000), &Timings::default().machine());
    states.insert("17 timeout claimed, lookup running", claimed);
    let mut consultative = with_attempt(
        TransferRequest::to_user("agent-2", None)
            .replaces_call("consult-1")
            .build(),
        18,
    );
    consultative.links.consultation = Some(CallId::from("consult-1"));
    consultative.data = Some(serde_json::json!({"route": "sales", "tries": 1}));
    states.insert("18 consultative transfer pending, with links and data", consultative);
    // What a shared store keeps until the hooks ran: the steps of a completion and the end.
    let mut outbox = blind(19);
    let id = outbox.attempt.as_ref().unwrap().info.id;
    let end = ResultInfo::new(0, 7015, "");
    let (kind, call) = kind_of(CallState::Terminated, Some(end));
    let input = CallInput::Notification {
        kind: &kind,
        call: Some(&call),
        message: None,
        consultation_for: None,
    };
    outbox.outbox = step(&mut outbox, input, at(4_000), &Timings::default().machine())
        .into_iter()
        .filter(Step::runs_hooks)
        .collect();
    assert!(
        outbox
            .outbox
            .iter()
            .any(|s| matches!(s, Step::Attempt(info, _) if info.id == id)),
        "{:?}",
        outbox.outbox
    );
    states.insert("19 transfer completed, hooks waiting in the outbox", outbox);
    // A second attempt after a failure: its failures are checked with Graph,
    // one is waiting for that check, and the call keeps delivery keys.
    let mut checking = blind(20);
    let timings = Timings::default().machine();
    let (kind, call) = kind_of(CallState::Established, Some(ResultInfo::new(500, 7000, "declined")));
    for message in [11, 12] {
        let input = CallInput::Notification {
            kind: &kind,
            call: Some(&call),
            message: Some(message),
            consultation_for: None,
        };
        step(&mut checking, input, at(5_000), &timings);
        if checking.pending_attempt().is_none() {
            let request = TransferRequest::to_user("agent-2", None).build();
            let id = AttemptId::from(uuid::Uuid::from_u128(21));
            start_attempt(&mut checking, id, request, false, at(5_500), &timings).unwrap();
        }
    }
    assert!(checking.pending_attempt().unwrap().machine.awaits_check());
    states.insert("20 second attempt, a failure waiting for Graph's check", checking);
    states
}

#[test]
fn every_machine_state_round_trips_and_matches_the_golden_file() {
    let states = states();
    for (name, record) in &states {
        assert_eq!(record.schema, RECORD_SCHEMA);
        let bytes = record.to_json().unwrap();
        let back = CallRecord::from_json(&bytes).unwrap();
        assert_eq!(&back, record, "{name} does not round-trip");
    }
    let json: BTreeMap<&str, serde_json::Value> = states
        .iter()
        .map(|(name, record)| (*name, serde_json::to_value(record).unwrap()))
        .collect();
    let text = serde_json::to_string_pretty(&json).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &text).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("golden file (run with UPDATE_GOLDEN=1 to create it)");
    assert!(
        golden == text,
        "the stored record format changed: if on purpose, bump RECORD_SCHEMA and rerun with UPDATE_GOLDEN=1\n{text}"
    );
}

#[test]
fn the_golden_file_reads_back_into_records() {
    let golden: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(GOLDEN).unwrap()).unwrap();
    assert_eq!(golden.len(), states().len());
    for (name, value) in golden {
        let record = CallRecord::from_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(record.snapshot.tenant_id, TenantId::from("t1"), "{name}");
    }
}
