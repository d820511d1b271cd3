//! Incoming calls nobody takes: Graph ends a call still `incoming` 15 s after it was offered
//! (`deleted`, `terminated`, 408/1106). The deadline is on the emulator clock: a timer per call
//! fires in real time, and [`crate::Emulator::advance_clock`] ends the calls it moves past theirs.

use std::sync::Arc;
use std::time::Duration;

use graph_comms_model::{CallId, CallState};

use crate::calls;
use crate::state::{CallRecord, Inner, Script, lock};

/// Ends `call` if it is still `incoming` after `timeout` (real time).
pub(crate) fn start_timer(inner: &Arc<Inner>, call: &CallId, timeout: Duration) {
    let inner = Arc::clone(inner);
    let call = call.clone();
    let mut shutdown = inner.shutdown.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(timeout) => end(&inner, Some(&call)),
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
}

/// Ends the incoming calls past their answer deadline on the emulator clock: `only` that one
/// (its timer fired), or every call (the clock moved).
pub(crate) fn end(inner: &Inner, only: Option<&CallId>) {
    let now = inner.now();
    // A call's own timer fired after its timeout: only its state matters then.
    let due = |record: &CallRecord| {
        record.state == CallState::Incoming && (only.is_some() || record.answer_deadline.is_some_and(|d| d <= now))
    };
    let expired: Vec<(CallId, String)> = {
        let mut calls = lock(&inner.calls);
        let mut end = |record: &mut CallRecord| {
            // Gone at once: a late answer gets 404 like any ended call.
            record.state = CallState::Terminated;
            (record.id.clone(), record.callback_uri.clone())
        };
        match only {
            Some(call) => calls
                .get_mut(call)
                .filter(|r| due(r))
                .map(&mut end)
                .into_iter()
                .collect(),
            None => calls.values_mut().filter(|r| due(r)).map(end).collect(),
        }
    };
    if expired.is_empty() {
        return;
    }
    for (call, url) in expired {
        let steps = vec![calls::answer_timeout_step(&call)];
        inner.enqueue(&call, Script { url, steps });
    }
    inner.bump();
}
