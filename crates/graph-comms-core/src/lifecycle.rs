//! The call lifecycle's state and vocabulary: the flags and deadlines a call
//! record keeps ([`CallMachine`]), what can happen to a call ([`CallInput`])
//! and what the runtime must then do ([`Step`]). The transitions are in
//! [`crate::stepping`].

use std::time::{Duration, SystemTime};

use graph_comms_model::{Call, CallId, ToneInfo};
use serde::{Deserialize, Serialize};

use crate::attempt::{AttemptId, TransferInfo};
use crate::decision::CallEnd;
use crate::event::EventKind;
use crate::transfer_machine::{AttemptEffect, AttemptInput, CallLookup};

/// A call's lifecycle flags and deadlines (wall-clock times).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CallMachine {
    /// Whether the incoming-call decision has been taken.
    #[serde(default)]
    pub incoming_handled: bool,
    /// Whether `on_call_established` has fired.
    #[serde(default)]
    pub established_fired: bool,
    /// Whether the call has ended.
    #[serde(default)]
    pub ended: bool,
    /// Whether the runtime sends `keepAlive` for the call.
    pub keep_alive: bool,
    /// The `sequenceId` of the last caller tone handed to `on_tone`: Graph
    /// repeats the last `toneInfo` on later call notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tone: Option<i64>,
    /// When each timer of the call is due.
    #[serde(default)]
    pub deadlines: Deadlines,
    /// The notification items handled lately: a delivery of one of them
    /// again changes nothing.
    #[serde(default, skip_serializing_if = "SeenMessages::is_empty")]
    pub seen: SeenMessages,
}

/// Keys of the latest notification items a call handled
/// (the notify endpoint's `Delivery::key`: Graph's message id
/// and the item's place), oldest first, at most [`SEEN_MESSAGES`]. One
/// pointer in the record (records are copied on every event); the keys are
/// on the heap, and absent until a request carries a message id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
// One thin pointer (8 bytes) instead of a `Vec`'s 24, in a record copied on every event.
#[allow(clippy::box_collection)]
pub struct SeenMessages(Option<Box<Vec<u64>>>);

impl SeenMessages {
    /// Whether `key` was handled lately.
    pub fn contains(&self, key: u64) -> bool {
        self.0.as_ref().is_some_and(|keys| keys.contains(&key))
    }

    /// Records `key`, forgetting the oldest beyond [`SEEN_MESSAGES`].
    pub fn insert(&mut self, key: u64) {
        let keys = self.0.get_or_insert_with(Box::default);
        if keys.len() >= SEEN_MESSAGES {
            keys.remove(0);
        }
        keys.push(key);
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> &[u64] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.keys().is_empty()
    }
}

/// How many notification keys a call's record keeps to recognise deliveries
/// made again (a call's whole life is a few dozen notifications; Graph
/// retries a refused one within seconds to minutes).
pub const SEEN_MESSAGES: usize = 24;

impl Default for CallMachine {
    fn default() -> Self {
        Self {
            incoming_handled: false,
            established_fired: false,
            ended: false,
            keep_alive: true,
            last_tone: None,
            deadlines: Deadlines::default(),
            seen: SeenMessages::default(),
        }
    }
}

/// When a call's timers are due, as wall-clock times.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Deadlines {
    /// The pending attempt's timeout (then Graph is asked about the call).
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub attempt_timeout: Option<SystemTime>,
    /// The end of the window for any notification after an ambiguous `POST /transfer`.
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub unknown_outcome: Option<SystemTime>,
    /// The next `keepAlive`.
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<SystemTime>,
    /// When the call is forgotten if nothing happens to it before.
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub idle: Option<SystemTime>,
    /// When a store may drop the record of an ended call (kept until then so
    /// late duplicates are recognised).
    #[serde(default, with = "crate::wall::opt_millis", skip_serializing_if = "Option::is_none")]
    pub forget: Option<SystemTime>,
}

impl Deadlines {
    /// The earliest deadline that needs work (everything but `forget`).
    pub fn next_due(&self) -> Option<SystemTime> {
        [self.attempt_timeout, self.unknown_outcome, self.keep_alive, self.idle]
            .into_iter()
            .flatten()
            .min()
    }

    /// The earliest deadline worth an in-process timer (idleness is left to the store sweep).
    pub fn next_timer(&self) -> Option<SystemTime> {
        [self.attempt_timeout, self.unknown_outcome, self.keep_alive]
            .into_iter()
            .flatten()
            .min()
    }

    pub(crate) fn clear_attempt(&mut self) {
        self.attempt_timeout = None;
        self.unknown_outcome = None;
    }
}

/// The intervals the machine sets deadlines with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTimings {
    /// A pending attempt's timeout, and the interval of its lookups while it rings.
    pub transfer_timeout: Duration,
    /// How long a transfer may ring before it fails with `RangOut`.
    pub ring_limit: Duration,
    /// The window for a notification after an ambiguous `POST /transfer`.
    pub unknown_outcome_timeout: Duration,
    /// Between keep-alives.
    pub keep_alive_interval: Duration,
    /// After a failed keep-alive.
    pub keep_alive_retry: Duration,
    /// A call with no event this long is forgotten.
    pub idle_timeout: Duration,
    /// How long an ended call's record is kept.
    pub ended_retention: Duration,
    /// How long a claimed timeout lookup may take before another try.
    pub lookup_grace: Duration,
}

impl Default for MachineTimings {
    /// The defaults the handler's `Timings` starts from: a minute per attempt,
    /// 180 s of ringing (above Azure's 115 s PSTN set-up), keep-alives every
    /// 15 minutes, idle calls forgotten after an hour, ended ones after 10 minutes.
    fn default() -> Self {
        Self {
            transfer_timeout: Duration::from_secs(60),
            ring_limit: Duration::from_secs(180),
            unknown_outcome_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(15 * 60),
            keep_alive_retry: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60 * 60),
            ended_retention: Duration::from_secs(10 * 60),
            lookup_grace: Duration::from_secs(30),
        }
    }
}

/// What happened to a call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallInput<'a> {
    /// A notification about the call resource.
    Notification {
        /// What it is.
        kind: &'a EventKind,
        /// The call resource it carried.
        call: Option<&'a Call>,
        /// Its delivery key (Graph's message id and the item's place), when
        /// the request carried a message id.
        message: Option<u64>,
        /// The call this one is a consultation for, as its callback URL says.
        consultation_for: Option<&'a CallId>,
    },
    /// A notification about something else of the call (an operation, the roster).
    Activity,
    /// An attempt input decided outside the notification stream (the POST's result).
    Attempt {
        /// The attempt it is about.
        id: AttemptId,
        /// What happened.
        input: AttemptInput,
    },
    /// Some deadline may be due.
    Wake,
    /// What a `keepAlive` request did.
    KeepAlive(KeepAliveResult),
    /// What Graph said about the call when asked to check a failure
    /// notification ([`Step::CheckFailure`]).
    FailureLookup {
        /// The attempt the failure would decide.
        id: AttemptId,
        /// Graph's answer.
        lookup: CallLookup,
    },
    /// What Graph said about the call after an attempt's timeout.
    Lookup {
        /// The attempt that timed out.
        id: AttemptId,
        /// Graph's answer.
        lookup: CallLookup,
    },
    /// The handler turned keep-alive on or off.
    SetKeepAlive(bool),
}

/// What a `keepAlive` request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeepAliveResult {
    /// Graph accepted it.
    Sent,
    /// 404: Graph no longer has the call.
    NotFound,
    /// Any other failure.
    Failed,
}

/// Something the runtime does for a call, in order, after committing the record.
///
/// Serializable: with a shared store the hook steps wait in the record's
/// outbox until they ran ([`Step::runs_hooks`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Step {
    /// Fire `on_incoming_call` and carry out its decision.
    Incoming(Box<Call>),
    /// Fire `on_call_established`.
    Established,
    /// Fire `on_tone`: a caller's key press not handed on before.
    Tone(ToneInfo),
    /// Fire the attempt's hooks.
    Attempt(Box<TransferInfo>, Vec<AttemptEffect>),
    /// Fire `on_call_terminated`; the call is over.
    Terminated(CallEnd),
    /// Send `keepAlive` and feed back [`CallInput::KeepAlive`].
    SendKeepAlive,
    /// Look the call up in Graph and feed back [`CallInput::Lookup`].
    LookUp(AttemptId),
    /// Look the call up in Graph and feed back [`CallInput::FailureLookup`]:
    /// a failure notification may be a copy of an earlier attempt's.
    CheckFailure(AttemptId),
    /// A notification item handled before, delivered again: changes nothing.
    Duplicate,
    /// Forget the call: nothing happened to it for the idle time.
    Evict,
    /// An input about an attempt that already has its outcome, or about an
    /// ended call: changes nothing, is logged and counted.
    Late,
}

impl Step {
    /// Whether the step runs the handler's hooks (and so goes to the outbox).
    pub fn runs_hooks(&self) -> bool {
        matches!(
            self,
            Self::Incoming(_) | Self::Established | Self::Tone(_) | Self::Attempt(..) | Self::Terminated(_)
        )
    }
}
