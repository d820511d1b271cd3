//! Order-independence of the transfer attempt machine: every permutation of each
//! transfer kind's notifications, with any one of them duplicated, gives exactly
//! one outcome (always the same), and `accepted` at most once, before it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use graph_comms_core::transfer_machine::{AttemptEffect, AttemptInput, TransferMachine};
use graph_comms_handler::model::ResultInfo;
use graph_comms_handler::{TransferFailure, TransferOutcome};
use proptest::prelude::*;

fn terminated(code: i32, subcode: i32) -> AttemptInput {
    AttemptInput::Terminated {
        result_info: Some(ResultInfo::new(code, subcode, "GracefulTransferCompleted")),
        termination_reason: None,
    }
}

fn app_transferred() -> AttemptInput {
    AttemptInput::Terminated {
        result_info: None,
        termination_reason: Some("AppTransferred".into()),
    }
}

fn established(code: i32, subcode: i32) -> AttemptInput {
    AttemptInput::Established {
        result_info: Some(ResultInfo::new(code, subcode, "transfer failed")),
    }
}

/// A transfer kind's notifications and the one outcome they must give.
struct Scenario {
    name: &'static str,
    consultative: bool,
    inputs: Vec<AttemptInput>,
    expected: TransferOutcome,
}

fn failed_with(code: i32, subcode: i32) -> TransferOutcome {
    TransferOutcome::Failed(TransferFailure::ReturnedToEstablished {
        result: ResultInfo::new(code, subcode, "transfer failed"),
    })
}

fn scenarios() -> Vec<Scenario> {
    use AttemptInput::{Established, TransferAccepted, Transferring};
    vec![
        Scenario {
            name: "blind success",
            consultative: false,
            inputs: vec![Transferring, TransferAccepted, terminated(0, 7015)],
            expected: TransferOutcome::Completed,
        },
        Scenario {
            name: "blind success after a stale established",
            consultative: false,
            inputs: vec![
                Established { result_info: None },
                Transferring,
                TransferAccepted,
                terminated(0, 7015),
            ],
            expected: TransferOutcome::Completed,
        },
        Scenario {
            name: "PSTN success with code 200",
            consultative: false,
            inputs: vec![
                Transferring,
                TransferAccepted,
                Established {
                    result_info: Some(ResultInfo::new(200, 0, "ok")),
                },
                terminated(200, 7015),
            ],
            expected: TransferOutcome::Completed,
        },
        Scenario {
            name: "consultative success",
            consultative: true,
            inputs: vec![Transferring, TransferAccepted, app_transferred()],
            expected: TransferOutcome::Completed,
        },
        Scenario {
            name: "group success",
            consultative: false,
            inputs: vec![
                Established { result_info: None },
                Transferring,
                TransferAccepted,
                terminated(0, 7015),
                Established { result_info: None },
            ],
            expected: TransferOutcome::Completed,
        },
        Scenario {
            name: "blind failure",
            consultative: false,
            inputs: vec![Transferring, established(500, 7000)],
            expected: failed_with(500, 7000),
        },
        Scenario {
            name: "blind failure after accepted",
            consultative: false,
            inputs: vec![Transferring, TransferAccepted, established(500, 7000)],
            expected: failed_with(500, 7000),
        },
        Scenario {
            name: "consultative failure",
            consultative: true,
            inputs: vec![Transferring, Established { result_info: None }, established(500, 7700)],
            expected: failed_with(500, 7700),
        },
        Scenario {
            name: "PSTN failure with an unknown subcode",
            consultative: false,
            inputs: vec![
                Transferring,
                TransferAccepted,
                Established { result_info: None },
                established(500, 7321),
            ],
            expected: failed_with(500, 7321),
        },
    ]
}

/// Checks one run's effects and returns its outcome.
fn run_and_check(consultative: bool, inputs: &[AttemptInput]) -> Result<TransferOutcome, String> {
    let mut machine = TransferMachine::new(consultative);
    let effects: Vec<AttemptEffect> = inputs.iter().cloned().flat_map(|i| machine.handle(i)).collect();
    check_effects(&effects)?;
    let last = effects.last().ok_or("no effects")?;
    let outcome = match last {
        AttemptEffect::Completed => TransferOutcome::Completed,
        AttemptEffect::Failed(f) => TransferOutcome::Failed(f.clone()),
        other => return Err(format!("last effect {other:?} is not an outcome")),
    };
    if machine.outcome() != Some(&outcome) {
        return Err("machine outcome differs from the effect".into());
    }
    Ok(outcome)
}

/// The invariants any effect sequence must keep.
fn check_effects(effects: &[AttemptEffect]) -> Result<(), String> {
    let finals: Vec<usize> = positions(effects, |e| {
        matches!(e, AttemptEffect::Completed | AttemptEffect::Failed(_))
    });
    let accepted = positions(effects, |e| matches!(e, AttemptEffect::Accepted { .. }));
    let transferring = positions(effects, |e| matches!(e, AttemptEffect::Transferring));
    if finals.len() > 1 {
        return Err(format!("{} outcomes: {effects:?}", finals.len()));
    }
    if accepted.len() > 1 || transferring.len() > 1 {
        return Err(format!("a progress hook fired twice: {effects:?}"));
    }
    if finals.first().is_some_and(|&f| f != effects.len() - 1) {
        return Err(format!("effects after the outcome: {effects:?}"));
    }
    if let (Some(&t), Some(&a)) = (transferring.first(), accepted.first())
        && t > a
    {
        return Err(format!("transferring after accepted: {effects:?}"));
    }
    // Accepted then failed is allowed; accepted must still come before the outcome.
    if let (Some(&a), Some(&f)) = (accepted.first(), finals.first())
        && a > f
    {
        return Err(format!("accepted after the outcome: {effects:?}"));
    }
    Ok(())
}

fn positions(effects: &[AttemptEffect], pred: impl Fn(&AttemptEffect) -> bool) -> Vec<usize> {
    effects
        .iter()
        .enumerate()
        .filter(|(_, e)| pred(e))
        .map(|(i, _)| i)
        .collect()
}

/// Heap's algorithm over indices.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, items: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(items.clone());
            return;
        }
        heap(k - 1, items, out);
        for i in 0..k - 1 {
            if k.is_multiple_of(2) {
                items.swap(i, k - 1);
            } else {
                items.swap(0, k - 1);
            }
            heap(k - 1, items, out);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

#[test]
fn every_permutation_with_any_one_duplicate_gives_the_same_single_outcome() {
    let mut runs = 0usize;
    for scenario in scenarios() {
        for duplicated in 0..scenario.inputs.len() {
            let mut inputs = scenario.inputs.clone();
            inputs.push(scenario.inputs[duplicated].clone());
            for order in permutations(inputs.len()) {
                let sequence: Vec<AttemptInput> = order.iter().map(|&i| inputs[i].clone()).collect();
                let outcome = run_and_check(scenario.consultative, &sequence)
                    .unwrap_or_else(|e| panic!("{}: {e} for {sequence:?}", scenario.name));
                assert_eq!(outcome, scenario.expected, "{}: {sequence:?}", scenario.name);
                runs += 1;
            }
        }
    }
    // 9 scenarios of 3 to 5 notifications, each with one duplicate: thousands of orders.
    assert!(runs > 5_000, "only {runs} orders checked");
}

#[test]
fn completion_before_accepted_infers_acceptance_once() {
    let mut machine = TransferMachine::new(false);
    let mut effects = machine.handle(terminated(0, 7015));
    effects.extend(machine.handle(AttemptInput::TransferAccepted));
    effects.extend(machine.handle(AttemptInput::Transferring));
    assert_eq!(
        effects,
        vec![
            AttemptEffect::Transferring,
            AttemptEffect::Accepted { inferred: true },
            AttemptEffect::Completed
        ]
    );
}

fn any_input() -> impl Strategy<Value = AttemptInput> {
    let result = (
        prop_oneof![Just(0), Just(200), Just(408), Just(500)],
        prop_oneof![
            Just(0),
            Just(5001),
            Just(7000),
            Just(7015),
            Just(7700),
            Just(8537),
            1..100_000i32
        ],
    )
        .prop_map(|(code, subcode)| ResultInfo::new(code, subcode, "x"));
    prop_oneof![
        Just(AttemptInput::Transferring),
        Just(AttemptInput::TransferAccepted),
        proptest::option::of(result.clone()).prop_map(|result_info| AttemptInput::Established { result_info }),
        (
            proptest::option::of(result.clone()),
            proptest::option::of(Just("AppTransferred".to_owned()))
        )
            .prop_map(|(result_info, termination_reason)| AttemptInput::Terminated {
                result_info,
                termination_reason
            }),
        proptest::option::of(result.clone()).prop_map(|result_info| AttemptInput::CallGone { result_info }),
        Just(AttemptInput::ConsultationAnswered),
        proptest::option::of(result).prop_map(|result_info| AttemptInput::ConsultationEnded { result_info }),
        Just(AttemptInput::PostOutcomeUnknown),
        Just(AttemptInput::UnknownOutcomeExpired),
        Just(AttemptInput::TimedOut),
        Just(AttemptInput::RingLimitReached),
        (0..5u8).prop_map(|n| AttemptInput::FailureLookup(lookup(n))),
        (0..5u8).prop_map(|n| AttemptInput::TimeoutLookup(lookup(n))),
    ]
}

/// Graph's answer about a call: established, transferring, accepted, ended, or none.
fn lookup(n: u8) -> graph_comms_core::transfer_machine::CallLookup {
    use graph_comms_core::transfer_machine::CallLookup;
    use graph_comms_handler::model::CallState;
    let state = match n {
        0 => CallState::Established,
        1 => CallState::Transferring,
        2 => CallState::TransferAccepted,
        3 => CallState::Terminated,
        _ => return CallLookup::NotFound,
    };
    CallLookup::Found {
        state: Some(state),
        result_info: None,
        termination_reason: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A scenario's notifications, shuffled, each repeated one to three times.
    #[test]
    fn shuffled_scenarios_with_duplicates_keep_their_outcome(
        pick in 0usize..9,
        repeats in proptest::collection::vec(1usize..4, 5),
        keys in proptest::collection::vec(any::<u32>(), 15),
    ) {
        let scenario = scenarios().swap_remove(pick);
        let mut sequence: Vec<AttemptInput> = Vec::new();
        for (i, input) in scenario.inputs.iter().enumerate() {
            for _ in 0..repeats[i] {
                sequence.push(input.clone());
            }
        }
        let mut keyed: Vec<(u32, AttemptInput)> = keys.into_iter().zip(sequence).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let sequence: Vec<AttemptInput> = keyed.into_iter().map(|(_, i)| i).collect();
        let outcome = run_and_check(scenario.consultative, &sequence).map_err(TestCaseError::fail)?;
        prop_assert_eq!(outcome, scenario.expected);
    }

    /// Before: a copy of the previous attempt's failure delivered during the
    /// next attempt failed it. Now the next attempt checks every failure with
    /// Graph, which says `transferring` until the attempt's own failure (or
    /// success) happened: any number of copies, anywhere in a shuffled
    /// scenario, leave its outcome as scripted.
    #[test]
    fn a_failure_of_the_previous_attempt_duplicated_into_the_next_never_decides_it(
        pick in 0usize..9,
        copies in 1usize..4,
        keys in proptest::collection::vec(any::<u32>(), 8),
    ) {
        use graph_comms_core::transfer_machine::CallLookup;
        use graph_comms_handler::model::CallState;
        let scenario = scenarios().swap_remove(pick);
        let previous = established(500, 7001);
        let mut sequence: Vec<(bool, AttemptInput)> = scenario.inputs.iter().cloned().map(|i| (true, i)).collect();
        sequence.extend(std::iter::repeat_n((false, previous), copies));
        let mut keyed: Vec<(u32, (bool, AttemptInput))> = keys.into_iter().zip(sequence).collect();
        keyed.sort_by_key(|(k, _)| *k);
        let mut machine = TransferMachine::new(scenario.consultative).checking_failures(true);
        let mut effects = Vec::new();
        let mut own_failure_happened = false;
        for (_, (own, input)) in keyed {
            let failure = matches!(&input, AttemptInput::Established { result_info: Some(r) } if r.subcode != Some(0));
            own_failure_happened |= own && failure;
            effects.extend(machine.handle(input));
            if machine.awaits_check() {
                let state = if own_failure_happened { CallState::Established } else { CallState::Transferring };
                let lookup = CallLookup::Found { state: Some(state), result_info: None, termination_reason: None };
                effects.extend(machine.handle(AttemptInput::FailureLookup(lookup)));
            }
        }
        check_effects(&effects).map_err(TestCaseError::fail)?;
        prop_assert_eq!(machine.outcome(), Some(&scenario.expected));
    }

    /// Any input sequence keeps the invariants, and a final timeout always ends it.
    #[test]
    fn arbitrary_sequences_keep_the_invariants(
        kind in 0..3u8,
        check_failures in any::<bool>(),
        inputs in proptest::collection::vec(any_input(), 0..12),
    ) {
        // Blind, consultative, and consultative starting with a consultation call.
        let mut machine = match kind {
            0 => TransferMachine::new(false),
            1 => TransferMachine::new(true),
            _ => TransferMachine::consulting(),
        }
        .checking_failures(check_failures);
        let mut effects: Vec<AttemptEffect> = inputs.into_iter().flat_map(|i| machine.handle(i)).collect();
        effects.extend(machine.handle(AttemptInput::TimedOut));
        check_effects(&effects).map_err(TestCaseError::fail)?;
        prop_assert!(machine.is_finished());
        prop_assert!(matches!(effects.last(), Some(AttemptEffect::Completed | AttemptEffect::Failed(_))));
    }
}
