//! The `[store]` table: where call records are kept, and TLS to Redis.

use std::path::Path;
use std::time::Duration;

use super::raw::RawStore;
use super::*;

pub(super) fn validate_store(errors: &mut Vec<ConfigError>, mut raw: RawStore) -> Option<StoreSettings> {
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
    let redis_cluster = raw.redis_cluster.unwrap_or(false);
    if redis_cluster {
        match &backend {
            Some(StoreBackend::Redis(url)) => {
                // A cluster has database 0 only.
                let db = url::Url::parse(url.expose())
                    .map(|u| u.path().trim_matches('/').to_owned())
                    .unwrap_or_default();
                if !db.is_empty() && db != "0" {
                    errors.push(err(
                        "store.redis_url",
                        format!("names database {db}, but a Redis Cluster has database 0 only"),
                    ));
                }
            }
            Some(StoreBackend::Memory) => errors.push(err(
                "store.redis_cluster",
                "is true but store.kind is memory: set store.kind = \"redis\"",
            )),
            None => {}
        }
    }
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
    let outage_journal = match raw.outage_journal {
        None => Some(graph_comms_handler::DEFAULT_OUTAGE_JOURNAL_CAPACITY),
        Some(items) if items <= OUTAGE_JOURNAL_MAX => Some(items),
        Some(items) => {
            errors.push(err(
                "store.outage_journal",
                format!("{items} is more than {OUTAGE_JOURNAL_MAX} notifications"),
            ));
            None
        }
    };
    let outage_journal_dir = match raw.outage_journal_dir.take() {
        Some(dir) if dir.as_os_str().is_empty() => {
            errors.push(err("store.outage_journal_dir", "must not be empty"));
            None
        }
        Some(dir) if outage_journal == Some(0) => {
            errors.push(err(
                "store.outage_journal_dir",
                format!(
                    "{} is set but store.outage_journal is 0 (off): remove one of them",
                    dir.display()
                ),
            ));
            None
        }
        dir => Some(dir),
    };
    let tls = validate_store_tls(errors, &raw, backend.as_ref());
    Some(StoreSettings {
        backend: backend?,
        redis_cluster,
        key_prefix: key_prefix?,
        instance_id: instance_id?,
        lease_ttl: lease_ttl?,
        outage_journal: outage_journal?,
        outage_journal_dir: outage_journal_dir?,
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
