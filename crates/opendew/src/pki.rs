//! A private certificate authority for development and bootstrap: one CA,
//! the gateway's HTTPS certificate, and the internal certificates that
//! services and their clients present to each other (mutual TLS).
//!
//! Production deployments may bring their own (cert-manager, a corporate
//! CA); this exists so that dev mode and the compose stack need no tooling
//! beyond opendew itself.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key (mode 0600).
#[derive(Debug, Clone)]
pub struct CertPair {
    /// PEM chain: the leaf, then the CA.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Everything the authority issued, under one directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate every client and service trusts.
    pub ca_cert: PathBuf,
    /// The gateway's HTTPS certificate (serverAuth).
    pub gateway: CertPair,
    /// kms-service's internal certificate (serverAuth and clientAuth).
    pub kms: CertPair,
    /// csms-service's internal certificate (serverAuth for its port,
    /// clientAuth towards kms-service).
    pub csms: CertPair,
    /// The gateway's client certificate towards the services.
    pub gateway_client: CertPair,
    /// A client certificate for operators (grpcurl against a service).
    pub operator: CertPair,
}

/// The gateway's HTTPS files, as the gateway and its clients need them.
#[derive(Debug, Clone)]
pub struct GatewayTls {
    /// The CA certificate clients trust (`curl --cacert`, the SDK's `ssl_ca_cert`).
    pub ca_cert: PathBuf,
    /// The gateway's certificate chain (leaf, then CA).
    pub cert: PathBuf,
    /// The gateway's private key (mode 0600).
    pub key: PathBuf,
}

/// Who a certificate is for: file stem, names, and what it may do.
struct Subject {
    stem: &'static str,
    names: Vec<String>,
    server: bool,
    client: bool,
}

impl Pki {
    fn in_dir(dir: &Path) -> Self {
        let pair =
            |stem: &str| CertPair { cert: dir.join(format!("{stem}.pem")), key: dir.join(format!("{stem}.key")) };
        Self {
            ca_cert: dir.join("ca.pem"),
            gateway: pair("gateway"),
            kms: pair("kms-service"),
            csms: pair("csms-service"),
            gateway_client: pair("gateway-client"),
            operator: pair("operator"),
        }
    }

    fn files(&self) -> Vec<&PathBuf> {
        let mut files = vec![&self.ca_cert];
        for pair in [&self.gateway, &self.kms, &self.csms, &self.gateway_client, &self.operator] {
            files.extend([&pair.cert, &pair.key]);
        }
        files
    }

    /// The gateway's HTTPS files.
    pub fn gateway_tls(&self) -> GatewayTls {
        GatewayTls { ca_cert: self.ca_cert.clone(), cert: self.gateway.cert.clone(), key: self.gateway.key.clone() }
    }

    /// Internal transport settings presenting `pair`.
    pub fn internal(&self, pair: &CertPair) -> common::grpc::InternalTlsConfig {
        common::grpc::InternalTlsConfig::files(pair.cert.clone(), pair.key.clone(), self.ca_cert.clone())
    }
}

/// Returns the authority and certificates under `dir`, creating them on
/// first use; `gateway_hosts` are the names and addresses the gateway's
/// HTTPS certificate is valid for. Internal certificates name the services
/// as the compose and Kubernetes files call them (`kms-service`,
/// `csms-service`) plus `localhost` and `127.0.0.1`. The set is written to
/// a scratch directory and renamed into place, so a crash midway never
/// leaves a CA without its certificates (or the other way round).
pub fn ensure(dir: &Path, gateway_hosts: &[String]) -> anyhow::Result<Pki> {
    let pki = Pki::in_dir(dir);
    if pki.files().iter().all(|p| p.exists()) {
        return Ok(pki);
    }
    anyhow::ensure!(
        !dir.exists(),
        "{} exists but lacks some certificates; remove it to create a new set",
        dir.display()
    );
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let scratch = tempfile::Builder::new().prefix(".tls-").tempdir_in(parent)?;
    let local = |name: &str| vec![name.to_owned(), "localhost".to_owned(), "127.0.0.1".to_owned()];
    let subjects = [
        Subject { stem: "gateway", names: gateway_hosts.to_vec(), server: true, client: false },
        Subject { stem: "kms-service", names: local("kms-service"), server: true, client: true },
        Subject { stem: "csms-service", names: local("csms-service"), server: true, client: true },
        Subject { stem: "gateway-client", names: vec!["gateway".into()], server: false, client: true },
        Subject { stem: "operator", names: vec!["operator".into()], server: false, client: true },
    ];
    let ten_years = {
        use chrono::Datelike;
        rcgen::date_time_ymd(chrono::Utc::now().year() + 10, 1, 1)
    };
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "opendew CA");
    ca.distinguished_name.push(DnType::OrganizationName, "opendew");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_after = ten_years;
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let staged = Pki::in_dir(scratch.path());
    std::fs::write(&staged.ca_cert, &ca_pem)?;
    // The CA key stays beside the CA so more certificates (another
    // gateway name, a new operator) can be issued by the same authority.
    write_private(&scratch.path().join("ca.key"), &ca_key.serialize_pem())?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    for subject in subjects {
        let mut leaf = CertificateParams::new(subject.names.clone()).context("invalid TLS host name")?;
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name.push(DnType::CommonName, subject.names[0].as_str());
        leaf.extended_key_usages = [
            subject.server.then_some(ExtendedKeyUsagePurpose::ServerAuth),
            subject.client.then_some(ExtendedKeyUsagePurpose::ClientAuth),
        ]
        .into_iter()
        .flatten()
        .collect();
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_after = ten_years;
        let key = KeyPair::generate()?;
        let cert = leaf.signed_by(&key, &issuer)?;
        let dir = scratch.path();
        std::fs::write(dir.join(format!("{}.pem", subject.stem)), format!("{}{ca_pem}", cert.pem()))?;
        write_private(&dir.join(format!("{}.key", subject.stem)), &key.serialize_pem())?;
    }
    std::fs::rename(scratch.keep(), dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(pki)
}

fn write_private(path: &Path, pem: &str) -> anyhow::Result<()> {
    let pem = zeroize::Zeroizing::new(pem.to_owned());
    identity::credentials::write_private_file(path, pem.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        let first = ensure(&tls_dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let pem = std::fs::read_to_string(&first.gateway.cert).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA");
        let again = ensure(&tls_dir, &["localhost".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(&again.gateway.cert).unwrap(), pem, "kept, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for key in [&first.gateway.key, &first.kms.key, &first.operator.key, &tls_dir.join("ca.key")] {
                assert_eq!(std::fs::metadata(key).unwrap().permissions().mode() & 0o777, 0o600, "{}", key.display());
            }
        }
    }
}
