//! The call lifecycle state machine: pure, no I/O, no clocks of its own.
//!
//! The runtime feeds a call's record one [`CallInput`] at a time (a
//! notification, a due deadline, the result of a keep-alive or of a lookup),
//! with the current wall-clock time; [`step`] updates the record and answers
//! with the [`Step`]s to carry out (hooks to fire, requests to send), in order.
//! Deadlines live in the record, so a process that loads the record later
//! resumes them.

use std::time::{Duration, SystemTime};

use graph_comms_model::{Call, CallState, TransferRequest};

use crate::attempt::{AttemptId, TransferError, TransferInfo};
use crate::decision::{CallEnd, EndCause};
use crate::event::EventKind;
use crate::lifecycle::{CallInput, Deadlines, KeepAliveResult, MachineTimings, Step};
use crate::record::{AttemptRecord, CallRecord};
use crate::transfer_machine::{AttemptEffect, AttemptInput, CallLookup, TransferMachine};

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
            message,
            consultation_for,
        } => {
            if let Some(key) = message {
                if record.lifecycle.seen.contains(key) {
                    steps.push(Step::Duplicate);
                    return steps;
                }
                record.lifecycle.seen.insert(key);
            }
            if record.links.consultation_for.is_none() && record.links.consultation.is_none() {
                record.links.consultation_for = consultation_for.cloned();
            }
            notification(record, kind, call, now, t, &mut steps);
        }
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
                if let Some(attempt) = record.attempt.as_mut() {
                    attempt.ring_limit = Some(now + t.ring_limit);
                }
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
            let ringing = matches!(
                lookup,
                CallLookup::Found {
                    state: Some(CallState::Transferring | CallState::TransferAccepted),
                    ..
                }
            );
            // Attempts stored before ring limits existed count from their start.
            let ring_limit = record
                .attempt
                .as_ref()
                .filter(|a| a.info.id == id)
                .map(|a| a.ring_limit.unwrap_or(a.info.started_at + t.ring_limit));
            let rang_out = ringing && ring_limit.is_some_and(|limit| limit <= now);
            let input = if rang_out {
                AttemptInput::RingLimitReached
            } else {
                AttemptInput::TimeoutLookup(lookup.clone())
            };
            looked_up(record, id, lookup, input, now, t, &mut steps);
            if ringing && record.pending_attempt().is_some_and(|a| a.info.id == id) {
                // Still ringing: asked again after another timeout, at the ring limit at the latest.
                let next = now + t.transfer_timeout;
                record.lifecycle.deadlines.attempt_timeout =
                    Some(ring_limit.map_or(next, |limit| next.min(limit.max(now))));
            }
        }
        CallInput::FailureLookup { id, lookup } => {
            let input = AttemptInput::FailureLookup(lookup.clone());
            looked_up(record, id, lookup, input, now, t, &mut steps);
        }
        CallInput::SetKeepAlive(enabled) => {
            record.lifecycle.keep_alive = enabled;
            record.lifecycle.deadlines.keep_alive =
                (enabled && record.lifecycle.established_fired).then(|| now + t.keep_alive_interval);
        }
    }
    steps
}

/// Graph's answer about the call fed to attempt `id`: the answer becomes the
/// call's state, whatever notifications were lost, and a call Graph no longer
/// has ends.
fn looked_up(
    record: &mut CallRecord,
    id: AttemptId,
    lookup: CallLookup,
    input: AttemptInput,
    now: SystemTime,
    t: &MachineTimings,
    steps: &mut Vec<Step>,
) {
    let gone = match lookup {
        CallLookup::NotFound => Some((None, None)),
        CallLookup::Found {
            state: Some(CallState::Terminated),
            result_info,
            termination_reason,
        } => Some((result_info, termination_reason)),
        CallLookup::Found { state: Some(state), .. } => {
            record.snapshot.state = Some(state);
            None
        }
        _ => None,
    };
    feed(record, Some(id), input, steps);
    if let Some((result_info, reason)) = gone {
        end(record, result_info, reason, EndCause::LookedUp, now, t, steps);
    }
}

fn notification(
    record: &mut CallRecord,
    kind: &EventKind,
    call: Option<&Call>,
    now: SystemTime,
    t: &MachineTimings,
    steps: &mut Vec<Step>,
) {
    touch(record, now, t);
    if let Some(call) = call {
        record.snapshot.apply(call);
    }
    if *kind == EventKind::IncomingCall && !record.lifecycle.incoming_handled {
        record.lifecycle.incoming_handled = true;
        if let Some(call) = call {
            steps.push(Step::Incoming(Box::new(call.clone())));
        }
    }
    if let Some(input) = kind.attempt_input() {
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
    if matches!(kind, EventKind::CallEstablished { .. }) && !record.lifecycle.established_fired {
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
    let checking = attempt.machine.awaits_check();
    let effects = attempt.machine.handle(input);
    let finished = attempt.machine.is_finished();
    if !effects.is_empty() {
        steps.push(Step::Attempt(Box::new(attempt.info.clone()), effects));
    }
    if !checking && attempt.machine.awaits_check() {
        steps.push(Step::CheckFailure(attempt.info.id));
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
    // A failure notification of this call may now be a copy of an earlier attempt's.
    let check_failures = record.attempt.as_ref().is_some_and(|a| a.machine.may_cause_failures());
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
    let machine = if consulting {
        TransferMachine::consulting()
    } else {
        TransferMachine::new(consultative)
    };
    let mut attempt = AttemptRecord::new(info.clone(), machine.checking_failures(check_failures));
    // A consulting attempt's transfer starts at the consultation's answer.
    attempt.ring_limit = (!consulting).then(|| now + t.ring_limit);
    record.attempt = Some(Box::new(attempt));
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
    use crate::lifecycle::SEEN_MESSAGES;
    use crate::record::CallSnapshot;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_000_000 + secs)
    }

    fn timings() -> MachineTimings {
        MachineTimings::default()
    }

    fn on(record: &mut CallRecord, kind: EventKind, secs: u64) -> Vec<Step> {
        delivered(record, kind, None, secs)
    }

    /// A notification delivered with message key `message`.
    fn delivered(record: &mut CallRecord, kind: EventKind, message: Option<u64>, secs: u64) -> Vec<Step> {
        let call = Call::default();
        let input = CallInput::Notification {
            kind: &kind,
            call: Some(&call),
            message,
            consultation_for: None,
        };
        step(record, input, at(secs), &timings())
    }

    fn declined() -> EventKind {
        EventKind::CallEstablished {
            result_info: Some(ResultInfo::new(500, 7000, "declined")),
        }
    }

    fn found(state: CallState) -> CallLookup {
        CallLookup::Found {
            state: Some(state),
            result_info: None,
            termination_reason: None,
        }
    }

    fn outcome(record: &CallRecord) -> Option<TransferOutcome> {
        record.attempt.as_ref().and_then(|a| a.machine.outcome().cloned())
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
        let lookup = found(CallState::Established);
        step(&mut record, CallInput::Lookup { id, lookup }, at(72), &timings());
        assert_eq!(
            outcome(&record),
            Some(TransferOutcome::Failed(TransferFailure::TimedOut))
        );
        assert!(!record.is_ended());
        assert_eq!(record.lifecycle.deadlines.attempt_timeout, None);
    }

    /// Before: a copy of attempt 1's failure delivered again after attempt 2's
    /// POST failed attempt 2, and the caller was hung up while attempt 2 rang.
    #[test]
    fn a_redelivered_failure_of_the_previous_attempt_is_checked_with_graph_before_it_decides() {
        let (mut record, first) = transferring_call();
        let steps = on(&mut record, declined(), 11);
        assert!(matches!(&steps[..], [Step::Attempt(info, effects)] if info.id == first
            && matches!(effects[..], [AttemptEffect::Failed(_)])));
        // Attempt 1 decided outright: nothing of an earlier attempt could be mistaken for its.
        let request = TransferRequest::to_user("next", None).build();
        let (second, _) = start_attempt(&mut record, AttemptId::new(), request, false, at(12), &timings()).unwrap();
        let steps = on(&mut record, declined(), 13);
        assert_eq!(steps, [Step::CheckFailure(second.id)]);
        // The copy again while the check runs: one check is enough.
        assert!(on(&mut record, declined(), 13).is_empty());
        // Graph: the transfer to the next target rings. The copy decides nothing.
        let check = CallInput::FailureLookup {
            id: second.id,
            lookup: found(CallState::Transferring),
        };
        let steps = step(&mut record, check, at(14), &timings());
        assert!(matches!(&steps[..], [Step::Attempt(_, effects)] if effects == &[AttemptEffect::Transferring]));
        assert!(record.pending_attempt().is_some());
        assert_eq!(record.snapshot.state, Some(CallState::Transferring));
        // Its own failure, identical, is checked too, and Graph has the call back.
        assert_eq!(on(&mut record, declined(), 20), [Step::CheckFailure(second.id)]);
        let check = CallInput::FailureLookup {
            id: second.id,
            lookup: found(CallState::Established),
        };
        step(&mut record, check, at(21), &timings());
        assert!(matches!(
            outcome(&record),
            Some(TransferOutcome::Failed(TransferFailure::ReturnedToEstablished { .. }))
        ));
    }

    #[test]
    fn a_failed_failure_check_leaves_the_decision_to_the_timeout_lookup() {
        let (mut record, _) = transferring_call();
        on(&mut record, declined(), 11);
        let request = TransferRequest::to_user("next", None).build();
        let (second, _) = start_attempt(&mut record, AttemptId::new(), request, false, at(12), &timings()).unwrap();
        on(&mut record, declined(), 13);
        let failed = CallInput::FailureLookup {
            id: second.id,
            lookup: CallLookup::Failed(crate::attempt::ClientErrorSummary::default()),
        };
        assert!(step(&mut record, failed, at(14), &timings()).is_empty());
        assert!(record.pending_attempt().is_some());
        // At the timeout Graph has the call back: the failure held is the attempt's.
        assert_eq!(
            step(&mut record, CallInput::Wake, at(73), &timings()),
            [Step::LookUp(second.id)]
        );
        let lookup = CallInput::Lookup {
            id: second.id,
            lookup: found(CallState::Established),
        };
        step(&mut record, lookup, at(74), &timings());
        assert!(matches!(
            outcome(&record),
            Some(TransferOutcome::Failed(TransferFailure::ReturnedToEstablished { result })) if result.subcode == Some(7000)
        ));
    }

    /// Before: a target still ringing at `transfer_timeout` was failed as
    /// `TimedOut` although Graph said `transferring`, and the caller was hung up.
    #[test]
    fn a_transfer_still_ringing_at_the_timeout_stays_pending_until_the_ring_limit() {
        let (mut record, id) = transferring_call();
        let t = timings();
        let timeout = t.transfer_timeout.as_secs();
        let limit = t.ring_limit.as_secs();
        let mut now = 10 + timeout;
        assert_eq!(step(&mut record, CallInput::Wake, at(now), &t), [Step::LookUp(id)]);
        let ringing = CallInput::Lookup {
            id,
            lookup: found(CallState::Transferring),
        };
        step(&mut record, ringing.clone(), at(now), &t);
        assert!(record.pending_attempt().is_some());
        assert_eq!(record.lifecycle.deadlines.attempt_timeout, Some(at(now + timeout)));
        // Asked again every timeout; the last check falls on the ring limit.
        while now < 10 + limit {
            let due = record.lifecycle.deadlines.attempt_timeout.unwrap();
            assert!(due <= at(10 + limit));
            now = due.duration_since(at(0)).unwrap().as_secs();
            assert_eq!(step(&mut record, CallInput::Wake, at(now), &t), [Step::LookUp(id)]);
            step(&mut record, ringing.clone(), at(now), &t);
        }
        assert_eq!(
            outcome(&record),
            Some(TransferOutcome::Failed(TransferFailure::RangOut))
        );
        assert_eq!(record.lifecycle.deadlines.attempt_timeout, None);
    }

    #[test]
    fn a_transfer_declined_after_ringing_past_the_timeout_fails_with_its_own_cause() {
        let (mut record, id) = transferring_call();
        step(&mut record, CallInput::Wake, at(71), &timings());
        let ringing = CallInput::Lookup {
            id,
            lookup: found(CallState::Transferring),
        };
        step(&mut record, ringing, at(71), &timings());
        on(&mut record, declined(), 75);
        assert!(matches!(
            outcome(&record),
            Some(TransferOutcome::Failed(TransferFailure::ReturnedToEstablished { .. }))
        ));
    }

    #[test]
    fn a_notification_delivered_again_changes_nothing() {
        let mut record = established_call();
        let before = record.clone();
        let steps = delivered(&mut record, EventKind::CallUpdated { state: None }, Some(7), 2);
        assert!(steps.is_empty());
        assert_eq!(record.lifecycle.seen.keys(), [7]);
        let seen = record.clone();
        assert_eq!(delivered(&mut record, declined(), Some(7), 3), [Step::Duplicate]);
        assert_eq!(record, seen);
        // Bounded: the oldest keys go first.
        for key in 100..100 + SEEN_MESSAGES as u64 {
            delivered(&mut record, EventKind::CallUpdated { state: None }, Some(key), 4);
        }
        assert_eq!(record.lifecycle.seen.keys().len(), SEEN_MESSAGES);
        assert!(!record.lifecycle.seen.contains(7));
        assert_ne!(record, before);
    }

    #[test]
    fn a_consultation_calls_first_notification_links_it_to_its_call() {
        let parent = CallId::from("parent");
        let mut record = CallRecord::new(CallSnapshot::new(CallId::from("consultation"), TenantId::from("t")));
        let kind = EventKind::CallEstablished { result_info: None };
        let call = Call::default();
        let input = CallInput::Notification {
            kind: &kind,
            call: Some(&call),
            message: None,
            consultation_for: Some(&parent),
        };
        let steps = step(&mut record, input, at(1), &timings());
        assert_eq!(record.links.consultation_for, Some(parent));
        assert_eq!(steps, [Step::Established]);
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
