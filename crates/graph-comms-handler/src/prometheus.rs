//! The framework's metrics in a `prometheus_client` [`Registry`], read from
//! the live counters at scrape time (see [`Bot::register_metrics`]).
//!
//! Every family is prefixed `graph_comms_`; counters get their `_total`
//! suffix from the encoder. Labels only carry bounded values (a result, a
//! reject reason, a [`TransferFailure::label`](crate::TransferFailure::label)):
//! never a call, user, tenant or phone number.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::Bot;

impl Bot {
    /// Registers everything the framework counts into `registry`: the
    /// notification endpoint's verdicts, token checks and key set fetches, the
    /// Graph client's token fetches, and the runtime's calls, transfers, hooks,
    /// queues and shared-store counters. Values are read from this bot at each
    /// scrape (nothing is counted twice). Names start with `graph_comms_`; see
    /// the crate README for the list.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(BotCollector { bot: self.clone() }));
    }
}

/// Reads a [`Bot`]'s snapshots on each scrape.
#[derive(Debug)]
struct BotCollector {
    bot: Bot,
}

/// One counter without labels.
fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One gauge without labels.
fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: usize) -> fmt::Result {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// A counter family: one series per label set.
fn counter_family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for BotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let e = &mut encoder;
        let notify = self.bot.notify_endpoint().metrics();
        let accepted = [(vec![("result", "accepted")], notify.accepted_requests)];
        let rejected = notify
            .rejections()
            .map(|(reason, count)| (vec![("result", "rejected"), ("reason", reason.as_str())], count));
        counter_family(
            e,
            "graph_comms_notification_requests",
            "Notification requests, by result (accepted: answered 202) and the reason one was rejected.",
            accepted.into_iter().chain(rejected),
        )?;
        counter(
            e,
            "graph_comms_notification_events_queued",
            "Notification events put on the queue.",
            notify.queued_events,
        )?;
        counter(
            e,
            "graph_comms_notification_token_cache_hits",
            "Notification requests whose bearer token was found in the verified-token cache.",
            notify.token_cache_hits,
        )?;
        counter(
            e,
            "graph_comms_notification_token_verifications",
            "Notification bearer tokens whose signature was checked.",
            notify.token_verifications,
        )?;
        counter(
            e,
            "graph_comms_key_set_fetches",
            "Fetches of the notification signing key set (periodic, unknown key id, or explicit).",
            notify.key_fetches,
        )?;
        counter(
            e,
            "graph_comms_key_set_fetch_failures",
            "Key set fetches that failed (the previous keys were kept).",
            notify.key_fetch_failures,
        )?;

        let tokens = self.bot.client().token_metrics();
        counter(
            e,
            "graph_comms_graph_token_fetches",
            "Graph access token requests sent to the token provider (every tenant).",
            tokens.fetches,
        )?;
        counter(
            e,
            "graph_comms_graph_token_fetch_failures",
            "Graph access token requests that failed.",
            tokens.fetch_failures,
        )?;

        let bot = self.bot.metrics();
        gauge(
            e,
            "graph_comms_calls_active",
            "Calls the bot holds in memory now.",
            bot.calls_active,
        )?;
        gauge(
            e,
            "graph_comms_workers_active",
            "Per-call workers running now (calls with queued or recent events).",
            bot.workers_active,
        )?;
        gauge(
            e,
            "graph_comms_events_in_flight",
            "Notification events queued or being handled now.",
            bot.events_in_flight,
        )?;
        counter(e, "graph_comms_calls_seen", "Calls seen.", bot.calls_seen)?;
        counter(e, "graph_comms_calls_ended", "Calls that ended.", bot.calls_ended)?;
        counter(
            e,
            "graph_comms_calls_evicted",
            "Calls forgotten after the idle time.",
            bot.calls_evicted,
        )?;
        counter(
            e,
            "graph_comms_events_handled",
            "Notification events handled.",
            bot.events_handled,
        )?;
        counter(
            e,
            "graph_comms_transfers_started",
            "Transfer requests sent to Graph.",
            bot.transfers_started,
        )?;
        counter(
            e,
            "graph_comms_transfers_accepted",
            "Transfer attempts the target accepted (reported or inferred), before their outcome.",
            bot.transfers_accepted,
        )?;
        let completed = [(vec![("outcome", "completed")], bot.transfers_completed)];
        let failed = bot
            .transfers_failed
            .iter()
            .map(|(reason, count)| (vec![("outcome", "failed"), ("reason", *reason)], *count));
        counter_family(
            e,
            "graph_comms_transfers",
            "Transfer attempts finished, by outcome and, for failures, reason.",
            completed.into_iter().chain(failed),
        )?;
        counter(
            e,
            "graph_comms_hook_errors",
            "Hooks that returned an error.",
            bot.hook_errors,
        )?;
        counter(e, "graph_comms_hook_panics", "Hooks that panicked.", bot.hook_panics)?;
        counter(
            e,
            "graph_comms_hook_timeouts",
            "Hooks dropped for running past the hook timeout.",
            bot.hook_timeouts,
        )?;
        counter(
            e,
            "graph_comms_hook_redeliveries",
            "Hook steps run again after the instance that committed them stopped first.",
            bot.redeliveries,
        )?;
        counter(
            e,
            "graph_comms_late_incoming_decisions",
            "Incoming calls whose decision took longer than the deadline.",
            bot.late_incoming_decisions,
        )?;
        counter(
            e,
            "graph_comms_keep_alives_sent",
            "Keep-alive requests Graph accepted.",
            bot.keep_alives_sent,
        )?;
        counter(
            e,
            "graph_comms_keep_alive_failures",
            "Keep-alive requests that failed (a 404 ends the call instead and is not counted).",
            bot.keep_alive_failures,
        )?;
        counter(
            e,
            "graph_comms_late_events",
            "Events after their attempt's outcome or their call's end (they changed nothing).",
            bot.late_events,
        )?;
        counter(
            e,
            "graph_comms_timeout_lookups",
            "Calls looked up in Graph after a transfer timeout.",
            bot.timeout_lookups,
        )?;
        counter(
            e,
            "graph_comms_duplicate_deliveries",
            "Notification items delivered again (same message id and item) that changed nothing.",
            bot.duplicate_deliveries,
        )?;
        counter(
            e,
            "graph_comms_failure_checks",
            "Calls looked up in Graph to check a failure notification an earlier attempt could have caused.",
            bot.failure_checks,
        )?;
        counter(
            e,
            "graph_comms_unsent_transfer_checks",
            "Calls looked up after a takeover found a transfer not known to be sent (never sent again).",
            bot.unsent_checks,
        )?;
        counter(
            e,
            "graph_comms_consultation_relinks",
            "Consultation calls linked again after a takeover found an attempt whose consultation was not known to be linked.",
            bot.consultation_relinks,
        )?;
        counter(
            e,
            "graph_comms_store_conflicts",
            "Call store writes refused for a stale version and decided again.",
            bot.store_conflicts,
        )?;
        counter(
            e,
            "graph_comms_store_errors",
            "Call store operations that failed.",
            bot.store_errors,
        )?;
        counter(
            e,
            "graph_comms_call_queue_full",
            "Notification requests answered 503 because a call's queue was full.",
            bot.refused_busy,
        )?;
        counter(
            e,
            "graph_comms_call_claims",
            "Call leases this instance took (shared store).",
            bot.claims,
        )?;
        counter(
            e,
            "graph_comms_call_claims_refused",
            "Claims refused because another instance held the call's lease.",
            bot.claims_refused,
        )?;
        counter(
            e,
            "graph_comms_takeovers",
            "Calls taken over from an instance that stopped with notifications waiting.",
            bot.takeovers,
        )?;
        counter(
            e,
            "graph_comms_leases_lost",
            "Leases found lost (this instance stalled past the lease time); its writes were refused.",
            bot.leases_lost,
        )?;
        counter(
            e,
            "graph_comms_journal_failures",
            "Notification requests answered 503 because neither the shared store nor the outage journal could take their events.",
            bot.journal_failures,
        )?;
        counter(
            e,
            "graph_comms_outage_journaled",
            "Notifications kept in the outage journal (answered 202) because the shared store was unavailable.",
            bot.outage_journaled,
        )?;
        counter(
            e,
            "graph_comms_outage_replayed",
            "Notifications from the outage journal appended to the shared store once it answered again.",
            bot.outage_replayed,
        )?;
        gauge(
            e,
            "graph_comms_outage_journal_items",
            "Notifications in the outage journal now, waiting for the shared store.",
            bot.outage_journal_items,
        )?;
        Ok(())
    }
}
