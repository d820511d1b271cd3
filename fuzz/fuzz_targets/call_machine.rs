//! The call lifecycle machine (`graph_comms_core::stepping`) fed any
//! sequence of notifications, timer wake-ups, keep-alive and lookup results,
//! attempt inputs (for the current attempt or a stale id) and new transfer
//! attempts, with the clock moving forwards and, now and then, backwards.
//!
//! After every step:
//! - each attempt's effects, across all steps (and the effects of its being
//!   superseded), keep the transfer machine's promises (`EffectLog`), and the
//!   current attempt's machine agrees with what was emitted, so no effect is lost;
//! - `on_incoming_call` and `on_call_established` fire at most once, the call
//!   ends (`Terminated`) at most once, and after that every input gives nothing
//!   or `Late`; an ended call has no pending attempt and only its `forget` deadline;
//! - tones are handed on once each, in increasing `sequenceId` order;
//! - `Evict` only for a call with no pending attempt;
//! - the record reads back from its JSON form as it was written (a store persists it).
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::Arbitrary;
use graph_comms_fuzz::{EffectLog, Input, Lookup, Reason, Result as ResultIn, State};
use graph_comms_core::lifecycle::{CallInput, KeepAliveResult, MachineTimings, Step};
use graph_comms_core::model::{Call, CallId, CallState, TenantId, TransferRequest};
use graph_comms_core::stepping::{start_attempt, start_consulting_attempt, step};
use graph_comms_core::transfer_machine::AttemptEffect;
use graph_comms_core::{AttemptId, CallRecord, CallSnapshot, EventKind, TransferFailure};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Kind {
    IncomingCall,
    CallEstablished { result: ResultIn },
    Transferring,
    TransferAccepted,
    CallTerminated { result: ResultIn, reason: Reason },
    CallUpdated { state: State },
    OperationFinished,
    OperationUpdated,
    Ignored,
}

impl Kind {
    fn to_model(&self) -> EventKind {
        match self {
            Kind::IncomingCall => EventKind::IncomingCall,
            Kind::CallEstablished { result } => EventKind::CallEstablished {
                result_info: result.to_model(),
            },
            Kind::Transferring => EventKind::Transferring,
            Kind::TransferAccepted => EventKind::TransferAccepted,
            Kind::CallTerminated { result, reason } => EventKind::CallTerminated {
                result_info: result.to_model(),
                termination_reason: reason.to_model(),
            },
            Kind::CallUpdated { state } => EventKind::CallUpdated {
                state: state.to_model(),
            },
            Kind::OperationFinished => EventKind::OperationFinished,
            Kind::OperationUpdated => EventKind::OperationUpdated,
            Kind::Ignored => EventKind::Ignored,
        }
    }

    /// The call state a notification of this kind carries.
    fn state(&self) -> Option<CallState> {
        match self {
            Kind::IncomingCall => Some(CallState::Incoming),
            Kind::CallEstablished { .. } => Some(CallState::Established),
            Kind::Transferring => Some(CallState::Transferring),
            Kind::TransferAccepted => Some(CallState::TransferAccepted),
            Kind::CallTerminated { .. } => Some(CallState::Terminated),
            Kind::CallUpdated { state } => state.to_model(),
            _ => None,
        }
    }
}

/// Which attempt an input names.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Which {
    Current,
    Numbered(u8),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Notification {
        kind: Kind,
        /// The call resource: none, or one with this state and maybe a tone.
        call: Option<(bool, Option<i8>, bool)>,
        /// Its delivery key (a small range, so deliveries made again are common).
        message: Option<u8>,
    },
    Activity,
    Attempt {
        which: Which,
        input: Input,
    },
    Wake,
    KeepAlive(u8),
    Lookup {
        which: Which,
        lookup: Lookup,
    },
    FailureLookup {
        which: Which,
        lookup: Lookup,
    },
    SetKeepAlive(bool),
    /// A new transfer attempt (a fresh id), or the current one's start again (`again`).
    Start {
        again: bool,
        consultative: bool,
        /// Starts with the consultation phase (`start_consulting_attempt`).
        consulting: bool,
        allow_concurrent: bool,
    },
    Advance(u16),
    Rewind(u8),
}

fn attempt_id(n: u32) -> AttemptId {
    format!("attempt-{:032x}", u128::from(n) + 1)
        .parse()
        .expect("an attempt id")
}

fn call(kind: &Kind, with_state: bool, tone: Option<i8>, group: bool) -> Call {
    let mut call = serde_json::json!({"@odata.type": "#microsoft.graph.call"});
    if with_state && let Some(state) = kind.state() {
        call["state"] = serde_json::Value::String(state.as_str().to_owned());
    }
    if let Some(sequence) = tone {
        call["toneInfo"] = serde_json::json!({"sequenceId": sequence, "tone": "tone1"});
    }
    if group {
        call["chatInfo"] = serde_json::json!({"threadId": "19:meeting"});
    }
    serde_json::from_value(call).expect("a call")
}

struct World {
    record: CallRecord,
    timings: MachineTimings,
    now: SystemTime,
    logs: HashMap<AttemptId, EffectLog>,
    incoming: u32,
    established: u32,
    terminated: u32,
    last_tone: Option<i64>,
    next_id: u32,
}

impl World {
    fn current(&self) -> Option<AttemptId> {
        self.record.attempt.as_ref().map(|a| a.info.id)
    }

    fn which(&self, which: Which) -> AttemptId {
        match (which, self.current()) {
            (Which::Current, Some(id)) => id,
            (Which::Current, None) => attempt_id(u32::MAX),
            (Which::Numbered(n), _) => attempt_id(u32::from(n)),
        }
    }

    fn check(&mut self, steps: &[Step], was_ended: bool) {
        if was_ended {
            assert!(
                steps.is_empty() || steps == [Step::Late],
                "an ended call answered {steps:?}"
            );
        }
        for s in steps {
            match s {
                Step::Incoming(_) => self.incoming += 1,
                Step::Established => self.established += 1,
                Step::Terminated(_) => {
                    self.terminated += 1;
                    assert!(self.record.is_ended());
                }
                Step::Tone(tone) => {
                    let sequence = tone.sequence_id.expect("a tone handed on has a sequenceId");
                    assert!(
                        self.last_tone.is_none_or(|last| sequence > last),
                        "tone {sequence} after {:?}",
                        self.last_tone
                    );
                    self.last_tone = Some(sequence);
                }
                Step::Attempt(info, effects) => {
                    assert!(!effects.is_empty());
                    self.logs.entry(info.id).or_default().record(effects);
                }
                Step::Evict => assert!(self.record.pending_attempt().is_none()),
                _ => {}
            }
        }
        assert!(self.incoming <= 1, "on_incoming_call fired {} times", self.incoming);
        assert!(
            self.established <= 1,
            "on_call_established fired {} times",
            self.established
        );
        assert!(
            self.terminated <= 1,
            "on_call_terminated fired {} times",
            self.terminated
        );
        assert_eq!(self.record.is_ended(), self.terminated == 1);
        if self.record.is_ended() {
            assert!(
                self.record.pending_attempt().is_none(),
                "an ended call with a pending attempt"
            );
            let d = &self.record.lifecycle.deadlines;
            assert!(
                d.attempt_timeout.is_none()
                    && d.unknown_outcome.is_none()
                    && d.keep_alive.is_none()
                    && d.idle.is_none(),
                "an ended call with live deadlines: {d:?}"
            );
        }
        if let Some(attempt) = &self.record.attempt {
            let log = self.logs.entry(attempt.info.id).or_default();
            assert_eq!(
                attempt.machine.is_finished(),
                log.finished(),
                "an effect was lost: {:?}",
                log.effects
            );
            assert_eq!(attempt.machine.outcome(), log.outcome.as_ref());
            assert_eq!(attempt.machine.accepted(), log.accepted);
        }
        let json = self.record.to_json().expect("the record serialises");
        let reread = CallRecord::from_json(&json).expect("the record reads back");
        assert_eq!(reread, self.record, "{}", String::from_utf8_lossy(&json));
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut world = World {
        record: CallRecord::new(CallSnapshot::new(CallId::from("c"), TenantId::from("t"))),
        timings: MachineTimings::default(),
        now: UNIX_EPOCH + Duration::from_secs(1_796_169_600),
        logs: HashMap::new(),
        incoming: 0,
        established: 0,
        terminated: 0,
        last_tone: None,
        next_id: 0,
    };
    for op in &ops {
        let was_ended = world.record.is_ended();
        let now = world.now;
        let steps = match op {
            Op::Notification {
                kind,
                call: shape,
                message,
            } => {
                let event = kind.to_model();
                let body = shape.map(|(with_state, tone, group)| call(kind, with_state, tone, group));
                let input = CallInput::Notification {
                    kind: &event,
                    call: body.as_ref(),
                    message: message.map(u64::from),
                    consultation_for: None,
                };
                step(&mut world.record, input, now, &world.timings)
            }
            Op::Activity => step(&mut world.record, CallInput::Activity, now, &world.timings),
            Op::Attempt { which, input } => {
                let input = CallInput::Attempt {
                    id: world.which(*which),
                    input: input.to_model(),
                };
                step(&mut world.record, input, now, &world.timings)
            }
            Op::Wake => step(&mut world.record, CallInput::Wake, now, &world.timings),
            Op::KeepAlive(result) => {
                let result = match result % 3 {
                    0 => KeepAliveResult::Sent,
                    1 => KeepAliveResult::NotFound,
                    _ => KeepAliveResult::Failed,
                };
                step(&mut world.record, CallInput::KeepAlive(result), now, &world.timings)
            }
            Op::Lookup { which, lookup } => {
                let input = CallInput::Lookup {
                    id: world.which(*which),
                    lookup: lookup.to_model(),
                };
                step(&mut world.record, input, now, &world.timings)
            }
            Op::FailureLookup { which, lookup } => {
                let input = CallInput::FailureLookup {
                    id: world.which(*which),
                    lookup: lookup.to_model(),
                };
                step(&mut world.record, input, now, &world.timings)
            }
            Op::SetKeepAlive(on) => step(&mut world.record, CallInput::SetKeepAlive(*on), now, &world.timings),
            Op::Start {
                again,
                consultative,
                consulting,
                allow_concurrent,
            } => {
                let mut request = TransferRequest::to_user("agent", None);
                if *consultative || *consulting {
                    request = request.replaces_call("consult");
                }
                let request = request.build();
                let before = world.record.clone();
                let id = match world.current().filter(|_| *again) {
                    Some(id) => id,
                    None => {
                        world.next_id += 1;
                        attempt_id(world.next_id)
                    }
                };
                let start = if *consulting {
                    start_consulting_attempt
                } else {
                    start_attempt
                };
                match start(&mut world.record, id, request, *allow_concurrent, now, &world.timings) {
                    Ok((info, superseded)) => {
                        assert_eq!(info.id, id);
                        assert!(!world.record.is_ended() || before.attempt.as_ref().is_some_and(|a| a.info.id == id));
                        if let Some((old, effects)) = superseded {
                            assert_ne!(old.id, id);
                            let log = world.logs.entry(old.id).or_default();
                            log.record(&effects);
                            assert_eq!(log.failure(), Some(&TransferFailure::Superseded), "{effects:?}");
                        }
                    }
                    Err(_) => assert_eq!(world.record, before, "a refused start changed the record"),
                }
                Vec::new()
            }
            Op::Advance(secs) => {
                world.now += Duration::from_secs(u64::from(*secs));
                Vec::new()
            }
            Op::Rewind(secs) => {
                world.now -= Duration::from_secs(u64::from(*secs));
                Vec::new()
            }
        };
        world.check(&steps, was_ended);
    }
    // Every attempt that was superseded or replaced has its outcome; the current one may still wait.
    let current = world.current();
    for (id, log) in &world.logs {
        if Some(*id) != current {
            assert!(
                log.finished(),
                "attempt {id} left without an outcome: {:?}",
                log.effects
            );
        }
        if log.outcome.as_ref().is_some_and(|o| o.is_completed()) {
            assert!(log.effects.contains(&AttemptEffect::Transferring));
        }
    }
});
