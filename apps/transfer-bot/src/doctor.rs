//! `transfer-bot doctor`: checks a configuration against the real services
//! before the first call does, one line per check with a hint for each
//! failure.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Serialize;

use graph_comms_notify::UNAUTHORIZED_BODY;

use crate::config::{Config, StoreBackend};

/// How long one request of a check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock skew above this fails: token `nbf`/`exp` checks allow about 5 minutes.
const SKEW_FAIL: Duration = Duration::from_secs(5 * 60);
/// Clock skew above this is worth a warning.
const SKEW_WARN: Duration = Duration::from_secs(30);
/// The application permission every transfer (and consultation call) needs.
pub const TRANSFER_ROLE: &str = "Calls.Initiate.All";
/// The application permission answering group calls needs.
pub const GROUP_CALL_ROLE: &str = "Calls.JoinGroupCall.All";

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It holds.
    Ok,
    /// It holds, or could not be checked, with a caveat.
    Warning,
    /// It does not hold: the bot would fail calls.
    Failed,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A short stable name (`graph_token`, `redis`, ...).
    pub name: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn warning(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Warning,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn failed(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Failed,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Runs every check of a loaded configuration (the `config` check itself is
/// the loading, which the caller did).
pub async fn run(config: &Config) -> Vec<Check> {
    let http = reqwest::Client::builder()
        .timeout(CHECK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let http = match http {
        Ok(http) => http,
        Err(e) => return vec![Check::failed("http_client", e.to_string(), "report this as a bug")],
    };
    let mut checks = vec![Check::ok("config", "loads and validates")];
    checks.extend(graph_token(config).await);
    checks.push(signing_keys(&http, config).await);
    checks.push(clock(&http, config).await);
    checks.push(callback(&http, config).await);
    if let Some(check) = redis(config).await {
        checks.push(check);
    }
    checks.push(prompts(config));
    checks
}

/// Whether any check failed.
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Failed)
}

/// One line a check: `✔`, `✘` or `!`, the name, what was found, and the hint.
pub fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let mark = match check.status {
            Status::Ok => "✔",
            Status::Warning => "!",
            Status::Failed => "✘",
        };
        let _ = write!(out, "{mark} {}: {}", check.name, check.detail);
        if let Some(hint) = &check.hint {
            let _ = write!(out, " (hint: {hint})");
        }
        out.push('\n');
    }
    out
}

/// A Graph token, and the `roles` it carries.
async fn graph_token(config: &Config) -> Vec<Check> {
    let client = match crate::server::graph_client_builder(config).and_then(|b| Ok(b.build()?)) {
        Ok(client) => client,
        Err(e) => {
            return vec![Check::failed(
                "graph_token",
                format!("{e:#}"),
                "fix the credential settings",
            )];
        }
    };
    let token = match client.access_token().await {
        Ok(token) => token,
        Err(e) => {
            let text = e.to_string();
            let hint = if text.contains("7000215") {
                "the client secret is wrong or expired: copy the secret's value (not its id) from the app registration"
            } else if text.contains("700016") || text.contains("90002") {
                "app_id or tenant_id is wrong, or the app is not consented in that tenant"
            } else if text.contains("7002") || text.contains("700027") || text.contains("700024") {
                "the certificate or federated credential is not registered on the app, or its token expired"
            } else {
                "check login_base_url, the credential and outbound HTTPS to the login endpoint"
            };
            return vec![Check::failed("graph_token", text, hint)];
        }
    };
    let mut checks = vec![Check::ok(
        "graph_token",
        format!("a token for tenant {} from {}", config.tenant_id, config.login_base_url),
    )];
    checks.push(match token_roles(&token) {
        None => Check::warning(
            "graph_roles",
            "the token's roles could not be read",
            format!("check that the app has the {TRANSFER_ROLE} application permission with admin consent"),
        ),
        Some(roles) if !roles.iter().any(|r| r == TRANSFER_ROLE) => Check::failed(
            "graph_roles",
            format!("the token grants {roles:?}, without {TRANSFER_ROLE}: Graph refuses transfers with 7504"),
            format!("add the Microsoft Graph application permission {TRANSFER_ROLE} and grant admin consent"),
        ),
        Some(roles) if !roles.iter().any(|r| r == GROUP_CALL_ROLE) => Check::warning(
            "graph_roles",
            format!("{TRANSFER_ROLE} granted, {GROUP_CALL_ROLE} not"),
            format!("add {GROUP_CALL_ROLE} if the bot answers group calls"),
        ),
        Some(roles) => Check::ok("graph_roles", format!("granted: {}", roles.join(", "))),
    });
    checks
}

/// The `roles` claim of an access token, when its payload is readable JSON.
fn token_roles(token: &str) -> Option<Vec<String>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(
        claims
            .get("roles")?
            .as_array()?
            .iter()
            .filter_map(|r| r.as_str().map(str::to_owned))
            .collect(),
    )
}

/// The OpenID configuration that names the notification signing keys, and the keys.
async fn signing_keys(http: &reqwest::Client, config: &Config) -> Check {
    const NAME: &str = "signing_keys";
    let hint = "check openid_configuration_url and outbound HTTPS to it";
    let url = &config.openid_configuration_url;
    let document: serde_json::Value = match get_json(http, url).await {
        Ok(document) => document,
        Err(e) => return Check::failed(NAME, format!("{url}: {e}"), hint),
    };
    let Some(jwks_uri) = document.get("jwks_uri").and_then(|v| v.as_str()) else {
        return Check::failed(NAME, format!("{url} names no jwks_uri"), hint);
    };
    match get_json(http, jwks_uri).await {
        Ok(jwks) => {
            let keys = jwks.get("keys").and_then(|k| k.as_array()).map_or(0, Vec::len);
            if keys == 0 {
                Check::failed(NAME, format!("{jwks_uri} holds no keys"), hint)
            } else {
                Check::ok(NAME, format!("{keys} key(s) from {jwks_uri}"))
            }
        }
        Err(e) => Check::failed(NAME, format!("{jwks_uri}: {e}"), hint),
    }
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<serde_json::Value, String> {
    let response = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("answered {status}"));
    }
    response.json().await.map_err(|e| format!("not JSON: {e}"))
}

/// This host's clock against the login endpoint's `Date`.
async fn clock(http: &reqwest::Client, config: &Config) -> Check {
    const NAME: &str = "clock";
    let url = format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        config.login_base_url, config.tenant_id
    );
    let asked = SystemTime::now();
    let date = match http.get(&url).send().await {
        Ok(response) => response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok()),
        Err(e) => {
            return Check::warning(
                NAME,
                format!("{url}: {e}"),
                "could not compare clocks; keep NTP running",
            );
        }
    };
    let Some(date) = date else {
        return Check::warning(NAME, "the login endpoint sent no Date", "keep NTP running");
    };
    // `Date` has whole seconds: allow one.
    let skew = date
        .duration_since(asked)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default()
        .saturating_sub(Duration::from_secs(1));
    let detail = format!("{:.0?} apart from the login endpoint", skew);
    if skew > SKEW_FAIL {
        Check::failed(
            NAME,
            detail,
            "sync this host's clock (NTP): tokens are refused beyond about 5 minutes of skew",
        )
    } else if skew > SKEW_WARN {
        Check::warning(NAME, detail, "sync this host's clock (NTP)")
    } else {
        Check::ok(NAME, detail)
    }
}

/// `public_callback_url` resolves, speaks HTTPS with a valid chain, and
/// reaches this framework: an unsigned POST gets its 401.
async fn callback(http: &reqwest::Client, config: &Config) -> Check {
    const NAME: &str = "callback_url";
    let url = &config.public_callback_url;
    let loopback = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()));
    if !url.starts_with("https://") && !loopback {
        return Check::failed(
            NAME,
            format!("{url} is not https"),
            "Graph posts only to https URLs with a publicly trusted certificate",
        );
    }
    let response = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(r#"{"value":[]}"#)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            let hint = if e.is_connect() {
                "the URL does not resolve or nothing listens there: check DNS, the ingress and that the bot runs"
            } else {
                "check the TLS certificate (a full chain to a public root) and the ingress"
            };
            return Check::failed(NAME, format!("{url}: {e}"), hint);
        }
    };
    let status = response.status();
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::UNAUTHORIZED
        && challenge.contains("invalid_token")
        && body.trim() == UNAUTHORIZED_BODY
    {
        let scheme = if loopback && !url.starts_with("https://") {
            " (plain http on loopback)"
        } else {
            ""
        };
        Check::ok(NAME, format!("{url} reaches this bot{scheme}"))
    } else {
        Check::failed(
            NAME,
            format!("{url} answered {status}, not this bot's 401 for an unsigned notification"),
            format!(
                "route {url} to the bot's listen address and callback_path ({})",
                config.callback_path
            ),
        )
    }
}

/// Redis: reachable (over TLS when configured), its version, and an eviction
/// policy that cannot drop live call records.
async fn redis(config: &Config) -> Option<Check> {
    const NAME: &str = "redis";
    let StoreBackend::Redis(url) = &config.store.backend else {
        return None;
    };
    let store = match crate::server::build_store(config) {
        Ok(Some(store)) => store,
        Ok(None) => return None,
        Err(e) => {
            return Some(Check::failed(
                NAME,
                format!("{e:#}"),
                "fix store.redis_url and store.tls_*",
            ));
        }
    };
    let mut connection = store.connection();
    // On a cluster INFO goes to every primary and comes back per node.
    let info: Result<redis::Value, _> = tokio::time::timeout(
        CHECK_TIMEOUT,
        redis::cmd("INFO").arg("server").query_async(&mut connection),
    )
    .await
    .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "no answer in time"))));
    let (info, nodes) = match info.map(|value| info_texts(&value)) {
        Ok(texts) if !texts.is_empty() => (texts[0].clone(), texts.len()),
        Ok(_) => (String::new(), 0),
        Err(e) => {
            return Some(Check::failed(
                NAME,
                format!("{url}: {e}"),
                "check the host, the port (6380 or 10000 for TLS on Azure), rediss:// and the access key, \
                 and store.redis_cluster (true for a Redis Cluster)",
            ));
        }
    };
    if !connection.is_cluster() {
        let cluster_info: Result<String, _> = tokio::time::timeout(
            CHECK_TIMEOUT,
            redis::cmd("INFO").arg("cluster").query_async(&mut connection),
        )
        .await
        .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "no answer in time"))));
        if cluster_info.is_ok_and(|i| i.lines().any(|l| l.trim() == "cluster_enabled:1")) {
            return Some(Check::failed(
                NAME,
                format!(
                    "{url} is a Redis Cluster node, but store.redis_cluster is false: calls on other nodes would fail"
                ),
                "set store.redis_cluster = true",
            ));
        }
    }
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("unknown")
        .trim()
        .to_owned();
    let tls = if url.is_tls() { "TLS" } else { "plain TCP" };
    let policy: Result<Vec<String>, _> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(&mut connection)
        .await;
    let found = if connection.is_cluster() {
        format!("{url} answers over {tls}, Redis {version}, a Redis Cluster of {nodes} primaries")
    } else {
        format!("{url} answers over {tls}, Redis {version}")
    };
    Some(match policy.ok().and_then(|p| p.into_iter().nth(1)) {
        Some(policy) if policy == "noeviction" => Check::ok(NAME, format!("{found}, maxmemory-policy noeviction")),
        Some(policy) => Check::warning(
            NAME,
            format!("{found}, maxmemory-policy {policy}: Redis may evict live call records, leases or inboxes"),
            "set maxmemory-policy noeviction (Azure: the cache's advanced settings)",
        ),
        None => Check::warning(
            NAME,
            format!("{found}; CONFIG is disabled, so the eviction policy could not be checked"),
            "make sure maxmemory-policy is noeviction (Azure: the cache's advanced settings)",
        ),
    })
}

/// The text of an `INFO` answer: one, or one per node from a cluster.
fn info_texts(value: &redis::Value) -> Vec<String> {
    match value {
        redis::Value::BulkString(bytes) => vec![String::from_utf8_lossy(bytes).into_owned()],
        redis::Value::SimpleString(text) => vec![text.clone()],
        redis::Value::VerbatimString { text, .. } => vec![text.clone()],
        redis::Value::Map(entries) => entries.iter().flat_map(|(_, v)| info_texts(v)).collect(),
        redis::Value::Array(items) => items.iter().flat_map(info_texts).collect(),
        _ => Vec::new(),
    }
}

/// Every prompt URI is an https URL Graph can fetch.
fn prompts(config: &Config) -> Check {
    const NAME: &str = "prompts";
    let mut uris: Vec<&str> = [config.hold_prompt_uri.as_deref(), config.apology_prompt_uri.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    if let Some(menu) = &config.menu {
        uris.push(&menu.prompt_uri);
    }
    let bad: Vec<&str> = uris
        .iter()
        .copied()
        .filter(|u| url::Url::parse(u).map_or(true, |p| p.scheme() != "https" || p.host_str().is_none()))
        .collect();
    if bad.is_empty() {
        Check::ok(NAME, format!("{} prompt URI(s), all https", uris.len()))
    } else {
        Check::failed(
            NAME,
            format!("not well-formed https URLs: {bad:?}"),
            "Graph fetches prompts itself: use https URLs it can reach",
        )
    }
}
