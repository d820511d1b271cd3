//! Configuration: built-in defaults, then a TOML file, then `TRANSFER_BOT_*`
//! environment variables (nested keys split on `__`). Everything is checked at
//! start-up and every problem is reported at once, each naming its key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use graph_comms_handler::ServerLimits;
use graph_comms_model::{AppId, TenantId};

use crate::menu::Menu;
use crate::routing::RoutingPolicy;

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "TRANSFER_BOT_";
/// The only place besides `client_secret_file` the client secret may come from.
pub const SECRET_ENV: &str = "TRANSFER_BOT_CLIENT_SECRET";
/// Read when `--config` is not given; may be absent.
pub const DEFAULT_CONFIG_FILE: &str = "transfer-bot.toml";

/// Validated configuration for `serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bot's tenant.
    pub tenant_id: TenantId,
    /// The bot's application (client) id.
    pub app_id: AppId,
    /// How the bot proves it is the app: a client secret, a certificate or a
    /// federated token.
    pub credential: Credential,
    /// Microsoft Graph, up to and including the version segment.
    pub graph_base_url: String,
    /// The Entra ID login host.
    pub login_base_url: String,
    /// Where notification signing keys are published.
    pub openid_configuration_url: String,
    /// The local address the HTTP server binds.
    pub listen: SocketAddr,
    /// The address of the admin listener (`/healthz`, `/readyz`, `/metrics`).
    /// Set, the public listener serves only the callback path; unset, the
    /// admin routes are on the public listener too (deprecated: they are then
    /// as public as the webhook).
    pub admin_listen: Option<SocketAddr>,
    /// The public https URL Graph posts notifications to.
    pub public_callback_url: String,
    /// The local path notifications arrive on.
    pub callback_path: String,
    /// Played to the caller while the first transfer is set up.
    pub hold_prompt_uri: Option<String>,
    /// Played before hanging up when every target failed.
    pub apology_prompt_uri: Option<String>,
    /// How long one transfer attempt may go without an outcome before Graph
    /// is asked about the call (a call still ringing is asked again).
    pub transfer_timeout: Duration,
    /// How long a transfer may ring (Graph says `transferring`) before it
    /// fails as rung out.
    pub ring_limit: Duration,
    /// How often established calls are kept alive (Graph drops idle calls after 45 minutes).
    pub keep_alive_interval: Duration,
    /// How long one hook may run before it is dropped and reported.
    pub hook_timeout: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// Graph HTTP client tuning.
    pub graph_client: GraphClientSettings,
    /// Where calls go.
    pub routing: RoutingPolicy,
    /// Where call records are kept (`[store]`).
    pub store: StoreSettings,
    /// Limits of the HTTP server on slow and numerous clients (`[server]`).
    pub server: ServerLimits,
    /// The auto attendant (`[menu]`), if configured.
    pub menu: Option<Menu>,
    /// Tenants whose notifications are accepted; `None`: any tenant the
    /// app is consented in. Others are refused (401) and counted.
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// The bot's resource account with a phone number: the source of the
    /// consultation calls it places to phone numbers (Graph requires one).
    pub application_instance_id: Option<String>,
    /// OpenTelemetry trace export (`[telemetry]`); off by default.
    pub telemetry: TelemetrySettings,
}

/// OpenTelemetry trace export (`[telemetry]`). Each key left unset falls back
/// to the standard `OTEL_*` variable the SDK reads (docs/deployment.md).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySettings {
    /// `Some(true)` exports, `Some(false)` never does; unset, traces are
    /// exported when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and `OTEL_SDK_DISABLED` is not `true`).
    pub enabled: Option<bool>,
    /// The collector's OTLP/HTTP base URL (`/v1/traces` is appended unless the
    /// URL already ends with it); wins over the `OTEL_*` endpoints.
    pub endpoint: Option<String>,
    /// `service.name`; else `OTEL_SERVICE_NAME`, else `transfer-bot`.
    pub service_name: Option<String>,
    /// Headers sent with every export (e.g. an API key); `OTEL_EXPORTER_OTLP_HEADERS` adds to them.
    pub headers: BTreeMap<String, String>,
    /// The share of calls traced, 0.0 to 1.0; else from `OTEL_TRACES_SAMPLER`
    /// and `OTEL_TRACES_SAMPLER_ARG`, else 1.0.
    pub sample_ratio: Option<f64>,
}

/// Where the bot keeps its calls (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// In this process, or in Redis (shared by every instance on the same Redis and prefix).
    pub backend: StoreBackend,
    /// With Redis: `store.redis_url` is a seed node of a Redis Cluster
    /// (`store.redis_cluster`), not a single server.
    pub redis_cluster: bool,
    /// The namespace of every Redis key; instances that share calls use the same one.
    pub key_prefix: String,
    /// This instance's name in logs, metrics and lease tokens.
    pub instance_id: String,
    /// With Redis: how long a call's lease lasts without renewal, so how soon
    /// another instance takes over the calls of one that died (`store.lease_ttl_ms`).
    pub lease_ttl: Duration,
    /// With Redis: how many notifications this instance keeps (answered 202)
    /// while Redis is unreachable, to append when it returns; 0 refuses them
    /// with 503 instead (`store.outage_journal`).
    pub outage_journal: usize,
    /// With Redis: where the outage journal's file is written and synced
    /// before each 202, so a process killed while Redis is down leaves its
    /// notifications to the next one (`store.outage_journal_dir`; none: memory only).
    pub outage_journal_dir: Option<std::path::PathBuf>,
    /// With a `rediss://` URL: a CA and client certificate beyond the system's roots.
    pub tls: StoreTls,
}

/// TLS settings of a `rediss://` store, read from the files the
/// configuration names (`store.tls_ca_file`, `store.tls_client_cert_file`,
/// `store.tls_client_key_file`). Empty: the system's roots, no client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreTls {
    /// CA certificates (PEM) trusted instead of the system's roots.
    pub ca_pem: Option<String>,
    /// A client certificate (PEM) and its private key, for servers that require one.
    pub client_identity: Option<(String, Secret)>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            redis_cluster: false,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            instance_id: default_instance_id(),
            lease_ttl: Duration::from_millis(DEFAULT_LEASE_TTL_MS),
            outage_journal: graph_comms_handler::DEFAULT_OUTAGE_JOURNAL_CAPACITY,
            outage_journal_dir: None,
            tls: StoreTls::default(),
        }
    }
}

impl StoreSettings {
    /// Calls in Redis at `url`, under `key_prefix`.
    pub fn redis(url: RedisUrl, key_prefix: impl Into<String>) -> Self {
        Self {
            backend: StoreBackend::Redis(url),
            key_prefix: key_prefix.into(),
            ..Self::default()
        }
    }

    /// Calls in the Redis Cluster that `seed` is a node of, under `key_prefix`.
    pub fn redis_cluster(seed: RedisUrl, key_prefix: impl Into<String>) -> Self {
        Self {
            redis_cluster: true,
            ..Self::redis(seed, key_prefix)
        }
    }

    /// `memory` or `redis`, as configured.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            StoreBackend::Memory => "memory",
            StoreBackend::Redis(_) => "redis",
        }
    }
}

/// The configured call store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// The framework's in-memory store: calls live and die with the process.
    Memory,
    /// A Redis (or Valkey) server shared by the instances.
    Redis(RedisUrl),
}

/// A `redis://` or `rediss://` URL whose password never shows up in `Debug`,
/// `Display`, logs or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Checks the scheme (`redis` or `rediss`), the host and that the Redis
    /// client can read it. The error never contains the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        let masked = mask_url_password(url);
        let parsed = url::Url::parse(url).map_err(|e| format!("{masked:?} is not a valid URL: {e}"))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(format!(
                "{masked:?} has scheme {:?}; expected redis or rediss",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("{masked:?} has no host"));
        }
        // The same parser the store uses: a database that is not a number
        // fails here instead of at the first call.
        if let Err(e) = redis::Client::open(url) {
            let mut reason = e.to_string();
            if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
                reason = reason.replace(password, "***");
            }
            return Err(format!("{masked:?} is not a usable Redis URL: {reason}"));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL itself, password included, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is a `rediss://` (TLS) URL.
    pub fn is_tls(&self) -> bool {
        self.0
            .get(..9)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", mask_url_password(&self.0))
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url_password(&self.0))
    }
}

/// `url` with its password (if any) replaced by `***`. Text that is not a URL
/// loses everything between `://` and the last `@`, in case that is a password.
pub fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        // A user name alone is not a secret.
        Ok(parsed) if parsed.password().is_none() => url.to_owned(),
        Ok(mut parsed) => match parsed.set_password(Some("***")) {
            Ok(()) => parsed.to_string(),
            Err(()) => hide_userinfo(url),
        },
        Err(_) => hide_userinfo(url),
    }
}

/// Hides everything between the scheme and the last `@`.
fn hide_userinfo(url: &str) -> String {
    let Some(at) = url.rfind('@') else {
        return url.to_owned();
    };
    match url.find("://") {
        Some(scheme) if scheme < at => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => format!("***@{}", &url[at + 1..]),
    }
}

/// The instance id when none is configured: the host name when it is a valid
/// id, otherwise `transfer-bot-` and 12 random hex digits.
pub fn default_instance_id() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned());
    match host {
        Some(host) if instance_id_problem(&host).is_none() => host,
        _ => format!("transfer-bot-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
    }
}

fn instance_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("must not be empty".to_owned())
    } else if id.len() > MAX_INSTANCE_ID_LEN {
        Some(format!(
            "is {} characters long; at most {MAX_INSTANCE_ID_LEN}",
            id.len()
        ))
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some(format!("{id:?} may contain only letters, digits, '.', '_' and '-'"))
    } else {
        None
    }
}

/// Tuning for the Graph HTTP client (`[graph_client]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphClientSettings {
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for GraphClientSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            user_agent: default_user_agent(),
        }
    }
}

fn default_user_agent() -> String {
    format!("transfer-bot/{}", env!("CARGO_PKG_VERSION"))
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for handing to the token endpoint only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How the bot authenticates to Entra ID (client-credentials flow).
#[derive(Debug, Clone)]
pub enum Credential {
    /// The app's client secret.
    Secret(Secret),
    /// An X.509 certificate registered on the app, and its private key, as
    /// PEM (`client_certificate_file`); checked when the config is loaded.
    Certificate(Secret),
    /// A file holding a federated token the app trusts (workload identity
    /// federation: `client_assertion_file`, or `AZURE_FEDERATED_TOKEN_FILE`
    /// with `workload_identity = true`), read again on every token fetch.
    FederatedToken(PathBuf),
}

impl Credential {
    /// The client secret, if the bot uses one.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::Secret(secret) => Some(secret),
            Self::Certificate(_) | Self::FederatedToken(_) => None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "plain" => Some(Self::Plain),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, e.g. `default_targets[1].id`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

/// Every configuration problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    /// Whether some error is about this key.
    pub fn mentions(&self, key: &str) -> bool {
        self.0.iter().any(|e| e.key == key)
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  - {error}")?;
        }
        Ok(())
    }
}

const DEFAULT_GRAPH_BASE_URL: &str = "https://graph.microsoft.com/v1.0";
const DEFAULT_LOGIN_BASE_URL: &str = "https://login.microsoftonline.com";
const DEFAULT_OPENID_CONFIGURATION_URL: &str = "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration";
const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
const DEFAULT_CALLBACK_PATH: &str = "/api/calls";
const DEFAULT_TRANSFER_TIMEOUT_SECS: u64 = 60;
/// The framework's default ring limit (see `Timings::ring_limit`).
const DEFAULT_RING_LIMIT_SECS: u64 = 180;
const DEFAULT_KEEP_ALIVE_INTERVAL_SECS: u64 = 15 * 60;
const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 30;
/// A hook may hold its call's queue at most this long.
const MAX_HOOK_TIMEOUT_SECS: u64 = 10 * 60;
const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Graph ends calls that see no keepAlive for 45 minutes.
const MAX_KEEP_ALIVE_INTERVAL_SECS: u64 = 45 * 60 - 60;
/// The Redis key prefix when none is configured (the store crate's default).
pub const DEFAULT_KEY_PREFIX: &str = graph_comms_redis::DEFAULT_PREFIX;
/// Default `store.lease_ttl_ms`.
pub const DEFAULT_LEASE_TTL_MS: u64 = 10_000;
/// The range `store.lease_ttl_ms` accepts: renewals every third of it must
/// fit Redis round trips, and takeover waits for it.
const LEASE_TTL_MS_RANGE: std::ops::RangeInclusive<u64> = 300..=300_000;
/// `store.outage_journal` at most: about a minute of a large contact centre's notifications.
const OUTAGE_JOURNAL_MAX: usize = 1_000_000;
const MAX_INSTANCE_ID_LEN: usize = 64;
/// The range `server.header_read_timeout_ms` and `server.request_timeout_ms` accept.
const SERVER_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;
/// The range `server.max_connections` accepts.
const MAX_CONNECTIONS_RANGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;

mod raw;
mod validate;
mod validate_credential;
mod validate_store;
mod validate_telemetry;

use raw::{KNOWN_KEYS, RawConfig, defaults};
use validate::validate;

impl Config {
    /// Loads and validates the configuration.
    ///
    /// `file` is the `--config` argument: when given, the file must exist;
    /// when `None`, [`DEFAULT_CONFIG_FILE`] is read if it exists.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigErrors> {
        let (path, explicit) = match file {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let mut errors = Vec::new();
        let use_file = if path.is_file() {
            true
        } else if explicit {
            errors.push(err("--config", format!("file {} does not exist", path.display())));
            return Err(ConfigErrors(errors));
        } else {
            false
        };

        let mut figment = Figment::from(Serialized::defaults(defaults()));
        if use_file {
            let file = Figment::from(Toml::file_exact(&path));
            if file.contains("client_secret") {
                errors.push(err(
                    "client_secret",
                    format!(
                        "found in {}; secrets must not be kept in the config file: set {SECRET_ENV} or client_secret_file",
                        path.display()
                    ),
                ));
            }
            figment = figment.merge(Toml::file_exact(&path));
        }
        // The secret is read verbatim below, never parsed as a config value.
        let figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__").ignore(&["client_secret"]));

        match figment.extract::<BTreeMap<String, figment::value::Value>>() {
            Ok(map) => {
                for key in map.keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())) {
                    errors.push(err(key, "unknown key"));
                }
            }
            Err(e) => errors.extend(figment_errors(e)),
        }
        let raw = match figment.extract::<RawConfig>() {
            Ok(raw) => raw,
            Err(e) => {
                errors.extend(figment_errors(e));
                return Err(ConfigErrors(errors));
            }
        };
        let secret = std::env::var(SECRET_ENV).ok();
        match validate(raw, secret, &mut errors) {
            Some(config) if errors.is_empty() => Ok(config),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

pub(super) fn err(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

fn figment_errors(error: figment::Error) -> Vec<ConfigError> {
    error
        .into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(config)".to_owned()
            } else {
                e.path.join(".")
            };
            let source = e
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(source) => format!(" (from {source})"),
                    None => format!(" (from {})", m.name),
                })
                .unwrap_or_default();
            err(key, format!("{}{source}", e.kind))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::raw::*;
    use super::validate::{check_url, validate_server};
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn redis_passwords_are_masked() {
        let url = RedisUrl::parse("redis://user:hunter2@redis.internal:6379/2").unwrap();
        assert_eq!(url.to_string(), "redis://user:***@redis.internal:6379/2");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert_eq!(url.expose(), "redis://user:hunter2@redis.internal:6379/2");
        let url = RedisUrl::parse("redis://:hunter2@127.0.0.1:6399/").unwrap();
        assert!(!url.to_string().contains("hunter2"), "{url}");
        assert_eq!(mask_url_password("redis://127.0.0.1:6379/"), "redis://127.0.0.1:6379/");
        assert_eq!(mask_url_password("not a url: x:hunter2@y"), "***@y");
        assert!(!mask_url_password("redis:// bad:hunter2@host").contains("hunter2"));
        let problem = RedisUrl::parse("http://u:hunter2@host/").unwrap_err();
        assert!(!problem.contains("hunter2"), "{problem}");
        let problem = RedisUrl::parse("redis://u:hunter2@host/db").unwrap_err();
        assert!(!problem.contains("hunter2"), "{problem}");
    }

    #[test]
    fn the_default_instance_id_is_valid() {
        let id = default_instance_id();
        assert_eq!(instance_id_problem(&id), None, "{id}");
    }

    #[test]
    fn http_is_accepted_only_for_loopback_hosts() {
        let mut errors = Vec::new();
        assert!(check_url(&mut errors, "k", "http://127.0.0.1:8080/x".into()).is_some());
        assert!(check_url(&mut errors, "k", "http://localhost/x".into()).is_some());
        assert!(errors.is_empty());
        assert!(check_url(&mut errors, "k", "http://example.com/x".into()).is_none());
        assert!(check_url(&mut errors, "k", "ftp://example.com/x".into()).is_none());
        assert!(check_url(&mut errors, "k", "not a url".into()).is_none());
        assert_eq!(errors.len(), 3);
    }

    #[test]
    fn the_server_table_defaults_to_the_framework_limits() {
        let mut errors = Vec::new();
        let limits = validate_server(&mut errors, RawServer::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(limits, Some(ServerLimits::default()));
        let limits = validate_server(
            &mut errors,
            RawServer {
                header_read_timeout_ms: Some(100),
                request_timeout_ms: Some(600_000),
                max_connections: Some(1_000_000),
            },
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            limits,
            Some(ServerLimits {
                header_read_timeout: Duration::from_millis(100),
                request_timeout: Duration::from_secs(600),
                max_connections: 1_000_000,
            })
        );
    }

    #[test]
    fn server_limits_outside_their_range_name_their_key() {
        let cases = [
            (
                RawServer {
                    header_read_timeout_ms: Some(99),
                    ..RawServer::default()
                },
                "server.header_read_timeout_ms",
                "99 is outside 100..=600000",
            ),
            (
                RawServer {
                    header_read_timeout_ms: Some(600_001),
                    ..RawServer::default()
                },
                "server.header_read_timeout_ms",
                "600001 is outside 100..=600000",
            ),
            (
                RawServer {
                    request_timeout_ms: Some(0),
                    ..RawServer::default()
                },
                "server.request_timeout_ms",
                "0 is outside 100..=600000",
            ),
            (
                RawServer {
                    max_connections: Some(0),
                    ..RawServer::default()
                },
                "server.max_connections",
                "0 is outside 1..=1000000",
            ),
            (
                RawServer {
                    max_connections: Some(1_000_001),
                    ..RawServer::default()
                },
                "server.max_connections",
                "1000001 is outside 1..=1000000",
            ),
        ];
        for (raw, key, problem) in cases {
            let mut errors = Vec::new();
            assert_eq!(validate_server(&mut errors, raw), None, "{key}");
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].key, key);
            assert!(errors[0].problem.starts_with(problem), "{}", errors[0]);
        }
        // Every bad key is reported at once.
        let mut errors = Vec::new();
        let all_bad = RawServer {
            header_read_timeout_ms: Some(1),
            request_timeout_ms: Some(1),
            max_connections: Some(0),
        };
        assert_eq!(validate_server(&mut errors, all_bad), None);
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "server.header_read_timeout_ms",
                "server.request_timeout_ms",
                "server.max_connections"
            ]
        );
    }

    /// Every key of the configuration type, as a path like `routes[].targets[].kind`.
    fn config_key_paths() -> Vec<String> {
        let target = || RawTarget {
            kind: Some("user".into()),
            id: Some("x".into()),
            tenant_id: Some("t".into()),
            display_name: Some("d".into()),
            mode: Some("blind".into()),
        };
        let full = RawConfig {
            tenant_id: Some("t".into()),
            app_id: Some("a".into()),
            client_secret_file: Some("f".into()),
            client_certificate_file: Some("f".into()),
            client_assertion_file: Some("f".into()),
            workload_identity: Some(true),
            graph_base_url: Some("u".into()),
            login_base_url: Some("u".into()),
            openid_configuration_url: Some("u".into()),
            listen: Some("l".into()),
            admin_listen: Some("a".into()),
            public_callback_url: Some("u".into()),
            callback_path: Some("p".into()),
            hold_prompt_uri: Some("u".into()),
            apology_prompt_uri: Some("u".into()),
            transfer_timeout_secs: Some(1),
            ring_limit_secs: Some(1),
            keep_alive_interval_secs: Some(1),
            hook_timeout_secs: Some(1),
            log_format: Some("plain".into()),
            graph_client: Some(RawGraphClient {
                request_timeout_secs: Some(1),
                user_agent: Some("ua".into()),
            }),
            routes: Some(vec![RawRoute {
                match_called_id: Some("c".into()),
                targets: Some(vec![target()]),
            }]),
            default_targets: Some(vec![target()]),
            store: Some(RawStore {
                kind: Some("redis".into()),
                redis_url: Some("redis://h/".into()),
                redis_cluster: Some(true),
                key_prefix: Some("p".into()),
                instance_id: Some("i".into()),
                lease_ttl_ms: Some(1_000),
                outage_journal: Some(500),
                outage_journal_dir: Some("/var/lib/transfer-bot/journal".into()),
                tls_ca_file: Some("ca.pem".into()),
                tls_client_cert_file: Some("client.pem".into()),
                tls_client_key_file: Some("client-key.pem".into()),
            }),
            server: Some(RawServer {
                header_read_timeout_ms: Some(1_000),
                request_timeout_ms: Some(1_000),
                max_connections: Some(1),
            }),
            menu: Some(RawMenu {
                match_called_id: Some("c".into()),
                prompt_uri: Some("u".into()),
                timeout_ms: Some(1),
                reprompts: Some(1),
                options: Some(vec![RawMenuOption {
                    digit: Some("1".into()),
                    targets: Some(vec![target()]),
                }]),
                operator_targets: Some(vec![target()]),
            }),
            allowed_tenants: Some(vec!["t".into()]),
            application_instance_id: Some("i".into()),
            telemetry: Some(RawTelemetry {
                enabled: Some(true),
                endpoint: Some("u".into()),
                service_name: Some("s".into()),
                headers: Some(BTreeMap::new()),
                sample_ratio: Some(1.0),
            }),
        };
        fn walk(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        let path = if prefix.is_empty() {
                            key.clone()
                        } else {
                            format!("{prefix}.{key}")
                        };
                        out.push(path.clone());
                        walk(&path, child, out);
                    }
                }
                serde_json::Value::Array(items) => {
                    for item in items {
                        walk(&format!("{prefix}[]"), item, out);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk("", &serde_json::to_value(&full).unwrap(), &mut out);
        out.extend(KNOWN_KEYS.iter().map(|k| (*k).to_owned()));
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_configuration_reference_documents_every_key() {
        let doc = include_str!("../../../../docs/configuration.md");
        // First-column keys of the reference table: "| `key` | ...".
        let documented: Vec<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(key, _)| key))
            .collect();
        let paths = config_key_paths();
        assert!(paths.len() > 20, "{paths:?}");
        for path in &paths {
            let covered = documented.iter().any(|key| match key.strip_prefix("*.") {
                Some(suffix) => path.ends_with(suffix),
                None => path == key,
            });
            assert!(covered, "docs/configuration.md does not document `{path}`");
        }
        for key in &documented {
            let real = paths.iter().any(|path| match key.strip_prefix("*.") {
                Some(suffix) => path.ends_with(suffix),
                None => path == key,
            });
            assert!(
                real,
                "docs/configuration.md documents `{key}`, which the configuration does not have"
            );
        }
    }
}
