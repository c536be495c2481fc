//! HTTPS at the edge: the gateway's certificate and key come from files
//! (so a Kubernetes Secret can be mounted) and are reloaded when the files
//! change, without a restart and without dropping open connections.
//!
//! The files are polled rather than watched with inotify: Kubernetes
//! updates a mounted Secret by swapping a symlinked directory, which file
//! watches miss, while a content comparison every few seconds sees every
//! kind of update (rename, rewrite, symlink swap) the same way.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use axum_server::tls_rustls::RustlsConfig;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// Where the certificate chain and its key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the certificate files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {setting} file {path}: {source}")]
    Read {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("{setting} file {path} holds no PEM {what}")]
    Pem {
        /// The setting that names the file.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("the certificate in {cert} and the key in {key} cannot be used together: {source}")]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

/// The two files' bytes, held only long enough to parse them (the key is
/// zeroized on drop).
struct Pem {
    cert: Vec<u8>,
    key: zeroize::Zeroizing<Vec<u8>>,
}

impl Pem {
    fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        let read = |setting, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { setting, path: path.to_owned(), source })
        };
        Ok(Self { cert: read("--tls-cert-file", &files.cert)?, key: read("--tls-key-file", &files.key)?.into() })
    }

    /// Identifies the contents without keeping the key around.
    fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(&self.cert);
        hash.update([0]);
        hash.update(self.key.as_slice());
        hash.finalize().into()
    }

    fn server_config(&self, files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&self.cert).filter_map(Result::ok).collect();
        if certs.is_empty() {
            return Err(TlsError::Pem { setting: "--tls-cert-file", path: files.cert.clone(), what: "certificate" });
        }
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|_| TlsError::Pem {
            setting: "--tls-key-file",
            path: files.key.clone(),
            what: "private key",
        })?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|source| TlsError::Pair { cert: files.cert.clone(), key: files.key.clone(), source })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Loads the certificate and key; an error names the setting and the file.
pub fn load(files: &TlsFiles) -> Result<RustlsConfig, TlsError> {
    let pem = Pem::read(files)?;
    Ok(RustlsConfig::from_config(pem.server_config(files)?))
}

/// Checks the files every `interval` and swaps in a changed certificate.
/// A change that does not parse (a half-written file, a key that does not
/// match) is logged and skipped: the server keeps its current certificate
/// and the next change is tried again.
pub fn spawn_reloader(config: RustlsConfig, files: TlsFiles, interval: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut current = Pem::read(&files).map(|p| p.digest()).ok();
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            let files = files.clone();
            let Ok(Ok(pem)) = tokio::task::spawn_blocking(move || Pem::read(&files).map(|p| (p, files))).await else {
                // Unreadable for the moment (mid-swap): try again next tick.
                continue;
            };
            let (pem, files) = pem;
            let digest = pem.digest();
            if current == Some(digest) {
                continue;
            }
            match pem.server_config(&files) {
                Ok(server) => {
                    config.reload_from_config(server);
                    current = Some(digest);
                    metrics::counter!("opendew_tls_reloads_total", "result" => "ok").increment(1);
                    tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    current = Some(digest);
                    metrics::counter!("opendew_tls_reloads_total", "result" => "error").increment(1);
                    tracing::warn!(error = %e, "changed TLS files not usable; keeping the current certificate");
                }
            }
        }
    });
}
