//! OpenTelemetry trace export (feature `otlp`): the framework's `tracing`
//! spans sent over OTLP/HTTP (protobuf) by a `tracing-opentelemetry` layer.
//!
//! One call is one trace on every instance that handles it: the trace id is
//! the call's `callChainId` (a GUID, 128 bits), and each `call` span is the
//! child of a remote parent with that trace id and a span id derived from it
//! too ([`chain_context`]), so spans exported by different instances, tasks
//! and workers of the call join up without any instance telling another.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SdkTracerProvider, ShouldSample as _};
use tracing::Subscriber;
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetrySettings;

/// `service.name` when neither the table nor `OTEL_SERVICE_NAME` names one.
pub const DEFAULT_SERVICE_NAME: &str = "transfer-bot";
/// The span whose `call_chain_id` field puts it (and its children) in the call's trace.
const CALL_SPAN: &str = "call";
/// How long shutdown waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The running export: shut it down last, so the final spans are sent.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Ends the spans still queued with one last export, waiting at most 10 s.
    ///
    /// Call it after the runtime that ran the bot is dropped: spans held by
    /// its tasks end then, and are exported too.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            // The subscriber may be gone by now: straight to stderr.
            eprintln!("OpenTelemetry: the last spans may not have been exported: {error}");
        }
    }
}

/// Whether traces are exported: `[telemetry] enabled`, else the standard
/// variables (`OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER=none`, an OTLP endpoint).
pub fn wanted(settings: &TelemetrySettings, env: impl Fn(&str) -> Option<String>) -> bool {
    if let Some(enabled) = settings.enabled {
        return enabled;
    }
    let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    !disabled
        && (settings.endpoint.is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The share of calls traced: the table's `sample_ratio`, else what
/// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` say, else all.
pub fn sample_ratio(settings: &TelemetrySettings, env: impl Fn(&str) -> Option<String>) -> f64 {
    if let Some(ratio) = settings.sample_ratio {
        return ratio;
    }
    let arg = || {
        env("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|a| a.trim().parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r))
            .unwrap_or(1.0)
    };
    match env("OTEL_TRACES_SAMPLER").as_deref().map(str::trim) {
        Some("always_off" | "parentbased_always_off") => 0.0,
        Some("traceidratio" | "parentbased_traceidratio") => arg(),
        _ => 1.0,
    }
}

/// Builds the exporter and the layer that feeds it: spans at `info` and
/// above from the framework's crates and the app.
///
/// The batch processor sends from a thread of its own with reqwest's blocking
/// client, so export needs no Tokio runtime and outlives the bot's.
pub fn layer<S>(
    settings: &TelemetrySettings,
    instance_id: &str,
) -> anyhow::Result<(impl Layer<S> + Send + Sync + 'static, Telemetry)>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let env = |name: &str| std::env::var(name).ok();
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    if let Some(endpoint) = &settings.endpoint {
        exporter = exporter.with_endpoint(endpoint.clone());
    }
    if !settings.headers.is_empty() {
        exporter = exporter.with_headers(
            settings
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    }
    let exporter = exporter
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the OTLP trace exporter: {e}"))?;
    let service_name = settings
        .service_name
        .clone()
        .or_else(|| env("OTEL_SERVICE_NAME").filter(|n| !n.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_owned());
    let resource = Resource::builder()
        .with_service_name(service_name)
        .with_attribute(KeyValue::new("service.instance.id", instance_id.to_owned()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let ratio = sample_ratio(settings, env);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        // Spans of a call follow its chain's decision (see `chain_context`);
        // others (the webhook's) are sampled by their own trace id.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("transfer-bot");
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    let filter = Targets::new()
        .with_target("graph_comms", tracing::Level::INFO)
        .with_target("transfer_bot", tracing::Level::INFO);
    let layer = ChainParent {
        inner: otel,
        sampler: Sampler::TraceIdRatioBased(ratio),
    }
    .with_filter(filter);
    Ok((layer, Telemetry { provider }))
}

/// The call's trace id and the span id of its remote parent, from its
/// `callChainId`: the GUID's 128 bits as they are written (hex digits in
/// order), and its two 64-bit halves XORed. `None` for text that is not a
/// GUID, or the nil GUID.
pub fn chain_ids(call_chain_id: &str) -> Option<(TraceId, SpanId)> {
    let guid = uuid::Uuid::try_parse(call_chain_id.trim()).ok()?;
    let bytes = guid.as_bytes();
    let (high, low) = guid.as_u64_pair();
    // XOR of the halves is zero only for a GUID whose halves are equal; span id 0 is invalid.
    let span = match high ^ low {
        0 => 1,
        other => other,
    };
    let trace_id = TraceId::from_bytes(*bytes);
    (trace_id != TraceId::INVALID).then(|| (trace_id, SpanId::from_bytes(span.to_be_bytes())))
}

/// The remote parent context of a call's spans, sampled as `sampler`
/// decides for its trace id (the same on every instance).
pub fn chain_context(call_chain_id: &str, sampler: &Sampler) -> Option<Context> {
    let (trace_id, span_id) = chain_ids(call_chain_id)?;
    let decision = sampler
        .should_sample(None, trace_id, CALL_SPAN, &SpanKind::Internal, &[], &[])
        .decision;
    let flags = match decision {
        SamplingDecision::RecordAndSample => TraceFlags::SAMPLED,
        _ => TraceFlags::default(),
    };
    let parent = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    Some(Context::new().with_remote_span_context(parent))
}

/// Wraps the OpenTelemetry layer: a `call` span created with a
/// `call_chain_id` gets the chain's remote parent (the OpenTelemetry layer
/// takes a root span's parent from the current context, attached here just
/// for that call). Every other callback passes straight through.
struct ChainParent<L> {
    inner: L,
    sampler: Sampler,
}

impl<S, L> Layer<S> for ChainParent<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        // Only `call` spans are looked into: other spans cost one comparison.
        if attrs.metadata().name() == CALL_SPAN && attrs.parent().is_none() {
            let mut chain = ChainField::default();
            attrs.record(&mut chain);
            if let Some(parent) = chain.text().and_then(|text| chain_context(text, &self.sampler)) {
                let _attached = parent.attach();
                self.inner.on_new_span(attrs, id, ctx);
                return;
            }
        }
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(&self, span: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: LayerContext<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
}

/// The `call_chain_id` field's text, written into a fixed buffer (a GUID is
/// 36 characters; anything longer is not one).
struct ChainField {
    buffer: [u8; 40],
    len: usize,
    overflow: bool,
    seen: bool,
}

impl Default for ChainField {
    fn default() -> Self {
        Self {
            buffer: [0; 40],
            len: 0,
            overflow: false,
            seen: false,
        }
    }
}

impl ChainField {
    fn text(&self) -> Option<&str> {
        if !self.seen || self.overflow {
            return None;
        }
        std::str::from_utf8(&self.buffer[..self.len]).ok()
    }
}

impl std::fmt::Write for ChainField {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buffer.len() {
            self.overflow = true;
            return Err(std::fmt::Error);
        }
        self.buffer[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl tracing::field::Visit for ChainField {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "call_chain_id" {
            self.seen = true;
            let _ = self.write_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "call_chain_id" {
            self.seen = true;
            // A `%` field's Debug is its Display.
            let _ = write!(self, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_trace_id_is_the_chain_guid_and_the_parent_span_id_its_halves_xored() {
        let (trace, span) = chain_ids("2f1a1200-ba1c-4b0e-9f2f-6ed1a2b3c4d5").unwrap();
        assert_eq!(trace.to_string(), "2f1a1200ba1c4b0e9f2f6ed1a2b3c4d5");
        assert_eq!(
            span,
            SpanId::from_bytes((0x2f1a1200ba1c4b0e_u64 ^ 0x9f2f6ed1a2b3c4d5).to_be_bytes())
        );
        // Graph writes the same id upper case too.
        assert_eq!(chain_ids("2F1A1200-BA1C-4B0E-9F2F-6ED1A2B3C4D5").unwrap().0, trace);
        assert!(chain_ids("not a guid").is_none());
        assert!(chain_ids("00000000-0000-0000-0000-000000000000").is_none());
    }

    #[test]
    fn every_instance_makes_the_same_sampling_decision_for_a_chain() {
        let chain = "2f1a1200-ba1c-4b0e-9f2f-6ed1a2b3c4d5";
        let all = chain_context(chain, &Sampler::TraceIdRatioBased(1.0)).unwrap();
        assert!(all.span().span_context().is_sampled());
        assert!(all.span().span_context().is_remote());
        let none = chain_context(chain, &Sampler::TraceIdRatioBased(0.0)).unwrap();
        assert!(!none.span().span_context().is_sampled());
    }

    #[test]
    fn the_table_wins_over_the_variables_and_both_are_off_by_default() {
        let table = TelemetrySettings::default();
        assert!(!wanted(&table, env_of(&[])));
        assert!(wanted(
            &table,
            env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        ));
        assert!(wanted(
            &table,
            env_of(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])
        ));
        assert!(!wanted(
            &table,
            env_of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])
        ));
        let off = TelemetrySettings {
            enabled: Some(false),
            ..TelemetrySettings::default()
        };
        assert!(!wanted(
            &off,
            env_of(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])
        ));
        let on = TelemetrySettings {
            enabled: Some(true),
            ..TelemetrySettings::default()
        };
        assert!(wanted(&on, env_of(&[])));
    }

    #[test]
    fn the_ratio_comes_from_the_table_then_the_sampler_variables() {
        let table = TelemetrySettings::default();
        assert_eq!(sample_ratio(&table, env_of(&[])), 1.0);
        assert_eq!(
            sample_ratio(
                &table,
                env_of(&[
                    ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.25")
                ])
            ),
            0.25
        );
        assert_eq!(
            sample_ratio(&table, env_of(&[("OTEL_TRACES_SAMPLER", "always_off")])),
            0.0
        );
        let set = TelemetrySettings {
            sample_ratio: Some(0.5),
            ..TelemetrySettings::default()
        };
        assert_eq!(
            sample_ratio(&set, env_of(&[("OTEL_TRACES_SAMPLER", "always_off")])),
            0.5
        );
    }

    #[test]
    fn the_chain_field_is_read_without_allocating_and_long_text_is_refused() {
        let mut field = ChainField::default();
        let _ = field.write_str("2f1a1200-ba1c-4b0e-9f2f-6ed1a2b3c4d5");
        field.seen = true;
        assert_eq!(field.text(), Some("2f1a1200-ba1c-4b0e-9f2f-6ed1a2b3c4d5"));
        let mut long = ChainField::default();
        let _ = long.write_str(&"x".repeat(41));
        long.seen = true;
        assert_eq!(long.text(), None);
    }
}
