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
//! when it is full, requests are refused with 503 as without it. With a
//! directory ([`BotBuilder::outage_journal_dir`](crate::BotBuilder::outage_journal_dir))
//! each item is also written to a file and synced before the 202 (see
//! [`super::outage_file`]), so a process killed meanwhile leaves its items to
//! the next one; without it they live in this process only.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use graph_comms_model::CallId;
use tokio::sync::Notify;

use super::Runtime;
use super::outage_file::JournalFile;
use super::queue::CallEvent;
use graph_comms_core::shared_store::InboxItem;
use graph_comms_core::sync::lock;

/// Items one replay appends at most (one round trip).
const REPLAY_BATCH: usize = 64;
/// The first pause after a failed replay; doubled up to [`REPLAY_BACKOFF_MAX`].
const REPLAY_BACKOFF: Duration = Duration::from_millis(50);
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The bounded queue of items taken while the store failed.
pub(crate) struct OutageJournal {
    state: std::sync::Mutex<State>,
    capacity: usize,
    /// Wakes the replay task when items arrive.
    arrived: Notify,
}

struct State {
    items: VecDeque<(CallId, InboxItem)>,
    /// Written before the items join `items`, under the same lock, so the
    /// file's order is the queue's.
    file: Option<JournalFile>,
}

/// Why the journal did not take a request's items.
pub(super) enum Refused {
    /// Nothing waits here: append to the store as usual.
    Empty,
    /// Taking them would pass the capacity.
    Full,
    /// The journal file could not be written: no 202 without it.
    Unwritable(String),
}

impl OutageJournal {
    /// A journal of at most `capacity` items; with `file`, starting with the
    /// items it took over from stopped processes.
    fn new(capacity: usize, file: Option<JournalFile>, recovered: Vec<(CallId, InboxItem)>) -> Self {
        let journal = Self {
            state: std::sync::Mutex::new(State {
                items: recovered.into(),
                file,
            }),
            capacity,
            arrived: Notify::new(),
        };
        if journal.len() > 0 {
            journal.arrived.notify_one();
        }
        journal
    }

    /// A journal of at most `capacity` items, kept in memory, and with `dir`
    /// in a file there too (taking over the files of stopped processes).
    pub(crate) fn open(capacity: usize, dir: Option<&std::path::Path>, instance: &str) -> std::io::Result<Self> {
        match dir {
            None => Ok(Self::new(capacity, None, Vec::new())),
            Some(dir) => {
                let opened = JournalFile::open(dir, instance)?;
                Ok(Self::new(capacity, Some(opened.file), opened.recovered))
            }
        }
    }

    /// Items waiting for the store.
    pub(super) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    /// Whether another request's items would fit.
    pub(super) fn has_room(&self) -> bool {
        lock(&self.state).items.len() < self.capacity
    }

    /// Takes all of `items` if others wait already (so they keep their
    /// order), else leaves them to the store.
    pub(super) fn queue_behind(&self, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        let mut state = lock(&self.state);
        if state.items.is_empty() {
            return Err(Refused::Empty);
        }
        self.push(&mut state, items)
    }

    /// Takes all of `items` (the store just failed to), or none.
    pub(super) fn take(&self, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        let mut state = lock(&self.state);
        self.push(&mut state, items)
    }

    fn push(&self, state: &mut State, items: &[(CallId, InboxItem)]) -> Result<(), Refused> {
        if state.items.len() + items.len() > self.capacity {
            return Err(Refused::Full);
        }
        // Synchronous and under the lock: only while the store is down, and
        // the 202 must wait for the disk anyway.
        if let Some(file) = &mut state.file {
            file.write(items)
                .map_err(|error| Refused::Unwritable(format!("the outage journal file cannot be written: {error}")))?;
        }
        state.items.extend(items.iter().cloned());
        self.arrived.notify_one();
        Ok(())
    }

    /// The oldest items, at most `max`, left in place until [`Self::drop_front`].
    fn front(&self, max: usize) -> Vec<(CallId, InboxItem)> {
        lock(&self.state).items.iter().take(max).cloned().collect()
    }

    /// Drops the `count` oldest items, now in the store; empties the file
    /// once nothing waits.
    fn drop_front(&self, count: usize) {
        let mut state = lock(&self.state);
        let count = count.min(state.items.len());
        state.items.drain(..count);
        if state.items.is_empty()
            && let Some(file) = &mut state.file
            && let Err(error) = file.clear()
        {
            // Harmless: the next process appends them again, and copies are recognised.
            tracing::warn!("the outage journal file cannot be emptied: {error}");
        }
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
