//! What the state-machine fuzz targets share: `Arbitrary` stand-ins for the
//! handler's inputs (mapped onto the real types, which carry no `Arbitrary`
//! derive) and the checker of an attempt's effects.

use arbitrary::Arbitrary;
use graph_comms_core::transfer_machine::{AttemptEffect, AttemptInput, CallLookup};
use graph_comms_core::model::{CallState, ResultInfo};
use graph_comms_core::{ClientErrorSummary, TransferFailure, TransferOutcome};

/// The subcode Graph ends a call with when a transfer completed.
pub const TRANSFER_COMPLETED: i32 = 7015;

/// A `resultInfo.subcode`, biased towards the ones the machine looks at.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Subcode {
    Absent,
    Zero,
    TransferCompleted,
    Declined,
    Any(i32),
}

/// A `resultInfo`, or none.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Result {
    None,
    Some { code: i16, subcode: Subcode },
}

impl Result {
    pub fn to_model(self) -> Option<ResultInfo> {
        let Result::Some { code, subcode } = self else {
            return None;
        };
        let mut info = ResultInfo::new(i32::from(code), 0, "fuzz");
        info.subcode = match subcode {
            Subcode::Absent => None,
            Subcode::Zero => Some(0),
            Subcode::TransferCompleted => Some(TRANSFER_COMPLETED),
            Subcode::Declined => Some(7000),
            Subcode::Any(n) => Some(n),
        };
        Some(info)
    }
}

/// A `terminationReason`.
#[derive(Arbitrary, Debug, Clone)]
pub enum Reason {
    None,
    AppTransferred { upper: bool },
    Other(String),
}

impl Reason {
    pub fn to_model(&self) -> Option<String> {
        match self {
            Reason::None => None,
            Reason::AppTransferred { upper: false } => Some("AppTransferred".into()),
            Reason::AppTransferred { upper: true } => Some("APPTRANSFERRED".into()),
            Reason::Other(s) => Some(s.clone()),
        }
    }
}

/// A call state as Graph reports it.
#[derive(Arbitrary, Debug, Clone)]
pub enum State {
    None,
    Established,
    Transferring,
    TransferAccepted,
    Terminated,
    Wire(String),
}

impl State {
    pub fn to_model(&self) -> Option<CallState> {
        Some(match self {
            State::None => return None,
            State::Established => CallState::Established,
            State::Transferring => CallState::Transferring,
            State::TransferAccepted => CallState::TransferAccepted,
            State::Terminated => CallState::Terminated,
            State::Wire(s) => CallState::from_wire(s),
        })
    }
}

/// What Graph said about a call (`GET /communications/calls/{id}`).
#[derive(Arbitrary, Debug, Clone)]
pub enum Lookup {
    NotFound,
    Found {
        state: State,
        result: Result,
        reason: Reason,
    },
    Failed {
        status: Option<u16>,
    },
}

impl Lookup {
    pub fn to_model(&self) -> CallLookup {
        match self {
            Lookup::NotFound => CallLookup::NotFound,
            Lookup::Found { state, result, reason } => CallLookup::Found {
                state: state.to_model(),
                result_info: result.to_model(),
                termination_reason: reason.to_model(),
            },
            Lookup::Failed { status } => CallLookup::Failed(error(*status)),
        }
    }
}

fn error(status: Option<u16>) -> ClientErrorSummary {
    ClientErrorSummary {
        status,
        message: "fuzz".into(),
        ..ClientErrorSummary::default()
    }
}

/// One [`AttemptInput`].
#[derive(Arbitrary, Debug, Clone)]
pub enum Input {
    Transferring,
    TransferAccepted,
    Established { result: Result },
    Terminated { result: Result, reason: Reason },
    CallGone { result: Result },
    PostRejected { status: Option<u16> },
    PostOutcomeUnknown,
    UnknownOutcomeExpired,
    TimedOut,
    TimeoutLookup(Lookup),
    SendUnconfirmed(Lookup),
    ConsultationAnswered,
    ConsultationEnded { result: Result },
    Superseded,
    Abandoned,
}

impl Input {
    pub fn to_model(&self) -> AttemptInput {
        match self {
            Input::Transferring => AttemptInput::Transferring,
            Input::TransferAccepted => AttemptInput::TransferAccepted,
            Input::Established { result } => AttemptInput::Established {
                result_info: result.to_model(),
            },
            Input::Terminated { result, reason } => AttemptInput::Terminated {
                result_info: result.to_model(),
                termination_reason: reason.to_model(),
            },
            Input::CallGone { result } => AttemptInput::CallGone {
                result_info: result.to_model(),
            },
            Input::PostRejected { status } => AttemptInput::PostRejected(error(*status)),
            Input::PostOutcomeUnknown => AttemptInput::PostOutcomeUnknown,
            Input::UnknownOutcomeExpired => AttemptInput::UnknownOutcomeExpired,
            Input::TimedOut => AttemptInput::TimedOut,
            Input::TimeoutLookup(lookup) => AttemptInput::TimeoutLookup(lookup.to_model()),
            Input::SendUnconfirmed(lookup) => AttemptInput::SendUnconfirmed(lookup.to_model()),
            Input::ConsultationAnswered => AttemptInput::ConsultationAnswered,
            Input::ConsultationEnded { result } => AttemptInput::ConsultationEnded {
                result_info: result.to_model(),
            },
            Input::Superseded => AttemptInput::Superseded,
            Input::Abandoned => AttemptInput::Abandoned,
        }
    }
}

/// Whether an input can say a transfer completed: a `terminated` end with
/// subcode 7015, `terminationReason: AppTransferred` on a consultative
/// transfer, or a timeout lookup that finds the call gone or so ended.
pub fn may_complete(input: &AttemptInput, consultative: bool) -> bool {
    let ended = |result: &Option<ResultInfo>, reason: &Option<String>| {
        result.as_ref().is_some_and(|r| r.subcode == Some(TRANSFER_COMPLETED))
            || (consultative
                && reason
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case("AppTransferred")))
    };
    match input {
        AttemptInput::Terminated {
            result_info,
            termination_reason,
        } => ended(result_info, termination_reason),
        AttemptInput::TimeoutLookup(CallLookup::NotFound) => true,
        AttemptInput::TimeoutLookup(CallLookup::Found {
            state: Some(CallState::Terminated),
            result_info,
            termination_reason,
        }) => ended(result_info, termination_reason),
        _ => false,
    }
}

/// The effects one attempt has emitted so far, checked batch by batch against
/// what `graph_comms_handler::machine` promises: at most one `Transferring`, at
/// most one `Accepted`, at most one final effect (`Completed` or `Failed`) and
/// nothing after it; `Accepted` after `Transferring`; `Completed` only after
/// `Accepted` (inferred, in the same batch, when no `transferAccepted` was seen).
#[derive(Debug, Default)]
pub struct EffectLog {
    pub transferring: bool,
    pub accepted: bool,
    pub outcome: Option<TransferOutcome>,
    pub effects: Vec<AttemptEffect>,
}

impl EffectLog {
    /// Checks one batch of effects, in order, and adds it to the log.
    pub fn record(&mut self, batch: &[AttemptEffect]) {
        for (at, effect) in batch.iter().enumerate() {
            assert!(
                self.outcome.is_none(),
                "{effect:?} after the outcome {:?}; so far {:?}",
                self.outcome,
                self.effects
            );
            match effect {
                AttemptEffect::Transferring => {
                    assert!(!self.transferring, "a second Transferring; so far {:?}", self.effects);
                    self.transferring = true;
                }
                AttemptEffect::Accepted { inferred } => {
                    assert!(!self.accepted, "a second Accepted; so far {:?}", self.effects);
                    assert!(
                        self.transferring,
                        "Accepted before Transferring; so far {:?}",
                        self.effects
                    );
                    if *inferred {
                        assert_eq!(
                            batch.get(at + 1),
                            Some(&AttemptEffect::Completed),
                            "an inferred Accepted not followed by Completed: {batch:?}"
                        );
                    }
                    self.accepted = true;
                }
                AttemptEffect::Completed => {
                    assert!(self.accepted, "Completed before Accepted; so far {:?}", self.effects);
                    self.outcome = Some(TransferOutcome::Completed);
                }
                AttemptEffect::Failed(failure) => {
                    self.outcome = Some(TransferOutcome::Failed(failure.clone()));
                }
            }
            self.effects.push(effect.clone());
        }
    }

    /// Whether the final effect has been emitted.
    pub fn finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// The failure, if the outcome is one.
    pub fn failure(&self) -> Option<&TransferFailure> {
        match &self.outcome {
            Some(TransferOutcome::Failed(failure)) => Some(failure),
            _ => None,
        }
    }
}
