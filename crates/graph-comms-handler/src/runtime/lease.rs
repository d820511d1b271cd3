//! Sharing calls with other instances: the journal that appends notifications
//! to their call's inbox before 202, and the claim–process–release cycle of
//! the instance that holds a call's lease (what it holds: [`super::held`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use graph_comms_model::CallId;
use graph_comms_notify::{Journal, NotificationEvent};

use super::Runtime;
use super::outage::Refused;
use super::queue::CallEvent;
use crate::report::RuntimeFailure;
use graph_comms_core::error::StoreError;
use graph_comms_core::lifecycle::CallInput;
use graph_comms_core::record::CallRecord;
use graph_comms_core::shared_store::{Claim, InboxItem, Lease, Released, SharedCallStore};
use graph_comms_core::transfer_machine::AttemptInput;

/// Inbox items one claim reads at most; more are read by the next claim.
pub(super) const INBOX_BATCH: usize = 64;
/// Orphaned calls one sweep claims at most.
const ORPHAN_BATCH: usize = 1_000;

/// This instance's part in sharing calls.
pub(crate) struct Sharing {
    pub(crate) store: Arc<dyn SharedCallStore>,
    pub(crate) instance_id: String,
}

impl Runtime {
    /// Whether this runtime shares its calls through a [`SharedCallStore`].
    pub(crate) fn is_shared(&self) -> bool {
        self.sharing.is_some()
    }

    /// False after the shared store failed, until an operation succeeds again.
    pub(crate) fn store_reachable(&self) -> bool {
        self.store_reachable.load(Ordering::SeqCst)
    }

    /// Notes a store result for readiness.
    pub(super) fn observe_store<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Err(StoreError::Unavailable(_)) => self.store_reachable.store(false, Ordering::SeqCst),
            _ => self.store_reachable.store(true, Ordering::SeqCst),
        }
    }

    /// One local event of a call, under the call's lease: claim, handle the
    /// inbox in order and then the event, release; again while items wait.
    pub(super) async fn process_shared(self: &Arc<Self>, sharing: &Sharing, call_id: &CallId, event: CallEvent) {
        let ttl = self.timings.lease_ttl;
        let mut stashed = self.held.take_stashed(call_id, ttl);
        // A notification is in the inbox already. Its webhook either claimed
        // the call (stashed), or found a holder, which sees it when releasing.
        let mut event = match event {
            CallEvent::Notification(_) if stashed.is_none() => return,
            CallEvent::Notification(_) => None,
            other => Some(other),
        };
        loop {
            let claimed = match stashed.take() {
                Some(claim) => Ok(Some(claim)),
                None => {
                    sharing
                        .store
                        .claim(call_id, &sharing.instance_id, ttl, INBOX_BATCH)
                        .await
                }
            };
            self.observe_store(&claimed);
            let claim = match claimed {
                Ok(Some(claim)) => claim,
                Ok(None) => {
                    self.counters.claims_refused.fetch_add(1, Ordering::Relaxed);
                    // The holder sees anything appended before this refusal when it releases.
                    let handed_over = match event.take() {
                        Some(CallEvent::Input(id, input)) => {
                            self.hand_over(sharing, call_id, InboxItem::Attempt { id, input: *input })
                                .await
                        }
                        Some(fire @ CallEvent::Fire(..)) => {
                            self.process(call_id, fire).await;
                            false
                        }
                        _ => false,
                    };
                    if handed_over {
                        continue;
                    }
                    return;
                }
                Err(error) => {
                    // The items stay in the inbox; the orphan sweep claims them once the store is back.
                    self.store_failed(call_id, error);
                    if let Some(fire @ CallEvent::Fire(..)) = event.take() {
                        self.process(call_id, fire).await;
                    }
                    return;
                }
            };
            self.counters.claims.fetch_add(1, Ordering::Relaxed);
            let mut next = self.run_claim(sharing, claim, event.take()).await;
            // Items appended while this instance held the call: the release kept the lease.
            while let Some(claim) = next {
                next = self.run_claim(sharing, claim, None).await;
            }
            return;
        }
    }

    /// Handles a claim's inbox and `event`, then releases; answers the lease
    /// kept for items appended meanwhile (none when the lease was lost: the
    /// new holder has them).
    async fn run_claim(self: &Arc<Self>, sharing: &Sharing, claim: Claim, event: Option<CallEvent>) -> Option<Claim> {
        let Claim { lease, record, inbox } = claim;
        let call_id = lease.call_id.clone();
        self.held.resumed(&call_id);
        self.cache.replace(&call_id, record.clone());
        self.held.insert(lease.clone());
        let renewal = tokio::spawn(renew_loop(
            Arc::downgrade(self),
            Arc::clone(&sharing.store),
            lease.clone(),
            self.timings.lease_ttl,
        ));
        if let Some(record) = record {
            self.redeliver(record).await;
        }
        for item in inbox {
            if !self.held.can_go_on(&call_id) {
                break;
            }
            // Counted before handling, so the item's own commit drops it from the inbox.
            self.held.consume_one(&call_id);
            match item {
                InboxItem::Notification {
                    tenant_id,
                    received_at,
                    notification,
                    delivery,
                } => {
                    let age = SystemTime::now().duration_since(received_at).unwrap_or_default();
                    let received_at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                    match NotificationEvent::new(*notification, tenant_id, received_at) {
                        Ok(event) => {
                            self.on_notification(event.with_delivery(crate::transfer_handle::delivery_of(&delivery)))
                                .await
                        }
                        Err(error) => tracing::warn!(call_id = %call_id, %error, "inbox item names no call: dropped"),
                    }
                }
                InboxItem::Attempt { id, input } => {
                    self.apply(&call_id, CallInput::Attempt { id, input }).await;
                }
                InboxItem::Consultation { consultation, event } => {
                    self.consultation_event(&call_id, &consultation, event).await;
                }
            }
        }
        // After the inbox (a notification about the attempt settles it first),
        // before timers (the attempt's timeout may have passed meanwhile).
        if self.held.holds(&call_id) {
            self.check_unsent(&call_id).await;
        }
        if self.held.holds(&call_id) {
            self.check_unlinked(&call_id).await;
        }
        if let Some(event) = event
            && self.held.holds(&call_id)
        {
            self.process(&call_id, event).await;
        }
        if self.held.holds(&call_id) {
            self.run_leftovers(&call_id).await;
        }
        renewal.abort();
        let cached = self.cache.get(&call_id);
        self.cache.remove(&call_id);
        let mut held = self.held.remove(&call_id).filter(|held| !held.lost)?;
        let failed = held.failed;
        if failed {
            // Handled but not committed: left in the inbox for the next claim.
            held.consumed = 0;
        }
        // Deliveries and data not yet written go with the release, in the same step.
        let record = cached.filter(|_| held.dirty || held.delivered > 0).map(|current| {
            let mut record = CallRecord::clone(&current);
            record_deliveries(&mut record, held.delivered);
            record.version += 1;
            Arc::new(record)
        });
        let (ttl, lease) = (self.timings.lease_ttl, &held.lease);
        let mut released = self
            .with_store_retries(|| {
                sharing
                    .store
                    .release(lease, held.consumed, record.clone(), ttl, INBOX_BATCH)
            })
            .await;
        if let Err(StoreError::Conflict { .. }) = &released {
            // Someone wrote the record without the lease: its hooks may run again later.
            self.counters.store_conflicts.fetch_add(1, Ordering::Relaxed);
            released = self
                .with_store_retries(|| sharing.store.release(lease, held.consumed, None, ttl, INBOX_BATCH))
                .await;
        }
        self.observe_store(&released);
        match released {
            Ok(Released::Free) => None,
            // After a failed write, the items wait for the lease to expire and
            // the orphan sweep to claim them: a store that keeps failing is not
            // retried in a tight loop.
            Ok(Released::Kept(_)) if failed => {
                self.come_back_later(&call_id);
                None
            }
            Ok(Released::Kept(claim)) => Some(claim),
            Err(error) => {
                if matches!(error, StoreError::LeaseLost { .. }) {
                    self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
                }
                self.store_failed(&call_id, error);
                None
            }
        }
    }

    /// Runs again the hook steps in the call's outbox: the instance that
    /// committed them stopped before recording that they ran.
    async fn redeliver(self: &Arc<Self>, record: Arc<CallRecord>) {
        if record.outbox.is_empty() {
            return;
        }
        let steps = record.outbox.clone();
        self.counters
            .redeliveries
            .fetch_add(steps.len() as u64, Ordering::Relaxed);
        tracing::info!(
            call_id = %record.call_id(),
            steps = steps.len(),
            "running hooks again: the instance that committed them stopped first"
        );
        let (call_id, tenant) = (record.call_id().clone(), record.snapshot.tenant_id.clone());
        let ctx = self.context(&call_id, &tenant, Some(record)).redelivery();
        self.run_steps(&ctx, steps, None).await;
    }

    /// A `POST /transfer` the instance that decided it may not have sent (it
    /// stopped first): Graph is asked about the call, and the attempt fails as
    /// unconfirmed if the call is `established` (no transfer under way). It is
    /// never sent again: Graph cannot tell "never sent" from "sent and already
    /// declined", and a second POST could transfer twice.
    async fn check_unsent(self: &Arc<Self>, call_id: &CallId) {
        let Some(record) = self.cache.get(call_id) else {
            return;
        };
        let Some(attempt) = record.pending_attempt().filter(|a| a.sending) else {
            return;
        };
        // Younger than half a lease, its POST may still be on its way (older
        // ones are not sent: see `post_transfer`). The orphan sweep comes back.
        let age = graph_comms_core::wall::now()
            .duration_since(attempt.info.started_at)
            .unwrap_or_default();
        if age <= self.timings.lease_ttl / 2 {
            return;
        }
        let id = attempt.info.id;
        let lookup = self.look_up(call_id, &record.snapshot.tenant_id).await;
        self.counters.unsent_checks.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_id = %call_id, attempt = %id, ?lookup, "transfer not known to be sent by the instance that stopped; asked Graph");
        let input = AttemptInput::SendUnconfirmed(lookup);
        self.apply(call_id, CallInput::Attempt { id, input }).await;
    }

    /// A consultation the instance that started its attempt may not have
    /// linked (it stopped first, or its write failed): linked again, which
    /// also hands over what the consultation went through meanwhile. Linking
    /// twice is harmless: the attempt takes only the first answer or end.
    async fn check_unlinked(self: &Arc<Self>, call_id: &CallId) {
        let Some(record) = self.cache.get(call_id) else {
            return;
        };
        let Some(attempt) = record
            .pending_attempt()
            .filter(|a| a.linking && a.machine.is_consulting())
        else {
            return;
        };
        let Some(consultation) = attempt.info.request.transfer_target.replaces_call_id.clone() else {
            return;
        };
        let (id, tenant) = (attempt.info.id, record.snapshot.tenant_id.clone());
        self.counters.relinks.fetch_add(1, Ordering::Relaxed);
        tracing::info!(call_id = %call_id, attempt = %id, consultation = %consultation, "linking the consultation call again: the instance that placed it may not have");
        let ctx = self.context(call_id, &tenant, Some(record));
        match self.link_to_parent(&ctx, &consultation).await {
            Ok(()) => self.note_linked(call_id, &tenant, id).await,
            Err(error) => self.store_failed(call_id, error),
        }
    }

    /// Runs outbox steps committed but not carried out by this claim: a write
    /// that reached the store but whose answer was lost, decided again as a
    /// duplicate, leaves its steps in the outbox.
    async fn run_leftovers(self: &Arc<Self>, call_id: &CallId) {
        let Some(record) = self.cache.get(call_id) else {
            return;
        };
        let delivered = self.held.deliveries(call_id);
        let Some(steps) = record.outbox.get(delivered..).filter(|s| !s.is_empty()) else {
            return;
        };
        let steps = steps.to_vec();
        self.counters
            .redeliveries
            .fetch_add(steps.len() as u64, Ordering::Relaxed);
        tracing::info!(call_id = %call_id, steps = steps.len(), "running committed hook steps left in the outbox");
        let tenant = record.snapshot.tenant_id.clone();
        let ctx = self.context(call_id, &tenant, Some(record)).redelivery();
        self.run_steps(&ctx, steps, None).await;
    }

    /// Appends an item for the lease holder; `true` if it was appended (then
    /// claim again: the holder may have released meanwhile).
    pub(super) async fn hand_over(&self, sharing: &Sharing, call_id: &CallId, item: InboxItem) -> bool {
        let items = [(call_id.clone(), item)];
        match self.with_store_retries(|| sharing.store.append(&items)).await {
            Ok(()) => true,
            Err(error) => {
                self.store_failed(call_id, error);
                false
            }
        }
    }

    /// A commit under a lease was refused for its token.
    pub(super) fn lease_lost(&self, lease: &Lease) {
        self.counters.leases_lost.fetch_add(1, Ordering::Relaxed);
        self.held.lost(lease);
        self.cache.remove(&lease.call_id);
        tracing::warn!(call_id = %lease.call_id, "lease lost: another instance holds the call now");
    }

    /// Claims calls whose inbox has items and no live lease, and comes back
    /// to the calls whose work here stopped on a store failure.
    pub(super) async fn sweep_orphans(self: &Arc<Self>, sharing: &Sharing) {
        let orphans = sharing.store.orphans(ORPHAN_BATCH).await;
        self.observe_store(&orphans);
        match orphans {
            Ok(calls) => {
                for call_id in calls {
                    self.counters.takeovers.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(call_id = %call_id, "taking over a call whose holder stopped");
                    self.route(call_id, CallEvent::Wake);
                }
            }
            Err(error) => {
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("orphan sweep failed: {error}");
            }
        }
        for call_id in self.held.to_resume() {
            self.route(call_id, CallEvent::Wake);
        }
    }
}

/// Renews a lease every third of its time until aborted or lost.
async fn renew_loop(runtime: std::sync::Weak<Runtime>, store: Arc<dyn SharedCallStore>, lease: Lease, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let renewed = store.renew(&lease, ttl).await;
        let Some(runtime) = runtime.upgrade() else { return };
        runtime.observe_store(&renewed);
        match renewed {
            Ok(()) => {}
            Err(StoreError::LeaseLost { .. }) => {
                runtime.lease_lost(&lease);
                return;
            }
            // The next try may reach the store; a commit meanwhile is fenced anyway.
            Err(error) => tracing::warn!(call_id = %lease.call_id, "lease renewal failed: {error}"),
        }
    }
}

#[async_trait::async_trait]
impl Journal for Runtime {
    async fn record(&self, events: &[NotificationEvent]) -> Result<(), String> {
        let Some(sharing) = &self.sharing else {
            return Ok(());
        };
        if self.stall.as_ref().is_some_and(|s| s.just_resumed()) {
            // Held across a pause: maybe handled elsewhere already; Graph delivers it again.
            return Err("this instance was paused longer than half a lease; deliver again".to_owned());
        }
        let items: Vec<(CallId, InboxItem)> = events
            .iter()
            .map(|event| {
                let received_at = SystemTime::now()
                    .checked_sub(event.received_at.elapsed())
                    .unwrap_or_else(SystemTime::now);
                let item = InboxItem::Notification {
                    tenant_id: event.tenant_id.clone(),
                    received_at,
                    notification: Box::new(event.notification.clone()),
                    delivery: crate::transfer_handle::stored_delivery(&event.delivery),
                };
                (event.call_id.clone(), item)
            })
            .collect();
        let outage = self.outage.as_deref();
        match outage.map(|journal| journal.queue_behind(&items)) {
            Some(Ok(())) => return self.took_into_journal(items.len()),
            Some(Err(refused @ (Refused::Full | Refused::Unwritable(_)))) => return Err(self.journal_refused(refused)),
            Some(Err(Refused::Empty)) | None => {}
        }
        let appended = sharing
            .store
            .append_and_claim(&items, &sharing.instance_id, self.timings.lease_ttl, INBOX_BATCH)
            .await;
        self.observe_store(&appended);
        if let (Err(StoreError::Unavailable(error)), Some(journal)) = (&appended, outage) {
            return match journal.take(&items) {
                Ok(()) => {
                    tracing::warn!(
                        "the shared store is unavailable ({error}); notifications are kept in this \
                         instance's outage journal and appended when it answers again"
                    );
                    self.took_into_journal(items.len())
                }
                Err(refused) => Err(self.journal_refused(refused)),
            };
        }
        appended
            .map(|claims| {
                self.counters.claims_refused.fetch_add(
                    count_calls(events).saturating_sub(claims.len()) as u64,
                    Ordering::Relaxed,
                );
                for claim in claims {
                    self.held.stash(claim);
                }
            })
            .map_err(|error| {
                self.counters.journal_failures.fetch_add(1, Ordering::Relaxed);
                self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                let failure = RuntimeFailure::Store(error);
                tracing::warn!(%failure, "notifications not appended to the shared store: answered 503");
                failure.to_string()
            })
    }
}

impl Runtime {
    fn took_into_journal(&self, count: usize) -> Result<(), String> {
        self.counters
            .outage_journaled
            .fetch_add(count as u64, Ordering::Relaxed);
        Ok(())
    }

    fn journal_refused(&self, refused: Refused) -> String {
        self.counters.journal_failures.fetch_add(1, Ordering::Relaxed);
        let message = match refused {
            Refused::Unwritable(error) => format!("the shared store is unavailable and {error}: answered 503"),
            Refused::Full | Refused::Empty => {
                "the shared store is unavailable and the outage journal is full: answered 503".to_owned()
            }
        };
        tracing::warn!("{message}");
        message
    }
}

/// How many distinct calls `events` are about.
fn count_calls(events: &[NotificationEvent]) -> usize {
    match events {
        [] | [_] => events.len(),
        _ => {
            let calls: std::collections::HashSet<&CallId> = events.iter().map(|e| &e.call_id).collect();
            calls.len()
        }
    }
}

/// Drops the `delivered` oldest steps from the record's outbox.
pub(super) fn record_deliveries(record: &mut CallRecord, delivered: usize) {
    let delivered = delivered.min(record.outbox.len());
    record.outbox.drain(..delivered);
}
