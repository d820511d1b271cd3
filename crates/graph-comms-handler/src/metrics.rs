//! Counters the runtime keeps, and the snapshot an app exports.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use graph_comms_core::sync::lock;

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls_seen: AtomicU64,
    pub(crate) calls_ended: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) transfers_started: AtomicU64,
    pub(crate) transfers_accepted: AtomicU64,
    pub(crate) transfers_completed: AtomicU64,
    pub(crate) transfers_failed: Mutex<BTreeMap<&'static str, u64>>,
    pub(crate) hook_errors: AtomicU64,
    pub(crate) hook_panics: AtomicU64,
    pub(crate) keep_alives: AtomicU64,
    pub(crate) keep_alive_failures: AtomicU64,
    pub(crate) late_incoming_decisions: AtomicU64,
    pub(crate) hook_timeouts: AtomicU64,
    pub(crate) late_events: AtomicU64,
    pub(crate) calls_evicted: AtomicU64,
    pub(crate) store_conflicts: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) timeout_lookups: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) failure_checks: AtomicU64,
    pub(crate) unsent_checks: AtomicU64,
    pub(crate) relinks: AtomicU64,
    pub(crate) refused_busy: AtomicU64,
    pub(crate) claims: AtomicU64,
    pub(crate) claims_refused: AtomicU64,
    pub(crate) takeovers: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) redeliveries: AtomicU64,
    pub(crate) journal_failures: AtomicU64,
    pub(crate) outage_journaled: AtomicU64,
    pub(crate) outage_replayed: AtomicU64,
}

impl Counters {
    pub(crate) fn transfer_completed(&self) {
        self.transfers_completed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn transfer_failed(&self, reason: &'static str) {
        *lock(&self.transfers_failed).entry(reason).or_default() += 1;
    }
}

/// A snapshot of the bot's counters, for an app's `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct BotMetrics {
    /// Calls this bot holds in memory now.
    pub calls_active: usize,
    /// Calls seen since start.
    pub calls_seen: u64,
    /// Calls that ended since start.
    pub calls_ended: u64,
    /// Per-call workers running now (calls with queued or recent events).
    pub workers_active: usize,
    /// Events queued or being handled now.
    pub events_in_flight: usize,
    /// Notification events handled since start.
    pub events_handled: u64,
    /// Transfer attempts started (POSTs sent).
    pub transfers_started: u64,
    /// Attempts the target accepted (reported or inferred), before their outcome.
    pub transfers_accepted: u64,
    /// Attempts that completed.
    pub transfers_completed: u64,
    /// Attempts that failed, by [`TransferFailure::label`](crate::TransferFailure::label).
    pub transfers_failed: BTreeMap<&'static str, u64>,
    /// Hooks that returned an error.
    pub hook_errors: u64,
    /// Hooks that panicked.
    pub hook_panics: u64,
    /// Successful keep-alive requests.
    pub keep_alives_sent: u64,
    /// Keep-alive requests that failed (a 404, the call being gone, is not
    /// counted: the call ends instead).
    pub keep_alive_failures: u64,
    /// Incoming calls whose decision took longer than the deadline.
    pub late_incoming_decisions: u64,
    /// Hooks dropped for running longer than the hook timeout.
    pub hook_timeouts: u64,
    /// Events that arrived after their attempt's outcome or their call's end
    /// and changed nothing.
    pub late_events: u64,
    /// Calls forgotten after the idle time (unknown or forged ids among them).
    pub calls_evicted: u64,
    /// Store writes refused for a stale version and decided again.
    pub store_conflicts: u64,
    /// Store operations that failed.
    pub store_errors: u64,
    /// Calls looked up in Graph after a transfer timeout.
    pub timeout_lookups: u64,
    /// Notification items delivered again (same message id and place) that
    /// changed nothing.
    pub duplicate_deliveries: u64,
    /// Calls looked up in Graph to check a failure notification that an
    /// earlier attempt could have caused.
    pub failure_checks: u64,
    /// Calls looked up in Graph after a takeover found a `POST /transfer`
    /// not known to be sent (shared stores).
    pub unsent_checks: u64,
    /// Consultation calls linked again after a takeover found an attempt
    /// whose consultation was not known to be linked (shared stores).
    pub consultation_relinks: u64,
    /// Requests answered 503 because a call's queue was full.
    pub refused_busy: u64,
    /// Call leases this instance took (shared stores).
    pub claims: u64,
    /// Claims refused because another instance held the lease.
    pub claims_refused: u64,
    /// Calls claimed from the orphan sweep: their holder stopped (died,
    /// paused, partitioned) with items waiting.
    pub takeovers: u64,
    /// Leases found lost at a commit, renewal or release (this instance
    /// stalled past the lease's time); its writes were refused.
    pub leases_lost: u64,
    /// Hook steps run again from a call's outbox because the instance that
    /// committed them stopped before recording that they had run.
    pub redeliveries: u64,
    /// Requests answered 503 because their events could not be appended to
    /// the shared store.
    pub journal_failures: u64,
    /// Notifications kept in this instance's outage journal because the
    /// shared store was unavailable (answered 202).
    pub outage_journaled: u64,
    /// Notifications from the outage journal appended to the shared store
    /// once it answered again.
    pub outage_replayed: u64,
    /// Notifications in the outage journal now, waiting for the shared store.
    pub outage_journal_items: usize,
}

impl BotMetrics {
    /// All failed attempts, whatever the reason.
    pub fn transfers_failed_total(&self) -> u64 {
        self.transfers_failed.values().sum()
    }
}

impl Counters {
    pub(crate) fn snapshot(
        &self,
        calls_active: usize,
        workers_active: usize,
        events_in_flight: usize,
        outage_journal_items: usize,
    ) -> BotMetrics {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BotMetrics {
            calls_active,
            calls_seen: get(&self.calls_seen),
            calls_ended: get(&self.calls_ended),
            workers_active,
            events_in_flight,
            events_handled: get(&self.events),
            transfers_started: get(&self.transfers_started),
            transfers_accepted: get(&self.transfers_accepted),
            transfers_completed: get(&self.transfers_completed),
            transfers_failed: lock(&self.transfers_failed).clone(),
            hook_errors: get(&self.hook_errors),
            hook_panics: get(&self.hook_panics),
            keep_alives_sent: get(&self.keep_alives),
            keep_alive_failures: get(&self.keep_alive_failures),
            late_incoming_decisions: get(&self.late_incoming_decisions),
            hook_timeouts: get(&self.hook_timeouts),
            late_events: get(&self.late_events),
            calls_evicted: get(&self.calls_evicted),
            store_conflicts: get(&self.store_conflicts),
            store_errors: get(&self.store_errors),
            timeout_lookups: get(&self.timeout_lookups),
            duplicate_deliveries: get(&self.duplicates),
            failure_checks: get(&self.failure_checks),
            unsent_checks: get(&self.unsent_checks),
            consultation_relinks: get(&self.relinks),
            refused_busy: get(&self.refused_busy),
            claims: get(&self.claims),
            claims_refused: get(&self.claims_refused),
            takeovers: get(&self.takeovers),
            leases_lost: get(&self.leases_lost),
            redeliveries: get(&self.redeliveries),
            journal_failures: get(&self.journal_failures),
            outage_journaled: get(&self.outage_journaled),
            outage_replayed: get(&self.outage_replayed),
            outage_journal_items,
        }
    }
}
