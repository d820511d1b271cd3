//! The durable call record: everything the runtime needs to resume a call, in
//! one serializable, versioned value.

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use graph_comms_model::{
    Call, CallDirection, CallId, CallState, InvitationParticipantInfo, ParticipantInfo, ResultInfo, TenantId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::attempt::TransferInfo;
use crate::error::StoreError;
use crate::lifecycle::CallMachine;
use crate::transfer_machine::TransferMachine;

/// The record format this build writes and reads. A change of format bumps it
/// (and the golden file `tests/fixtures/call-record.v1.json`).
pub const RECORD_SCHEMA: u32 = 1;

/// What the bot knows about a call right now.
///
/// Kept small (large parts are boxed) because the runtime copies it on every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallSnapshot {
    /// The call.
    pub call_id: CallId,
    /// Its tenant (from the notification's token).
    pub tenant_id: TenantId,
    /// The last state reported (stale duplicates excluded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CallState>,
    /// The last `resultInfo` reported (boxed: it is large and absent until the call ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<Box<ResultInfo>>,
    /// Incoming or outgoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<CallDirection>,
    /// The caller, as its compact JSON ([`Packed::get`] reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Packed<ParticipantInfo>>,
    /// Who was called (never an empty list), as their compact JSON ([`Packed::get`] reads them).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "non_empty")]
    pub targets: Option<Packed<Vec<InvitationParticipantInfo>>>,
    /// A group call (its `chatInfo.threadId` is set): transfers need a `transferee`.
    #[serde(default)]
    pub is_group: bool,
    /// The last `callbackUri` a call resource reported (used when answering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_uri: Option<String>,
    /// When the call first reached `established` (wall clock).
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub established_at: Option<SystemTime>,
    /// The `callChainId` Graph sent (usually only with the incoming call):
    /// kept so that later work on the call, on any instance, can name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_chain_id: Option<uuid::Uuid>,
}

impl CallSnapshot {
    /// An empty snapshot for a call seen for the first time.
    pub fn new(call_id: CallId, tenant_id: TenantId) -> Self {
        Self {
            call_id,
            tenant_id,
            state: None,
            result_info: None,
            direction: None,
            source: None,
            targets: None,
            is_group: false,
            callback_uri: None,
            established_at: None,
            call_chain_id: None,
        }
    }

    /// Folds in what a notification's call resource says.
    pub fn apply(&mut self, call: &Call) {
        if let Some(state) = call.state.as_ref().filter(|s| !goes_back(self.state.as_ref(), s)) {
            self.state = Some(state.clone());
        }
        if let Some(result_info) = &call.result_info {
            self.result_info = Some(Box::new(result_info.clone()));
        }
        if call.direction.is_some() {
            self.direction.clone_from(&call.direction);
        }
        if let Some(source) = &call.source {
            self.source = packed(source);
        }
        if let Some(targets) = &call.targets {
            self.targets = if targets.is_empty() { None } else { packed(targets) };
        }
        if call.chat_info.as_ref().is_some_and(|c| c.thread_id.is_some()) {
            self.is_group = true;
        }
        if call.callback_uri.is_some() {
            self.callback_uri.clone_from(&call.callback_uri);
        }
        if self.call_chain_id.is_none() {
            self.call_chain_id = call
                .call_chain_id
                .as_deref()
                .and_then(|c| uuid::Uuid::try_parse(c).ok());
        }
    }
}

/// `value` packed; a value that cannot be written as JSON (it does not happen
/// for Graph structures) is logged and not kept.
fn packed<T: Serialize + DeserializeOwned>(value: &T) -> Option<Packed<T>> {
    match Packed::new(value) {
        Ok(packed) => Some(packed),
        Err(error) => {
            tracing::warn!("a Graph structure of the call could not be kept: {error}");
            None
        }
    }
}

/// A Graph structure the runtime keeps for the handler but does not read
/// itself (the caller, the targets), held as its compact JSON text.
///
/// Graph's structures are large in memory (a `ParticipantInfo` with its
/// identity is about 800 bytes in a dozen allocations); their JSON is one
/// allocation of about 130. It is written in records exactly as the structure
/// itself would be, and [`Packed::get`] parses it back.
#[derive(Clone, PartialEq, Eq)]
pub struct Packed<T> {
    json: Box<str>,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    /// Packs `value`.
    ///
    /// # Errors
    ///
    /// When `value` cannot be written as JSON (a map with non-string keys).
    pub fn new(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self {
            json: serde_json::to_string(value)?.into_boxed_str(),
            kind: PhantomData,
        })
    }

    /// The structure, parsed from the kept JSON.
    ///
    /// # Errors
    ///
    /// Only if the kept JSON does not parse as `T`, which [`Packed::new`] and
    /// deserialization rule out.
    pub fn get(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }

    /// The kept JSON text.
    pub fn as_json(&self) -> &str {
        &self.json
    }
}

impl<T> fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Packed({})", self.json)
    }
}

impl<T: Serialize + DeserializeOwned> Serialize for Packed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().map_err(serde::ser::Error::custom)?.serialize(serializer)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for Packed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(&T::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// Reads `targets`: an empty list is no targets, as the snapshot keeps them.
fn non_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Packed<Vec<InvitationParticipantInfo>>>, D::Error> {
    match Option::<Vec<InvitationParticipantInfo>>::deserialize(deserializer)? {
        Some(targets) if !targets.is_empty() => Packed::new(&targets).map(Some).map_err(serde::de::Error::custom),
        _ => Ok(None),
    }
}

/// Whether moving from `from` to `to` would go back in a call's life: a
/// reordered `establishing` after `established`, anything after `terminated`.
/// Such notifications are late; the state keeps the later one.
fn goes_back(from: Option<&CallState>, to: &CallState) -> bool {
    fn stage(state: &CallState) -> Option<u8> {
        match state {
            CallState::Incoming => Some(0),
            CallState::Establishing => Some(1),
            CallState::Terminating => Some(3),
            CallState::Terminated => Some(4),
            // Established, hold, transferring, ... move back and forth among themselves.
            CallState::Established
            | CallState::Hold
            | CallState::Transferring
            | CallState::TransferAccepted
            | CallState::Redirecting => Some(2),
            _ => None,
        }
    }
    match (from.and_then(stage), stage(to)) {
        (Some(from), Some(to)) => to < from,
        _ => false,
    }
}

/// One transfer attempt's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AttemptRecord {
    /// The attempt as started.
    pub info: TransferInfo,
    /// Its progress.
    pub machine: TransferMachine,
    /// With a shared store: its `POST /transfer` was decided and is not yet
    /// known to be sent. An instance that takes the call over while this is
    /// set asks Graph about the call instead of sending the POST again (Graph
    /// has no idempotency key for transfers, so a second POST could transfer twice).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sending: bool,
    /// With a shared store: the attempt's consultation call is not yet known
    /// to be linked to this call, so its answer might reach nobody. An
    /// instance that takes the call over links it again (see
    /// `CallContext::consult`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linking: bool,
    /// When the transfer, if Graph still says `transferring`, fails with
    /// `RangOut`; set when its `POST /transfer` is decided. Not a timer of
    /// its own: the attempt's timeout lookups check it.
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub ring_limit: Option<SystemTime>,
}

impl AttemptRecord {
    /// A new attempt's record: not sending, not linking, no ring limit yet.
    pub fn new(info: TransferInfo, machine: TransferMachine) -> Self {
        Self {
            info,
            machine,
            sending: false,
            linking: false,
            ring_limit: None,
        }
    }
}

/// How this call relates to the bot's other calls.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallLinks {
    /// This call is a consultation placed for that original call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation_for: Option<CallId>,
    /// The consultation call placed for this call, while there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultation: Option<CallId>,
}

impl CallLinks {
    fn is_empty(&self) -> bool {
        self.consultation_for.is_none() && self.consultation.is_none()
    }
}

/// Everything the runtime keeps about one call: the unit the [`CallStore`](crate::CallStore)
/// stores and versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallRecord {
    /// The record format ([`RECORD_SCHEMA`]).
    pub schema: u32,
    /// Bumped by one on every committed change; stores refuse a write whose
    /// version is not the stored one plus one (fencing).
    pub version: u64,
    /// The call's state.
    pub snapshot: CallSnapshot,
    /// The call's lifecycle flags and deadlines.
    pub lifecycle: CallMachine,
    /// The latest transfer attempt, finished or not (boxed: it is large and often absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<Box<AttemptRecord>>,
    /// How many attempts were started on the call.
    #[serde(default)]
    pub attempts_started: u32,
    /// Links to the bot's other calls.
    #[serde(default, skip_serializing_if = "CallLinks::is_empty")]
    pub links: CallLinks,
    /// The handler's own per-call data, as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// With a shared store: hook steps committed whose hooks have not been
    /// recorded as run, oldest first (the outbox). An instance that takes the
    /// call over runs them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<crate::lifecycle::Step>,
}

impl CallRecord {
    /// A fresh record (version 0: not stored yet).
    pub fn new(snapshot: CallSnapshot) -> Self {
        Self {
            schema: RECORD_SCHEMA,
            version: 0,
            snapshot,
            lifecycle: CallMachine::default(),
            attempt: None,
            attempts_started: 0,
            links: CallLinks::default(),
            data: None,
            outbox: Vec::new(),
        }
    }

    /// The call's id.
    pub fn call_id(&self) -> &CallId {
        &self.snapshot.call_id
    }

    /// Whether the call has ended.
    pub fn is_ended(&self) -> bool {
        self.lifecycle.ended
    }

    /// The attempt that has no outcome yet, if any.
    pub fn pending_attempt(&self) -> Option<&AttemptRecord> {
        self.attempt.as_deref().filter(|a| !a.machine.is_finished())
    }

    /// Whether the call needs a lease holder even with an empty inbox: hook
    /// steps in its outbox, a `POST /transfer` not known to be sent, or a
    /// consultation not known to be linked. A shared store offers such calls
    /// without a live lease as orphans.
    pub fn awaits_holder(&self) -> bool {
        !self.outbox.is_empty() || self.pending_attempt().is_some_and(|a| a.sending || a.linking)
    }

    /// The record as JSON, for stores that keep bytes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if serialization fails (it does not for records the runtime builds).
    pub fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| StoreError::Corrupt(format!("cannot serialize call record: {e}")))
    }

    /// Reads a record written by [`CallRecord::to_json`], refusing other schema versions.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] naming the problem: not JSON, a missing field, or another schema.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StoreError> {
        #[derive(Deserialize)]
        struct Schema {
            schema: u32,
        }
        let schema = serde_json::from_slice::<Schema>(bytes)
            .map_err(|e| StoreError::Corrupt(format!("not a call record: {e}")))?
            .schema;
        if schema != RECORD_SCHEMA {
            return Err(StoreError::Corrupt(format!(
                "call record schema {schema}; this build reads schema {RECORD_SCHEMA}"
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("bad call record: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::mem::size_of;

    use super::*;

    /// The runtime copies a record on every event: large inline fields (a whole
    /// `Call`, a `ParticipantInfo`, an attempt) once made that 15 KB.
    #[test]
    fn call_record_stays_small_so_events_do_not_copy_kilobytes() {
        let (record, snapshot) = (size_of::<CallRecord>(), size_of::<CallSnapshot>());
        println!(
            "size_of: CallRecord {record} B, CallSnapshot {snapshot} B, AttemptRecord {} B (boxed), Call {} B (not kept)",
            size_of::<AttemptRecord>(),
            size_of::<Call>(),
        );
        // 496 and 264 before the caller and targets were packed and `resultInfo` boxed;
        // 416 before the seen-message keys (one pointer); 424 and 184 before the
        // chain id (16 bytes inline: a pointer would cost an allocation per copy).
        assert!(record <= 440, "CallRecord is {record} bytes");
        assert!(snapshot <= 200, "CallSnapshot is {snapshot} bytes");
    }

    /// The caller and targets are kept as JSON text, and written and read
    /// exactly as the Graph structures were.
    #[test]
    fn packed_caller_and_targets_are_written_as_the_graph_structures() {
        let call: Call = serde_json::from_value(serde_json::json!({
            "state": "incoming",
            "source": {
                "identity": {"user": {"displayName": "Test User", "id": "8A34A46B", "acsOnly": true}},
                "region": "westus", "languageId": "en-US"
            },
            "targets": [{"identity": {"application": {"displayName": "Test BOT", "id": "bot-1"}}}]
        }))
        .unwrap();
        let mut snapshot = CallSnapshot::new(CallId::from("c1"), TenantId::from("t1"));
        snapshot.apply(&call);
        assert_eq!(
            snapshot.source.as_ref().unwrap().get().unwrap(),
            call.source.clone().unwrap()
        );
        assert_eq!(
            snapshot.targets.as_ref().unwrap().get().unwrap(),
            call.targets.clone().unwrap()
        );
        let json = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(
            json["source"],
            serde_json::to_value(call.source.as_ref().unwrap()).unwrap()
        );
        assert_eq!(
            json["targets"],
            serde_json::to_value(call.targets.as_ref().unwrap()).unwrap()
        );
        let back: CallSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snapshot);

        // No targets and an empty list are the same: nothing is written.
        let empty = Call {
            targets: Some(Vec::new()),
            ..Call::default()
        };
        snapshot.apply(&empty);
        assert_eq!(snapshot.targets, None);
        let mut json = serde_json::to_value(&snapshot).unwrap();
        assert!(json.get("targets").is_none(), "{json}");
        json["targets"] = serde_json::json!([]);
        let back: CallSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back.targets, None);
    }

    /// Before: a reordered `establishing` after `established` set the state
    /// back, and a consultative transfer was then refused as "not established".
    #[test]
    fn a_reordered_establishing_after_established_keeps_the_call_established() {
        let mut snapshot = CallSnapshot::new(CallId::from("c1"), TenantId::from("t1"));
        let with_state = |state| Call {
            state: Some(state),
            ..Call::default()
        };
        snapshot.apply(&with_state(CallState::Established));
        snapshot.apply(&with_state(CallState::Establishing));
        assert_eq!(snapshot.state, Some(CallState::Established));
        snapshot.apply(&with_state(CallState::Transferring));
        snapshot.apply(&with_state(CallState::Established));
        assert_eq!(
            snapshot.state,
            Some(CallState::Established),
            "a failed transfer returns to established"
        );
        snapshot.apply(&with_state(CallState::Terminated));
        snapshot.apply(&with_state(CallState::Established));
        assert_eq!(snapshot.state, Some(CallState::Terminated));
    }

    #[test]
    fn another_schema_is_refused_with_a_clear_error() {
        let record = CallRecord::new(CallSnapshot::new(CallId::from("c1"), TenantId::from("t1")));
        let mut json: serde_json::Value = serde_json::from_slice(&record.to_json().unwrap()).unwrap();
        json["schema"] = 99.into();
        let error = CallRecord::from_json(json.to_string().as_bytes()).unwrap_err();
        assert!(error.to_string().contains("schema 99"), "{error}");
        let error = CallRecord::from_json(b"{nope").unwrap_err();
        assert!(error.to_string().contains("not a call record"), "{error}");
    }
}
