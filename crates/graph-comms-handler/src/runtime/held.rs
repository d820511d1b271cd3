//! The leases this instance holds and what their next write carries: inbox
//! items handled, outbox steps run, per-call data changed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use graph_comms_model::CallId;

use graph_comms_core::shared_store::{Claim, Lease};
use graph_comms_core::sync::lock;

/// The leases this instance holds, by call.
#[derive(Debug, Default)]
pub(super) struct Held {
    leases: std::sync::Mutex<HashMap<CallId, HeldLease>>,
    /// Claims the webhook took with its append, waiting for the call's worker.
    stashed: std::sync::Mutex<HashMap<CallId, (Claim, Instant)>>,
    /// Calls whose work stopped because the store failed, until when this
    /// instance comes back to them. The orphan sweep finds them too, but only
    /// through an index whose write may have failed with the rest.
    unfinished: std::sync::Mutex<HashMap<CallId, Instant>>,
}

#[derive(Debug)]
pub(super) struct HeldLease {
    pub(super) lease: Lease,
    /// Inbox items handled and not yet dropped from the store: the next commit
    /// under the lease drops them in the same atomic step.
    pub(super) consumed: usize,
    /// Outbox steps whose hooks ran (the oldest ones): dropped from the outbox
    /// by the next write under the lease (a commit, or the release).
    pub(super) delivered: usize,
    /// The cached record has changes not written yet (per-call data): the
    /// next write under the lease carries them.
    pub(super) dirty: bool,
    pub(super) lost: bool,
    /// A change under the lease could not be written (the store stayed
    /// unavailable): the items counted in `consumed` since the last commit
    /// are not dropped, so another claim handles them again.
    pub(super) failed: bool,
    /// A hook of the step being run asked to run again ([`crate::RetryLater`]).
    pub(super) retry: bool,
}

impl Held {
    /// The call's work stopped on a store failure: come back to it until `within` has passed.
    pub(super) fn unfinished(&self, call_id: &CallId, within: Duration) {
        lock(&self.unfinished).insert(call_id.clone(), Instant::now() + within);
    }

    /// The calls to come back to now (those whose time is up are dropped).
    pub(super) fn to_resume(&self) -> Vec<CallId> {
        let mut unfinished = lock(&self.unfinished);
        let now = Instant::now();
        unfinished.retain(|_, until| *until > now);
        unfinished.keys().cloned().collect()
    }

    /// The call was claimed again: its work goes on.
    pub(super) fn resumed(&self, call_id: &CallId) {
        lock(&self.unfinished).remove(call_id);
    }

    /// The lease held for a call (unless lost) and the items its next commit drops.
    pub(super) fn for_commit(&self, call_id: &CallId) -> Option<(Lease, usize)> {
        lock(&self.leases)
            .get(call_id)
            .filter(|h| !h.lost)
            .map(|h| (h.lease.clone(), h.consumed))
    }

    /// A commit under `lease` dropped `consumed` items and wrote the cached record.
    pub(super) fn committed(&self, lease: &Lease, consumed: usize) {
        if let Some(held) = lock(&self.leases).get_mut(&lease.call_id).filter(|h| h.lease == *lease) {
            held.consumed = held.consumed.saturating_sub(consumed);
            held.dirty = false;
        }
    }

    /// Marks the cached record as changed without a write; `false` when no
    /// lease is held (then the caller writes itself).
    pub(super) fn defer_write(&self, call_id: &CallId) -> bool {
        match lock(&self.leases).get_mut(call_id).filter(|h| !h.lost) {
            Some(held) => {
                held.dirty = true;
                true
            }
            None => false,
        }
    }

    /// The store said the lease is gone: nothing more is committed under it.
    pub(super) fn lost(&self, lease: &Lease) {
        if let Some(held) = lock(&self.leases).get_mut(&lease.call_id).filter(|h| h.lease == *lease) {
            held.lost = true;
        }
    }

    /// Notes that the hooks of the `count` oldest outbox steps ran; the next
    /// write under the lease drops them from the outbox.
    pub(super) fn delivered(&self, call_id: &CallId, count: usize) {
        if let Some(held) = lock(&self.leases).get_mut(call_id).filter(|h| !h.lost) {
            held.delivered += count;
        }
    }

    /// How many outbox steps the next write under the lease drops.
    pub(super) fn deliveries(&self, call_id: &CallId) -> usize {
        lock(&self.leases).get(call_id).map_or(0, |h| h.delivered)
    }

    /// A write dropped `count` delivered steps from the outbox.
    pub(super) fn recorded(&self, call_id: &CallId, count: usize) {
        if let Some(held) = lock(&self.leases).get_mut(call_id) {
            held.delivered = held.delivered.saturating_sub(count);
        }
    }

    /// A write for the call failed: stop handling its items (see [`HeldLease::failed`]).
    pub(super) fn failed(&self, call_id: &CallId) {
        if let Some(held) = lock(&self.leases).get_mut(call_id) {
            held.failed = true;
        }
    }

    /// A hook asked to run again: its step stays in the outbox (see [`HeldLease::retry`]).
    pub(super) fn request_retry(&self, call_id: &CallId) {
        if let Some(held) = lock(&self.leases).get_mut(call_id).filter(|h| !h.lost) {
            held.retry = true;
        }
    }

    /// Whether a hook of the step just run asked to run again; clears the request.
    pub(super) fn take_retry(&self, call_id: &CallId) -> bool {
        lock(&self.leases)
            .get_mut(call_id)
            .is_some_and(|held| std::mem::take(&mut held.retry))
    }

    /// Whether the lease is held and nothing failed under it: its next item may be handled.
    pub(super) fn can_go_on(&self, call_id: &CallId) -> bool {
        lock(&self.leases).get(call_id).is_some_and(|h| !h.lost && !h.failed)
    }

    pub(super) fn holds(&self, call_id: &CallId) -> bool {
        lock(&self.leases).get(call_id).is_some_and(|h| !h.lost)
    }

    pub(super) fn insert(&self, lease: Lease) {
        let call_id = lease.call_id.clone();
        let held = HeldLease {
            lease,
            consumed: 0,
            delivered: 0,
            dirty: false,
            lost: false,
            failed: false,
            retry: false,
        };
        lock(&self.leases).insert(call_id, held);
    }

    pub(super) fn consume_one(&self, call_id: &CallId) {
        if let Some(held) = lock(&self.leases).get_mut(call_id) {
            held.consumed += 1;
        }
    }

    pub(super) fn remove(&self, call_id: &CallId) -> Option<HeldLease> {
        lock(&self.leases).remove(call_id)
    }

    pub(super) fn stash(&self, claim: Claim) {
        let call_id = claim.lease.call_id.clone();
        lock(&self.stashed).insert(call_id, (claim, Instant::now()));
    }

    /// The webhook's claim of the call, unless it is too old to rely on (its
    /// request was refused after the append, and its lease is about to expire).
    /// Whether the call's webhook stashed a claim for its worker.
    pub(super) fn has_stashed(&self, call_id: &CallId) -> bool {
        lock(&self.stashed).contains_key(call_id)
    }

    /// The chain id in the record of a claim stashed for the call, if any.
    pub(super) fn stashed_chain(&self, call_id: &CallId) -> Option<uuid::Uuid> {
        let stashed = lock(&self.stashed);
        let (claim, _) = stashed.get(call_id)?;
        claim.record.as_ref()?.snapshot.call_chain_id
    }

    pub(super) fn take_stashed(&self, call_id: &CallId, ttl: Duration) -> Option<Claim> {
        let (claim, at) = lock(&self.stashed).remove(call_id)?;
        (at.elapsed() < ttl / 2).then_some(claim)
    }
}
