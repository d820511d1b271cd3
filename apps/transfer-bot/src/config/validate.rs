//! Validation: the raw configuration becomes a [`Config`], or every problem
//! is reported with the key it concerns.

use std::net::SocketAddr;
use std::time::Duration;

use graph_comms_model::{AppId, PhoneNumber, TenantId};

use super::raw::{RawConfig, RawMenu, RawRoute, RawServer, RawTarget};
use super::validate_credential::{
    AUTHORITY_HOST_VAR, CLIENT_ID_VAR, CredentialKeys, TENANT_ID_VAR, required_or_workload_env, resolve_credential,
    workload_env,
};
use super::validate_store::validate_store;
use super::validate_telemetry::validate_telemetry;
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
    let telemetry = validate_telemetry(errors, raw.telemetry.unwrap_or_default());
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
        telemetry: telemetry?,
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

pub(super) fn required(errors: &mut Vec<ConfigError>, key: &str, value: Option<String>) -> Option<String> {
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
