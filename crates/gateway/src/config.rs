//! The gateway's settings.

use std::{net::SocketAddr, path::PathBuf};

use crate::{budget, connections, throttle, tls};

/// Settings of the gateway.
#[derive(Debug, Clone, clap::Args)]
pub struct GatewayConfig {
    /// HTTP listen address.
    #[arg(long = "http-listen", env = "OPENDEW_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// gRPC endpoint of kms-service.
    #[arg(
        long = "gateway-kms-endpoint",
        env = "OPENDEW_GATEWAY_KMS_ENDPOINT",
        default_value = "http://127.0.0.1:7101"
    )]
    pub kms_endpoint: String,
    /// gRPC endpoint of csms-service.
    #[arg(long = "csms-endpoint", env = "OPENDEW_CSMS_ENDPOINT", default_value = "http://127.0.0.1:7102")]
    pub csms_endpoint: String,
    /// Identity store: postgres://… (production) or sqlite://…?mode=rwc.
    #[arg(long = "iam-database-url", env = "OPENDEW_IAM_DATABASE_URL")]
    pub iam_database_url: common::db::DatabaseUrl,
    /// File whose first line is the identity database's password.
    #[arg(long = "iam-database-password-file", env = "OPENDEW_IAM_DATABASE_PASSWORD_FILE")]
    pub iam_database_password_file: Option<PathBuf>,
    /// Identity database connection pool size.
    #[arg(long = "iam-max-connections", env = "OPENDEW_IAM_MAX_CONNECTIONS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub iam_max_connections: u32,
    /// File with the 256-bit key (64 hex) that seals SKs in the identity
    /// store. Every replica and `opendew admin` need the same one.
    #[arg(long = "identity-key-file", env = "OPENDEW_IDENTITY_KEY_FILE")]
    pub identity_key_file: PathBuf,
    /// Seconds between checks of the identity store for changes (disabled
    /// or deleted keys, users and projects stop working within this).
    #[arg(long = "identity-refresh-seconds", env = "OPENDEW_IDENTITY_REFRESH_SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub identity_refresh_seconds: u64,
    /// Accounts that seed a new identity store (the JSON file dev mode and
    /// `opendew bootstrap` write); a store already written is left alone.
    /// Deployments give it to `--migrate-only` (an init container, a
    /// one-shot service) so that the serving gateway never holds its SKs.
    #[arg(long = "credentials-file", env = "OPENDEW_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// File with the key that signs tokens (at least 32 bytes, hex). Every
    /// replica needs the same one; without it, the key is derived from the
    /// identity key (which the replicas share).
    #[arg(long = "token-key-file", env = "OPENDEW_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,
    /// PEM certificate chain for HTTPS (leaf first); reloaded when it changes.
    #[arg(long = "tls-cert-file", env = "OPENDEW_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of --tls-cert-file.
    #[arg(long = "tls-key-file", env = "OPENDEW_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (behind a TLS-terminating proxy, or
    /// for development). Without it the gateway needs --tls-cert-file.
    #[arg(long = "http-plaintext", env = "OPENDEW_HTTP_PLAINTEXT", conflicts_with = "tls_cert_file")]
    pub http_plaintext: bool,
    /// Mutual TLS to kms-service and csms-service.
    #[command(flatten)]
    pub internal_tls: common::grpc::InternalTlsConfig,
    /// How callers that keep failing to authenticate are slowed down.
    #[command(flatten)]
    pub throttle: throttle::ThrottleConfig,
    /// Seconds between checks of the certificate files for a change.
    #[arg(long = "tls-reload-seconds", env = "OPENDEW_TLS_RELOAD_SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub tls_reload_seconds: u64,
    /// Seconds a client may take to send a request's headers (and a new
    /// connection its first request) before the connection is closed.
    #[arg(long = "http-header-timeout-seconds", env = "OPENDEW_HTTP_HEADER_TIMEOUT_SECONDS", default_value = "10",
          value_parser = common::positive_seconds)]
    pub header_timeout: std::time::Duration,
    /// Seconds a client may take to send a request's body.
    #[arg(long = "http-body-timeout-seconds", env = "OPENDEW_HTTP_BODY_TIMEOUT_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub body_timeout: std::time::Duration,
    /// How many connections, from whom, and for how long.
    #[command(flatten)]
    pub connections: connections::ConnectionLimits,
    /// What request bodies may hold before and after authentication.
    #[command(flatten)]
    pub budgets: budget::BudgetConfig,
    /// Networks of proxies in front of the gateway whose `X-Forwarded-For`
    /// names the client (comma-separated CIDRs, e.g. 10.0.0.0/8). Failed
    /// logins and signatures are then counted per client, not per proxy.
    #[arg(long = "trusted-proxies", env = "OPENDEW_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl GatewayConfig {
    /// Settings with every optional value at its default: plain HTTP, no
    /// token key file, no accounts to import, and no internal transport
    /// chosen (set `internal_tls` before starting).
    pub fn plaintext(
        listen: SocketAddr, kms_endpoint: String, csms_endpoint: String, iam_database_url: common::db::DatabaseUrl,
        identity_key_file: PathBuf,
    ) -> Self {
        Self {
            listen,
            kms_endpoint,
            csms_endpoint,
            iam_database_url,
            iam_database_password_file: None,
            iam_max_connections: 4,
            identity_key_file,
            identity_refresh_seconds: 2,
            credentials_file: None,
            token_key_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            http_plaintext: true,
            internal_tls: Default::default(),
            throttle: Default::default(),
            tls_reload_seconds: 10,
            header_timeout: std::time::Duration::from_secs(10),
            body_timeout: std::time::Duration::from_secs(60),
            connections: Default::default(),
            budgets: Default::default(),
            trusted_proxies: Vec::new(),
        }
    }

    /// The certificate files, or `None` for plain HTTP; refuses a
    /// configuration that chose neither (or both).
    pub fn tls_files(&self) -> anyhow::Result<Option<tls::TlsFiles>> {
        match (&self.tls_cert_file, &self.tls_key_file, self.http_plaintext) {
            (Some(cert), Some(key), false) => Ok(Some(tls::TlsFiles { cert: cert.clone(), key: key.clone() })),
            (None, None, true) => Ok(None),
            (Some(_), Some(_), true) => {
                anyhow::bail!("--http-plaintext (OPENDEW_HTTP_PLAINTEXT) and --tls-cert-file are exclusive")
            }
            (Some(_), None, _) | (None, Some(_), _) => anyhow::bail!(
                "--tls-cert-file (OPENDEW_TLS_CERT_FILE) and --tls-key-file (OPENDEW_TLS_KEY_FILE) go together"
            ),
            (None, None, false) => anyhow::bail!(
                "the gateway serves HTTPS: set --tls-cert-file and --tls-key-file (OPENDEW_TLS_CERT_FILE, \
                 OPENDEW_TLS_KEY_FILE), or --http-plaintext (OPENDEW_HTTP_PLAINTEXT=true) to serve plain HTTP"
            ),
        }
    }
}
