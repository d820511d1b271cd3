//! Admission, the dispatcher and the per-call workers: one ordered queue and
//! task per active call; different calls run concurrently.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use graph_comms_model::CallId;
use graph_comms_notify::{Admission, EventReceiver, NotificationEvent};
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::Runtime;
use graph_comms_core::attempt::TransferInfo;
use graph_comms_core::sync::lock;
use graph_comms_core::transfer_machine::{AttemptEffect, AttemptInput};

/// What a call's worker processes, in order.
///
/// Kept small (payloads are boxed): every call's queue reserves a block of 32
/// of these when its worker starts.
#[derive(Debug)]
pub(crate) enum CallEvent {
    /// A notification item, admitted and acknowledged with 202.
    Notification(Box<NotificationEvent>),
    /// An attempt input decided outside the notification stream (the POST's result).
    Input(graph_comms_core::attempt::AttemptId, Box<AttemptInput>),
    /// Hooks of an attempt whose outcome is already committed (superseded).
    Fire(Box<TransferInfo>, Vec<AttemptEffect>),
    /// A deadline of the call may be due.
    Wake,
    /// What happened to a consultation call placed for this call.
    Consultation(Box<(graph_comms_model::CallId, graph_comms_core::decision::ConsultationEvent)>),
}

/// A call's queue, and the notifications admitted for it but not yet handled
/// (shared with its worker, which counts them down without the map's lock).
#[derive(Debug, Default)]
pub(super) struct Slot {
    sender: Option<mpsc::UnboundedSender<CallEvent>>,
    admitted: Arc<AtomicUsize>,
}

impl Runtime {
    fn reserve(&self, workers: &mut HashMap<CallId, Slot>, call_id: &CallId, count: usize) -> bool {
        let admitted = match workers.get(call_id) {
            Some(slot) => &slot.admitted,
            None => &workers.entry(call_id.clone()).or_default().admitted,
        };
        if admitted.load(Ordering::SeqCst) + count > self.max_queued_per_call {
            return false;
        }
        admitted.fetch_add(count, Ordering::SeqCst);
        true
    }
}

impl Admission for Runtime {
    fn admit(&self, events: &[NotificationEvent]) -> bool {
        let mut workers = lock(&self.workers);
        let admitted = match events {
            // The common body: one item, no per-call tally needed.
            [event] => self.reserve(&mut workers, &event.call_id, 1),
            _ => {
                let mut per_call: HashMap<&CallId, usize> = HashMap::new();
                for event in events {
                    *per_call.entry(&event.call_id).or_default() += 1;
                }
                let full = per_call.iter().any(|(call_id, count)| {
                    let queued = workers.get(*call_id).map_or(0, |s| s.admitted.load(Ordering::SeqCst));
                    queued + count > self.max_queued_per_call
                });
                !full
                    && per_call
                        .iter()
                        .all(|(call_id, count)| self.reserve(&mut workers, call_id, *count))
            }
        };
        if !admitted {
            self.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }
}

impl Runtime {
    /// Reads the endpoint's events until it is closed and drained.
    pub(crate) async fn dispatch(self: Arc<Self>, mut events: EventReceiver) {
        while let Some(event) = events.recv().await {
            let call_id = event.call_id.clone();
            self.listeners.publish(&call_id, &event.notification);
            self.route(call_id, CallEvent::Notification(Box::new(event)));
        }
    }

    /// Puts an event on its call's queue, starting the call's worker if needed.
    pub(crate) fn route(self: &Arc<Self>, call_id: CallId, event: CallEvent) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let mut workers = lock(&self.workers);
        let slot = workers.entry(call_id.clone()).or_default();
        let event = match &slot.sender {
            Some(sender) => match sender.send(event) {
                Ok(()) => return,
                Err(mpsc::error::SendError(event)) => event,
            },
            None => event,
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        // The receiver is alive, so this cannot fail.
        let _ = sender.send(event);
        slot.sender = Some(sender);
        let admitted = Arc::clone(&slot.admitted);
        drop(workers);
        tokio::spawn(Arc::clone(self).worker(call_id, receiver, admitted));
    }

    /// The call's chain id from its cached record or a claim stashed for it.
    fn known_chain(&self, call_id: &CallId) -> Option<uuid::Uuid> {
        self.cached(call_id)
            .and_then(|record| record.snapshot.call_chain_id)
            .or_else(|| self.held.stashed_chain(call_id))
    }

    /// A call's worker: handles its events one by one and exits once its queue
    /// stays empty for the idle timeout (or right away once the call is not held).
    async fn worker(
        self: Arc<Self>,
        call_id: CallId,
        mut queue: mpsc::UnboundedReceiver<CallEvent>,
        admitted: Arc<AtomicUsize>,
    ) {
        let idle = self.timings.worker_idle_timeout;
        // Hooks and the Graph requests they make log inside this span; the
        // requests carry the call's id as their `scenario-id`.
        // One spelling of the id (dashed, lower case) in the call's and the webhook's spans.
        let scenario = call_id.dashed();
        // Made with the first event, so the chain id is a field from the span's
        // creation: an exporting layer can derive the call's trace from it then.
        let mut span: Option<tracing::Span> = None;
        loop {
            let next = if self.cache.contains(&call_id) {
                tokio::time::timeout(idle, queue.recv()).await.ok().flatten()
            } else {
                queue.try_recv().ok()
            };
            let event = match next {
                Some(event) => event,
                None => {
                    // Senders send under this lock, so an empty queue here stays empty.
                    let mut workers = lock(&self.workers);
                    match queue.try_recv() {
                        Ok(event) => event,
                        Err(_) => {
                            if let Some(slot) = workers.get_mut(&call_id) {
                                slot.sender = None;
                                if slot.admitted.load(Ordering::SeqCst) == 0 {
                                    workers.remove(&call_id);
                                }
                            }
                            return;
                        }
                    }
                }
            };
            let notification = matches!(event, CallEvent::Notification(_));
            let (chain, tenant) = match &event {
                CallEvent::Notification(item) => (
                    item.notification.call().and_then(|c| c.call_chain_id.as_deref()),
                    Some(&item.tenant_id),
                ),
                _ => (None, None),
            };
            // Under a shared store, a notification whose webhook found another
            // holder is in that holder's inbox already: nothing runs here, so no
            // span either (it would be a trace of its own, without the chain).
            let handed_over = notification && self.sharing.is_some() && !self.held.has_stashed(&call_id);
            let span = match &mut span {
                _ if handed_over => None,
                Some(span) => {
                    // A worker woken first by a timer learns them from a later notification.
                    if let Some(chain) = chain {
                        span.record("call_chain_id", tracing::field::display(chain));
                    }
                    if let Some(tenant) = tenant {
                        span.record("tenant", tracing::field::display(tenant));
                    }
                    Some(span.clone())
                }
                None => {
                    // Graph names the chain only in the first notification: later
                    // workers (here or on another instance) read it from the record.
                    // Looked up only when an `info` span can be wanted at all.
                    let known = match chain {
                        None if tracing::level_enabled!(tracing::Level::INFO) => self.known_chain(&call_id),
                        _ => None,
                    };
                    let chain = chain
                        .as_ref()
                        .map(|c| c as &dyn std::fmt::Display)
                        .or(known.as_ref().map(|c| c as &dyn std::fmt::Display));
                    Some(
                        span.insert(tracing::info_span!(
                            "call",
                            call_id = %scenario,
                            call_chain_id = chain.map(tracing::field::display),
                            tenant = tenant.map(tracing::field::display),
                        ))
                        .clone(),
                    )
                }
            };
            // Boxed: handling an event takes a future of many kilobytes (hooks
            // and Graph requests inline). Held only while an event is handled,
            // an idle worker keeps a small task instead of that much per call.
            let work = Box::pin(async {
                match &self.sharing {
                    Some(sharing) => self.process_shared(sharing, &call_id, event).await,
                    None => self.process(&call_id, event).await,
                }
            });
            match span {
                Some(span) => graph_comms_client::with_scenario_id(&scenario, work.instrument(span)).await,
                None => graph_comms_client::with_scenario_id(&scenario, work).await,
            }
            if notification {
                // Saturating: a bot fed by an endpoint without this admission counts nothing.
                let _ = admitted.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            }
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CallEvent;

    /// Every call's queue reserves a block of 32 events when its worker
    /// starts: an inline `AttemptInput` once made that block 5 KB per call.
    #[test]
    fn call_event_stays_small_so_a_queue_block_does_not_take_kilobytes() {
        let size = std::mem::size_of::<CallEvent>();
        assert!(size <= 48, "CallEvent is {size} bytes");
    }
}
