//! Operation and round-trip counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Calls and Redis round trips of one kind of operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// How many times the operation ran.
    pub calls: u64,
    /// How many requests it sent to Redis (a pipeline is one).
    pub round_trips: u64,
}

impl OpStats {
    /// Round trips per call (0 before the first call).
    pub fn round_trips_per_call(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            // Counters stay far below 2^53.
            #[allow(clippy::cast_precision_loss)]
            let ratio = self.round_trips as f64 / self.calls as f64;
            ratio
        }
    }
}

/// A snapshot of a [`RedisCallStore`](crate::RedisCallStore)'s counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreMetrics {
    /// `load`.
    pub load: OpStats,
    /// `save`.
    pub save: OpStats,
    /// `delete`.
    pub delete: OpStats,
    /// `due`.
    pub due: OpStats,
    /// `count`.
    pub count: OpStats,
    /// `append` (inbox items before 202).
    pub append: OpStats,
    /// `claim`.
    pub claim: OpStats,
    /// `commit` (writes under a lease).
    pub commit: OpStats,
    /// `release`.
    pub release: OpStats,
    /// `renew`.
    pub renew: OpStats,
    /// `orphans`.
    pub orphans: OpStats,
    /// `peek` (inbox reads while a holder awaits a notification).
    pub peek: OpStats,
    /// Writes under a lease refused because its token no longer held it.
    pub fenced: u64,
    /// Writes and deletes refused for a stale version.
    pub conflicts: u64,
    /// Stale due-index entries fixed by `due` (record gone, or not due yet).
    pub index_repairs: u64,
    /// Index updates Redis refused (the record write itself went ahead).
    pub index_errors: u64,
    /// Scripts sent in full because Redis did not have them cached (`NOSCRIPT`).
    pub script_loads: u64,
}

impl StoreMetrics {
    /// Round trips of every operation.
    pub fn round_trips(&self) -> u64 {
        [
            self.load,
            self.save,
            self.delete,
            self.due,
            self.count,
            self.append,
            self.claim,
            self.commit,
            self.release,
            self.renew,
            self.orphans,
            self.peek,
        ]
        .iter()
        .map(|op| op.round_trips)
        .sum()
    }
}

#[derive(Debug, Default)]
pub(crate) struct OpCounter {
    calls: AtomicU64,
    round_trips: AtomicU64,
}

impl OpCounter {
    pub(crate) fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn round_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> OpStats {
        OpStats {
            calls: self.calls.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) load: OpCounter,
    pub(crate) save: OpCounter,
    pub(crate) delete: OpCounter,
    pub(crate) due: OpCounter,
    pub(crate) count: OpCounter,
    pub(crate) append: OpCounter,
    pub(crate) claim: OpCounter,
    pub(crate) commit: OpCounter,
    pub(crate) release: OpCounter,
    pub(crate) renew: OpCounter,
    pub(crate) orphans: OpCounter,
    pub(crate) peek: OpCounter,
    pub(crate) fenced: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) index_repairs: AtomicU64,
    pub(crate) index_errors: AtomicU64,
    pub(crate) script_loads: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> StoreMetrics {
        StoreMetrics {
            load: self.load.snapshot(),
            save: self.save.snapshot(),
            delete: self.delete.snapshot(),
            due: self.due.snapshot(),
            count: self.count.snapshot(),
            append: self.append.snapshot(),
            claim: self.claim.snapshot(),
            commit: self.commit.snapshot(),
            release: self.release.snapshot(),
            renew: self.renew.snapshot(),
            orphans: self.orphans.snapshot(),
            peek: self.peek.snapshot(),
            fenced: self.fenced.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            index_repairs: self.index_repairs.load(Ordering::Relaxed),
            index_errors: self.index_errors.load(Ordering::Relaxed),
            script_loads: self.script_loads.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}
