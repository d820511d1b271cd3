//! The receptionist's own metrics (prefix `transfer_bot_`), in the
//! `prometheus_client` registry `/metrics` encodes.
//!
//! Only what the app's policy knows: how calls ended, transfers by routing
//! mode, targets given up on before a transfer attempt, Graph latency by
//! action, and this instance. Everything the framework counts (calls,
//! transfer outcomes, notifications, hooks, the call store) it registers
//! itself under `graph_comms_` ([`Bot::register_metrics`](graph_comms_handler::Bot::register_metrics)).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds (seconds) of the Graph request latency buckets.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How a call ended, as the receptionist saw it ([`CallOutcome::label`](crate::bot::CallOutcome::label)).
pub const CALL_OUTCOMES: [&str; 3] = ["transferred", "apologised", "dropped"];

/// Routing modes ([`TransferMode::as_str`](crate::routing::TransferMode::as_str)).
pub const TRANSFER_MODES: [&str; 2] = ["blind", "consultative"];

/// Why the receptionist moved past a target without a transfer attempt failing
/// in the framework (a consultation that ends first is such a failure:
/// `graph_comms_transfers_total{reason="consultation_ended"}`).
pub const SKIP_REASONS: [&str; 1] = ["not_started"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstanceLabels {
    instance_id: String,
    store: &'static str,
}

type LatencyFamily = Family<ActionLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The app's counters and the Graph latency histogram. Cheap to update from
/// any task; register them once with [`Metrics::register`].
#[derive(Debug, Clone)]
pub struct Metrics {
    calls_ended: Family<OutcomeLabels, Counter>,
    transfers_started: Family<ModeLabels, Counter>,
    targets_skipped: Family<ReasonLabels, Counter>,
    graph_latency: LatencyFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics at zero; every known label value has its series from the start.
    pub fn new() -> Self {
        let metrics = Self {
            calls_ended: Family::default(),
            transfers_started: Family::default(),
            targets_skipped: Family::default(),
            graph_latency: Family::new_with_constructor(latency_histogram),
        };
        for outcome in CALL_OUTCOMES {
            let _ = metrics.calls_ended.get_or_create(&OutcomeLabels { outcome });
        }
        for mode in TRANSFER_MODES {
            let _ = metrics.transfers_started.get_or_create(&ModeLabels { mode });
        }
        for reason in SKIP_REASONS {
            let _ = metrics.targets_skipped.get_or_create(&ReasonLabels { reason });
        }
        metrics
    }

    /// Adds the app's families to `registry` under `transfer_bot_`, with
    /// `transfer_bot_instance_info{instance_id, store}`.
    pub fn register(&self, registry: &mut Registry, instance_id: &str, store: &'static str) {
        let registry = registry.sub_registry_with_prefix("transfer_bot");
        registry.register(
            "calls_ended",
            "Calls the receptionist finished with, by outcome (transferred, apologised, dropped)",
            self.calls_ended.clone(),
        );
        registry.register(
            "transfers_started",
            "Transfers the receptionist started, by routing mode (blind, consultative)",
            self.transfers_started.clone(),
        );
        registry.register(
            "targets_skipped",
            "Targets the receptionist moved past without a transfer attempt failing in the framework, by reason",
            self.targets_skipped.clone(),
        );
        registry.register_with_unit(
            "graph_request_duration",
            "Latency of Graph requests, by action",
            Unit::Seconds,
            self.graph_latency.clone(),
        );
        registry.register(
            "instance",
            "This instance and its call store",
            Info::new(InstanceLabels {
                instance_id: instance_id.to_owned(),
                store,
            }),
        );
    }

    /// The receptionist is done with a call (one of [`CALL_OUTCOMES`]).
    pub fn call_ended(&self, outcome: &'static str) {
        self.calls_ended.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// A transfer started in this mode (one of [`TRANSFER_MODES`]).
    pub fn transfer_started(&self, mode: &'static str) {
        self.transfers_started.get_or_create(&ModeLabels { mode }).inc();
    }

    /// The receptionist moved past a target for this reason (one of [`SKIP_REASONS`]).
    pub fn target_skipped(&self, reason: &'static str) {
        self.targets_skipped.get_or_create(&ReasonLabels { reason }).inc();
    }

    /// Records one Graph request's latency.
    pub fn graph_request(&self, action: &'static str, elapsed: Duration) {
        self.graph_latency
            .get_or_create(&ActionLabels { action })
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn encodes_counters_histograms_and_the_instance() {
        let metrics = Metrics::new();
        metrics.transfer_started("blind");
        metrics.call_ended("transferred");
        metrics.target_skipped("not_started");
        metrics.graph_request("transfer", Duration::from_millis(30));
        let mut registry = Registry::default();
        metrics.register(&mut registry, "bot-a", "memory");
        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("# TYPE transfer_bot_transfers_started counter\n"),
            "{text}"
        );
        assert!(
            text.contains("transfer_bot_transfers_started_total{mode=\"blind\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("transfer_bot_transfers_started_total{mode=\"consultative\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("transfer_bot_calls_ended_total{outcome=\"transferred\"} 1\n"));
        assert!(text.contains("transfer_bot_calls_ended_total{outcome=\"dropped\"} 0\n"));
        assert!(text.contains("transfer_bot_targets_skipped_total{reason=\"not_started\"} 1\n"));
        assert!(
            text.contains("# UNIT transfer_bot_graph_request_duration_seconds seconds\n"),
            "{text}"
        );
        assert!(
            text.contains("transfer_bot_graph_request_duration_seconds_bucket{le=\"0.025\",action=\"transfer\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("transfer_bot_graph_request_duration_seconds_bucket{le=\"0.05\",action=\"transfer\"} 1\n")
        );
        assert!(text.contains("transfer_bot_graph_request_duration_seconds_count{action=\"transfer\"} 1\n"));
        assert!(text.contains("transfer_bot_instance_info{instance_id=\"bot-a\",store=\"memory\"} 1\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
