//! Logging through tracing-subscriber: plain text or JSON on stderr, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber, filtered by `RUST_LOG` (default `info`).
///
/// Each call's work runs inside a `call` span carrying `call_id`, so every line
/// about a call names it.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    init_with_default(format, "info")
}

/// Like [`init`], with another filter when `RUST_LOG` is unset (the demo uses
/// `warn` so its progress lines stay readable).
pub fn init_with_default(format: LogFormat, default_filter: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}
