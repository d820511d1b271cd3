//! Federated identity credentials (workload identity federation): an app
//! trusts the tokens an external OIDC issuer (an AKS cluster, GitHub
//! Actions, ...) signs for one subject, and the token endpoint accepts such a
//! token as the client assertion.
//!
//! A client assertion whose `iss` is the app id is the app's own, signed with
//! a registered certificate ([`crate::assertion`]); any other issuer makes it
//! a federated token, checked here.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use graph_comms_model::{AppId, TenantId};
use serde_json::Value;

use crate::EmulatorError;
use crate::assertion::{Refusal, refuse};
use crate::state::{Inner, lock};

/// The audience Entra ID requires of a federated token by default.
pub(crate) const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Clock skew allowed on `nbf`/`exp`, in seconds (as for certificate assertions).
const SKEW: u64 = 300;

/// One RSA key of the issuer, from its JWKS.
#[derive(Debug, Clone)]
struct IssuerKey {
    kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// A federated identity credential of an app in a tenant: tokens of `issuer`
/// for `subject`, signed by one of `keys`.
#[derive(Debug, Clone)]
pub(crate) struct FederatedIdentity {
    tenant_id: TenantId,
    app_id: AppId,
    issuer: String,
    subject: String,
    keys: Vec<IssuerKey>,
}

impl FederatedIdentity {
    /// From the issuer's JWKS (`{"keys": [...]}`) or one JWK; only RSA keys are kept.
    pub(crate) fn new(
        tenant_id: TenantId,
        app_id: AppId,
        issuer: &str,
        subject: &str,
        jwks: &Value,
    ) -> Result<Self, EmulatorError> {
        let bad = |why: String| EmulatorError::FederatedIdentity(why);
        if issuer.trim().is_empty() || subject.trim().is_empty() {
            return Err(bad("the issuer and the subject must not be empty".into()));
        }
        let jwks_keys: Vec<&Value> = match jwks.get("keys") {
            Some(Value::Array(keys)) => keys.iter().collect(),
            Some(_) => return Err(bad("the JWKS's \"keys\" is not an array".into())),
            None => vec![jwks],
        };
        let mut keys = Vec::new();
        for (i, jwk) in jwks_keys.into_iter().enumerate() {
            if jwk["kty"] != "RSA" {
                continue;
            }
            let component = |name: &str| {
                let text = jwk[name]
                    .as_str()
                    .ok_or_else(|| bad(format!("key {i} has no \"{name}\"")))?;
                let bytes = URL_SAFE_NO_PAD
                    .decode(text.trim_end_matches('='))
                    .map_err(|_| bad(format!("key {i}: \"{name}\" is not base64url")))?;
                // Big-endian without leading zeros, as the verifier wants it.
                let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                Ok::<_, EmulatorError>(bytes[start..].to_vec())
            };
            keys.push(IssuerKey {
                kid: jwk["kid"].as_str().map(str::to_owned),
                n: component("n")?,
                e: component("e")?,
            });
        }
        if keys.is_empty() {
            return Err(bad("the JWKS holds no RSA key".into()));
        }
        Ok(Self {
            tenant_id,
            app_id,
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            keys,
        })
    }

    /// Whether `other` is the same credential (app, tenant, issuer and subject).
    pub(crate) fn same_record(&self, other: &Self) -> bool {
        self.tenant_id == other.tenant_id
            && self.app_id == other.app_id
            && self.issuer == other.issuer
            && self.subject == other.subject
    }
}

/// A compact JWS: its parts as text, decoded.
struct Jws<'a> {
    signed: &'a str,
    header: Value,
    claims: Value,
    signature: Vec<u8>,
}

fn parse(assertion: &str) -> Option<Jws<'_>> {
    let (signed, signature) = assertion.rsplit_once('.')?;
    let (header, claims) = signed.split_once('.')?;
    if claims.contains('.') {
        return None;
    }
    let decode = |part: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok() };
    Some(Jws {
        signed,
        header: decode(header)?,
        claims: decode(claims)?,
        signature: URL_SAFE_NO_PAD.decode(signature).ok()?,
    })
}

/// Checks a client assertion for `app` in `tenant`: a federated token when
/// its `iss` is another issuer than the app, else a certificate assertion
/// whose `aud` must be `audience` (the token endpoint).
pub(crate) fn verify_client_assertion(
    inner: &Inner,
    tenant: &TenantId,
    app: &AppId,
    audience: &str,
    assertion: &str,
) -> Result<(), Refusal> {
    let issuer = parse(assertion).and_then(|jws| jws.claims["iss"].as_str().map(str::to_owned));
    match issuer {
        Some(issuer) if issuer != app.as_str() => {
            let identities = lock(&inner.federated).clone();
            verify(&identities, tenant, app, assertion)
        }
        _ => {
            let certificates = lock(&inner.certificates).clone();
            crate::assertion::verify(&certificates, tenant, app, audience, assertion)
        }
    }
}

/// Checks a federated token against the app's federated identity credentials,
/// in Entra ID's order: issuer, signature, subject, audience, lifetime.
pub(crate) fn verify(
    identities: &[FederatedIdentity],
    tenant: &TenantId,
    app: &AppId,
    assertion: &str,
) -> Result<(), Refusal> {
    let jws = parse(assertion).ok_or_else(|| refuse(50027, "JWT token is invalid or malformed."))?;
    if jws.header["alg"] != "RS256" {
        return Err(refuse(5002738, "The federated token must be signed with RS256."));
    }
    let issuer = jws.claims["iss"].as_str().unwrap_or_default();
    let trusted: Vec<&FederatedIdentity> = identities
        .iter()
        .filter(|i| &i.tenant_id == tenant && &i.app_id == app && i.issuer == issuer)
        .collect();
    if trusted.is_empty() {
        return Err(refuse(
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let kid = jws.header["kid"].as_str();
    let keys: Vec<&IssuerKey> = trusted
        .iter()
        .flat_map(|i| &i.keys)
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if keys.is_empty() {
        return Err(refuse(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The key was not found., Key id of the presented assertion: '{}']",
                kid.unwrap_or("none")
            ),
        ));
    }
    let signed = keys.iter().any(|k| {
        RsaPublicKeyComponents { n: &k.n, e: &k.e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, jws.signed.as_bytes(), &jws.signature)
            .is_ok()
    });
    if !signed {
        return Err(refuse(700027, "Client assertion failed signature validation."));
    }
    let subject = jws.claims["sub"].as_str().unwrap_or_default();
    if !trusted.iter().any(|i| i.subject == subject) {
        return Err(refuse(
            700213,
            format!(
                "No matching federated identity record found for presented assertion subject '{subject}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        ));
    }
    let audience_ok = match &jws.claims["aud"] {
        Value::String(aud) => aud == TOKEN_EXCHANGE_AUDIENCE,
        Value::Array(auds) => auds.iter().any(|a| a == TOKEN_EXCHANGE_AUDIENCE),
        _ => false,
    };
    if !audience_ok {
        return Err(refuse(
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                jws.claims["aud"]
            ),
        ));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let exp = jws.claims["exp"]
        .as_u64()
        .ok_or_else(|| refuse(50027, "JWT token is invalid or malformed: no numeric exp."))?;
    let nbf = jws.claims["nbf"].as_u64().unwrap_or(0);
    if exp + SKEW < now || nbf > now + SKEW {
        return Err(refuse(700024, "Client assertion is not within its valid time range."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_needs_an_rsa_key() {
        let identity = |jwks: Value| FederatedIdentity::new("t".into(), "a".into(), "https://issuer", "sub", &jwks);
        assert!(identity(serde_json::json!({ "keys": [] })).is_err());
        assert!(identity(serde_json::json!({ "keys": "no" })).is_err());
        assert!(
            identity(serde_json::json!({ "kty": "RSA", "n": "AQAB" })).is_err(),
            "no e"
        );
        assert!(identity(serde_json::json!({ "kty": "RSA", "n": "AAEAAQ", "e": "AQAB" })).is_ok());
        let err = FederatedIdentity::new(
            "t".into(),
            "a".into(),
            "",
            "sub",
            &serde_json::json!({ "kty": "RSA", "n": "AQAB", "e": "AQAB" }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "a.b", "a.b.c.d", "e30.e30.!"] {
            let err = verify(&[], &"t".into(), &"a".into(), bad).unwrap_err();
            assert_eq!(err.code, 50027, "{bad}");
        }
    }
}
