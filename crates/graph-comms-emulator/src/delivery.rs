//! One ordered delivery queue per call: scripts in, signed notification POSTs out.

use std::sync::Arc;
use std::time::Duration;

use graph_comms_model::{CallId, CallState};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::SentNotification;
use crate::state::{Inner, Script, Step, lock};

/// First retry backoff; doubles per attempt.
const RETRY_BACKOFF: Duration = Duration::from_millis(20);

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
        let item_state = step
            .item
            .pointer("/resourceData/state")
            .and_then(Value::as_str)
            .map(CallState::from_wire);
        let dropped = item_state.and_then(|s| record.faults.drop.iter().position(|d| *d == s));
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

/// POSTs one `commsNotifications` body (twice with the duplicate fault), retrying failures.
async fn deliver(inner: &Arc<Inner>, call: &CallId, url: &str, items: Vec<Value>) {
    let Some((faults, app, tenant)) = lock(&inner.calls)
        .get(call)
        .map(|c| (c.faults.clone(), c.app_id.clone(), c.tenant_id.clone()))
    else {
        return;
    };
    let body = json!({ "@odata.type": "#microsoft.graph.commsNotifications", "value": items });
    let copies = if faults.duplicate { 2 } else { 1 };
    for _ in 0..copies {
        if !faults.delay.is_zero() {
            tokio::time::sleep(faults.delay).await;
        }
        let mut backoff = RETRY_BACKOFF;
        for attempt in 1..=inner.config.delivery_attempts.max(1) {
            let token = lock(&inner.keys).notification_token(
                &inner.config.issuer,
                app.as_str(),
                tenant.as_str(),
                inner.config.notification_token_lifetime,
            );
            let authorization = match token {
                Ok(token) => format!("Bearer {token}"),
                Err(error) => {
                    tracing::error!(%error, "cannot sign a notification");
                    return;
                }
            };
            let response = inner
                .http
                .post(url)
                .header(http::header::AUTHORIZATION, &authorization)
                .timeout(inner.config.delivery_timeout)
                .json(&body)
                .send()
                .await;
            let status = response.as_ref().ok().map(|r| r.status().as_u16());
            if let Err(error) = &response {
                tracing::debug!(%error, %url, "notification delivery failed");
            }
            if let Some(record) = lock(&inner.calls).get_mut(call) {
                record.notifications.push(SentNotification {
                    body: body.clone(),
                    authorization,
                    attempt,
                    response_status: status,
                    url: url.to_owned(),
                });
            }
            if status.is_some_and(|s| (200..300).contains(&s)) {
                break;
            }
            if attempt < inner.config.delivery_attempts {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
    }
}
