//! What the emulated caller does to a call: key presses (`toneInfo` updates)
//! and hanging up.

use graph_comms_model::{CallId, CallState, Tone};
use serde_json::json;

use super::items::{end_step, result_info, update_step};
use super::snapshot::{play, set_state};
use crate::EmulatorError;
use crate::state::{Inner, lock};

/// The caller's key presses, as `toneInfo` call updates (only once subscribed).
pub(crate) fn caller_tones(inner: &Inner, call: &CallId, tones: &[Tone]) -> Result<bool, EmulatorError> {
    let (url, first, state) = {
        let mut calls = lock(&inner.calls);
        let record = calls
            .get_mut(call)
            .filter(|r| !r.is_gone())
            .ok_or_else(|| EmulatorError::UnknownCall(call.clone()))?;
        if !record.tones_subscribed {
            return Ok(false);
        }
        let first = record.tone_sequence + 1;
        record.tone_sequence += i64::try_from(tones.len()).unwrap_or(i64::MAX);
        (record.callback_uri.clone(), first, record.state.clone())
    };
    let steps = tones
        .iter()
        .zip(first..)
        .map(|(tone, sequence)| {
            let info = json!({ "@odata.type": "#microsoft.graph.toneInfo", "sequenceId": sequence, "tone": tone });
            // The call's state is unchanged by a tone.
            let mut step = update_step(call, state.clone(), json!({ "toneInfo": info }));
            step.state = None;
            step
        })
        .collect();
    play(inner, call, url, steps);
    Ok(true)
}

/// The caller hangs up: the call ends `terminated` with 200/4097 ("ended by
/// other participant", as Graph's resultInfo table lists it).
pub(crate) fn caller_hangs_up(inner: &Inner, call: &CallId) -> Result<(), EmulatorError> {
    let url = {
        let calls = lock(&inner.calls);
        let record = calls
            .get(call)
            .filter(|r| !r.is_gone())
            .ok_or_else(|| EmulatorError::UnknownCall(call.clone()))?;
        record.callback_uri.clone()
    };
    set_state(inner, call, CallState::Terminating);
    let result = result_info(
        json!(200),
        "subcode",
        json!(4097),
        "The call was ended by the other participant.",
    );
    play(
        inner,
        call,
        url,
        vec![end_step(
            call,
            Some(CallState::Terminated),
            json!({ "resultInfo": result }),
        )],
    );
    Ok(())
}
