//! Listeners: hook code awaiting what Graph says next about its call (an
//! operation's end, a caller's tones) sees each notification as it arrives,
//! beside the call's queue, whose worker may be the very one awaiting. With a
//! shared store, notifications another instance journaled are read from the
//! call's inbox while someone listens (the listener's instance holds the lease,
//! so nobody takes them meanwhile).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use graph_comms_model::{CallId, CommsNotification};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Runtime;
use graph_comms_core::shared_store::InboxItem;
use graph_comms_core::sync::lock;

/// How often a listener reads its call's inbox in the shared store.
const PEEK_INTERVAL: Duration = Duration::from_millis(100);
/// Inbox items one read takes at most.
const PEEK_BATCH: usize = 64;

type Subscribers = Vec<(u64, mpsc::UnboundedSender<Arc<CommsNotification>>)>;

/// Who listens to which call.
#[derive(Debug, Default)]
pub(super) struct Listeners {
    /// Listeners alive, so the dispatcher skips the map while there are none.
    active: AtomicUsize,
    next_id: AtomicU64,
    calls: Mutex<HashMap<CallId, Subscribers>>,
}

impl Listeners {
    /// Hands a notification about `call_id` to the call's listeners.
    pub(super) fn publish(&self, call_id: &CallId, notification: &CommsNotification) {
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        let calls = lock(&self.calls);
        let Some(subscribers) = calls.get(call_id) else {
            return;
        };
        let shared = Arc::new(notification.clone());
        for (_, sender) in subscribers {
            let _ = sender.send(Arc::clone(&shared));
        }
    }

    fn remove(&self, call_id: &CallId, id: u64) {
        let mut calls = lock(&self.calls);
        if let Some(subscribers) = calls.get_mut(call_id) {
            subscribers.retain(|(other, _)| *other != id);
            if subscribers.is_empty() {
                calls.remove(call_id);
            }
        }
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One listener: the call's notifications from its creation on, until dropped.
/// The same notification may come twice (Graph's redeliveries, and with a
/// shared store both from this instance's webhook and from the inbox):
/// readers deduplicate (tones by `sequenceId`, operations by their end).
pub(crate) struct Listener {
    runtime: Weak<Runtime>,
    call_id: CallId,
    id: u64,
    receiver: mpsc::UnboundedReceiver<Arc<CommsNotification>>,
    reader: Option<JoinHandle<()>>,
}

impl Listener {
    /// The next notification about the call; `None` once the bot stopped.
    pub(crate) async fn next(&mut self) -> Option<Arc<CommsNotification>> {
        self.receiver.recv().await
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        if let Some(runtime) = self.runtime.upgrade() {
            runtime.listeners.remove(&self.call_id, self.id);
        }
    }
}

impl Runtime {
    /// Starts listening to `call_id`'s notifications.
    pub(crate) fn listen(self: &Arc<Self>, call_id: &CallId) -> Listener {
        let listeners = &self.listeners;
        let id = listeners.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::unbounded_channel();
        listeners.active.fetch_add(1, Ordering::Relaxed);
        lock(&listeners.calls)
            .entry(call_id.clone())
            .or_default()
            .push((id, sender.clone()));
        let reader = self
            .sharing
            .as_ref()
            .map(|_| tokio::spawn(read_inbox(Arc::downgrade(self), call_id.clone(), sender)));
        Listener {
            runtime: Arc::downgrade(self),
            call_id: call_id.clone(),
            id,
            receiver,
            reader,
        }
    }
}

/// Reads the call's inbox in the shared store until the listener is dropped
/// (it aborts this task), handing on each notification item once. Items are
/// told apart by content, not position: the holder's commits drop handled
/// items from the head meanwhile.
async fn read_inbox(runtime: Weak<Runtime>, call_id: CallId, sender: mpsc::UnboundedSender<Arc<CommsNotification>>) {
    let mut seen: Vec<CommsNotification> = Vec::new();
    loop {
        let peeked = {
            let Some(runtime) = runtime.upgrade() else { return };
            let Some(sharing) = runtime.sharing.as_ref() else {
                return;
            };
            sharing.store.peek(&call_id, 0, PEEK_BATCH).await
        };
        match peeked {
            Ok(items) => {
                for item in items {
                    let InboxItem::Notification { notification, .. } = item else {
                        continue;
                    };
                    if seen.contains(&notification) {
                        continue;
                    }
                    seen.push((*notification).clone());
                    if sender.send(Arc::new(*notification)).is_err() {
                        return;
                    }
                }
            }
            Err(error) => tracing::debug!(call_id = %call_id, "reading the inbox for a listener failed: {error}"),
        }
        tokio::time::sleep(PEEK_INTERVAL).await;
    }
}
