//! Logging through tracing-subscriber: plain text or JSON on stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
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

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }
}
