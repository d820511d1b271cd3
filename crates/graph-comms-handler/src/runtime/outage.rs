//! Notifications taken while the shared store is unreachable.
//!
//! Graph retries a refused notification for a time it does not document, and
//! an incoming call whose notification is refused for long is never answered.
//! So while the store fails, the webhook keeps the notifications here in
//! arrival order and answers 202, and a replay task appends them to their
//! calls' inboxes once the store answers again: the same append and claim a
//! webhook makes, only later. Nothing is handled from here directly, so the
//! lease still decides who handles a call, and an item appended twice (a
//! replay whose answer was lost) is recognised as a copy by its delivery key.
//!
//! While anything waits here, new notifications join the queue behind it, so
//! this instance appends them in the order it took them. The queue is bounded
//! ([`BotBuilder::outage_journal_capacity`](crate::BotBuilder::outage_journal_capacity));
//! when it is full, requests are refused with 503 as without it. It lives in
//! this process: an instance killed while the store is down loses what it
//! holds here.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graph_comms_model::CallId;
use tokio::sync::Notify;

use super::Runtime;
use super::queue::CallEvent;
use crate::shared::InboxItem;
use crate::sync::lock;

/// Items one replay appends at most (one round trip).
const REPLAY_BATCH: usize = 64;
/// The first pause after a failed replay; doubled up to [`REPLAY_BACKOFF_MAX`].
const REPLAY_BACKOFF: Duration = Duration::from_millis(50);
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The bounded queue of items taken while the store failed.
pub(super) struct OutageJournal {
    items: std::sync::Mutex<VecDeque<(CallId, InboxItem)>>,
    capacity: usize,
    /// Wakes the replay task when items arrive.
    arrived: Notify,
}

/// Why the journal did not take a request's items.
pub(super) enum Refused {
    /// Nothing waits here: append to the store as usual.
    Empty,
    /// Taking them would pass the capacity.
    Full,
}

impl OutageJournal {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            items: std::sync::Mutex::new(VecDeque::new()),
            capacity,
            arrived: Notify::new(),
        }
    }

    /// Items waiting for the store.
    pub(super) fn len(&self) -> usize {
        lock(&self.items).len()
    }

    /// Whether another request's items would fit.
    pub(super) fn has_room(&self) -> bool {
        lock(&self.items).len() < self.capacity
    }

    /// Takes all of `items` if others wait already (so they keep their
    /// order), else leaves them to the store.
    pub(super) fn queue_behind(&self, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        let mut queue = lock(&self.items);
        if queue.is_empty() {
            return Err(Refused::Empty);
        }
        self.push(&mut queue, items)
    }

    /// Takes all of `items` (the store just failed to), or none when full.
    pub(super) fn take(&self, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        let mut queue = lock(&self.items);
        self.push(&mut queue, items)
    }

    fn push(&self, queue: &mut VecDeque<(CallId, InboxItem)>, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        if queue.len() + items.len() > self.capacity {
            return Err(Refused::Full);
        }
        queue.extend(items.iter().cloned());
        self.arrived.notify_one();
        Ok(())
    }

    /// The oldest items, at most `max`, left in place until [`Self::drop_front`].
    fn front(&self, max: usize) -> Vec<(CallId, InboxItem)> {
        lock(&self.items).iter().take(max).cloned().collect()
    }

    fn drop_front(&self, count: usize) {
        let mut queue = lock(&self.items);
        let count = count.min(queue.len());
        queue.drain(..count);
    }
}

/// Appends the journal's items to the store, oldest first, until the runtime
/// is dropped; each call claimed on the way is handled as a webhook's claim is.
pub(super) async fn replay_loop(runtime: std::sync::Weak<Runtime>, journal: Arc<OutageJournal>) {
    let mut backoff = REPLAY_BACKOFF;
    loop {
        if journal.len() == 0 {
            journal.arrived.notified().await;
            continue;
        }
        let Some(runtime) = runtime.upgrade() else { return };
        let Some(sharing) = &runtime.sharing else { return };
        let batch = journal.front(REPLAY_BATCH);
        let appended = sharing
            .store
            .append_and_claim(
                &batch,
                &sharing.instance_id,
                runtime.timings.lease_ttl,
                super::lease::INBOX_BATCH,
            )
            .await;
        runtime.observe_store(&appended);
        match appended {
            Ok(claims) => {
                journal.drop_front(batch.len());
                runtime
                    .counters
                    .outage_replayed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                backoff = REPLAY_BACKOFF;
                if journal.len() == 0 {
                    tracing::info!("the shared store answers again: every notification taken meanwhile is appended");
                }
                for claim in claims {
                    let call_id = claim.lease.call_id.clone();
                    runtime.held.stash(claim);
                    runtime.route(call_id, CallEvent::Wake);
                }
            }
            Err(error) => {
                drop(runtime);
                tracing::debug!(waiting = journal.len(), "outage journal replay failed: {error}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REPLAY_BACKOFF_MAX);
            }
        }
    }
}
