//! Workload identity federation: the client-credentials flow whose client
//! assertion is a token from another identity provider (on AKS, the pod's
//! projected service account token), read from a file on every token fetch.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use graph_comms_model::{AppId, TenantId};

use crate::auth::{AccessToken, GRAPH_SCOPE, TokenProvider, check_tenant, exchange, token_url};
use crate::certificate::JWT_BEARER_ASSERTION;
use crate::error::{GraphClientError, TokenError};

/// The app (client) id; AKS workload identity sets it from the service
/// account's `azure.workload.identity/client-id` annotation.
const CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
/// The tenant id.
const TENANT_ID_VAR: &str = "AZURE_TENANT_ID";
/// The path of the projected service account token.
const TOKEN_FILE_VAR: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// The Entra ID host, with a trailing slash as AKS writes it.
const AUTHORITY_HOST_VAR: &str = "AZURE_AUTHORITY_HOST";

/// `AZURE_AUTHORITY_HOST` when it is not set: the public cloud.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

/// Why [`FederatedTokenCredential::from_environment`] could not make a credential.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadIdentityError {
    /// A variable that AKS workload identity sets is missing or empty.
    #[error(
        "environment variable {variable} is not set (AKS workload identity sets it in pods labelled \
         azure.workload.identity/use: \"true\" whose service account has the azure.workload.identity/client-id annotation)"
    )]
    MissingVariable {
        /// The variable, for example `AZURE_FEDERATED_TOKEN_FILE`.
        variable: &'static str,
    },
    /// A variable is set to something unusable.
    #[error("environment variable {variable} is invalid: {reason}")]
    InvalidVariable {
        /// The variable, for example `AZURE_AUTHORITY_HOST`.
        variable: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] GraphClientError),
}

impl WorkloadIdentityError {
    /// The environment variable the error is about, if any.
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            Self::MissingVariable { variable } | Self::InvalidVariable { variable, .. } => Some(variable),
            Self::Client(_) => None,
        }
    }
}

impl From<WorkloadIdentityError> for GraphClientError {
    fn from(error: WorkloadIdentityError) -> Self {
        match error {
            WorkloadIdentityError::Client(error) => error,
            other => GraphClientError::Config(other.to_string()),
        }
    }
}

/// The client-credentials flow with a federated token as the client assertion
/// (workload identity federation), as AKS workload identity uses it: the
/// request carries `client_assertion_type` jwt-bearer and the content of
/// `token_file` as `client_assertion`. The file is read again on **every**
/// token fetch, never kept in memory, because the kubelet rotates it; the
/// access tokens it gets are cached by the client like any other.
///
/// The federated token's issuer and subject must be registered on the app as a
/// federated identity credential (audience `api://AzureADTokenExchange`). Like
/// [`crate::ClientSecretCredential`], it gets tokens for other tenants at their
/// own token endpoint with the same assertion.
pub struct FederatedTokenCredential {
    http: reqwest::Client,
    authority_host: String,
    tenant: TenantId,
    app_id: AppId,
    token_file: PathBuf,
    timeout: Duration,
}

impl fmt::Debug for FederatedTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FederatedTokenCredential")
            .field("authority_host", &self.authority_host)
            .field("tenant", &self.tenant)
            .field("app_id", &self.app_id)
            .field("token_file", &self.token_file)
            .finish_non_exhaustive()
    }
}

impl FederatedTokenCredential {
    /// A credential for this app in this tenant, whose federated token is in
    /// `token_file`. `authority_host` is `https://login.microsoftonline.com`
    /// for the public cloud (a trailing slash is fine).
    pub fn new(
        authority_host: &str,
        tenant: &TenantId,
        app_id: AppId,
        token_file: impl Into<PathBuf>,
    ) -> Result<Self, GraphClientError> {
        check_tenant(tenant).map_err(|e| GraphClientError::Config(e.to_string()))?;
        let http = crate::client::http_client(crate::client::DEFAULT_USER_AGENT)?;
        Ok(Self::with_http(
            http,
            authority_host,
            tenant,
            app_id,
            token_file.into(),
            crate::client::DEFAULT_TIMEOUT,
        ))
    }

    /// From the variables AKS workload identity injects into a pod:
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE` and
    /// `AZURE_AUTHORITY_HOST` (default [`DEFAULT_AUTHORITY_HOST`]). A missing
    /// or empty variable is [`WorkloadIdentityError::MissingVariable`] naming it.
    pub fn from_environment() -> Result<Self, WorkloadIdentityError> {
        Self::from_variables(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_environment`], with the variables from `lookup`
    /// instead of the process environment (an app that lets its own settings
    /// override some of them, or a test).
    pub fn from_variables(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, WorkloadIdentityError> {
        let var = |variable: &'static str| {
            lookup(variable)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let required =
            |variable: &'static str| var(variable).ok_or(WorkloadIdentityError::MissingVariable { variable });
        let app_id = AppId::new(required(CLIENT_ID_VAR)?);
        let tenant = TenantId::new(required(TENANT_ID_VAR)?);
        check_tenant(&tenant).map_err(|e| WorkloadIdentityError::InvalidVariable {
            variable: TENANT_ID_VAR,
            reason: e.to_string(),
        })?;
        let token_file = PathBuf::from(required(TOKEN_FILE_VAR)?);
        let authority_host = var(AUTHORITY_HOST_VAR).unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned());
        if !(authority_host.starts_with("https://") || authority_host.starts_with("http://")) {
            return Err(WorkloadIdentityError::InvalidVariable {
                variable: AUTHORITY_HOST_VAR,
                reason: format!("{authority_host:?} is not an http(s) URL"),
            });
        }
        let http = crate::client::http_client(crate::client::DEFAULT_USER_AGENT)?;
        Ok(Self::with_http(
            http,
            &authority_host,
            &tenant,
            app_id,
            token_file,
            crate::client::DEFAULT_TIMEOUT,
        ))
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        authority_host: &str,
        tenant: &TenantId,
        app_id: AppId,
        token_file: PathBuf,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            authority_host: authority_host.trim().trim_end_matches('/').to_owned(),
            tenant: tenant.clone(),
            app_id,
            token_file,
            timeout,
        }
    }

    /// How long one token request may take; default 30 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The Entra ID host, without a trailing slash.
    pub fn authority_host(&self) -> &str {
        &self.authority_host
    }

    /// The tenant [`TokenProvider::token`] gets tokens for.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The app (client) id.
    pub fn app_id(&self) -> &AppId {
        &self.app_id
    }

    /// The file the federated token is read from on each fetch.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// The federated token, read now: the file's content without surrounding whitespace.
    async fn assertion(&self) -> Result<String, TokenError> {
        let path = self.token_file.clone();
        // A small file, but read off the async workers all the same.
        let read = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
            .await
            .map_err(|e| TokenError::Credential(format!("reading the federated token file failed: {e}")))?;
        let text = read.map_err(|e| {
            TokenError::Credential(format!(
                "cannot read the federated token file {}: {e}",
                self.token_file.display()
            ))
        })?;
        let assertion = text.trim();
        if assertion.is_empty() {
            return Err(TokenError::Credential(format!(
                "the federated token file {} is empty",
                self.token_file.display()
            )));
        }
        Ok(assertion.to_owned())
    }

    async fn request(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        let assertion = self.assertion().await?;
        let url = token_url(&self.authority_host, tenant);
        let form = [
            ("client_id", self.app_id.as_str()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", assertion.as_str()),
        ];
        exchange(&self.http, &url, &form, self.timeout, &[assertion.as_str()]).await
    }
}

#[async_trait]
impl TokenProvider for FederatedTokenCredential {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.request(&self.tenant).await
    }

    /// The same app and federated token against `{authority}/{tenant}/oauth2/v2.0/token`.
    async fn token_for_tenant(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        check_tenant(tenant)?;
        self.request(tenant).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<FederatedTokenCredential, WorkloadIdentityError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        FederatedTokenCredential::from_variables(|name| vars.get(name).cloned())
    }

    const ALL: [(&str, &str); 4] = [
        ("AZURE_CLIENT_ID", "app-id"),
        ("AZURE_TENANT_ID", "tenant-id"),
        (
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ];

    #[test]
    fn the_aks_variables_make_a_credential_and_the_trailing_slash_is_dropped() {
        let credential = from(&ALL).unwrap();
        assert_eq!(credential.app_id().as_str(), "app-id");
        assert_eq!(credential.tenant().as_str(), "tenant-id");
        assert_eq!(
            credential.token_file(),
            Path::new("/var/run/secrets/azure/tokens/azure-identity-token")
        );
        assert_eq!(credential.authority_host(), "https://login.microsoftonline.com");
        assert_eq!(
            token_url(credential.authority_host(), credential.tenant()),
            "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token"
        );
        // Without AZURE_AUTHORITY_HOST: the public cloud.
        let credential = from(&ALL[..3]).unwrap();
        assert_eq!(credential.authority_host(), "https://login.microsoftonline.com");
        assert!(format!("{credential:?}").contains("azure-identity-token"));
    }

    #[test]
    fn a_missing_or_empty_variable_is_named() {
        for (i, (variable, _)) in ALL[..3].iter().enumerate() {
            let mut vars = ALL.to_vec();
            vars.remove(i);
            let err = from(&vars).unwrap_err();
            assert!(
                matches!(err, WorkloadIdentityError::MissingVariable { variable: v } if v == *variable),
                "{err:?}"
            );
            assert_eq!(err.variable(), Some(*variable));
            assert!(err.to_string().contains(variable), "{err}");
            vars.insert(i, (variable, "  "));
            assert_eq!(
                from(&vars).unwrap_err().variable(),
                Some(*variable),
                "blank counts as missing"
            );
        }
        let mut vars = ALL.to_vec();
        vars[3].1 = "login.microsoftonline.com";
        let err = from(&vars).unwrap_err();
        assert!(matches!(
            err,
            WorkloadIdentityError::InvalidVariable {
                variable: "AZURE_AUTHORITY_HOST",
                ..
            }
        ));
        vars[3].1 = "https://login.microsoftonline.com/";
        vars[1].1 = "common";
        let err = from(&vars).unwrap_err();
        assert_eq!(err.variable(), Some("AZURE_TENANT_ID"), "{err}");
        assert!(matches!(GraphClientError::from(err), GraphClientError::Config(_)));
    }
}
