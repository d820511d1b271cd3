//! A throwaway certificate authority for TLS tests: a CA, a server
//! certificate for `127.0.0.1` and `localhost`, and a client certificate,
//! made at test time and written as PEM files.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub use crate::redis_server::PkiFiles;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

/// A CA with one server and one client certificate, as PEM text.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate.
    pub ca_cert: String,
    /// The server certificate for `127.0.0.1` and `localhost`.
    pub server_cert: String,
    /// The server's private key (PKCS#8).
    pub server_key: String,
    /// The client certificate.
    pub client_cert: String,
    /// The client's private key (PKCS#8).
    pub client_key: String,
}

impl TestPki {
    /// Makes a new CA and its two certificates.
    ///
    /// # Errors
    ///
    /// When a key or certificate cannot be made (it does not happen).
    pub fn generate() -> Result<Self, rcgen::Error> {
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "graph-comms test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
        server
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        server.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        let server_key = KeyPair::generate()?;
        let server_cert = server.signed_by(&server_key, &issuer)?;

        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client
            .distinguished_name
            .push(DnType::CommonName, "graph-comms test client");
        let client_key = KeyPair::generate()?;
        let client_cert = client.signed_by(&client_key, &issuer)?;

        Ok(Self {
            ca_cert: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
            client_cert: client_cert.pem(),
            client_key: client_key.serialize_pem(),
        })
    }

    /// Writes the five PEM files into `dir`.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_to(&self, dir: &Path) -> io::Result<PkiFiles> {
        let write = |name: &str, text: &str| -> io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        Ok(PkiFiles {
            ca_cert: write("ca.pem", &self.ca_cert)?,
            server_cert: write("server.pem", &self.server_cert)?,
            server_key: write("server-key.pem", &self.server_key)?,
            client_cert: write("client.pem", &self.client_cert)?,
            client_key: write("client-key.pem", &self.client_key)?,
        })
    }
}
