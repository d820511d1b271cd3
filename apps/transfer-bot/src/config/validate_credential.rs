//! The Graph credential: a secret, a certificate or a federated token
//! (workload identity), exactly one of them.

use std::path::Path;

use super::validate::required;
use super::*;

/// The variables AKS workload identity sets in a pod (`azure.workload.identity/use: "true"`).
pub(super) const CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
pub(super) const TENANT_ID_VAR: &str = "AZURE_TENANT_ID";
pub(super) const TOKEN_FILE_VAR: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub(super) const AUTHORITY_HOST_VAR: &str = "AZURE_AUTHORITY_HOST";

/// With `workload_identity = true`, the AKS variable `name` (when set and not blank).
pub(super) fn workload_env(workload_identity: bool, name: &str) -> Option<String> {
    if !workload_identity {
        return None;
    }
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// A required key that, with `workload_identity = true`, falls back to the AKS variable.
pub(super) fn required_or_workload_env(
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
pub(super) struct CredentialKeys<'a> {
    pub(super) env_secret: Option<String>,
    pub(super) secret_file: Option<&'a Path>,
    pub(super) certificate_file: Option<&'a Path>,
    pub(super) assertion_file: Option<&'a Path>,
    pub(super) workload_identity: bool,
}

/// Exactly one of: a federated token file, a certificate file, or the secret
/// (from the environment or its file).
pub(super) fn resolve_credential(errors: &mut Vec<ConfigError>, keys: CredentialKeys<'_>) -> Option<Credential> {
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
