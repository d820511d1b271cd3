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

/// The environment variable naming a TLS-only Redis the tests may use
/// (`rediss://...`; `scripts/test.sh` starts one with certificates it makes).
pub const REDIS_TLS_URL_VAR: &str = "GRAPH_COMMS_REDIS_TLS_URL";

/// The environment variable naming the PEM file of the CA that signed the
/// certificate of the Redis at [`REDIS_TLS_URL_VAR`].
pub const REDIS_TLS_CA_VAR: &str = "GRAPH_COMMS_REDIS_TLS_CA";

/// The shared TLS Redis: its `rediss://` URL and its CA certificate (PEM), or
/// `None` when the variables are unset (the test then starts its own).
///
/// # Panics
///
/// When the URL is set but the CA file cannot be read.
pub fn shared_tls_redis() -> Option<(String, String)> {
    let url = std::env::var(REDIS_TLS_URL_VAR).ok().filter(|u| !u.trim().is_empty())?;
    let ca_path = std::env::var(REDIS_TLS_CA_VAR)
        .unwrap_or_else(|_| panic!("{REDIS_TLS_URL_VAR} is set without {REDIS_TLS_CA_VAR}"));
    let ca = std::fs::read_to_string(&ca_path)
        .unwrap_or_else(|e| panic!("{REDIS_TLS_CA_VAR}={ca_path} cannot be read: {e}"));
    Some((url, ca))
}
