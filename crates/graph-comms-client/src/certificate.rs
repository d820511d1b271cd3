//! The client-credentials flow with a certificate: a JWT client assertion
//! signed RS256 with the certificate's private key.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use graph_comms_model::{AppId, TenantId};
use serde_json::json;

use crate::auth::{AccessToken, GRAPH_SCOPE, TokenProvider, check_tenant, exchange, token_url};
use crate::error::TokenError;

/// `client_assertion_type` for a JWT assertion (RFC 7523).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid; Entra ID accepts up to 10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// An X.509 certificate and its RSA private key, as registered on the app.
pub struct ClientCertificate {
    key: KeyPair,
    /// base64url(SHA-1(DER)): the `x5t` header Entra ID looks the key up by.
    x5t: String,
    /// base64url(SHA-256(DER)): `x5t#S256`.
    x5t_s256: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t", &self.x5t)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl ClientCertificate {
    /// From PEM text holding a `CERTIFICATE` block and a `PRIVATE KEY` (PKCS#8)
    /// or `RSA PRIVATE KEY` (PKCS#1) block, in one string or two.
    pub fn from_pem(certificate_pem: &str, private_key_pem: &str) -> Result<Self, TokenError> {
        let all = format!("{certificate_pem}\n{private_key_pem}");
        let certificate = pem_block(&all, "CERTIFICATE")?
            .ok_or_else(|| TokenError::Credential("no CERTIFICATE block in the PEM".into()))?;
        let key = match pem_block(&all, "PRIVATE KEY")? {
            Some(pkcs8) => KeyPair::from_pkcs8(&pkcs8)
                .map_err(|e| TokenError::Credential(format!("unusable PKCS#8 RSA key: {e}")))?,
            None => {
                let pkcs1 = pem_block(&all, "RSA PRIVATE KEY")?.ok_or_else(|| {
                    TokenError::Credential("no PRIVATE KEY or RSA PRIVATE KEY block in the PEM".into())
                })?;
                KeyPair::from_der(&pkcs1)
                    .map_err(|e| TokenError::Credential(format!("unusable PKCS#1 RSA key: {e}")))?
            }
        };
        Self::from_der(&certificate, key)
    }

    fn from_der(certificate_der: &[u8], key: KeyPair) -> Result<Self, TokenError> {
        if certificate_der.first() != Some(&0x30) {
            return Err(TokenError::Credential("the certificate is not DER".into()));
        }
        Ok(Self {
            key,
            x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, certificate_der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, certificate_der)),
        })
    }

    /// The `x5t` thumbprint (base64url of the certificate's SHA-1).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// A signed client assertion for `audience` (the token endpoint URL).
    pub fn assertion(&self, app_id: &AppId, audience: &str) -> Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| TokenError::Credential("the system clock is before 1970".into()))?
            .as_secs();
        let header = json!({ "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256 });
        let claims = json!({
            "aud": audience,
            "iss": app_id.as_str(),
            "sub": app_id.as_str(),
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME.as_secs(),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| TokenError::Credential("RS256 signing failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The first PEM block with this label, decoded; `None` when absent.
fn pem_block(text: &str, label: &str) -> Result<Option<Vec<u8>>, TokenError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let Some(start) = text.find(&begin) else {
        return Ok(None);
    };
    let body = &text[start + begin.len()..];
    let stop = body
        .find(&end)
        .ok_or_else(|| TokenError::Credential(format!("PEM block {label} has no END line")))?;
    let base64: String = body[..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(base64)
        .map(Some)
        .map_err(|e| TokenError::Credential(format!("PEM block {label} is not base64: {e}")))
}

/// The client-credentials flow with a certificate (client assertion), as
/// Entra ID documents it: `client_assertion_type` jwt-bearer and a JWT with
/// `x5t`/`x5t#S256`, `aud` = the token endpoint, `iss` = `sub` = the app id,
/// `jti`, `nbf` and `exp`. Like [`crate::ClientSecretCredential`], it gets
/// tokens for other tenants at their own token endpoint.
pub struct ClientCertificateCredential {
    http: reqwest::Client,
    login_base_url: String,
    tenant: TenantId,
    app_id: AppId,
    certificate: ClientCertificate,
    timeout: Duration,
}

impl fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificateCredential")
            .field("tenant", &self.tenant)
            .field("app_id", &self.app_id)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl ClientCertificateCredential {
    /// A credential for this app in this tenant. `login_base_url` is
    /// `https://login.microsoftonline.com` for the public cloud.
    pub fn new(
        login_base_url: &str,
        tenant: &TenantId,
        app_id: AppId,
        certificate: ClientCertificate,
    ) -> Result<Self, crate::GraphClientError> {
        check_tenant(tenant).map_err(|e| crate::GraphClientError::Config(e.to_string()))?;
        let http = crate::client::http_client(crate::client::DEFAULT_USER_AGENT)?;
        Ok(Self::with_http(
            http,
            login_base_url,
            tenant,
            app_id,
            certificate,
            crate::client::DEFAULT_TIMEOUT,
        ))
    }

    pub(crate) fn with_http(
        http: reqwest::Client,
        login_base_url: &str,
        tenant: &TenantId,
        app_id: AppId,
        certificate: ClientCertificate,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            login_base_url: login_base_url.trim_end_matches('/').to_owned(),
            tenant: tenant.clone(),
            app_id,
            certificate,
            timeout,
        }
    }

    /// How long one token request may take; default 30 s.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn request(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        let url = token_url(&self.login_base_url, tenant);
        let assertion = self.certificate.assertion(&self.app_id, &url)?;
        let form = [
            ("client_id", self.app_id.as_str()),
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", assertion.as_str()),
            ("scope", GRAPH_SCOPE),
            ("grant_type", "client_credentials"),
        ];
        exchange(&self.http, &url, &form, self.timeout, &[assertion.as_str()]).await
    }
}

#[async_trait]
impl TokenProvider for ClientCertificateCredential {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        self.request(&self.tenant).await
    }

    async fn token_for_tenant(&self, tenant: &TenantId) -> Result<AccessToken, TokenError> {
        check_tenant(tenant)?;
        self.request(tenant).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_are_clear() {
        let err = ClientCertificate::from_pem("nothing", "here").unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");
        let err =
            ClientCertificate::from_pem("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----", "").unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
        let err = ClientCertificate::from_pem("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----", "")
            .unwrap_err();
        assert!(err.to_string().contains("no PRIVATE KEY"), "{err}");
    }
}
