//! Mutual TLS between opendew's processes.
//!
//! The services trust the caller identity that arrives as gRPC metadata, so
//! the transport must prove who sent it: every service port requires a
//! client certificate issued by the internal CA, and every client verifies
//! the service's certificate against the same CA. A process has one
//! certificate (both serverAuth and clientAuth) for both directions.
//! Plain gRPC needs `--grpc-plaintext`, said out loud.

use std::path::PathBuf;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, ServerTlsConfig};

/// Internal transport settings, shared by every binary that speaks gRPC.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InternalTlsConfig {
    /// This process's certificate for internal gRPC (PEM, issued by
    /// --grpc-ca-file); presented to peers in both directions.
    #[arg(long = "grpc-cert-file", env = "OPENDEW_GRPC_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// The private key of --grpc-cert-file (PEM).
    #[arg(long = "grpc-key-file", env = "OPENDEW_GRPC_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The internal CA (PEM): peers must present a certificate it issued.
    #[arg(long = "grpc-ca-file", env = "OPENDEW_GRPC_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Internal gRPC without TLS or peer authentication. Anyone who reaches
    /// a service port can then act for any project: only for a single host
    /// or a network nobody else reaches.
    #[arg(long = "grpc-plaintext", env = "OPENDEW_GRPC_PLAINTEXT")]
    pub plaintext: bool,
}

/// Loaded internal credentials; `Debug` never shows the key.
#[derive(Clone)]
pub struct InternalTls {
    identity: Identity,
    ca: Certificate,
}

impl std::fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalTls(<certificate and key>)")
    }
}

impl InternalTlsConfig {
    /// Plain gRPC, chosen explicitly.
    pub fn plaintext() -> Self {
        Self { plaintext: true, ..Self::default() }
    }

    /// Certificate, key and CA files.
    pub fn files(cert: PathBuf, key: PathBuf, ca: PathBuf) -> Self {
        Self { cert_file: Some(cert), key_file: Some(key), ca_file: Some(ca), plaintext: false }
    }

    /// Reads the files, or `None` with --grpc-plaintext. Refuses a
    /// configuration that chose neither, or half of the files, naming the
    /// settings.
    pub fn load(&self) -> anyhow::Result<Option<InternalTls>> {
        let read = |setting: &str, path: &PathBuf| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {setting} {}: {e}", path.display()))
        };
        match (&self.cert_file, &self.key_file, &self.ca_file, self.plaintext) {
            (None, None, None, true) => Ok(None),
            (Some(cert), Some(key), Some(ca), false) => {
                let cert_pem = read("--grpc-cert-file", cert)?;
                let key_pem = zeroize::Zeroizing::new(read("--grpc-key-file", key)?);
                let ca_pem = read("--grpc-ca-file", ca)?;
                for (setting, path, pem, what) in [
                    ("--grpc-cert-file", cert, &cert_pem, "CERTIFICATE"),
                    ("--grpc-key-file", key, &*key_pem, "PRIVATE KEY"),
                    ("--grpc-ca-file", ca, &ca_pem, "CERTIFICATE"),
                ] {
                    anyhow::ensure!(
                        String::from_utf8_lossy(pem).contains(what),
                        "{setting} {} holds no PEM {}",
                        path.display(),
                        what.to_lowercase()
                    );
                }
                Ok(Some(InternalTls {
                    identity: Identity::from_pem(cert_pem, key_pem.as_slice()),
                    ca: Certificate::from_pem(ca_pem),
                }))
            }
            (_, _, _, true) => {
                anyhow::bail!("--grpc-plaintext (OPENDEW_GRPC_PLAINTEXT) excludes the --grpc-*-file settings")
            }
            (None, None, None, false) => anyhow::bail!(
                "internal gRPC needs mutual TLS: set --grpc-cert-file, --grpc-key-file and --grpc-ca-file \
                 (OPENDEW_GRPC_CERT_FILE, OPENDEW_GRPC_KEY_FILE, OPENDEW_GRPC_CA_FILE), or --grpc-plaintext \
                 (OPENDEW_GRPC_PLAINTEXT=true) on a network nobody else reaches"
            ),
            _ => anyhow::bail!("--grpc-cert-file, --grpc-key-file and --grpc-ca-file go together"),
        }
    }
}

impl InternalTls {
    /// Server side: present our certificate, require one the CA issued.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new().identity(self.identity.clone()).client_ca_root(self.ca.clone())
    }

    /// Client side: verify the server against the CA, present ours.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(self.ca.clone()).identity(self.identity.clone())
    }
}

/// A lazily connecting channel to another opendew service. With `tls` the
/// endpoint's scheme becomes `https` (whatever was configured) and the
/// server must prove itself with a certificate for the endpoint's host.
/// `setting` names the flag in errors.
pub fn channel(endpoint: &str, tls: Option<&InternalTls>, setting: &str) -> anyhow::Result<Channel> {
    let endpoint = match tls {
        Some(_) => match endpoint.split_once("://") {
            Some((_, rest)) => format!("https://{rest}"),
            None => format!("https://{endpoint}"),
        },
        None => endpoint.to_owned(),
    };
    let mut builder = Channel::from_shared(endpoint.clone())
        .map_err(|e| anyhow::anyhow!("{setting}: invalid gRPC endpoint {endpoint}: {e}"))?
        .connect_timeout(std::time::Duration::from_secs(5));
    if let Some(tls) = tls {
        builder =
            builder.tls_config(tls.client()).map_err(|e| anyhow::anyhow!("{setting}: TLS for {endpoint}: {e}"))?;
    }
    Ok(builder.connect_lazy())
}
