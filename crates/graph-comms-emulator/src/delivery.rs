//! One ordered delivery queue per call: scripts in, signed notification POSTs out.

use std::sync::Arc;
use std::time::Duration;

use graph_comms_model::{CallId, CallState};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::DuplicateLater;
use crate::redelivery::{self, Message};
use crate::state::{Inner, Script, Step, lock};

/// Starts the delivery task of a call and returns its queue.
pub(crate) fn spawn(inner: &Arc<Inner>, call: CallId) -> mpsc::UnboundedSender<Script> {
    let (tx, rx) = mpsc::unbounded_channel();
    let inner = Arc::clone(inner);
    let mut shutdown = inner.shutdown.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            () = run(&inner, &call, rx) => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
    tx
}

async fn run(inner: &Arc<Inner>, call: &CallId, mut rx: mpsc::UnboundedReceiver<Script>) {
    while let Some(script) = rx.recv().await {
        if play(inner, call, script).await {
            break;
        }
    }
    if let Some(record) = lock(&inner.calls).get_mut(call) {
        record.queue = None;
    }
}

/// Plays one script; true once the call has ended.
async fn play(inner: &Arc<Inner>, call: &CallId, script: Script) -> bool {
    let Some(faults) = lock(&inner.calls).get(call).map(|c| c.faults.clone()) else {
        return true;
    };
    let group_size = if faults.batch {
        script.steps.len().max(1)
    } else if faults.reorder {
        2
    } else {
        1
    };
    for group in script.steps.chunks(group_size) {
        let pause: Duration = group.iter().map(|s| s.delay + inner.config.step_delay).sum();
        tokio::time::sleep(pause).await;
        let (mut items, ended) = apply(inner, call, group);
        if faults.reorder {
            items.reverse();
        }
        if faults.batch {
            if !items.is_empty() {
                deliver(inner, call, &script.url, items).await;
            }
        } else {
            for item in items {
                deliver(inner, call, &script.url, vec![item]).await;
            }
        }
        if ended {
            return true;
        }
    }
    false
}

/// Moves the call through the group's states and returns the items to send
/// (dropped ones removed) and whether the call ended.
fn apply(inner: &Inner, call: &CallId, group: &[Step]) -> (Vec<Value>, bool) {
    let mut calls = lock(&inner.calls);
    let Some(record) = calls.get_mut(call) else {
        return (Vec::new(), true);
    };
    let mut items = Vec::new();
    let mut ended = false;
    for step in group {
        if record.ended || (record.is_gone() && !step.terminal) {
            continue;
        }
        if step.terminal {
            record.ended = true;
            record.state = CallState::Terminated;
            ended = true;
        } else if let Some(state) = &step.state {
            if *state == CallState::Established {
                record.last_activity = inner.now();
            }
            record.state = state.clone();
        }
        let dropped = item_state(&step.item).and_then(|s| record.faults.drop.iter().position(|d| *d == s));
        let mut item = step.item.clone();
        // Graph repeats the last toneInfo on later call updates; bots dedupe by sequenceId.
        if let Some(tone) = item.pointer("/resourceData/toneInfo") {
            record.last_tone = Some(tone.clone());
        } else if let Some(tone) = record.last_tone.as_ref().filter(|_| is_call_update(&item))
            && let Some(data) = item.get_mut("resourceData").and_then(Value::as_object_mut)
        {
            data.insert("toneInfo".into(), tone.clone());
        }
        match dropped {
            Some(index) => {
                record.faults.drop.remove(index);
            }
            None => items.push(item),
        }
    }
    drop(calls);
    inner.bump();
    (items, ended)
}

fn is_call_update(item: &Value) -> bool {
    item.get("changeType").and_then(Value::as_str) == Some("updated")
        && item.pointer("/resourceData/@odata.type").and_then(Value::as_str) == Some("#microsoft.graph.call")
}

/// Delivers one `commsNotifications` body (twice with the duplicate fault, and once more later
/// with the duplicate-later fault), redelivering refused attempts.
async fn deliver(inner: &Arc<Inner>, call: &CallId, url: &str, items: Vec<Value>) {
    let Some((message, faults)) = Message::new(inner, call, url, items) else {
        return;
    };
    let copies = if faults.duplicate { 2 } else { 1 };
    for copy in 0..copies {
        if !faults.delay.is_zero() {
            tokio::time::sleep(faults.delay).await;
        }
        if copy == 0
            && let Some(later) = faults
                .duplicate_later
                .as_ref()
                .filter(|l| copied_later(l, message.items()))
        {
            send_later(inner, message.clone(), later.after);
        }
        redelivery::send(inner, &message).await;
    }
}

/// Whether the duplicate-later fault copies a body with these items.
fn copied_later(later: &DuplicateLater, items: &[Value]) -> bool {
    later.states.is_empty()
        || items
            .iter()
            .filter_map(item_state)
            .any(|state| later.states.contains(&state))
}

fn item_state(item: &Value) -> Option<CallState> {
    item.pointer("/resourceData/state")
        .and_then(Value::as_str)
        .map(CallState::from_wire)
}

/// Sends a copy of `message` `after` from now on its own task: the call's queue goes on, and
/// the copy is sent even if the call ends meanwhile (until the emulator shuts down).
fn send_later(inner: &Arc<Inner>, message: Message, after: Duration) {
    let inner = Arc::clone(inner);
    let mut shutdown = inner.shutdown.subscribe();
    tokio::spawn(async move {
        let copy = async {
            tokio::time::sleep(after).await;
            redelivery::send(&inner, &message).await;
        };
        tokio::select! {
            () = copy => {}
            _ = shutdown.wait_for(|stop| *stop) => {}
        }
    });
}
