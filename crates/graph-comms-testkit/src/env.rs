//! What the test environment provides.

/// The environment variable naming the Redis the tests may use
/// (`scripts/test.sh` starts a private one and sets it).
pub const REDIS_URL_VAR: &str = "GRAPH_COMMS_REDIS_URL";

/// The Redis URL from [`REDIS_URL_VAR`], for tests that need a real Redis.
///
/// Returns `None` (and prints `skipped: no GRAPH_COMMS_REDIS_URL`) when the
/// variable is unset or empty, so a developer without Redis can still run the
/// other tests; the caller then returns early:
///
/// ```no_run
/// let Some(url) = graph_comms_testkit::redis_url() else { return };
/// # let _ = url;
/// ```
///
/// # Panics
///
/// When the variable is missing and `CI=true`: under CI a Redis test never
/// skips silently.
pub fn redis_url() -> Option<String> {
    if let Some(url) = std::env::var(REDIS_URL_VAR).ok().filter(|u| !u.trim().is_empty()) {
        return Some(url);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(
        !ci,
        "{REDIS_URL_VAR} is not set but CI=true: Redis tests must not be skipped under CI; \
         run them through ./scripts/test.sh, which starts a private redis-server"
    );
    eprintln!("skipped: no {REDIS_URL_VAR}");
    None
}
