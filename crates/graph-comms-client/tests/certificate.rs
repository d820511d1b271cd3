//! The certificate credential against the emulator's token endpoint: the
//! assertion is accepted when its certificate is registered on the app, and
//! refused with Entra ID's codes otherwise. The certificate is made at test time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Setup;
use graph_comms_client::{
    ClientCertificate, ClientCertificateCredential, GraphClient, GraphClientError, TokenProvider,
};

/// A fresh self-signed RSA certificate and its PKCS#8 key, as PEM.
fn certificate() -> (String, String) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let params = rcgen::CertificateParams::new(vec!["bot.example.invalid".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn a_registered_certificate_gets_tokens_and_others_are_refused() {
    let setup = Setup::start().await;
    let app = setup.emulator.default_app();
    let (cert_pem, key_pem) = certificate();
    setup.emulator.register_certificate(&app, &cert_pem).unwrap();

    let client = GraphClient::builder()
        .certificate(
            app.tenant_id.clone(),
            app.app_id.clone(),
            ClientCertificate::from_pem(&cert_pem, &key_pem).unwrap(),
        )
        .graph_base_url(setup.emulator.graph_base_url())
        .login_base_url(setup.emulator.login_base_url())
        .build()
        .unwrap();
    client.ensure_token().await.unwrap();
    // The token works on the calls API.
    let call = setup.established_call(&client).await;
    assert_eq!(client.get_call(&call).await.unwrap().status, 200);

    // A certificate the app does not have: AADSTS700027, nothing secret in the error.
    let (other_pem, other_key) = certificate();
    let stranger = ClientCertificateCredential::new(
        &setup.emulator.login_base_url(),
        &app.tenant_id,
        app.app_id.clone(),
        ClientCertificate::from_pem(&other_pem, &other_key).unwrap(),
    )
    .unwrap();
    let err = stranger.token().await.unwrap_err();
    assert_eq!(err.aad_code(), Some("AADSTS700027"), "{err}");
    assert!(err.to_string().contains("not registered"), "{err}");

    // The registered certificate with another key: a bad signature, AADSTS700027.
    let forged = ClientCertificateCredential::new(
        &setup.emulator.login_base_url(),
        &app.tenant_id,
        app.app_id.clone(),
        ClientCertificate::from_pem(&cert_pem, &other_key).unwrap(),
    )
    .unwrap();
    let err = forged.token().await.unwrap_err();
    assert_eq!(err.aad_code(), Some("AADSTS700027"));
    assert!(err.to_string().contains("invalid signature"), "{err}");

    // Per tenant: the assertion's audience is that tenant's token endpoint.
    let other_tenant = setup.emulator.add_tenant();
    setup.emulator.register_certificate(&other_tenant, &cert_pem).unwrap();
    client.for_tenant(&other_tenant.tenant_id).ensure_token().await.unwrap();

    // Bad PEM input is a clear error, never a panic.
    let err = ClientCertificate::from_pem("garbage", "").unwrap_err();
    assert!(err.to_string().contains("CERTIFICATE"));
    let err = GraphClient::builder()
        .certificate(
            "common".into(),
            app.app_id.clone(),
            ClientCertificate::from_pem(&cert_pem, &key_pem).unwrap(),
        )
        .build()
        .unwrap_err();
    assert!(matches!(err, GraphClientError::Config(_)), "{err:?}");
    setup.shutdown().await;
}

#[test]
fn the_assertion_has_the_documented_header_and_claims() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let (cert_pem, key_pem) = certificate();
    let certificate = ClientCertificate::from_pem(&cert_pem, &key_pem).unwrap();
    let audience = "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token";
    let jwt = certificate.assertion(&"app-id".into(), audience).unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    let part =
        |i: usize| -> serde_json::Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[i]).unwrap()).unwrap() };
    let header = part(0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["x5t"], certificate.x5t());
    assert_eq!(URL_SAFE_NO_PAD.decode(certificate.x5t()).unwrap().len(), 20, "SHA-1");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(header["x5t#S256"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    let claims = part(1);
    assert_eq!(claims["aud"], audience);
    assert_eq!(claims["iss"], "app-id");
    assert_eq!(claims["sub"], "app-id");
    assert!(claims["jti"].is_string());
    let (nbf, exp) = (claims["nbf"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
    assert!(exp > nbf && exp - nbf <= 600);
    // PKCS#1 keys are read too.
    assert!(format!("{certificate:?}").contains("redacted"));
}
