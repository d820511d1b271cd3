//! The transfer attempt state machine: pure, no I/O, no clocks.
//!
//! The runtime turns notifications, the POST result and timers into
//! [`AttemptInput`]s; the machine answers with the [`AttemptEffect`]s (hooks) to
//! run. Whatever order, duplicates or gaps the inputs have, it yields exactly
//! one final effect ([`AttemptEffect::Completed`] or [`AttemptEffect::Failed`]),
//! at most one [`AttemptEffect::Accepted`] and at most one
//! [`AttemptEffect::Transferring`], both before the final one.

use graph_comms_model::{CallState, ResultInfo, subcodes};
use serde::{Deserialize, Serialize};

use crate::attempt::{ClientErrorSummary, TransferFailure, TransferOutcome};

/// The `terminationReason` a consultative transfer ends the call with.
pub const APP_TRANSFERRED: &str = "AppTransferred";

/// What happened to a transfer attempt.
///
/// Serializable: a shared store carries inputs decided by one process to the
/// process that holds the call's lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum AttemptInput {
    /// The call reported `state: transferring`.
    Transferring,
    /// The call reported `state: transferAccepted`.
    TransferAccepted,
    /// The call reported `state: established`.
    Established {
        /// The `resultInfo` it carried; a failure has a non-zero subcode.
        result_info: Option<ResultInfo>,
    },
    /// The call reported `state: terminated`, or was deleted.
    Terminated {
        /// The `resultInfo` it carried.
        result_info: Option<ResultInfo>,
        /// The undeclared `terminationReason` (`AppTransferred` after a consultative transfer).
        termination_reason: Option<String>,
    },
    /// The call ended, learned from something that is not this attempt's own
    /// notification (a notification older than the attempt, a 404 on keep-alive).
    CallGone {
        /// The end `resultInfo`, if known.
        result_info: Option<ResultInfo>,
    },
    /// Graph answered the `POST /transfer` with an error: nothing was transferred.
    PostRejected(ClientErrorSummary),
    /// The `POST /transfer` result is ambiguous (timeout, connection loss).
    PostOutcomeUnknown,
    /// The unknown-outcome window after [`AttemptInput::PostOutcomeUnknown`] has passed.
    UnknownOutcomeExpired,
    /// The attempt's overall timeout has passed (without asking Graph).
    TimedOut,
    /// The attempt's overall timeout has passed and Graph was asked about the call.
    /// A call still `transferring` (or `transferAccepted`) keeps the attempt
    /// pending: the target still rings.
    TimeoutLookup(#[serde(with = "nested_lookup")] CallLookup),
    /// The transfer still rang (Graph said `transferring`) when the ring limit passed.
    RingLimitReached,
    /// Graph was asked about the call to check a failure that an earlier
    /// attempt could have caused ([`TransferMachine::awaits_check`]).
    FailureLookup(#[serde(with = "nested_lookup")] CallLookup),
    /// With a shared store: the call was taken over from an instance that
    /// stopped before its `POST /transfer` was known to be sent, and Graph
    /// was asked about the call.
    SendUnconfirmed(#[serde(with = "nested_lookup")] CallLookup),
    /// The consultation call of an attempt started with a consultation
    /// ([`TransferMachine::consulting`]) was answered: the runtime now sends the
    /// `POST /transfer` with `replacesCallId`.
    ConsultationAnswered,
    /// The consultation call ended before it was answered (declined, not
    /// reached, hung up by the bot). After it was answered, its end says
    /// nothing about the transfer and is ignored.
    ConsultationEnded {
        /// The consultation call's end `resultInfo`, if known.
        result_info: Option<ResultInfo>,
    },
    /// A newer attempt replaced this one.
    Superseded,
    /// The runtime stops tracking the attempt (shutdown).
    Abandoned,
}

/// A [`CallLookup`] inside an [`AttemptInput`], written as its `lookup` member:
/// both are tagged with `kind`, so written in place the lookup's tag would be a
/// second `kind` member and the input could not be read back.
mod nested_lookup {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::CallLookup;

    #[derive(Serialize)]
    struct Write<'a> {
        lookup: &'a CallLookup,
    }

    #[derive(Deserialize)]
    struct Read {
        lookup: CallLookup,
    }

    pub(super) fn serialize<S: Serializer>(lookup: &CallLookup, serializer: S) -> Result<S::Ok, S::Error> {
        Write { lookup }.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<CallLookup, D::Error> {
        Read::deserialize(deserializer).map(|read| read.lookup)
    }
}

/// What Graph said when asked about a call whose transfer attempt timed out
/// (`GET /communications/calls/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[non_exhaustive]
pub enum CallLookup {
    /// 404: Graph no longer has the call, so it left the bot.
    NotFound,
    /// Graph still has the call.
    Found {
        /// Its state.
        state: Option<CallState>,
        /// Its `resultInfo`.
        result_info: Option<ResultInfo>,
        /// Its `terminationReason`.
        termination_reason: Option<String>,
    },
    /// The lookup itself failed.
    Failed(ClientErrorSummary),
}

/// What the runtime must do in reaction to an input, in order.
///
/// Serializable: the record keeps an attempt's effects until their hooks ran
/// (its outbox), so another instance can run them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "camelCase")]
pub enum AttemptEffect {
    /// Fire `on_transferring`.
    Transferring,
    /// Fire `on_transfer_accepted`; `inferred` when the completion arrived first.
    Accepted {
        /// True when no `transferAccepted` was seen before the completion.
        inferred: bool,
    },
    /// Fire `on_transfer_completed`; the attempt is over.
    Completed,
    /// Fire `on_transfer_failed`; the attempt is over.
    Failed(TransferFailure),
}

/// What Graph's answer about a call meant for an attempt ([`TransferMachine::graph_says`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    /// The attempt has its outcome.
    Ended,
    /// The transfer is under way: the target rings or accepted.
    Ringing,
    /// The call is `established` with no failure to report (or the lookup failed).
    Established,
}

/// Whether a `resultInfo` on `established` reports a failed transfer (a non-zero subcode).
fn is_failure(result: &ResultInfo) -> bool {
    result.subcode.is_some_and(|s| s != 0)
}

/// One transfer attempt's progress.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TransferMachine {
    consultative: bool,
    /// Waiting for the consultation call to answer: no `POST /transfer` was sent yet.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    consulting: bool,
    /// Started with a consultation call (stays set after the answer).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    consulted: bool,
    transferring_fired: bool,
    accepted_fired: bool,
    post_outcome_unknown: bool,
    seen_notification: bool,
    /// An earlier attempt of the call may have sent a `POST /transfer`, so a
    /// failure notification may be a late copy of its failure: each one is
    /// checked with Graph before it decides.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    check_failures: bool,
    /// A failure notification waiting for Graph's word ([`AttemptInput::FailureLookup`]).
    /// Boxed: rarely set, and the machine is copied with its record on every event.
    #[serde(skip_serializing_if = "Option::is_none")]
    suspect: Option<Box<ResultInfo>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<TransferOutcome>,
}

impl TransferMachine {
    /// A machine for a new attempt. `consultative` is true when the request
    /// carries `replacesCallId`: only then does `terminationReason: AppTransferred`
    /// mean success.
    pub fn new(consultative: bool) -> Self {
        Self {
            consultative,
            ..Self::default()
        }
    }

    /// A machine for an attempt that starts with a consultation call: no
    /// `POST /transfer` is sent until [`AttemptInput::ConsultationAnswered`].
    /// Until then a consultation that ends fails the attempt with
    /// [`TransferFailure::ConsultationEnded`], and transfer notifications
    /// cannot be this attempt's (nothing was sent), so they are ignored.
    pub fn consulting() -> Self {
        Self {
            consultative: true,
            consulting: true,
            consulted: true,
            ..Self::default()
        }
    }

    /// Marks the attempt as following one that may have sent a `POST /transfer`:
    /// from then on a failure notification decides only once Graph confirms
    /// the call is back to `established` ([`TransferMachine::awaits_check`]).
    #[must_use]
    pub fn checking_failures(mut self, check: bool) -> Self {
        self.check_failures = check;
        self
    }

    /// Whether a failure notification of this call can be a late copy of this
    /// attempt's (its `POST /transfer` may have been sent), or of an earlier one's.
    pub fn may_cause_failures(&self) -> bool {
        let rejected = matches!(
            self.outcome,
            Some(TransferOutcome::Failed(TransferFailure::Rejected { .. }))
        );
        self.check_failures || !(self.consulting || rejected)
    }

    /// Whether a failure notification waits for Graph's word: the runtime
    /// looks the call up and feeds [`AttemptInput::FailureLookup`].
    pub fn awaits_check(&self) -> bool {
        self.suspect.is_some() && !self.is_finished()
    }

    /// Whether the attempt started with a consultation call ([`TransferMachine::consulting`]).
    pub fn started_with_consultation(&self) -> bool {
        self.consulted
    }

    /// Whether the attempt still waits for its consultation call to answer.
    pub fn is_consulting(&self) -> bool {
        self.consulting && !self.is_finished()
    }

    /// The final outcome, once there is one.
    pub fn outcome(&self) -> Option<&TransferOutcome> {
        self.outcome.as_ref()
    }

    /// Whether the attempt has its final outcome.
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Whether `on_transfer_accepted` has fired.
    pub fn accepted(&self) -> bool {
        self.accepted_fired
    }

    /// Feeds one input and returns the effects to run, in order. After the
    /// outcome every input is ignored (returns nothing).
    pub fn handle(&mut self, input: AttemptInput) -> Vec<AttemptEffect> {
        let mut effects = Vec::new();
        if self.is_finished() {
            return effects;
        }
        if self.consulting {
            self.handle_consulting(input, &mut effects);
            return effects;
        }
        match input {
            AttemptInput::Transferring => {
                self.seen_notification = true;
                self.fire_transferring(&mut effects);
            }
            AttemptInput::TransferAccepted => {
                self.seen_notification = true;
                self.fire_transferring(&mut effects);
                self.fire_accepted(false, &mut effects);
            }
            AttemptInput::Established { result_info } => {
                // Only a failure resultInfo says something about the transfer; a bare
                // `established` is typically a late duplicate of the answer's.
                if let Some(result) = result_info.filter(is_failure) {
                    self.seen_notification = true;
                    if self.check_failures {
                        // Maybe an earlier attempt's failure delivered again: Graph decides.
                        self.suspect.get_or_insert(Box::new(result));
                    } else {
                        self.finish(
                            TransferOutcome::Failed(TransferFailure::ReturnedToEstablished { result }),
                            &mut effects,
                        );
                    }
                }
            }
            AttemptInput::Terminated {
                result_info,
                termination_reason,
            } => {
                self.seen_notification = true;
                self.ended(result_info, termination_reason.as_deref(), &mut effects);
            }
            AttemptInput::CallGone { result_info } => {
                let failure = TransferFailure::CallEnded { result: result_info };
                self.finish(TransferOutcome::Failed(failure), &mut effects);
            }
            AttemptInput::PostRejected(error) => {
                self.finish(
                    TransferOutcome::Failed(TransferFailure::Rejected { error }),
                    &mut effects,
                );
            }
            AttemptInput::PostOutcomeUnknown => self.post_outcome_unknown = true,
            AttemptInput::UnknownOutcomeExpired => {
                if self.post_outcome_unknown && !self.seen_notification {
                    let failure = TransferFailure::OutcomeUnknownNoNotification;
                    self.finish(TransferOutcome::Failed(failure), &mut effects);
                }
            }
            AttemptInput::TimedOut => self.finish(TransferOutcome::Failed(TransferFailure::TimedOut), &mut effects),
            AttemptInput::TimeoutLookup(lookup) => match lookup {
                CallLookup::Failed(lookup_error) => self.finish(
                    TransferOutcome::Failed(TransferFailure::TimedOutUnverified { lookup_error }),
                    &mut effects,
                ),
                lookup => {
                    if self.graph_says(lookup, &mut effects) == Said::Established {
                        self.finish(TransferOutcome::Failed(TransferFailure::TimedOut), &mut effects);
                    }
                }
            },
            AttemptInput::RingLimitReached => {
                self.finish(TransferOutcome::Failed(TransferFailure::RangOut), &mut effects);
            }
            AttemptInput::FailureLookup(lookup) => {
                if self.suspect.is_some() {
                    match lookup {
                        // Not known either way: the suspect waits for the timeout's lookup.
                        CallLookup::Failed(_) => {}
                        lookup => {
                            if self.graph_says(lookup, &mut effects) == Said::Ringing {
                                // A copy of an earlier failure: this transfer is under way.
                                self.suspect = None;
                            }
                        }
                    }
                }
            }
            AttemptInput::SendUnconfirmed(lookup) => {
                // A call Graph moved on (transferring, ended) says the POST was
                // sent: its own notifications decide. `established` says no
                // transfer is under way, whatever was heard before (a late
                // notification of an earlier attempt can look like this one's).
                let established = matches!(
                    lookup,
                    CallLookup::Found {
                        state: Some(CallState::Established),
                        ..
                    }
                );
                if established {
                    self.finish(TransferOutcome::Failed(TransferFailure::Unconfirmed), &mut effects);
                }
            }
            AttemptInput::Superseded => {
                self.finish(TransferOutcome::Failed(TransferFailure::Superseded), &mut effects);
            }
            AttemptInput::Abandoned => self.finish(TransferOutcome::Failed(TransferFailure::Abandoned), &mut effects),
            // Answered twice, or ended after the answer: the transfer's own notifications decide.
            AttemptInput::ConsultationAnswered | AttemptInput::ConsultationEnded { .. } => {}
        }
        effects
    }

    /// What Graph's answer about the call means for the attempt: an end
    /// decides it, a ring keeps it pending (and reports what Graph saw), and a
    /// call back to `established` fails it with the failure notification
    /// waiting for this answer, or with the failure Graph reports. Otherwise
    /// the caller decides what `established` without a failure means.
    fn graph_says(&mut self, lookup: CallLookup, effects: &mut Vec<AttemptEffect>) -> Said {
        match lookup {
            CallLookup::NotFound => {
                self.complete(effects);
                Said::Ended
            }
            CallLookup::Found {
                state: Some(CallState::Terminated),
                result_info,
                termination_reason,
            } => {
                self.ended(result_info, termination_reason.as_deref(), effects);
                Said::Ended
            }
            CallLookup::Found {
                state: Some(CallState::Transferring),
                ..
            } => {
                self.fire_transferring(effects);
                Said::Ringing
            }
            CallLookup::Found {
                state: Some(CallState::TransferAccepted),
                ..
            } => {
                self.fire_transferring(effects);
                self.fire_accepted(false, effects);
                Said::Ringing
            }
            CallLookup::Found { result_info, .. } => {
                let failure = self.suspect.take().map(|r| *r).or(result_info.filter(is_failure));
                if let Some(result) = failure {
                    self.finish(
                        TransferOutcome::Failed(TransferFailure::ReturnedToEstablished { result }),
                        effects,
                    );
                    Said::Ended
                } else {
                    Said::Established
                }
            }
            CallLookup::Failed(_) => Said::Established,
        }
    }

    /// Before the `POST /transfer`: only the consultation's progress, the
    /// call's end and the runtime's own verdicts count.
    fn handle_consulting(&mut self, input: AttemptInput, effects: &mut Vec<AttemptEffect>) {
        match input {
            AttemptInput::ConsultationAnswered => self.consulting = false,
            AttemptInput::ConsultationEnded { result_info } => {
                let failure = TransferFailure::ConsultationEnded { result: result_info };
                self.finish(TransferOutcome::Failed(failure), effects);
            }
            AttemptInput::Terminated { result_info, .. } | AttemptInput::CallGone { result_info } => {
                let failure = TransferFailure::CallEnded { result: result_info };
                self.finish(TransferOutcome::Failed(failure), effects);
            }
            AttemptInput::TimedOut | AttemptInput::TimeoutLookup(_) => {
                self.finish(TransferOutcome::Failed(TransferFailure::TimedOut), effects);
            }
            AttemptInput::Superseded => self.finish(TransferOutcome::Failed(TransferFailure::Superseded), effects),
            AttemptInput::Abandoned => self.finish(TransferOutcome::Failed(TransferFailure::Abandoned), effects),
            // Graph refused to place the consultation call.
            AttemptInput::PostRejected(error) => {
                self.finish(TransferOutcome::Failed(TransferFailure::Rejected { error }), effects);
            }
            // Nothing was sent: transfer notifications are an earlier attempt's,
            // and there is no POST whose result could arrive.
            AttemptInput::Transferring
            | AttemptInput::TransferAccepted
            | AttemptInput::Established { .. }
            | AttemptInput::PostOutcomeUnknown
            | AttemptInput::UnknownOutcomeExpired
            | AttemptInput::SendUnconfirmed(_)
            | AttemptInput::FailureLookup(_)
            | AttemptInput::RingLimitReached => {}
        }
    }

    /// The call ended: completed if the end says the transfer happened.
    fn ended(&mut self, result_info: Option<ResultInfo>, reason: Option<&str>, effects: &mut Vec<AttemptEffect>) {
        let completed_code = result_info
            .as_ref()
            .is_some_and(|r| r.subcode == Some(subcodes::TRANSFER_COMPLETED));
        let app_transferred = self.consultative && reason.is_some_and(|r| r.eq_ignore_ascii_case(APP_TRANSFERRED));
        if completed_code || app_transferred {
            self.complete(effects);
        } else {
            let failure = TransferFailure::CallEnded { result: result_info };
            self.finish(TransferOutcome::Failed(failure), effects);
        }
    }

    /// Completion implies the earlier stages, which may never have been reported.
    fn complete(&mut self, effects: &mut Vec<AttemptEffect>) {
        self.fire_transferring(effects);
        self.fire_accepted(true, effects);
        self.finish(TransferOutcome::Completed, effects);
    }

    fn fire_transferring(&mut self, effects: &mut Vec<AttemptEffect>) {
        if !self.transferring_fired {
            self.transferring_fired = true;
            effects.push(AttemptEffect::Transferring);
        }
    }

    fn fire_accepted(&mut self, inferred: bool, effects: &mut Vec<AttemptEffect>) {
        if !self.accepted_fired {
            self.accepted_fired = true;
            effects.push(AttemptEffect::Accepted { inferred });
        }
    }

    fn finish(&mut self, outcome: TransferOutcome, effects: &mut Vec<AttemptEffect>) {
        effects.push(match &outcome {
            TransferOutcome::Completed => AttemptEffect::Completed,
            TransferOutcome::Failed(failure) => AttemptEffect::Failed(failure.clone()),
        });
        self.outcome = Some(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(consultative: bool, inputs: Vec<AttemptInput>) -> Vec<AttemptEffect> {
        let mut machine = TransferMachine::new(consultative);
        inputs.into_iter().flat_map(|i| machine.handle(i)).collect()
    }

    #[test]
    fn the_documented_success_sequence_fires_every_hook_once() {
        let effects = run(
            false,
            vec![
                AttemptInput::Transferring,
                AttemptInput::TransferAccepted,
                AttemptInput::Terminated {
                    result_info: Some(ResultInfo::new(0, 7015, "GracefulTransferCompleted")),
                    termination_reason: None,
                },
            ],
        );
        assert_eq!(
            effects,
            vec![
                AttemptEffect::Transferring,
                AttemptEffect::Accepted { inferred: false },
                AttemptEffect::Completed
            ]
        );
    }

    fn consulting(inputs: Vec<AttemptInput>) -> Vec<AttemptEffect> {
        let mut machine = TransferMachine::consulting();
        inputs.into_iter().flat_map(|i| machine.handle(i)).collect()
    }

    #[test]
    fn a_consultation_declined_before_the_answer_fails_the_attempt_once() {
        let declined = Some(ResultInfo::new(603, 7000, "Declined"));
        let effects = consulting(vec![
            // A late notification of an earlier attempt: nothing of this one was sent.
            AttemptInput::Transferring,
            AttemptInput::ConsultationEnded {
                result_info: declined.clone(),
            },
            AttemptInput::ConsultationEnded { result_info: None },
            AttemptInput::ConsultationAnswered,
        ]);
        assert_eq!(
            effects,
            vec![AttemptEffect::Failed(TransferFailure::ConsultationEnded {
                result: declined
            })]
        );
    }

    #[test]
    fn an_answered_consultation_hands_over_to_the_transfers_own_notifications() {
        let mut machine = TransferMachine::consulting();
        assert!(machine.is_consulting());
        assert!(machine.handle(AttemptInput::ConsultationAnswered).is_empty());
        assert!(!machine.is_consulting());
        // Graph ends the consultation call once the transfer replaced it: not a failure.
        assert!(
            machine
                .handle(AttemptInput::ConsultationEnded { result_info: None })
                .is_empty()
        );
        let effects = machine.handle(AttemptInput::Terminated {
            result_info: Some(ResultInfo::new(200, 0, "")),
            termination_reason: Some(APP_TRANSFERRED.into()),
        });
        assert_eq!(
            effects,
            vec![
                AttemptEffect::Transferring,
                AttemptEffect::Accepted { inferred: true },
                AttemptEffect::Completed
            ]
        );
    }

    #[test]
    fn the_caller_hanging_up_during_the_consultation_ends_the_attempt() {
        let effects = consulting(vec![
            AttemptInput::Terminated {
                result_info: Some(ResultInfo::new(200, 5001, "")),
                termination_reason: None,
            },
            AttemptInput::ConsultationEnded { result_info: None },
        ]);
        assert_eq!(effects.len(), 1);
        assert!(matches!(
            &effects[0],
            AttemptEffect::Failed(TransferFailure::CallEnded { result: Some(_) })
        ));
    }

    #[test]
    fn a_consulting_machine_round_trips_through_json() {
        let machine = TransferMachine::consulting();
        let json = serde_json::to_value(&machine).unwrap();
        assert_eq!(json["consulting"], true);
        assert_eq!(serde_json::from_value::<TransferMachine>(json).unwrap(), machine);
        // Records written before the consultation phase existed read as not consulting.
        let old: TransferMachine = serde_json::from_str(r#"{"consultative":true}"#).unwrap();
        assert!(!old.is_consulting());
    }

    fn found(state: CallState) -> CallLookup {
        CallLookup::Found {
            state: Some(state),
            result_info: None,
            termination_reason: None,
        }
    }

    #[test]
    fn an_unconfirmed_post_fails_only_when_graph_has_the_call_established() {
        let unconfirmed = |lookup| AttemptInput::SendUnconfirmed(lookup);
        let failed = vec![AttemptEffect::Failed(TransferFailure::Unconfirmed)];
        assert_eq!(run(false, vec![unconfirmed(found(CallState::Established))]), failed);
        // Sent: Graph moved on, and the attempt's own notifications decide.
        for state in [
            CallState::Transferring,
            CallState::TransferAccepted,
            CallState::Terminated,
        ] {
            assert_eq!(run(false, vec![unconfirmed(found(state))]), vec![]);
        }
        assert_eq!(run(false, vec![unconfirmed(CallLookup::NotFound)]), vec![]);
        let error = ClientErrorSummary::default();
        assert_eq!(run(false, vec![unconfirmed(CallLookup::Failed(error))]), vec![]);
        // Heard of before, yet no transfer is under way now: it failed either way.
        let heard = vec![AttemptInput::Transferring, unconfirmed(found(CallState::Established))];
        let mut after_transferring = vec![AttemptEffect::Transferring];
        after_transferring.extend(failed);
        assert_eq!(run(false, heard), after_transferring);
    }

    #[test]
    fn completion_first_infers_accepted() {
        let effects = run(
            true,
            vec![AttemptInput::Terminated {
                result_info: None,
                termination_reason: Some("AppTransferred".into()),
            }],
        );
        assert_eq!(
            effects,
            vec![
                AttemptEffect::Transferring,
                AttemptEffect::Accepted { inferred: true },
                AttemptEffect::Completed
            ]
        );
    }

    #[test]
    fn app_transferred_without_replaces_call_id_is_a_call_end() {
        let effects = run(
            false,
            vec![AttemptInput::Terminated {
                result_info: None,
                termination_reason: Some("AppTransferred".into()),
            }],
        );
        assert_eq!(
            effects,
            vec![AttemptEffect::Failed(TransferFailure::CallEnded { result: None })]
        );
    }

    #[test]
    fn bare_established_is_ignored_and_failure_keeps_the_subcode() {
        let odd = ResultInfo::new(500, 7123, "odd");
        let effects = run(
            false,
            vec![
                AttemptInput::Established { result_info: None },
                AttemptInput::Established {
                    result_info: Some(ResultInfo::new(200, 0, "ok")),
                },
                AttemptInput::Established {
                    result_info: Some(odd.clone()),
                },
            ],
        );
        assert_eq!(
            effects,
            vec![AttemptEffect::Failed(TransferFailure::ReturnedToEstablished {
                result: odd
            })]
        );
    }

    #[test]
    fn code_alone_never_decides() {
        // code 0 with a non-7015 subcode on terminated is a call end, not success.
        let end = ResultInfo::new(0, 5001, "ended");
        let effects = run(
            false,
            vec![AttemptInput::Terminated {
                result_info: Some(end.clone()),
                termination_reason: None,
            }],
        );
        assert_eq!(
            effects,
            vec![AttemptEffect::Failed(TransferFailure::CallEnded { result: Some(end) })]
        );
    }

    #[test]
    fn unknown_post_outcome_fails_only_without_notifications() {
        let silent = run(
            false,
            vec![AttemptInput::PostOutcomeUnknown, AttemptInput::UnknownOutcomeExpired],
        );
        assert_eq!(
            silent,
            vec![AttemptEffect::Failed(TransferFailure::OutcomeUnknownNoNotification)]
        );
        let heard = run(
            false,
            vec![
                AttemptInput::PostOutcomeUnknown,
                AttemptInput::Transferring,
                AttemptInput::UnknownOutcomeExpired,
            ],
        );
        assert_eq!(heard, vec![AttemptEffect::Transferring]);
        let unambiguous = run(false, vec![AttemptInput::UnknownOutcomeExpired]);
        assert!(unambiguous.is_empty());
    }

    /// Before: `TimeoutLookup` and `SendUnconfirmed` were written with two
    /// `kind` members (the input's and the lookup's), so a shared store could
    /// not read them back (found by the `transfer_machine` fuzz target).
    #[test]
    fn lookup_inputs_read_back_from_json() {
        let error = ClientErrorSummary {
            status: Some(503),
            message: "unavailable".into(),
            ..ClientErrorSummary::default()
        };
        for lookup in [
            CallLookup::NotFound,
            found(CallState::Established),
            CallLookup::Found {
                state: Some(CallState::Terminated),
                result_info: Some(ResultInfo::new(0, 7015, "GracefulTransferCompleted")),
                termination_reason: Some("AppTransferred".into()),
            },
            CallLookup::Failed(error),
        ] {
            for input in [
                AttemptInput::TimeoutLookup(lookup.clone()),
                AttemptInput::SendUnconfirmed(lookup.clone()),
            ] {
                let text = serde_json::to_string(&input).unwrap();
                let read: AttemptInput = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(read, input, "{text}");
            }
        }
        let text = serde_json::to_string(&AttemptInput::TimeoutLookup(CallLookup::NotFound)).unwrap();
        assert_eq!(text, r#"{"kind":"timeoutLookup","lookup":{"kind":"notFound"}}"#);
    }

    #[test]
    fn nothing_happens_after_the_outcome() {
        let mut machine = TransferMachine::new(false);
        assert_eq!(
            machine.handle(AttemptInput::TimedOut),
            vec![AttemptEffect::Failed(TransferFailure::TimedOut)]
        );
        for input in [
            AttemptInput::Transferring,
            AttemptInput::TransferAccepted,
            AttemptInput::TimedOut,
            AttemptInput::Terminated {
                result_info: Some(ResultInfo::new(0, 7015, "")),
                termination_reason: None,
            },
        ] {
            assert!(machine.handle(input).is_empty());
        }
        assert_eq!(
            machine.outcome(),
            Some(&TransferOutcome::Failed(TransferFailure::TimedOut))
        );
    }
}
