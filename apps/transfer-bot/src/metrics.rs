//! Counters and the Graph latency histogram, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the Graph request latency buckets.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Everything the bot counts. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Series, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

/// Notification deliveries with one verdict, as the endpoint counted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `accepted` or `rejected`.
    pub verdict: &'static str,
    /// Why it was rejected (empty when accepted).
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// A metric name plus its label pairs.
type Series = (&'static str, Vec<(&'static str, String)>);

#[derive(Debug, Clone)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; LATENCY_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }
}

/// Help text per metric, and whether it is a counter.
const HELP: &[(&str, &str)] = &[
    ("transfer_bot_calls_total", "Incoming calls offered to the bot."),
    (
        "transfer_bot_calls_ended_total",
        "Calls the bot finished with, by how they ended.",
    ),
    (
        "transfer_bot_transfers_started_total",
        "Transfer attempts started, by mode.",
    ),
    (
        "transfer_bot_transfers_accepted_total",
        "Transfer attempts the target accepted.",
    ),
    (
        "transfer_bot_transfers_total",
        "Transfer attempts finished, by outcome and failure reason.",
    ),
    (
        "transfer_bot_notifications_total",
        "Notification deliveries, by verdict.",
    ),
];

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters, still usable.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, name: &'static str, labels: Vec<(&'static str, String)>) {
        *lock(&self.counters).entry((name, labels)).or_default() += 1;
    }

    fn get(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        let key: Series = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
        lock(&self.counters).get(&key).copied().unwrap_or_default()
    }

    /// An incoming call arrived.
    pub fn call_received(&self) {
        self.add("transfer_bot_calls_total", Vec::new());
    }

    /// The bot is done with a call: `transferred` or `apologised`.
    pub fn call_ended(&self, outcome: &str) {
        self.add("transfer_bot_calls_ended_total", vec![("outcome", outcome.to_owned())]);
    }

    /// A transfer attempt started.
    pub fn transfer_started(&self, mode: &str) {
        self.add("transfer_bot_transfers_started_total", vec![("mode", mode.to_owned())]);
    }

    /// A target accepted a transfer.
    pub fn transfer_accepted(&self) {
        self.add("transfer_bot_transfers_accepted_total", Vec::new());
    }

    /// A transfer attempt completed.
    pub fn transfer_completed(&self) {
        self.add(
            "transfer_bot_transfers_total",
            vec![("outcome", "completed".into()), ("reason", String::new())],
        );
    }

    /// A transfer attempt failed for this reason (a short, stable label).
    pub fn transfer_failed(&self, reason: &str) {
        self.add(
            "transfer_bot_transfers_total",
            vec![("outcome", "failed".into()), ("reason", reason.to_owned())],
        );
    }

    /// Completed transfers so far.
    pub fn transfers_completed(&self) -> u64 {
        self.get(
            "transfer_bot_transfers_total",
            &[("outcome", "completed"), ("reason", "")],
        )
    }

    /// Calls received so far.
    pub fn calls_received(&self) -> u64 {
        self.get("transfer_bot_calls_total", &[])
    }

    /// Records one Graph request's latency.
    pub fn graph_request(&self, action: &str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut latency = lock(&self.latency);
        let histogram = latency.entry(action.to_owned()).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= *bound {
                *bucket += 1;
            }
        }
        histogram.sum += seconds;
        histogram.count += 1;
    }

    /// The Prometheus text exposition. `notifications` are (verdict, reason,
    /// count) read from the notification endpoint at scrape time; `gauges` are
    /// (name, help, value) read from the bot runtime.
    pub fn render(
        &self,
        notifications: &[Verdict],
        framework: &[(&str, &str, u64)],
        gauges: &[(&str, &str, u64)],
    ) -> String {
        let mut out = String::new();
        let counters = lock(&self.counters).clone();
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            if *name == "transfer_bot_notifications_total" {
                for v in notifications {
                    let labels = vec![("verdict", v.verdict.to_owned()), ("reason", v.reason.clone())];
                    let _ = writeln!(out, "{name}{} {}", label_text(&labels, None), v.count);
                }
                continue;
            }
            for ((_, labels), value) in counters.iter().filter(|((n, _), _)| n == name) {
                let _ = writeln!(out, "{name}{} {value}", label_text(labels, None));
            }
        }
        for (name, help, value) in framework {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let name = "transfer_bot_graph_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Latency of Graph requests, by action.\n# TYPE {name} histogram"
        );
        for (action, histogram) in lock(&self.latency).iter() {
            let labels = vec![("action", action.clone())];
            for (bound, count) in LATENCY_BUCKETS.iter().zip(&histogram.buckets) {
                let le = ("le", bound.to_string());
                let _ = writeln!(out, "{name}_bucket{} {count}", label_text(&labels, Some(le)));
            }
            let inf = ("le", "+Inf".to_owned());
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(&labels, Some(inf)),
                histogram.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", label_text(&labels, None), histogram.sum);
            let _ = writeln!(out, "{name}_count{} {}", label_text(&labels, None), histogram.count);
        }
        out
    }
}

/// `transfer_bot_instance_info{instance_id=..,store=..} 1`.
pub fn render_instance(out: &mut String, instance_id: &str, store: &str) {
    let name = "transfer_bot_instance_info";
    let labels = vec![("instance_id", instance_id.to_owned()), ("store", store.to_owned())];
    let _ = writeln!(
        out,
        "# HELP {name} This instance and its call store.\n# TYPE {name} gauge\n{name}{} 1",
        label_text(&labels, None)
    );
}

/// The call store's counters: `ops` are (operation, calls, round trips),
/// `counters` (name, help, value).
pub fn render_store_ops(out: &mut String, ops: &[(&str, u64, u64)], counters: &[(&str, &str, u64)]) {
    for (name, help, round_trips) in [
        (
            "transfer_bot_redis_operations_total",
            "Call store operations on Redis, by operation.",
            false,
        ),
        (
            "transfer_bot_redis_round_trips_total",
            "Redis round trips, by call store operation (a pipeline is one).",
            true,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (op, calls, trips) in ops {
            let value = if round_trips { trips } else { calls };
            let labels = vec![("op", (*op).to_owned())];
            let _ = writeln!(out, "{name}{} {value}", label_text(&labels, None));
        }
    }
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
}

fn label_text(labels: &[(&'static str, String)], extra: Option<(&'static str, String)>) -> String {
    let pairs: Vec<String> = labels
        .iter()
        .cloned()
        .chain(extra)
        .map(|(k, v)| format!("{k}=\"{}\"", escape(&v)))
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_notification_verdicts() {
        let metrics = Metrics::new();
        metrics.call_received();
        metrics.transfer_started("blind");
        metrics.transfer_failed("declined \"7000\"");
        metrics.transfer_completed();
        metrics.graph_request("transfer", Duration::from_millis(30));
        let verdicts = [Verdict {
            verdict: "accepted",
            reason: String::new(),
            count: 3,
        }];
        let text = metrics.render(
            &verdicts,
            &[],
            &[("transfer_bot_calls_active", "Calls tracked now.", 2)],
        );
        assert!(text.contains("transfer_bot_calls_total 1\n"), "{text}");
        assert!(text.contains("transfer_bot_transfers_started_total{mode=\"blind\"} 1"));
        assert!(text.contains("transfer_bot_transfers_total{outcome=\"failed\",reason=\"declined \\\"7000\\\"\"} 1"));
        assert!(text.contains("transfer_bot_notifications_total{verdict=\"accepted\",reason=\"\"} 3"));
        assert!(text.contains("# TYPE transfer_bot_calls_active gauge\ntransfer_bot_calls_active 2\n"));
        assert!(
            text.contains("transfer_bot_graph_request_duration_seconds_bucket{action=\"transfer\",le=\"0.025\"} 0")
        );
        assert!(text.contains("transfer_bot_graph_request_duration_seconds_bucket{action=\"transfer\",le=\"0.05\"} 1"));
        assert!(text.contains("transfer_bot_graph_request_duration_seconds_count{action=\"transfer\"} 1"));
        assert_eq!(metrics.transfers_completed(), 1);
    }
}
