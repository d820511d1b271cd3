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

    pub(crate) fn round_trips(&self, n: usize) {
        self.round_trips.fetch_add(n as u64, Ordering::Relaxed);
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

/// Reads one number of an operation's stats.
type OpValue = fn(&OpStats) -> u64;

/// The store's counters in a `prometheus_client` registry, read at scrape time.
#[derive(Debug)]
pub(crate) struct StoreCollector {
    pub(crate) store: crate::RedisCallStore,
}

impl prometheus_client::collector::Collector for StoreCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::MetricType;
        use prometheus_client::metrics::counter::ConstCounter;

        let m = self.store.metrics();
        let ops = [
            ("load", m.load),
            ("save", m.save),
            ("delete", m.delete),
            ("due", m.due),
            ("count", m.count),
            ("append", m.append),
            ("claim", m.claim),
            ("commit", m.commit),
            ("release", m.release),
            ("renew", m.renew),
            ("orphans", m.orphans),
            ("peek", m.peek),
        ];
        let families: [(&str, &str, OpValue); 2] = [
            (
                "graph_comms_redis_operations",
                "Call store operations on Redis, by operation.",
                |op| op.calls,
            ),
            (
                "graph_comms_redis_round_trips",
                "Redis round trips, by call store operation (a pipeline is one).",
                |op| op.round_trips,
            ),
        ];
        for (name, help, value) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (op, stats) in &ops {
                ConstCounter::new(value(stats)).encode(family.encode_family(&[("op", *op)])?)?;
            }
        }
        let counters = [
            (
                "graph_comms_redis_conflicts",
                "Redis compare-and-set writes refused for a stale version.",
                m.conflicts,
            ),
            (
                "graph_comms_redis_fenced_writes",
                "Writes under a lease refused because its token no longer held the lease.",
                m.fenced,
            ),
            (
                "graph_comms_redis_index_repairs",
                "Stale due-index entries repaired.",
                m.index_repairs,
            ),
            (
                "graph_comms_redis_index_errors",
                "Due-index updates that failed (the record write itself went ahead).",
                m.index_errors,
            ),
            (
                "graph_comms_redis_script_loads",
                "Lua scripts sent in full because Redis had not cached them.",
                m.script_loads,
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    use crate::{RedisCallStore, RedisStoreConfig};

    #[tokio::test]
    async fn registers_every_operation_and_counter_without_a_round_trip() {
        // Lazy: nothing listens on port 9, and a scrape never connects.
        let store = RedisCallStore::connect_lazy(RedisStoreConfig::new("redis://127.0.0.1:9/")).expect("valid config");
        let mut registry = Registry::default();
        store.register_metrics(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        for op in ["load", "save", "commit", "peek"] {
            assert!(
                text.contains(&format!("graph_comms_redis_operations_total{{op=\"{op}\"}} 0\n")),
                "{text}"
            );
            assert!(
                text.contains(&format!("graph_comms_redis_round_trips_total{{op=\"{op}\"}} 0\n")),
                "{text}"
            );
        }
        for name in [
            "conflicts",
            "fenced_writes",
            "index_repairs",
            "index_errors",
            "script_loads",
        ] {
            assert!(
                text.contains(&format!("# TYPE graph_comms_redis_{name} counter\n")),
                "{text}"
            );
            assert!(
                text.contains(&format!("\ngraph_comms_redis_{name}_total 0\n")),
                "{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
