//! The transfer attempt machine (`graph_comms_core::transfer_machine::TransferMachine`)
//! fed any sequence of inputs, duplicates and impossible orders included,
//! always ending with `Abandoned` (the runtime's shutdown).
//!
//! After every step: the effects keep the machine's documented promises (see
//! `EffectLog`: at most one `Transferring`, at most one `Accepted`, exactly
//! one final effect with nothing after it, `Accepted` after `Transferring`,
//! `Completed` only after `Accepted`); `outcome()`, `is_finished()` and
//! `accepted()` agree with the effects; a `Completed` comes only from an input
//! that says the transfer completed; an input after the outcome changes
//! nothing; and the machine and the input read back from JSON as they were
//! written (a shared store persists both).
#![no_main]

use arbitrary::Arbitrary;
use graph_comms_fuzz::{EffectLog, Input, may_complete};
use graph_comms_core::TransferOutcome;
use graph_comms_core::transfer_machine::{AttemptInput, TransferMachine};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Run {
    consultative: bool,
    /// Starts in the consultation phase (`TransferMachine::consulting`).
    consulting: bool,
    inputs: Vec<Input>,
}

fuzz_target!(|run: Run| {
    let consultative = run.consultative || run.consulting;
    let mut machine = if run.consulting {
        TransferMachine::consulting()
    } else {
        TransferMachine::new(run.consultative)
    };
    let mut log = EffectLog::default();
    let inputs = run
        .inputs
        .iter()
        .map(Input::to_model)
        .chain(std::iter::once(AttemptInput::Abandoned));
    for input in inputs {
        let text = serde_json::to_string(&input).expect("an input serialises");
        let reread: AttemptInput = serde_json::from_str(&text).expect("an input reads back");
        assert_eq!(reread, input, "{text}");

        let before = machine.clone();
        let completes = may_complete(&input, consultative);
        let effects = machine.handle(input);
        if before.is_finished() {
            assert!(effects.is_empty(), "{effects:?} after the outcome");
            assert_eq!(machine, before, "an input after the outcome changed the machine");
        }
        let was_finished = log.finished();
        log.record(&effects);
        if !was_finished && log.outcome == Some(TransferOutcome::Completed) {
            assert!(completes, "completed by an input that does not say so: {effects:?}");
        }

        assert_eq!(machine.is_finished(), log.finished());
        assert_eq!(machine.outcome(), log.outcome.as_ref());
        assert_eq!(machine.accepted(), log.accepted);

        let text = serde_json::to_string(&machine).expect("the machine serialises");
        let reread: TransferMachine = serde_json::from_str(&text).expect("the machine reads back");
        assert_eq!(reread, machine, "{text}");
        machine = reread;
    }
    // `Abandoned` ends any attempt that had no outcome: exactly one final effect.
    assert!(log.finished(), "no outcome after Abandoned: {:?}", log.effects);
    let finals = log
        .effects
        .iter()
        .filter(|e| {
            matches!(
                e,
                graph_comms_core::transfer_machine::AttemptEffect::Completed
                    | graph_comms_core::transfer_machine::AttemptEffect::Failed(_)
            )
        })
        .count();
    assert_eq!(finals, 1);
    assert!(log.failure().is_some() || log.accepted);
});
