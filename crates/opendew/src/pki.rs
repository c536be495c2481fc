//! A private certificate authority for development and bootstrap: one CA
//! and a gateway server certificate it signs, so HTTPS works out of the
//! box and a client trusts it with one file (`ca.pem`).
//!
//! Production deployments bring their own certificates (cert-manager, a
//! corporate CA); this exists so that dev mode and the compose stack need
//! no tooling beyond opendew itself.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The files of a generated authority and gateway certificate.
#[derive(Debug, Clone)]
pub struct GatewayTls {
    /// The CA certificate clients trust (`curl --cacert`, the SDK's `ssl_ca_cert`).
    pub ca_cert: PathBuf,
    /// The gateway's certificate chain (leaf, then CA).
    pub cert: PathBuf,
    /// The gateway's private key (mode 0600).
    pub key: PathBuf,
}

impl GatewayTls {
    fn in_dir(dir: &Path) -> Self {
        Self { ca_cert: dir.join("ca.pem"), cert: dir.join("gateway.pem"), key: dir.join("gateway.key") }
    }

    fn complete(&self) -> bool {
        [&self.ca_cert, &self.cert, &self.key].iter().all(|p| p.exists())
    }
}

/// Returns the CA and gateway certificate under `dir`, creating them on
/// first use for the host names and addresses in `hosts`. The set is
/// written to a scratch directory and renamed into place, so a crash midway
/// never leaves a CA without its certificate (or the other way round).
pub fn ensure_gateway_tls(dir: &Path, hosts: &[String]) -> anyhow::Result<GatewayTls> {
    let files = GatewayTls::in_dir(dir);
    if files.complete() {
        return Ok(files);
    }
    anyhow::ensure!(!dir.exists(), "{} exists but lacks ca.pem, gateway.pem or gateway.key; remove it", dir.display());
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let scratch = tempfile::Builder::new().prefix(".tls-").tempdir_in(parent)?;
    let (ca_pem, ca_key_pem, leaf_pem, leaf_key_pem) = generate(hosts)?;
    let staged = GatewayTls::in_dir(scratch.path());
    std::fs::write(&staged.ca_cert, &ca_pem)?;
    // The CA key stays beside the CA so later certificates (service
    // certificates for mutual TLS) can be issued by the same authority.
    gateway::credentials::write_private_file(&scratch.path().join("ca.key"), ca_key_pem.as_bytes())?;
    std::fs::write(&staged.cert, format!("{leaf_pem}{ca_pem}"))?;
    gateway::credentials::write_private_file(&staged.key, leaf_key_pem.as_bytes())?;
    std::fs::rename(scratch.keep(), dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(files)
}

/// A CA and a server certificate for `hosts`, as PEM (keys zeroized on drop).
fn generate(
    hosts: &[String],
) -> anyhow::Result<(String, zeroize::Zeroizing<String>, String, zeroize::Zeroizing<String>)> {
    let ten_years = {
        use chrono::Datelike;
        rcgen::date_time_ymd(chrono::Utc::now().year() + 10, 1, 1)
    };
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "opendew development CA");
    ca.distinguished_name.push(DnType::OrganizationName, "opendew");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_after = ten_years;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let mut leaf = CertificateParams::new(hosts.to_vec()).context("invalid TLS host name")?;
    leaf.distinguished_name = DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, hosts.first().map(String::as_str).unwrap_or("opendew"));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_after = ten_years;
    let leaf_key = KeyPair::generate()?;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok((ca_cert.pem(), ca_key.serialize_pem().into(), leaf_cert.pem(), leaf_key.serialize_pem().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("tls");
        let first = ensure_gateway_tls(&tls_dir, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let pem = std::fs::read_to_string(&first.cert).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2, "leaf and CA");
        let again = ensure_gateway_tls(&tls_dir, &["localhost".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(&again.cert).unwrap(), pem, "kept, not regenerated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
