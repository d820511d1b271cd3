//! Logging through tracing-subscriber: plain text or JSON on stderr, filtered
//! by `RUST_LOG`; with the `otlp` feature and `[telemetry]` (or the `OTEL_*`
//! variables) on, the same spans exported as OpenTelemetry traces too.

use std::io::IsTerminal as _;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{LogFormat, TelemetrySettings};

/// What [`init`] leaves running besides the subscriber: call
/// [`LogGuard::shutdown`] last, after the runtime that ran the bot is
/// dropped, so the spans still open end and are exported.
#[derive(Debug, Default)]
#[must_use = "shut it down at exit, or the last spans are not exported"]
pub struct LogGuard {
    #[cfg(feature = "otlp")]
    telemetry: Option<crate::telemetry::Telemetry>,
}

impl LogGuard {
    /// Whether traces are being exported.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otlp")]
        return self.telemetry.is_some();
        #[cfg(not(feature = "otlp"))]
        false
    }

    /// Flushes and stops the trace export, if any.
    pub fn shutdown(self) {
        #[cfg(feature = "otlp")]
        if let Some(telemetry) = self.telemetry {
            telemetry.shutdown();
        }
    }
}

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`).
///
/// The framework runs each call's work inside a `call` span carrying `call_id`
/// and `call_chain_id`, and the webhook's `graph_notification` span names the
/// call too, so every line about a call can be found by either id.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    init_with_default(format, "info")
}

/// Like [`init`], with another filter when `RUST_LOG` is unset (the demo uses
/// `warn` so its progress lines stay readable).
pub fn init_with_default(format: LogFormat, default_filter: &str) -> anyhow::Result<()> {
    let off = TelemetrySettings {
        enabled: Some(false),
        ..TelemetrySettings::default()
    };
    init_with_telemetry(format, default_filter, &off, "")?.shutdown();
    Ok(())
}

/// [`init`] with trace export as `telemetry` and the `OTEL_*` variables say
/// (`instance_id` becomes `service.instance.id`).
///
/// # Errors
///
/// A subscriber is already installed; export is enabled in a build without
/// the `otlp` feature; the exporter cannot be built.
pub fn init_with_telemetry(
    format: LogFormat,
    default_filter: &str,
    telemetry: &TelemetrySettings,
    instance_id: &str,
) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    // Filtered per layer: `RUST_LOG` sets what is logged, not what is traced.
    let fmt = match format {
        LogFormat::Plain => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt);
    #[cfg(feature = "otlp")]
    let (registry, guard) = {
        let env = |name: &str| std::env::var(name).ok();
        let (layer, telemetry) = if crate::telemetry::wanted(telemetry, env) {
            let (layer, running) = crate::telemetry::layer(telemetry, instance_id)?;
            (Some(layer), Some(running))
        } else {
            (None, None)
        };
        (registry.with(layer), LogGuard { telemetry })
    };
    #[cfg(not(feature = "otlp"))]
    let guard = {
        let _ = instance_id;
        if telemetry.enabled == Some(true) {
            anyhow::bail!("telemetry.enabled is true but this build has no `otlp` feature");
        }
        LogGuard::default()
    };
    registry
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(guard)
}

/// Colour codes only on a terminal, and not when `NO_COLOR` is set to anything
/// but the empty string (<https://no-color.org>): a log file or a collector gets plain text.
fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::colour;
    use std::ffi::OsStr;

    /// Refused before any subscriber is installed, so this test leaves none behind.
    #[cfg(not(feature = "otlp"))]
    #[test]
    fn a_build_without_otlp_refuses_enabled_telemetry() {
        let on = super::TelemetrySettings {
            enabled: Some(true),
            ..super::TelemetrySettings::default()
        };
        let error = super::init_with_telemetry(super::LogFormat::Plain, "info", &on, "i").unwrap_err();
        assert!(error.to_string().contains("`otlp` feature"), "{error}");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
