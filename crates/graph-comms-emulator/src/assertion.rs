//! Certificates registered on apps, and checking the JWT client assertions
//! signed with them (the certificate form of the client-credentials flow).

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use graph_comms_model::{AppId, TenantId};
use serde_json::Value;

use crate::EmulatorError;

/// `client_assertion_type` of a JWT assertion.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew allowed on `nbf`/`exp`, in seconds.
const SKEW: u64 = 300;

/// A certificate registered on an app in a tenant.
#[derive(Debug, Clone)]
pub(crate) struct RegisteredCertificate {
    pub(crate) tenant_id: TenantId,
    pub(crate) app_id: AppId,
    x5t: String,
    x5t_s256: String,
    /// The RSAPublicKey (PKCS#1) DER from the certificate's subjectPublicKeyInfo.
    public_key: Vec<u8>,
}

impl RegisteredCertificate {
    /// From a PEM `CERTIFICATE` block.
    pub(crate) fn from_pem(tenant_id: TenantId, app_id: AppId, pem: &str) -> Result<Self, EmulatorError> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let bad = |why: &'static str| EmulatorError::Certificate(why);
        let start = pem.find(BEGIN).ok_or(bad("no CERTIFICATE block"))? + BEGIN.len();
        let stop = pem[start..].find(END).ok_or(bad("no END CERTIFICATE line"))? + start;
        let text: String = pem[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(text)
            .map_err(|_| bad("the certificate is not base64"))?;
        let public_key = rsa_public_key(&der).ok_or(bad("not an X.509 certificate with an RSA key"))?;
        Ok(Self {
            tenant_id,
            app_id,
            x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der)),
            x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &der)),
            public_key,
        })
    }
}

/// One DER element: (tag, content, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The RSAPublicKey inside a certificate's subjectPublicKeyInfo.
fn rsa_public_key(der: &[u8]) -> Option<Vec<u8>> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, certificate, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, mut tbs, _) = tlv(certificate)? else {
        return None;
    };
    // [0] version, optional.
    if tbs.first() == Some(&0xa0) {
        tbs = tlv(tbs)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        tbs = tlv(tbs)?.2;
    }
    let (SEQUENCE, spki, _) = tlv(tbs)? else { return None };
    let (SEQUENCE, algorithm, rest) = tlv(spki)? else {
        return None;
    };
    // rsaEncryption 1.2.840.113549.1.1.1
    const RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let (0x06, oid, _) = tlv(algorithm)? else { return None };
    if oid != RSA {
        return None;
    }
    let (0x03, bits, _) = tlv(rest)? else { return None };
    let (&0, key) = bits.split_first()? else { return None };
    Some(key.to_vec())
}

/// Why an assertion was refused: the AADSTS code and its description.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: u32,
    pub(crate) description: String,
}

pub(crate) fn refuse(code: u32, description: impl Into<String>) -> Refusal {
    Refusal {
        code,
        description: format!("AADSTS{code}: {}", description.into()),
    }
}

/// Checks a client assertion for `app` in `tenant` against its certificates;
/// `audience` is the token endpoint URL the assertion must name.
pub(crate) fn verify(
    certificates: &[RegisteredCertificate],
    tenant: &TenantId,
    app: &AppId,
    audience: &str,
    assertion: &str,
) -> Result<(), Refusal> {
    let malformed = || refuse(50027, "JWT token is invalid or malformed.");
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let decode = |part: &str| -> Option<Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok() };
    let header_json = decode(header).ok_or_else(malformed)?;
    let claims_json = decode(claims).ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
    if header_json["alg"] != "RS256" {
        return Err(refuse(5002738, "The client assertion must be signed with RS256."));
    }
    let x5t = header_json["x5t"].as_str();
    let x5t_s256 = header_json["x5t#S256"].as_str();
    let key = certificates
        .iter()
        .filter(|c| &c.tenant_id == tenant && &c.app_id == app)
        .find(|c| x5t == Some(c.x5t.as_str()) || x5t_s256 == Some(c.x5t_s256.as_str()))
        .ok_or_else(|| {
            refuse(
                700027,
                format!(
                    "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}']",
                    x5t.or(x5t_s256).unwrap_or("none")
                ),
            )
        })?;
    let input = format!("{header}.{claims}");
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.public_key)
        .verify(input.as_bytes(), &signature)
        .map_err(|_| refuse(700027, "Client assertion contains an invalid signature."))?;
    if claims_json["aud"] != audience {
        return Err(refuse(
            700212,
            format!("The client assertion's audience must be the token endpoint '{audience}'."),
        ));
    }
    if claims_json["iss"] != app.as_str() || claims_json["sub"] != app.as_str() {
        return Err(refuse(
            700023,
            "The client assertion's iss and sub must both be the application's client id.",
        ));
    }
    if !claims_json["jti"].is_string() {
        return Err(refuse(700023, "The client assertion has no jti."));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let exp = claims_json["exp"].as_u64().ok_or_else(malformed)?;
    let nbf = claims_json["nbf"].as_u64().unwrap_or(0);
    if exp + SKEW < now || nbf > now + SKEW {
        return Err(refuse(700024, "Client assertion is not within its valid time range."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_bad_input() {
        assert_eq!(tlv(&[0x30, 0x01, 0xff, 0x00]), Some((0x30, &[0xff][..], &[0x00][..])));
        assert_eq!(tlv(&[0x30, 0x81, 0x01, 0xaa]), Some((0x30, &[0xaa][..], &[][..])));
        assert_eq!(tlv(&[0x30, 0x05, 0x00]), None);
        assert_eq!(tlv(&[0x30, 0x80]), None);
        assert!(rsa_public_key(b"not der").is_none());
        assert!(RegisteredCertificate::from_pem("t".into(), "a".into(), "nope").is_err());
    }

    #[test]
    fn malformed_assertions_are_refused() {
        let err = verify(&[], &"t".into(), &"a".into(), "aud", "x.y").unwrap_err();
        assert_eq!(err.code, 50027);
        assert!(err.description.starts_with("AADSTS50027"));
    }
}
