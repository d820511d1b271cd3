//! Call records for store tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use graph_comms_core::model::{
    CallDirection, CallId, CallState, Identity, IdentitySet, ParticipantInfo, TenantId, TransferRequest,
};
use graph_comms_core::transfer_machine::TransferMachine;
use graph_comms_core::{AttemptRecord, CallRecord, CallSnapshot, Packed, TransferInfo};

/// The current wall-clock time truncated to whole milliseconds, the precision
/// records store, so a record built with it compares equal after a round trip.
pub fn now_millis() -> SystemTime {
    truncate_to_millis(SystemTime::now())
}

/// `time` truncated to whole milliseconds since the Unix epoch.
pub fn truncate_to_millis(time: SystemTime) -> SystemTime {
    let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// A call id no other test uses: `<tag>-<uuid>`.
pub fn unique_call_id(tag: &str) -> CallId {
    CallId::from(format!("{tag}-{}", uuid::Uuid::new_v4()))
}

/// A fresh record (version 0) with an empty snapshot.
pub fn empty_record(call_id: CallId) -> CallRecord {
    CallRecord::new(CallSnapshot::new(call_id, TenantId::from("tenant-testkit")))
}

/// A record as the runtime keeps it mid-call: an established incoming call
/// with a caller, a pending consultative-free transfer attempt, deadlines and
/// per-call data. `now` should be whole milliseconds ([`now_millis`]).
/// Its version is 0: set it before saving.
pub fn typical_record(call_id: CallId, now: SystemTime) -> CallRecord {
    let mut snapshot = CallSnapshot::new(call_id.clone(), TenantId::from("2b0f6a3e-6f2a-4f4e-9d1f-8c4f5e0b7a11"));
    snapshot.state = Some(CallState::Established);
    snapshot.direction = Some(CallDirection::Incoming);
    // Packing a Graph structure does not fail.
    snapshot.source = Packed::new(&ParticipantInfo::new(IdentitySet::user(
        Identity::with_id("8d4e2c1a-5b7f-4e3d-9a2b-1c0f9e8d7a6b").display_name("Alex Caller"),
    )))
    .ok();
    snapshot.callback_uri = Some("https://bot.example.com/api/calls".to_owned());
    snapshot.established_at = Some(now - Duration::from_secs(12));

    let mut record = CallRecord::new(snapshot);
    let request = TransferRequest::to_user("3f2e1d0c-9b8a-4765-8432-10fedcba9876", None).build();
    let info = TransferInfo::new(call_id, request, 1, now - Duration::from_secs(2));
    record.attempt = Some(Box::new(AttemptRecord::new(info, TransferMachine::new(false))));
    record.attempts_started = 1;
    record.lifecycle.incoming_handled = true;
    record.lifecycle.established_fired = true;
    record.lifecycle.deadlines.attempt_timeout = Some(now + Duration::from_secs(30));
    record.lifecycle.deadlines.keep_alive = Some(now + Duration::from_secs(15 * 60));
    record.lifecycle.deadlines.idle = Some(now + Duration::from_secs(2 * 60 * 60));
    record.data = Some(serde_json::json!({ "targets": ["user:alice", "user:bob"], "next": 1 }));
    record
}
