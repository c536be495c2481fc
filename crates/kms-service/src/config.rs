//! kms-service's settings: flags, environment variables, and the root key
//! they name.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use common::db::DatabaseUrl;

use crate::envelope::{self, RootKey};

/// Settings of kms-service.
#[derive(Debug, Clone, clap::Args)]
pub struct KmsConfig {
    /// Database of kms-service: postgres://… (production) or sqlite://…?mode=rwc.
    #[arg(long = "kms-database-url", env = "OPENDEW_KMS_DATABASE_URL")]
    pub database_url: DatabaseUrl,
    /// File whose first line is the database password (overrides one in the
    /// URL), e.g. a mounted Kubernetes Secret.
    #[arg(long = "kms-database-password-file", env = "OPENDEW_KMS_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,
    /// gRPC listen address.
    #[arg(long = "kms-listen", env = "OPENDEW_KMS_LISTEN", default_value = "127.0.0.1:7101")]
    pub listen: SocketAddr,
    /// The probe port, break glass and mutual TLS.
    #[command(flatten)]
    pub serving: common::grpc::ServeFlags,
    /// File holding the 256-bit root key as 64 hex characters.
    #[arg(long = "root-key-file", env = "OPENDEW_ROOT_KEY_FILE", conflicts_with = "root_key")]
    pub root_key_file: Option<PathBuf>,
    /// The root key itself as 64 hex characters (prefer --root-key-file).
    #[arg(long = "root-key", env = "OPENDEW_ROOT_KEY", hide_env_values = true)]
    pub root_key: Option<RootKeyHex>,
    /// Create --root-key-file with a fresh random key when it does not exist
    /// (development only: losing that file loses every key).
    #[arg(long = "generate-root-key", env = "OPENDEW_GENERATE_ROOT_KEY")]
    pub generate_root_key: bool,
    /// Maximum number of (non-default) keys per project.
    #[arg(long = "key-quota", env = "OPENDEW_KMS_KEY_QUOTA", default_value_t = 100)]
    pub key_quota: u64,
    /// Region id reported as a key's realm.
    #[arg(long = "region", env = "OPENDEW_REGION", default_value = "local-1")]
    pub region: String,
    /// Database connection pool size.
    #[arg(long = "kms-max-connections", env = "OPENDEW_KMS_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most keys kept unwrapped in memory for the hot path.
    #[arg(long = "key-cache-capacity", env = "OPENDEW_KMS_KEY_CACHE_CAPACITY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub key_cache_capacity: u64,
    /// Seconds a cached key is trusted before it is read again (a backstop:
    /// changes reach every replica's cache through the change feed at once).
    #[arg(long = "key-cache-ttl-seconds", env = "OPENDEW_KMS_KEY_CACHE_TTL_SECONDS", default_value = "30",
          value_parser = common::positive_seconds)]
    pub key_cache_ttl: std::time::Duration,
    /// Seconds between runs of the task that deletes keys past their
    /// scheduled deletion date.
    #[arg(long = "purge-interval-seconds", env = "OPENDEW_KMS_PURGE_INTERVAL_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub purge_interval: std::time::Duration,
    /// Seconds between runs of the task that rotates keys whose automatic
    /// rotation is due.
    #[arg(long = "rotation-check-seconds", env = "OPENDEW_KMS_ROTATION_CHECK_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub rotation_check: std::time::Duration,
    /// Length of a "day" of rotation intervals, in milliseconds. Only tests
    /// shorten it, to see automatic rotations happen.
    #[arg(long = "rotation-day-ms", env = "OPENDEW_KMS_ROTATION_DAY_MS", default_value_t = 86_400_000,
          value_parser = clap::value_parser!(i64).range(1..), hide = true)]
    pub rotation_day_ms: i64,
}

impl KmsConfig {
    /// Settings for `database_url` and `listen` with every other value at its
    /// default (no root key, and no internal transport chosen: set
    /// `serving.internal_tls` before starting).
    pub fn new(database_url: DatabaseUrl, listen: SocketAddr) -> Self {
        Self {
            database_url,
            database_password_file: None,
            listen,
            serving: Default::default(),
            root_key_file: None,
            root_key: None,
            generate_root_key: false,
            key_quota: 100,
            region: "local-1".into(),
            max_connections: 16,
            key_cache_capacity: 10_000,
            key_cache_ttl: std::time::Duration::from_secs(30),
            purge_interval: std::time::Duration::from_secs(60),
            rotation_check: std::time::Duration::from_secs(60),
            rotation_day_ms: 86_400_000,
        }
    }
}

/// A root key given as text; `Debug` never shows it.
#[derive(Clone)]
pub struct RootKeyHex(RootKey);

impl FromStr for RootKeyHex {
    type Err = envelope::RootKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RootKey::from_hex(s, "--root-key / OPENDEW_ROOT_KEY").map(Self)
    }
}

impl fmt::Debug for RootKeyHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKeyHex(<redacted>)")
    }
}

impl KmsConfig {
    /// The database URL with the password from --kms-database-password-file.
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        self.database_url
            .clone()
            .with_password_file(self.database_password_file.as_deref(), "--kms-database-password-file")
    }

    pub(crate) fn load_root_key(&self) -> anyhow::Result<RootKey> {
        match (&self.root_key, &self.root_key_file) {
            (Some(key), _) => Ok(key.0.clone()),
            (None, Some(path)) => Ok(RootKey::from_file(path, self.generate_root_key)?),
            (None, None) => {
                anyhow::bail!("no root key configured: set --root-key-file (OPENDEW_ROOT_KEY_FILE) or OPENDEW_ROOT_KEY")
            }
        }
    }
}
