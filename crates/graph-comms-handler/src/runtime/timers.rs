//! Timers come from the records' deadlines. An in-process heap wakes calls this
//! process committed; a periodic sweep asks the store for due calls, which
//! resumes the timers of calls written by a bot that stopped. A wake-up only
//! queues [`CallEvent::Wake`]: the call machine checks what is really due, so
//! stale or duplicate wake-ups are harmless.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Weak;
use std::time::SystemTime;

use graph_comms_model::CallId;
use tokio::sync::mpsc;

use super::Runtime;
use super::queue::CallEvent;
use graph_comms_core::record::CallRecord;

/// Calls the sweep wakes at most per round.
const SWEEP_BATCH: usize = 1_000;

/// Wake a call at this time.
#[derive(Debug)]
pub(super) struct Wake {
    due: tokio::time::Instant,
    call_id: CallId,
}

impl Runtime {
    /// Schedules a wake-up when a commit moved the call's earliest timer.
    pub(super) fn after_commit(&self, before: Option<&CallRecord>, after: &CallRecord) {
        let next = after.lifecycle.deadlines.next_timer();
        let previous = before.and_then(|b| b.lifecycle.deadlines.next_timer());
        if let Some(at) = next.filter(|at| Some(*at) != previous) {
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            let wake = Wake {
                due: tokio::time::Instant::now() + wait,
                call_id: after.call_id().clone(),
            };
            // Fails only when the timer task is gone (shutdown); the sweep covers it.
            let _ = self.timers.send(wake);
        }
    }
}

/// The single timer task: a heap of due times.
pub(super) async fn timer_loop(runtime: Weak<Runtime>, mut requests: mpsc::UnboundedReceiver<Wake>) {
    let mut heap: BinaryHeap<Reverse<(tokio::time::Instant, u64)>> = BinaryHeap::new();
    let mut entries: HashMap<u64, CallId> = HashMap::new();
    let mut sequence = 0u64;
    loop {
        let next_due = heap.peek().map(|Reverse((due, _))| *due);
        let sleep = async {
            match next_due {
                Some(due) => tokio::time::sleep_until(due).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            request = requests.recv() => match request {
                Some(request) => {
                    sequence += 1;
                    heap.push(Reverse((request.due, sequence)));
                    entries.insert(sequence, request.call_id);
                }
                None => return,
            },
            () = sleep => {
                let Some(runtime) = runtime.upgrade() else { return };
                if runtime.is_shutting_down() {
                    return;
                }
                let now = tokio::time::Instant::now();
                while let Some(Reverse((due, id))) = heap.peek().copied() {
                    if due > now {
                        break;
                    }
                    heap.pop();
                    if let Some(call_id) = entries.remove(&id) {
                        runtime.route(call_id, CallEvent::Wake);
                    }
                }
            }
        }
    }
}

/// Asks the store for due calls now and every sweep interval.
pub(super) async fn sweep_loop(runtime: Weak<Runtime>) {
    loop {
        let Some(strong) = runtime.upgrade() else { return };
        if strong.is_shutting_down() {
            return;
        }
        let interval = strong.timings.sweep_interval;
        match strong.store.due(SystemTime::now(), SWEEP_BATCH).await {
            Ok(calls) => {
                for call_id in calls {
                    strong.route(call_id, CallEvent::Wake);
                }
            }
            Err(error) => {
                strong
                    .counters
                    .store_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("call store sweep failed: {error}");
            }
        }
        if let Some(sharing) = &strong.sharing {
            strong.sweep_orphans(sharing).await;
        }
        // Orphans are taken over within the lease time.
        let interval = match &strong.sharing {
            Some(_) => interval.min(strong.timings.lease_ttl / 2),
            None => interval,
        };
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}
