//! Validation: the raw configuration becomes a [`Config`], or every problem
//! is reported with the key it concerns.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use graph_comms_model::{AppId, PhoneNumber, TenantId};

use super::raw::{RawConfig, RawMenu, RawRoute, RawServer, RawStore, RawTarget};
use super::*;
use crate::menu::{Menu, MenuOption};
use crate::routing::{Destination, Route, RoutingPolicy, Target, TransferMode};

/// Checks every field, pushing one error per problem. Returns a config when
/// every required value could be built (errors may still have been pushed).
pub(super) fn validate(raw: RawConfig, env_secret: Option<String>, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let workload_identity = raw.workload_identity.unwrap_or(false);
    let tenant_id = required_or_workload_env(errors, "tenant_id", raw.tenant_id, workload_identity, TENANT_ID_VAR);
    let app_id = required_or_workload_env(errors, "app_id", raw.app_id, workload_identity, CLIENT_ID_VAR);
    let credential = resolve_credential(
        errors,
        CredentialKeys {
            env_secret,
            secret_file: raw.client_secret_file.as_deref(),
            certificate_file: raw.client_certificate_file.as_deref(),
            assertion_file: raw.client_assertion_file.as_deref(),
            workload_identity,
        },
    );

    let graph_base_url = url_key(errors, "graph_base_url", raw.graph_base_url);
    let login_base_url = raw
        .login_base_url
        .or_else(|| workload_env(workload_identity, AUTHORITY_HOST_VAR))
        .or_else(|| Some(DEFAULT_LOGIN_BASE_URL.to_owned()));
    let login_base_url = url_key(errors, "login_base_url", login_base_url);
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
    let admin_listen = match raw.admin_listen.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) if listen.is_some_and(|l| l == addr && addr.port() != 0) => {
                errors.push(err("admin_listen", format!("{text:?} is the same address as listen")));
                None
            }
            Ok(addr) => Some(Some(addr)),
            Err(_) => {
                errors.push(err(
                    "admin_listen",
                    format!("{text:?} is not a socket address like 0.0.0.0:9090"),
                ));
                None
            }
        },
    };
    let callback_path = required(errors, "callback_path", raw.callback_path).and_then(|path| {
        if path.starts_with('/') {
            Some(path)
        } else {
            errors.push(err("callback_path", format!("{path:?} must start with '/'")));
            None
        }
    });
    let transfer_timeout = seconds(errors, "transfer_timeout_secs", raw.transfer_timeout_secs, 1, u64::MAX);
    let ring_limit = seconds(errors, "ring_limit_secs", raw.ring_limit_secs, 1, u64::MAX);
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
    let server = validate_server(errors, raw.server.unwrap_or_default());
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
        credential: credential?,
        graph_base_url: graph_base_url?,
        login_base_url: login_base_url?,
        openid_configuration_url: openid_configuration_url?,
        listen: listen?,
        admin_listen: admin_listen?,
        public_callback_url: public_callback_url?,
        callback_path: callback_path?,
        hold_prompt_uri,
        apology_prompt_uri,
        transfer_timeout: transfer_timeout?,
        ring_limit: ring_limit?,
        keep_alive_interval: keep_alive_interval?,
        hook_timeout: hook_timeout?,
        log_format: log_format?,
        graph_client,
        routing,
        store: store?,
        server: server?,
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

fn validate_store(errors: &mut Vec<ConfigError>, mut raw: RawStore) -> Option<StoreSettings> {
    let url = match raw.redis_url.take() {
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
    let kind = raw.kind.take().unwrap_or_else(|| "memory".to_owned());
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
    let key_prefix = match raw.key_prefix.take() {
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
    let instance_id = match raw.instance_id.take() {
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
    let tls = validate_store_tls(errors, &raw, backend.as_ref());
    Some(StoreSettings {
        backend: backend?,
        key_prefix: key_prefix?,
        instance_id: instance_id?,
        lease_ttl: lease_ttl?,
        tls: tls?,
    })
}

/// `store.tls_*`: PEM files read now, so a wrong path fails at start-up.
fn validate_store_tls(
    errors: &mut Vec<ConfigError>,
    raw: &RawStore,
    backend: Option<&StoreBackend>,
) -> Option<StoreTls> {
    let any = raw.tls_ca_file.is_some() || raw.tls_client_cert_file.is_some() || raw.tls_client_key_file.is_some();
    if !any {
        return Some(StoreTls::default());
    }
    let tls_url = matches!(backend, Some(StoreBackend::Redis(url)) if url.is_tls());
    if !tls_url {
        if backend.is_some() {
            let key = if raw.tls_ca_file.is_some() {
                "store.tls_ca_file"
            } else {
                "store.tls_client_cert_file"
            };
            errors.push(err(
                key,
                "needs store.kind = \"redis\" with a rediss:// store.redis_url",
            ));
        }
        return None;
    }
    let read_pem = |errors: &mut Vec<ConfigError>, key: &str, path: &Path, block: &str| -> Option<String> {
        match std::fs::read_to_string(path) {
            // An empty `block` takes any PEM block (keys come as PRIVATE KEY, RSA PRIVATE KEY, ...).
            Ok(text) if text.contains(&format!("-----BEGIN {block}")) => Some(text),
            Ok(_) => {
                errors.push(err(key, format!("{} holds no PEM {block} block", path.display())));
                None
            }
            Err(e) => {
                errors.push(err(key, format!("cannot read {}: {e}", path.display())));
                None
            }
        }
    };
    let mut ok = true;
    let ca_pem = match &raw.tls_ca_file {
        Some(path) => {
            let pem = read_pem(errors, "store.tls_ca_file", path, "CERTIFICATE");
            ok &= pem.is_some();
            pem
        }
        None => None,
    };
    let client_identity = match (&raw.tls_client_cert_file, &raw.tls_client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let cert = read_pem(errors, "store.tls_client_cert_file", cert, "CERTIFICATE");
            let key = read_pem(errors, "store.tls_client_key_file", key, "");
            ok &= cert.is_some() && key.is_some();
            cert.zip(key).map(|(cert, key)| (cert, Secret::new(key)))
        }
        (Some(_), None) => {
            errors.push(err(
                "store.tls_client_key_file",
                "missing: a client certificate needs its key",
            ));
            return None;
        }
        (None, Some(_)) => {
            errors.push(err(
                "store.tls_client_cert_file",
                "missing: a client key needs its certificate",
            ));
            return None;
        }
    };
    ok.then_some(StoreTls {
        ca_pem,
        client_identity,
    })
}

/// The `[server]` table: each key left out keeps the framework's default.
pub(super) fn validate_server(errors: &mut Vec<ConfigError>, raw: RawServer) -> Option<ServerLimits> {
    let defaults = ServerLimits::default();
    let timeout = |errors: &mut Vec<ConfigError>, key: &str, value: Option<u64>, default: Duration| match value {
        None => Some(default),
        Some(ms) if SERVER_TIMEOUT_MS_RANGE.contains(&ms) => Some(Duration::from_millis(ms)),
        Some(ms) => {
            errors.push(err(
                key,
                format!(
                    "{ms} is outside {}..={} (milliseconds)",
                    SERVER_TIMEOUT_MS_RANGE.start(),
                    SERVER_TIMEOUT_MS_RANGE.end()
                ),
            ));
            None
        }
    };
    let header_read_timeout = timeout(
        errors,
        "server.header_read_timeout_ms",
        raw.header_read_timeout_ms,
        defaults.header_read_timeout,
    );
    let request_timeout = timeout(
        errors,
        "server.request_timeout_ms",
        raw.request_timeout_ms,
        defaults.request_timeout,
    );
    let max_connections = match raw.max_connections {
        None => Some(defaults.max_connections),
        Some(n) if MAX_CONNECTIONS_RANGE.contains(&n) => usize::try_from(n).ok(),
        Some(n) => {
            errors.push(err(
                "server.max_connections",
                format!(
                    "{n} is outside {}..={}",
                    MAX_CONNECTIONS_RANGE.start(),
                    MAX_CONNECTIONS_RANGE.end()
                ),
            ));
            None
        }
    };
    Some(ServerLimits {
        header_read_timeout: header_read_timeout?,
        request_timeout: request_timeout?,
        max_connections: max_connections?,
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
pub(super) fn check_url(errors: &mut Vec<ConfigError>, key: &str, value: String) -> Option<String> {
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

/// The variables AKS workload identity sets in a pod (`azure.workload.identity/use: "true"`).
const CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
const TENANT_ID_VAR: &str = "AZURE_TENANT_ID";
const TOKEN_FILE_VAR: &str = "AZURE_FEDERATED_TOKEN_FILE";
const AUTHORITY_HOST_VAR: &str = "AZURE_AUTHORITY_HOST";

/// With `workload_identity = true`, the AKS variable `name` (when set and not blank).
fn workload_env(workload_identity: bool, name: &str) -> Option<String> {
    if !workload_identity {
        return None;
    }
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A required key that, with `workload_identity = true`, falls back to the AKS variable.
fn required_or_workload_env(
    errors: &mut Vec<ConfigError>,
    key: &str,
    value: Option<String>,
    workload_identity: bool,
    variable: &str,
) -> Option<String> {
    match value {
        None if workload_identity => {
            let value = workload_env(true, variable);
            if value.is_none() {
                errors.push(err(
                    key,
                    format!("missing (required): set {key}, or {variable} (workload_identity = true reads it from the environment)"),
                ));
            }
            value
        }
        value => required(errors, key, value),
    }
}

/// Where the credential may come from, as configured.
struct CredentialKeys<'a> {
    env_secret: Option<String>,
    secret_file: Option<&'a Path>,
    certificate_file: Option<&'a Path>,
    assertion_file: Option<&'a Path>,
    workload_identity: bool,
}

/// Exactly one of: a federated token file, a certificate file, or the secret
/// (from the environment or its file).
fn resolve_credential(errors: &mut Vec<ConfigError>, keys: CredentialKeys<'_>) -> Option<Credential> {
    let CredentialKeys {
        env_secret,
        secret_file,
        certificate_file,
        assertion_file,
        workload_identity,
    } = keys;
    if assertion_file.is_some() || workload_identity {
        let key = if assertion_file.is_some() {
            "client_assertion_file"
        } else {
            "workload_identity"
        };
        let others: Vec<&str> = [
            (env_secret.is_some(), SECRET_ENV),
            (secret_file.is_some(), "client_secret_file"),
            (certificate_file.is_some(), "client_certificate_file"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !others.is_empty() {
            errors.push(err(
                key,
                format!(
                    "a federated token (client_assertion_file or workload_identity) and {} are set: configure exactly one credential",
                    others.join(" and ")
                ),
            ));
            return None;
        }
        return resolve_federated(errors, assertion_file, workload_identity);
    }
    let Some(path) = certificate_file else {
        return resolve_secret(errors, env_secret, secret_file).map(Credential::Secret);
    };
    if env_secret.is_some() || secret_file.is_some() {
        errors.push(err(
            "client_certificate_file",
            format!("set either a client secret ({SECRET_ENV} or client_secret_file) or a certificate, not both"),
        ));
        return None;
    }
    let pem = match std::fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) => {
            errors.push(err(
                "client_certificate_file",
                format!("cannot read {}: {e}", path.display()),
            ));
            return None;
        }
    };
    match graph_comms_client::ClientCertificate::from_pem(&pem, "") {
        Ok(_) => Some(Credential::Certificate(Secret::new(pem))),
        Err(e) => {
            errors.push(err(
                "client_certificate_file",
                format!(
                    "{}: {e} (it must hold the certificate and its RSA private key as PEM)",
                    path.display()
                ),
            ));
            None
        }
    }
}

/// The federated token file: `client_assertion_file`, else (workload identity)
/// `AZURE_FEDERATED_TOKEN_FILE`. It must be readable and hold a token now;
/// the client reads it again on every token fetch.
fn resolve_federated(
    errors: &mut Vec<ConfigError>,
    assertion_file: Option<&Path>,
    workload_identity: bool,
) -> Option<Credential> {
    let (path, source) = match assertion_file {
        Some(path) => (path.to_path_buf(), "client_assertion_file"),
        None => match workload_env(workload_identity, TOKEN_FILE_VAR) {
            Some(path) => (PathBuf::from(path), TOKEN_FILE_VAR),
            None => {
                errors.push(err(
                    "client_assertion_file",
                    format!(
                        "missing (required): workload_identity = true needs client_assertion_file or {TOKEN_FILE_VAR} \
                         (AKS sets it in pods labelled azure.workload.identity/use: \"true\")"
                    ),
                ));
                return None;
            }
        },
    };
    match std::fs::read_to_string(&path) {
        Ok(token) if token.trim().is_empty() => {
            errors.push(err(
                "client_assertion_file",
                format!("{} (from {source}) is empty", path.display()),
            ));
            None
        }
        Ok(_) => Some(Credential::FederatedToken(path)),
        Err(e) => {
            errors.push(err(
                "client_assertion_file",
                format!("cannot read {} (from {source}): {e}", path.display()),
            ));
            None
        }
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
                format!(
                    "missing (required): set {SECRET_ENV}, client_secret_file, client_certificate_file, \
                     client_assertion_file or workload_identity = true"
                ),
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
