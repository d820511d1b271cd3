//! The configuration as read, before validation: every key, optional, and
//! the defaults layered under the file and the environment.

use serde::{Deserialize, Deserializer, Serialize};

use super::*;

pub(super) const KNOWN_KEYS: &[&str] = &[
    "tenant_id",
    "app_id",
    "client_secret",
    "client_secret_file",
    "client_certificate_file",
    "client_assertion_file",
    "workload_identity",
    "graph_base_url",
    "login_base_url",
    "openid_configuration_url",
    "listen",
    "admin_listen",
    "public_callback_url",
    "callback_path",
    "hold_prompt_uri",
    "apology_prompt_uri",
    "transfer_timeout_secs",
    "ring_limit_secs",
    "keep_alive_interval_secs",
    "hook_timeout_secs",
    "log_format",
    "graph_client",
    "routes",
    "default_targets",
    "store",
    "server",
    "menu",
    "allowed_tenants",
    "application_instance_id",
    "telemetry",
];

/// The configuration as read, before validation. Ids accept numbers too,
/// because environment values that look numeric are parsed as numbers.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct RawConfig {
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) tenant_id: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_secret_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_certificate_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client_assertion_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) workload_identity: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) graph_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) login_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) openid_configuration_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) admin_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) public_callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) callback_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hold_prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) apology_prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) transfer_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) ring_limit_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) keep_alive_interval_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) hook_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) log_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) graph_client: Option<RawGraphClient>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) routes: Option<Vec<RawRoute>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) default_targets: Option<Vec<RawTarget>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) store: Option<RawStore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) server: Option<RawServer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) menu: Option<RawMenu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) allowed_tenants: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) application_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) telemetry: Option<RawTelemetry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTelemetry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) endpoint: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) service_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) headers: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sample_ratio: Option<f64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMenu {
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) match_called_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) prompt_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reprompts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) options: Option<Vec<RawMenuOption>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) operator_targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawMenuOption {
    #[serde(deserialize_with = "lenient_string")]
    pub(super) digit: Option<String>,
    pub(super) targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawStore {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) redis_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) redis_cluster: Option<bool>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) key_prefix: Option<String>,
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "Option::is_none")]
    pub(super) instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lease_ttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) outage_journal: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) outage_journal_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tls_ca_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tls_client_cert_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tls_client_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) header_read_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) request_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) max_connections: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawGraphClient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) request_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user_agent: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRoute {
    #[serde(deserialize_with = "lenient_string")]
    pub(super) match_called_id: Option<String>,
    pub(super) targets: Option<Vec<RawTarget>>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTarget {
    pub(super) kind: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(super) id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub(super) tenant_id: Option<String>,
    pub(super) display_name: Option<String>,
    pub(super) mode: Option<String>,
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

pub(super) fn defaults() -> RawConfig {
    RawConfig {
        graph_base_url: Some(DEFAULT_GRAPH_BASE_URL.into()),
        openid_configuration_url: Some(DEFAULT_OPENID_CONFIGURATION_URL.into()),
        listen: Some(DEFAULT_LISTEN.into()),
        callback_path: Some(DEFAULT_CALLBACK_PATH.into()),
        transfer_timeout_secs: Some(DEFAULT_TRANSFER_TIMEOUT_SECS),
        ring_limit_secs: Some(DEFAULT_RING_LIMIT_SECS),
        keep_alive_interval_secs: Some(DEFAULT_KEEP_ALIVE_INTERVAL_SECS),
        hook_timeout_secs: Some(DEFAULT_HOOK_TIMEOUT_SECS),
        log_format: Some("plain".into()),
        ..RawConfig::default()
    }
}
