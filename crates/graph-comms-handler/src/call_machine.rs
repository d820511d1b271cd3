//! The call lifecycle state machine: pure, no I/O, no clocks of its own.
//!
//! The runtime feeds a call's record one [`CallInput`] at a time (a
//! notification, a due deadline, the result of a keep-alive or of a lookup),
//! with the current wall-clock time; [`step`] updates the record and answers
//! with the [`Step`]s to carry out (hooks to fire, requests to send), in order.
//! Deadlines live in the record, so a process that loads the record later
//! resumes them.

use std::time::{Duration, SystemTime};

use graph_comms_model::{Call, CallState, ToneInfo, TransferRequest};
use serde::{Deserialize, Serialize};

use crate::attempt::{AttemptId, TransferError, TransferInfo};
use crate::decision::{CallEnd, EndCause};
use crate::event::EventKind;
use crate::machine::{AttemptEffect, AttemptInput, CallLookup, TransferMachine};
use crate::record::{AttemptRecord, CallRecord};

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
}

impl Default for CallMachine {
    fn default() -> Self {
        Self {
            incoming_handled: false,
            established_fired: false,
            ended: false,
            keep_alive: true,
            last_tone: None,
            deadlines: Deadlines::default(),
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
    pub(crate) fn next_timer(&self) -> Option<SystemTime> {
        [self.attempt_timeout, self.unknown_outcome, self.keep_alive]
            .into_iter()
            .flatten()
            .min()
    }

    fn clear_attempt(&mut self) {
        self.attempt_timeout = None;
        self.unknown_outcome = None;
    }
}

/// The intervals the machine sets deadlines with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTimings {
    /// A pending attempt's timeout.
    pub transfer_timeout: Duration,
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
        /// When it was received (wall clock).
        received_at: SystemTime,
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
#[non_exhaustive]
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

/// Feeds one input to a call's record at wall-clock time `now`.
pub fn step(record: &mut CallRecord, input: CallInput<'_>, now: SystemTime, t: &MachineTimings) -> Vec<Step> {
    let mut steps = Vec::new();
    if record.lifecycle.ended {
        if matches!(input, CallInput::Notification { .. } | CallInput::Attempt { .. }) {
            steps.push(Step::Late);
        }
        return steps;
    }
    match input {
        CallInput::Notification {
            kind,
            call,
            received_at,
        } => notification(record, kind, call, received_at, now, t, &mut steps),
        CallInput::Activity => touch(record, now, t),
        CallInput::Attempt { id, input } => {
            // The POST's result, Graph asked after a takeover, or the consultation's
            // own event: whether it was sent, or its consultation linked, is settled.
            if let Some(attempt) = record.attempt.as_mut().filter(|a| a.info.id == id) {
                attempt.sending = false;
                attempt.linking = false;
            }
            let ambiguous = input == AttemptInput::PostOutcomeUnknown;
            let answered = input == AttemptInput::ConsultationAnswered
                && record
                    .attempt
                    .as_ref()
                    .is_some_and(|a| a.info.id == id && a.machine.is_consulting());
            if feed(record, Some(id), input, &mut steps) && ambiguous {
                record.lifecycle.deadlines.unknown_outcome = Some(now + t.unknown_outcome_timeout);
            }
            if answered {
                // The transfer itself starts now.
                record.lifecycle.deadlines.attempt_timeout = Some(now + t.transfer_timeout);
            }
        }
        CallInput::Wake => wake(record, now, t, &mut steps),
        CallInput::KeepAlive(result) => match result {
            KeepAliveResult::Sent => touch(record, now, t),
            KeepAliveResult::Failed => {
                if record.lifecycle.keep_alive {
                    record.lifecycle.deadlines.keep_alive = Some(now + t.keep_alive_retry);
                }
            }
            KeepAliveResult::NotFound => {
                end(record, None, None, EndCause::KeepAliveNotFound, now, t, &mut steps);
            }
        },
        CallInput::Lookup { id, lookup } => {
            let gone = match &lookup {
                CallLookup::NotFound => Some((None, None)),
                CallLookup::Found {
                    state: Some(CallState::Terminated),
                    result_info,
                    termination_reason,
                } => Some((result_info.clone(), termination_reason.clone())),
                _ => None,
            };
            // What Graph says now is the call's state, whatever notifications were lost.
            if let CallLookup::Found { state: Some(state), .. } = &lookup
                && *state != CallState::Terminated
            {
                record.snapshot.state = Some(state.clone());
            }
            if feed(record, Some(id), AttemptInput::TimeoutLookup(lookup), &mut steps) {
                record.lifecycle.deadlines.clear_attempt();
            }
            if let Some((result_info, reason)) = gone {
                end(record, result_info, reason, EndCause::LookedUp, now, t, &mut steps);
            }
        }
        CallInput::SetKeepAlive(enabled) => {
            record.lifecycle.keep_alive = enabled;
            record.lifecycle.deadlines.keep_alive =
                (enabled && record.lifecycle.established_fired).then(|| now + t.keep_alive_interval);
        }
    }
    steps
}

fn notification(
    record: &mut CallRecord,
    kind: &EventKind,
    call: Option<&Call>,
    received_at: SystemTime,
    now: SystemTime,
    t: &MachineTimings,
    steps: &mut Vec<Step>,
) {
    touch(record, now, t);
    // A notification received before the latest attempt started belongs to an
    // earlier attempt (or none) and must not move this one.
    let stale = record.attempt.as_ref().is_some_and(|a| received_at < a.info.started_at);
    if let Some(call) = call.filter(|_| !stale) {
        record.snapshot.apply(call);
    }
    if *kind == EventKind::IncomingCall && !record.lifecycle.incoming_handled {
        record.lifecycle.incoming_handled = true;
        if let Some(call) = call {
            steps.push(Step::Incoming(Box::new(call.clone())));
        }
    }
    let input = match (kind, stale) {
        (EventKind::CallTerminated { result_info, .. }, true) => Some(AttemptInput::CallGone {
            result_info: result_info.clone(),
        }),
        (_, true) => None,
        (kind, false) => kind.attempt_input(),
    };
    if let Some(input) = input {
        feed(record, None, input, steps);
    }
    if let Some(tone) = call
        .and_then(|c| c.tone_info.as_ref())
        .filter(|_| !record.lifecycle.ended)
    {
        // Each press once, in order: a repeated or older `sequenceId` is not news.
        if let Some(sequence) = tone.sequence_id
            && record.lifecycle.last_tone.is_none_or(|last| sequence > last)
        {
            record.lifecycle.last_tone = Some(sequence);
            steps.push(Step::Tone(tone.clone()));
        }
    }
    if matches!(kind, EventKind::CallEstablished { .. }) && !stale && !record.lifecycle.established_fired {
        record.lifecycle.established_fired = true;
        record.snapshot.established_at = Some(now);
        steps.push(Step::Established);
        if record.lifecycle.keep_alive {
            record.lifecycle.deadlines.keep_alive = Some(now + t.keep_alive_interval);
        }
    }
    if let EventKind::CallTerminated {
        result_info,
        termination_reason,
    } = kind
    {
        let (result_info, reason) = (result_info.clone(), termination_reason.clone());
        end(record, result_info, reason, EndCause::Notification, now, t, steps);
    }
}

/// Something happened to the call: push its idle deadline back. Coarsely (by
/// an eighth of the idle time at least), so a duplicate notification leaves the
/// record unchanged and costs no store write.
fn touch(record: &mut CallRecord, now: SystemTime, t: &MachineTimings) {
    let idle = now + t.idle_timeout;
    let stale = record
        .lifecycle
        .deadlines
        .idle
        .is_none_or(|at| idle.duration_since(at).is_ok_and(|ahead| ahead >= t.idle_timeout / 8));
    if stale {
        record.lifecycle.deadlines.idle = Some(idle);
    }
}

/// Feeds the latest attempt (the one named, if `id` is given). Returns whether
/// the input reached an attempt that had no outcome yet.
fn feed(record: &mut CallRecord, id: Option<AttemptId>, input: AttemptInput, steps: &mut Vec<Step>) -> bool {
    let Some(attempt) = record.attempt.as_mut().filter(|a| id.is_none_or(|id| a.info.id == id)) else {
        return false;
    };
    if attempt.machine.is_finished() {
        steps.push(Step::Late);
        return false;
    }
    let effects = attempt.machine.handle(input);
    let finished = attempt.machine.is_finished();
    if !effects.is_empty() {
        steps.push(Step::Attempt(Box::new(attempt.info.clone()), effects));
    }
    if finished {
        record.lifecycle.deadlines.clear_attempt();
    }
    true
}

fn wake(record: &mut CallRecord, now: SystemTime, t: &MachineTimings, steps: &mut Vec<Step>) {
    let due = |deadline: Option<SystemTime>| deadline.is_some_and(|d| d <= now);
    let deadlines = record.lifecycle.deadlines.clone();
    if due(deadlines.unknown_outcome) {
        record.lifecycle.deadlines.unknown_outcome = None;
        feed(record, None, AttemptInput::UnknownOutcomeExpired, steps);
    }
    if due(deadlines.attempt_timeout)
        && let Some(pending) = record.pending_attempt()
    {
        // Claimed: if this process dies during the lookup, another tries after the grace.
        let id = pending.info.id;
        record.lifecycle.deadlines.attempt_timeout = Some(now + t.lookup_grace);
        steps.push(Step::LookUp(id));
    }
    if due(deadlines.keep_alive) {
        record.lifecycle.deadlines.keep_alive = Some(now + t.keep_alive_interval);
        steps.push(Step::SendKeepAlive);
    }
    // A kept-alive call is alive while Graph accepts its keep-alives (a 404 ends it).
    let kept_alive = record.lifecycle.deadlines.keep_alive.is_some();
    if due(deadlines.idle) && !kept_alive && record.pending_attempt().is_none() && steps.is_empty() {
        steps.push(Step::Evict);
    }
}

fn end(
    record: &mut CallRecord,
    result_info: Option<graph_comms_model::ResultInfo>,
    termination_reason: Option<String>,
    cause: EndCause,
    now: SystemTime,
    t: &MachineTimings,
    steps: &mut Vec<Step>,
) {
    // An attempt still pending learns the call is gone (a 7015 end already completed it).
    if record.pending_attempt().is_some() {
        let input = AttemptInput::CallGone {
            result_info: result_info.clone(),
        };
        feed(record, None, input, steps);
    }
    let lifecycle = &mut record.lifecycle;
    lifecycle.ended = true;
    lifecycle.deadlines = Deadlines {
        forget: Some(now + t.ended_retention),
        ..Deadlines::default()
    };
    steps.push(Step::Terminated(CallEnd::new(result_info, termination_reason, cause)));
}

/// An attempt replaced by a newer one, with the effects of that (its failure).
pub type Superseded = (TransferInfo, Vec<AttemptEffect>);

/// Records a new transfer attempt on the call, checking the guards first.
///
/// Returns the new attempt and, when concurrent attempts are allowed and one was
/// pending, the older attempt with the effects of its being superseded.
///
/// # Errors
///
/// [`TransferError`] when a guard fails; the record is unchanged then.
pub fn start_attempt(
    record: &mut CallRecord,
    id: AttemptId,
    request: TransferRequest,
    allow_concurrent: bool,
    now: SystemTime,
    t: &MachineTimings,
) -> Result<(TransferInfo, Option<Superseded>), TransferError> {
    begin(record, id, request, allow_concurrent, now, t, false)
}

/// Like [`start_attempt`], for an attempt that starts with its consultation
/// call (`request` already names it in `replacesCallId`): no `POST /transfer`
/// until the consultation answers ([`TransferMachine::consulting`]). Its timeout
/// allows for the ringing, `transfer_timeout` twice; the answer restarts it.
///
/// # Errors
///
/// As [`start_attempt`].
pub fn start_consulting_attempt(
    record: &mut CallRecord,
    id: AttemptId,
    request: TransferRequest,
    allow_concurrent: bool,
    now: SystemTime,
    t: &MachineTimings,
) -> Result<(TransferInfo, Option<Superseded>), TransferError> {
    begin(record, id, request, allow_concurrent, now, t, true)
}

fn begin(
    record: &mut CallRecord,
    id: AttemptId,
    request: TransferRequest,
    allow_concurrent: bool,
    now: SystemTime,
    t: &MachineTimings,
    consulting: bool,
) -> Result<(TransferInfo, Option<Superseded>), TransferError> {
    // The same start again (a write that landed but whose answer was lost): it is this attempt.
    if let Some(started) = record.attempt.as_ref().filter(|a| a.info.id == id) {
        return Ok((started.info.clone(), None));
    }
    if record.lifecycle.ended {
        return Err(TransferError::CallGone);
    }
    if record.snapshot.state != Some(CallState::Established) {
        return Err(TransferError::NotEstablished {
            state: record.snapshot.state.clone(),
        });
    }
    if record.snapshot.is_group && request.transferee.is_none() {
        return Err(TransferError::GroupCallWithoutTransferee);
    }
    let mut superseded = None;
    if let Some(pending) = record.attempt.as_mut().filter(|a| !a.machine.is_finished()) {
        if !allow_concurrent {
            return Err(TransferError::TransferPending {
                pending: pending.info.id,
            });
        }
        let effects = pending.machine.handle(AttemptInput::Superseded);
        superseded = Some((pending.info.clone(), effects));
    }
    record.attempts_started += 1;
    let consultative = request.transfer_target.replaces_call_id.is_some();
    let mut info = TransferInfo::new(record.snapshot.call_id.clone(), request, record.attempts_started, now);
    info.id = id;
    record.attempt = Some(Box::new(AttemptRecord {
        info: info.clone(),
        machine: if consulting {
            TransferMachine::consulting()
        } else {
            TransferMachine::new(consultative)
        },
        sending: false,
        linking: false,
    }));
    let deadlines = &mut record.lifecycle.deadlines;
    deadlines.unknown_outcome = None;
    let ringing = if consulting { t.transfer_timeout } else { Duration::ZERO };
    deadlines.attempt_timeout = Some(now + t.transfer_timeout + ringing);
    touch(record, now, t);
    Ok((info, superseded))
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use graph_comms_model::{CallId, ResultInfo, TenantId};

    use super::*;
    use crate::attempt::{TransferFailure, TransferOutcome};
    use crate::record::CallSnapshot;
    use crate::timings::Timings;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn timings() -> MachineTimings {
        Timings::default().machine()
    }

    fn on(record: &mut CallRecord, kind: EventKind, secs: u64) -> Vec<Step> {
        let call = Call::default();
        let input = CallInput::Notification {
            kind: &kind,
            call: Some(&call),
            received_at: at(secs),
        };
        step(record, input, at(secs), &timings())
    }

    fn established_call() -> CallRecord {
        let mut record = CallRecord::new(CallSnapshot::new(CallId::from("c"), TenantId::from("t")));
        on(&mut record, EventKind::IncomingCall, 0);
        on(&mut record, EventKind::CallEstablished { result_info: None }, 1);
        record.snapshot.state = Some(CallState::Established);
        record
    }

    fn transferring_call() -> (CallRecord, AttemptId) {
        let mut record = established_call();
        let request = TransferRequest::to_user("agent", None).build();
        let (info, _) = start_attempt(&mut record, AttemptId::new(), request, false, at(10), &timings()).unwrap();
        (record, info.id)
    }

    #[test]
    fn establishment_fires_once_and_schedules_keep_alive() {
        let mut record = established_call();
        assert!(record.lifecycle.established_fired);
        assert_eq!(
            record.lifecycle.deadlines.keep_alive,
            Some(at(1) + timings().keep_alive_interval)
        );
        assert!(on(&mut record, EventKind::CallEstablished { result_info: None }, 2).is_empty());
    }

    #[test]
    fn nothing_is_due_before_its_deadline() {
        let (mut record, _) = transferring_call();
        assert!(step(&mut record, CallInput::Wake, at(11), &timings()).is_empty());
    }

    #[test]
    fn a_timeout_claims_a_lookup_and_a_404_completes_and_ends_the_call() {
        let (mut record, id) = transferring_call();
        let steps = step(&mut record, CallInput::Wake, at(71), &timings());
        assert_eq!(steps, [Step::LookUp(id)]);
        // Claimed: another wake before the grace passes does not look up again.
        assert!(step(&mut record, CallInput::Wake, at(72), &timings()).is_empty());
        let lookup = CallInput::Lookup {
            id,
            lookup: CallLookup::NotFound,
        };
        let steps = step(&mut record, lookup, at(72), &timings());
        assert!(matches!(&steps[0], Step::Attempt(_, effects) if effects.last() == Some(&AttemptEffect::Completed)));
        assert!(matches!(&steps[1], Step::Terminated(end) if end.cause == EndCause::LookedUp));
        assert!(record.is_ended());
        assert_eq!(record.lifecycle.deadlines.next_due(), None);
        // The transfer's own late notifications change nothing.
        let late = EventKind::CallTerminated {
            result_info: Some(ResultInfo::new(0, 7015, "")),
            termination_reason: None,
        };
        assert_eq!(on(&mut record, late, 80), [Step::Late]);
    }

    #[test]
    fn an_established_call_at_the_timeout_fails_as_timed_out() {
        let (mut record, id) = transferring_call();
        step(&mut record, CallInput::Wake, at(71), &timings());
        let lookup = CallLookup::Found {
            state: Some(CallState::Established),
            result_info: None,
            termination_reason: None,
        };
        step(&mut record, CallInput::Lookup { id, lookup }, at(72), &timings());
        let outcome = record.attempt.as_ref().and_then(|a| a.machine.outcome().cloned());
        assert_eq!(outcome, Some(TransferOutcome::Failed(TransferFailure::TimedOut)));
        assert!(!record.is_ended());
        assert_eq!(record.lifecycle.deadlines.attempt_timeout, None);
    }

    #[test]
    fn a_notification_older_than_the_attempt_does_not_move_it() {
        let (mut record, _) = transferring_call();
        let failure = EventKind::CallEstablished {
            result_info: Some(ResultInfo::new(500, 7000, "declined")),
        };
        let call = Call::default();
        let input = CallInput::Notification {
            kind: &failure,
            call: Some(&call),
            received_at: at(9),
        };
        assert!(step(&mut record, input, at(12), &timings()).is_empty());
        assert!(record.pending_attempt().is_some());
    }

    #[test]
    fn keep_alive_404_fails_the_pending_attempt_and_ends_the_call() {
        let (mut record, _) = transferring_call();
        let steps = step(
            &mut record,
            CallInput::KeepAlive(KeepAliveResult::NotFound),
            at(20),
            &timings(),
        );
        assert!(matches!(&steps[0], Step::Attempt(_, effects)
            if matches!(effects.as_slice(), [AttemptEffect::Failed(TransferFailure::CallEnded { .. })])));
        assert!(matches!(&steps[1], Step::Terminated(end) if end.cause == EndCause::KeepAliveNotFound));
    }

    /// Before: the notification that a transfer failed was lost, the timeout's
    /// lookup found the call established again, yet the call stayed
    /// `transferring`, so the next target was refused as "not established".
    #[test]
    fn a_timeout_lookup_that_finds_the_call_established_makes_it_established() {
        let mut record = established_call();
        let request = TransferRequest::to_user("agent", None).build();
        let (info, _) = start_attempt(&mut record, AttemptId::new(), request, false, at(10), &timings()).unwrap();
        record.snapshot.state = Some(CallState::Transferring);
        let lookup = CallInput::Lookup {
            id: info.id,
            lookup: CallLookup::Found {
                state: Some(CallState::Established),
                result_info: None,
                termination_reason: None,
            },
        };
        step(&mut record, lookup, at(72), &timings());
        assert_eq!(record.snapshot.state, Some(CallState::Established));
        let next = TransferRequest::to_user("next", None).build();
        assert!(start_attempt(&mut record, AttemptId::new(), next, false, at(73), &timings()).is_ok());
    }

    #[test]
    fn only_idle_calls_without_keep_alive_or_attempt_are_evicted() {
        let idle = timings().idle_timeout.as_secs();
        let mut unknown = CallRecord::new(CallSnapshot::new(CallId::from("forged"), TenantId::from("t")));
        on(&mut unknown, EventKind::CallUpdated { state: None }, 0);
        assert_eq!(
            step(&mut unknown, CallInput::Wake, at(idle + 1), &timings()),
            [Step::Evict]
        );

        let mut kept = established_call();
        let steps = step(&mut kept, CallInput::Wake, at(idle + 2), &timings());
        assert!(!steps.contains(&Step::Evict), "{steps:?}");
    }
}
