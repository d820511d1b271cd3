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
use graph_comms_model::{AppId, PhoneNumber, TenantId};
use serde::{Deserialize, Deserializer, Serialize};

use crate::menu::{Menu, MenuOption};
use crate::routing::{Destination, Route, RoutingPolicy, Target, TransferMode};

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
    /// The application's client secret.
    pub client_secret: Secret,
    /// Microsoft Graph, up to and including the version segment.
    pub graph_base_url: String,
    /// The Entra ID login host.
    pub login_base_url: String,
    /// Where notification signing keys are published.
    pub openid_configuration_url: String,
    /// The local address the HTTP server binds.
    pub listen: SocketAddr,
    /// The public https URL Graph posts notifications to.
    pub public_callback_url: String,
    /// The local path notifications arrive on.
    pub callback_path: String,
    /// Played to the caller while the first transfer is set up.
    pub hold_prompt_uri: Option<String>,
    /// Played before hanging up when every target failed.
    pub apology_prompt_uri: Option<String>,
    /// How long one transfer attempt may take before it counts as failed.
    pub transfer_timeout: Duration,
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
    /// The auto attendant (`[menu]`), if configured.
    pub menu: Option<Menu>,
    /// Tenants whose notifications are accepted; `None`: any tenant the
    /// app is consented in. Others are refused (401) and counted.
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// The bot's resource account with a phone number: the source of the
    /// consultation calls it places to phone numbers (Graph requires one).
    pub application_instance_id: Option<String>,
}

/// Where the bot keeps its calls (`[store]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// In this process, or in Redis (shared by every instance on the same Redis and prefix).
    pub backend: StoreBackend,
    /// The namespace of every Redis key; instances that share calls use the same one.
    pub key_prefix: String,
    /// This instance's name in logs, metrics and lease tokens.
    pub instance_id: String,
    /// With Redis: how long a call's lease lasts without renewal, so how soon
    /// another instance takes over the calls of one that died (`store.lease_ttl_ms`).
    pub lease_ttl: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Memory,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            instance_id: default_instance_id(),
            lease_ttl: Duration::from_millis(DEFAULT_LEASE_TTL_MS),
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
        // The same parser the store uses: a database that is not a number, or
        // TLS in a build without it, fails here instead of at the first call.
        if let Err(e) = redis::Client::open(url) {
            let mut reason = e.to_string();
            if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
                reason = reason.replace(password, "***");
            }
            if parsed.scheme() == "rediss" && reason.contains("TLS") {
                return Err(format!(
                    "{masked:?}: rediss:// (TLS) is not supported by this build (graph-comms-redis is built without TLS); \
                     use redis://, through a TLS tunnel if the link is not private"
                ));
            }
            return Err(format!("{masked:?} is not a usable Redis URL: {reason}"));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL itself, password included, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
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
const MAX_INSTANCE_ID_LEN: usize = 64;

const KNOWN_KEYS: &[&str] = &[
    "tenant_id",
    "app_id",
    "client_secret",
    "client_secret_file",
    "graph_base_url",
    "login_base_url",
    "openid_configuration_url",
    "listen",
    "public_callback_url",
    "callback_path",
    "hold_prompt_uri",
    "apology_prompt_uri",
    "transfer_timeout_secs",
    "keep_alive_interval_secs",
    "hook_timeout_secs",
    "log_format",
    "graph_client",
    "routes",
    "default_targets",
    "store",
    "menu",
    "allowed_tenants",
    "application_instance_id",
];

/// The configuration as read, before validation. Ids accept numbers too,
/// because environment values that look numeric are parsed as numbers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct RawConfig {
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    openid_configuration_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apology_prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hook_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    graph_client: Option<RawGraphClient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<Vec<RawRoute>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_targets: Option<Vec<RawTarget>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<RawStore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    menu: Option<RawMenu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_tenants: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    application_instance_id: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMenu {
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    match_called_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reprompts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Vec<RawMenuOption>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator_targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMenuOption {
    #[serde(deserialize_with = "lenient_string")]
    digit: Option<String>,
    targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    key_prefix: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_ttl_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawGraphClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRoute {
    #[serde(deserialize_with = "lenient_string")]
    match_called_id: Option<String>,
    targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTarget {
    kind: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    tenant_id: Option<String>,
    display_name: Option<String>,
    mode: Option<String>,
}

fn lenient_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Signed(i64),
        Unsigned(u64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(deserializer)?.map(|value| match value {
        Scalar::Text(s) => s,
        Scalar::Signed(n) => n.to_string(),
        Scalar::Unsigned(n) => n.to_string(),
        Scalar::Float(n) => n.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

fn defaults() -> RawConfig {
    RawConfig {
        graph_base_url: Some(DEFAULT_GRAPH_BASE_URL.into()),
        login_base_url: Some(DEFAULT_LOGIN_BASE_URL.into()),
        openid_configuration_url: Some(DEFAULT_OPENID_CONFIGURATION_URL.into()),
        listen: Some(DEFAULT_LISTEN.into()),
        callback_path: Some(DEFAULT_CALLBACK_PATH.into()),
        transfer_timeout_secs: Some(DEFAULT_TRANSFER_TIMEOUT_SECS),
        keep_alive_interval_secs: Some(DEFAULT_KEEP_ALIVE_INTERVAL_SECS),
        hook_timeout_secs: Some(DEFAULT_HOOK_TIMEOUT_SECS),
        log_format: Some("plain".into()),
        ..RawConfig::default()
    }
}

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

fn err(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
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

/// Checks every field, pushing one error per problem. Returns a config when
/// every required value could be built (errors may still have been pushed).
fn validate(raw: RawConfig, env_secret: Option<String>, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let tenant_id = required(errors, "tenant_id", raw.tenant_id);
    let app_id = required(errors, "app_id", raw.app_id);
    let client_secret = resolve_secret(errors, env_secret, raw.client_secret_file.as_deref());

    let graph_base_url = url_key(errors, "graph_base_url", raw.graph_base_url);
    let login_base_url = url_key(errors, "login_base_url", raw.login_base_url);
    let openid_configuration_url = url_key(errors, "openid_configuration_url", raw.openid_configuration_url);
    let public_callback_url = url_key(errors, "public_callback_url", raw.public_callback_url);
    let hold_prompt_uri = raw
        .hold_prompt_uri
        .and_then(|uri| check_url(errors, "hold_prompt_uri", uri));
    let apology_prompt_uri = raw
        .apology_prompt_uri
        .and_then(|uri| check_url(errors, "apology_prompt_uri", uri));

    let listen = required(errors, "listen", raw.listen).and_then(|text| match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(err(
                "listen",
                format!("{text:?} is not a socket address like 0.0.0.0:8080"),
            ));
            None
        }
    });
    let callback_path = required(errors, "callback_path", raw.callback_path).and_then(|path| {
        if path.starts_with('/') {
            Some(path)
        } else {
            errors.push(err("callback_path", format!("{path:?} must start with '/'")));
            None
        }
    });
    let transfer_timeout = seconds(errors, "transfer_timeout_secs", raw.transfer_timeout_secs, 1, u64::MAX);
    let keep_alive_interval = seconds(
        errors,
        "keep_alive_interval_secs",
        raw.keep_alive_interval_secs,
        1,
        MAX_KEEP_ALIVE_INTERVAL_SECS,
    );
    let hook_timeout = seconds(
        errors,
        "hook_timeout_secs",
        raw.hook_timeout_secs,
        1,
        MAX_HOOK_TIMEOUT_SECS,
    );
    let log_format = required(errors, "log_format", raw.log_format).and_then(|f| {
        LogFormat::parse(&f).or_else(|| {
            errors.push(err("log_format", format!("{f:?} is not one of plain, json")));
            None
        })
    });
    let graph_client = raw.graph_client.unwrap_or_default();
    let graph_client = GraphClientSettings {
        request_timeout: seconds(
            errors,
            "graph_client.request_timeout_secs",
            Some(
                graph_client
                    .request_timeout_secs
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS),
            ),
            1,
            600,
        )
        .unwrap_or_default(),
        user_agent: graph_client.user_agent.unwrap_or_else(default_user_agent),
    };

    let routing = validate_routing(errors, raw.routes.unwrap_or_default(), raw.default_targets);
    let store = validate_store(errors, raw.store.unwrap_or_default());
    let allowed_tenants = raw
        .allowed_tenants
        .and_then(|tenants| validate_tenants(errors, tenants));
    let application_instance_id = raw.application_instance_id.filter(|id| !id.trim().is_empty());
    if application_instance_id.is_none() {
        require_instance_for_phone_consultations(errors, &routing);
    }
    let menu = raw
        .menu
        .and_then(|menu| validate_menu(errors, menu, hook_timeout.unwrap_or(Duration::MAX)));

    Some(Config {
        tenant_id: TenantId::new(tenant_id?),
        app_id: AppId::new(app_id?),
        client_secret: client_secret?,
        graph_base_url: graph_base_url?,
        login_base_url: login_base_url?,
        openid_configuration_url: openid_configuration_url?,
        listen: listen?,
        public_callback_url: public_callback_url?,
        callback_path: callback_path?,
        hold_prompt_uri,
        apology_prompt_uri,
        transfer_timeout: transfer_timeout?,
        keep_alive_interval: keep_alive_interval?,
        hook_timeout: hook_timeout?,
        log_format: log_format?,
        graph_client,
        routing,
        store: store?,
        menu,
        allowed_tenants,
        application_instance_id,
    })
}

/// A consultative phone target needs the bot's resource account as the
/// consultation call's source: each one without it is named.
fn require_instance_for_phone_consultations(errors: &mut Vec<ConfigError>, routing: &RoutingPolicy) {
    let lists = routing
        .routes
        .iter()
        .enumerate()
        .map(|(i, route)| (format!("routes[{i}].targets"), &route.targets))
        .chain(std::iter::once((
            "default_targets".to_owned(),
            &routing.default_targets,
        )));
    for (key, targets) in lists {
        for (i, target) in targets.iter().enumerate() {
            if target.mode == TransferMode::Consultative && matches!(target.destination, Destination::Phone(_)) {
                errors.push(err(
                    format!("{key}[{i}].mode"),
                    "a consultative phone target needs application_instance_id (the resource account with a number that places the consultation call)",
                ));
            }
        }
    }
}

fn validate_tenants(errors: &mut Vec<ConfigError>, tenants: Vec<String>) -> Option<Vec<TenantId>> {
    if tenants.is_empty() {
        errors.push(err(
            "allowed_tenants",
            "is empty: list at least one tenant id, or leave the key out to accept every tenant",
        ));
        return None;
    }
    let mut valid = Vec::new();
    for (i, tenant) in tenants.into_iter().enumerate() {
        let tenant = tenant.trim();
        if uuid::Uuid::parse_str(tenant).is_err() {
            errors.push(err(
                format!("allowed_tenants[{i}]"),
                format!("{tenant:?} is not a tenant id (a GUID)"),
            ));
        } else {
            valid.push(TenantId::new(tenant));
        }
    }
    Some(valid)
}

/// Menu timeouts, in milliseconds.
const MENU_TIMEOUT_MS: (u64, u64) = (500, 60_000);
/// Re-prompts of the menu, at most.
const MAX_MENU_REPROMPTS: u32 = 5;

fn validate_menu(errors: &mut Vec<ConfigError>, raw: RawMenu, hook_timeout: Duration) -> Option<Menu> {
    let prompt_uri =
        required(errors, "menu.prompt_uri", raw.prompt_uri).and_then(|uri| check_url(errors, "menu.prompt_uri", uri));
    let timeout_ms = raw.timeout_ms.unwrap_or(5_000);
    let (low, high) = MENU_TIMEOUT_MS;
    let timeout = if (low..=high).contains(&timeout_ms) {
        Some(Duration::from_millis(timeout_ms))
    } else {
        errors.push(err(
            "menu.timeout_ms",
            format!("{timeout_ms} is outside {low}..={high}"),
        ));
        None
    };
    let reprompts = raw.reprompts.unwrap_or(1);
    if reprompts > MAX_MENU_REPROMPTS {
        errors.push(err(
            "menu.reprompts",
            format!("{reprompts} is more than {MAX_MENU_REPROMPTS}"),
        ));
    }
    let mut options: Vec<MenuOption> = Vec::new();
    // Each valid key with the index of the option that set it, for the messages.
    let mut keys: Vec<(char, usize)> = Vec::new();
    match raw.options {
        None => errors.push(err("menu.options", "missing (required): list at least one option")),
        Some(list) if list.is_empty() => errors.push(err("menu.options", "is empty: list at least one option")),
        Some(list) => {
            for (i, option) in list.into_iter().enumerate() {
                let key = format!("menu.options[{i}]");
                let digit = required(errors, &format!("{key}.digit"), option.digit).and_then(|digit| {
                    let mut chars = digit.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => Some(c),
                        _ => {
                            errors.push(err(
                                format!("{key}.digit"),
                                format!("{digit:?} is not one keypad key (0-9, * or #)"),
                            ));
                            None
                        }
                    }
                });
                if let Some(c) = digit
                    && let Some((_, first)) = keys.iter().find(|(key, _)| *key == c)
                {
                    errors.push(err(
                        format!("{key}.digit"),
                        format!("{c:?} is already used by menu.options[{first}]"),
                    ));
                }
                let targets = validate_targets(errors, &format!("{key}.targets"), option.targets);
                if let Some(c) = digit {
                    keys.push((c, i));
                    options.push(MenuOption { key: c, targets });
                }
            }
        }
    }
    let operator = raw
        .operator_targets
        .map(|targets| validate_targets(errors, "menu.operator_targets", Some(targets)));
    let menu = Menu {
        match_called_id: raw.match_called_id,
        prompt_uri: prompt_uri?,
        timeout: timeout?,
        reprompts,
        options,
        operator,
    };
    // The menu runs inside on_call_established, which the hook timeout bounds.
    if menu.longest() >= hook_timeout {
        errors.push(err(
            "menu.timeout_ms",
            format!(
                "with {} re-prompt(s) the menu can take {:?}, not less than hook_timeout_secs ({hook_timeout:?})",
                menu.reprompts,
                menu.longest()
            ),
        ));
    }
    Some(menu)
}

fn validate_store(errors: &mut Vec<ConfigError>, raw: RawStore) -> Option<StoreSettings> {
    let url = match raw.redis_url {
        Some(url) if url.trim().is_empty() => {
            errors.push(err("store.redis_url", "must not be empty"));
            None
        }
        Some(url) => match RedisUrl::parse(url.trim()) {
            Ok(url) => Some(url),
            Err(problem) => {
                errors.push(err("store.redis_url", problem));
                None
            }
        },
        None => None,
    };
    let kind = raw.kind.unwrap_or_else(|| "memory".to_owned());
    let backend = match kind.trim().to_ascii_lowercase().as_str() {
        // A URL with the default kind is most likely a forgotten `kind`: refuse
        // it rather than run instances that silently share nothing.
        "memory" if url.is_some() => {
            errors.push(err(
                "store.redis_url",
                "is set but store.kind is memory: set store.kind = \"redis\" to use it, or remove it",
            ));
            None
        }
        "memory" => Some(StoreBackend::Memory),
        "redis" => match url {
            Some(url) => Some(StoreBackend::Redis(url)),
            None => {
                if !errors.iter().any(|e| e.key == "store.redis_url") {
                    errors.push(err("store.redis_url", "missing (required when store.kind is redis)"));
                }
                None
            }
        },
        _ => {
            errors.push(err("store.kind", format!("{kind:?} is not one of memory, redis")));
            None
        }
    };
    let key_prefix = match raw.key_prefix {
        None => Some(DEFAULT_KEY_PREFIX.to_owned()),
        Some(prefix) if prefix.is_empty() => {
            errors.push(err("store.key_prefix", "must not be empty"));
            None
        }
        Some(prefix) if prefix.contains(['{', '}']) || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            errors.push(err(
                "store.key_prefix",
                format!("{prefix:?} must not contain '{{', '}}', whitespace or control characters"),
            ));
            None
        }
        Some(prefix) => Some(prefix),
    };
    let instance_id = match raw.instance_id {
        None => Some(default_instance_id()),
        Some(id) => match instance_id_problem(&id) {
            None => Some(id),
            Some(problem) => {
                errors.push(err("store.instance_id", problem));
                None
            }
        },
    };
    let lease_ttl = match raw.lease_ttl_ms {
        None => Some(Duration::from_millis(DEFAULT_LEASE_TTL_MS)),
        Some(ms) if LEASE_TTL_MS_RANGE.contains(&ms) => Some(Duration::from_millis(ms)),
        Some(ms) => {
            errors.push(err(
                "store.lease_ttl_ms",
                format!(
                    "{ms} is outside {}..={}",
                    LEASE_TTL_MS_RANGE.start(),
                    LEASE_TTL_MS_RANGE.end()
                ),
            ));
            None
        }
    };
    Some(StoreSettings {
        backend: backend?,
        key_prefix: key_prefix?,
        instance_id: instance_id?,
        lease_ttl: lease_ttl?,
    })
}

fn required(errors: &mut Vec<ConfigError>, key: &str, value: Option<String>) -> Option<String> {
    match value {
        Some(v) if !v.trim().is_empty() => Some(v),
        Some(_) => {
            errors.push(err(key, "must not be empty"));
            None
        }
        None => {
            errors.push(err(key, "missing (required)"));
            None
        }
    }
}

fn seconds(errors: &mut Vec<ConfigError>, key: &str, value: Option<u64>, min: u64, max: u64) -> Option<Duration> {
    match value {
        Some(n) if (min..=max).contains(&n) => Some(Duration::from_secs(n)),
        Some(n) => {
            let range = if max == u64::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            errors.push(err(key, format!("{n} is out of range: must be {range} seconds")));
            None
        }
        None => {
            errors.push(err(key, "missing (required)"));
            None
        }
    }
}

fn url_key(errors: &mut Vec<ConfigError>, key: &str, value: Option<String>) -> Option<String> {
    required(errors, key, value).and_then(|v| check_url(errors, key, v))
}

/// An absolute https URL; plain http only to a loopback host (the local emulator).
fn check_url(errors: &mut Vec<ConfigError>, key: &str, value: String) -> Option<String> {
    match url::Url::parse(&value) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Some(value),
        Ok(url) if url.scheme() == "http" && is_loopback(&url) => Some(value),
        Ok(url) if url.scheme() == "http" => {
            errors.push(err(
                key,
                format!("{value:?} must use https (http is allowed only for loopback hosts)"),
            ));
            None
        }
        Ok(url) => {
            errors.push(err(
                key,
                format!("{value:?} has scheme {:?}; expected https", url.scheme()),
            ));
            None
        }
        Err(e) => {
            errors.push(err(key, format!("{value:?} is not a valid URL: {e}")));
            None
        }
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn resolve_secret(errors: &mut Vec<ConfigError>, env_secret: Option<String>, file: Option<&Path>) -> Option<Secret> {
    match (env_secret, file) {
        (Some(_), Some(_)) => {
            errors.push(err(
                "client_secret",
                format!("both {SECRET_ENV} and client_secret_file are set; set only one"),
            ));
            None
        }
        (Some(secret), None) if secret.trim().is_empty() => {
            errors.push(err("client_secret", format!("{SECRET_ENV} is empty")));
            None
        }
        (Some(secret), None) => Some(Secret::new(secret)),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => {
                errors.push(err("client_secret_file", format!("{} is empty", path.display())));
                None
            }
            Ok(text) => Some(Secret::new(text.trim_end_matches(['\r', '\n']))),
            Err(e) => {
                errors.push(err(
                    "client_secret_file",
                    format!("cannot read {}: {e}", path.display()),
                ));
                None
            }
        },
        (None, None) => {
            errors.push(err(
                "client_secret",
                format!("missing (required): set {SECRET_ENV} or client_secret_file"),
            ));
            None
        }
    }
}

fn validate_routing(
    errors: &mut Vec<ConfigError>,
    routes: Vec<RawRoute>,
    default_targets: Option<Vec<RawTarget>>,
) -> RoutingPolicy {
    let mut policy = RoutingPolicy::default();
    for (i, route) in routes.into_iter().enumerate() {
        let key = format!("routes[{i}]");
        let called = required(errors, &format!("{key}.match_called_id"), route.match_called_id);
        if let Some(called) = &called
            && let Some(first) = policy.routes.iter().position(|r| r.match_called_id == *called)
        {
            errors.push(err(
                format!("{key}.match_called_id"),
                format!("{called:?} is already matched by routes[{first}]"),
            ));
        }
        let targets = validate_targets(errors, &format!("{key}.targets"), route.targets);
        if let Some(called) = called {
            policy.routes.push(Route {
                match_called_id: called,
                targets,
            });
        }
    }
    policy.default_targets = validate_targets(errors, "default_targets", default_targets);
    policy
}

fn validate_targets(errors: &mut Vec<ConfigError>, key: &str, targets: Option<Vec<RawTarget>>) -> Vec<Target> {
    match targets {
        None => {
            errors.push(err(key, "missing (required): list at least one target"));
            Vec::new()
        }
        Some(list) if list.is_empty() => {
            errors.push(err(key, "is empty: list at least one target"));
            Vec::new()
        }
        Some(list) => list
            .into_iter()
            .enumerate()
            .filter_map(|(i, raw)| validate_target(errors, &format!("{key}[{i}]"), raw))
            .collect(),
    }
}

fn validate_target(errors: &mut Vec<ConfigError>, key: &str, raw: RawTarget) -> Option<Target> {
    let mode = match raw.mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("blind") => Some(TransferMode::Blind),
        Some("consultative") => Some(TransferMode::Consultative),
        Some(other) => {
            errors.push(err(
                format!("{key}.mode"),
                format!("{other:?} is not one of blind, consultative"),
            ));
            None
        }
    };
    let id = required(errors, &format!("{key}.id"), raw.id);
    let tenant_id = raw.tenant_id.map(TenantId::new);
    let kind = required(errors, &format!("{key}.kind"), raw.kind);
    let destination = match (kind.as_deref().map(str::to_ascii_lowercase).as_deref(), id) {
        (Some("user"), Some(id)) => Some(Destination::User { id, tenant_id }),
        (Some("application_instance"), Some(id)) => Some(Destination::ApplicationInstance { id, tenant_id }),
        (Some("phone"), Some(id)) => match PhoneNumber::parse(&id) {
            Ok(number) => Some(Destination::Phone(number)),
            Err(e) => {
                // The reason only; the number itself stays out of the message.
                errors.push(err(
                    format!("{key}.id"),
                    format!("not an E.164 phone number: {}", e.reason),
                ));
                None
            }
        },
        (Some("user" | "application_instance" | "phone"), None) | (None, _) => None,
        (Some(other), _) => {
            errors.push(err(
                format!("{key}.kind"),
                format!("{other:?} is not one of user, phone, application_instance"),
            ));
            None
        }
    };
    Some(Target {
        destination: destination?,
        display_name: raw.display_name,
        mode: mode?,
    })
}

#[cfg(test)]
mod tests {
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
            graph_base_url: Some("u".into()),
            login_base_url: Some("u".into()),
            openid_configuration_url: Some("u".into()),
            listen: Some("l".into()),
            public_callback_url: Some("u".into()),
            callback_path: Some("p".into()),
            hold_prompt_uri: Some("u".into()),
            apology_prompt_uri: Some("u".into()),
            transfer_timeout_secs: Some(1),
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
                key_prefix: Some("p".into()),
                instance_id: Some("i".into()),
                lease_ttl_ms: Some(1_000),
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
        let doc = include_str!("../../../docs/configuration.md");
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
