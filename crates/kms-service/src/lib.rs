//! kms-service: master keys, the key hierarchy and data keys, over gRPC.
//!
//! It is the only component that ever holds the root key or a master key's
//! material. See ARCHITECTURE.md for the hierarchy and the invariants.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc};

use anyhow::Context;
use common::db::{Backend, DatabaseUrl};
use proto::kms::v1::key_management_service_server::{KeyManagementServiceServer, SERVICE_NAME};
use tokio_util::sync::CancellationToken;

pub mod convert;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod service;
pub mod store;

use crypto::RootKey;
use store::KeyStore;

/// Settings of kms-service.
#[derive(Debug, Clone, clap::Args)]
pub struct KmsConfig {
    /// Database of kms-service: postgres://… (production) or sqlite://…?mode=rwc.
    #[arg(long = "kms-database-url", env = "OPENDEW_KMS_DATABASE_URL")]
    pub database_url: DatabaseUrl,
    /// gRPC listen address.
    #[arg(
        long = "kms-listen",
        env = "OPENDEW_KMS_LISTEN",
        default_value = "127.0.0.1:7101"
    )]
    pub listen: SocketAddr,
    /// File holding the 256-bit root key as 64 hex characters.
    #[arg(
        long = "root-key-file",
        env = "OPENDEW_ROOT_KEY_FILE",
        conflicts_with = "root_key"
    )]
    pub root_key_file: Option<PathBuf>,
    /// The root key itself as 64 hex characters (prefer --root-key-file).
    #[arg(long = "root-key", env = "OPENDEW_ROOT_KEY", hide_env_values = true)]
    pub root_key: Option<RootKeyHex>,
    /// Create --root-key-file with a fresh random key when it does not exist
    /// (development only: losing that file loses every key).
    #[arg(long = "generate-root-key", env = "OPENDEW_GENERATE_ROOT_KEY")]
    pub generate_root_key: bool,
    /// Maximum number of (non-default) keys per project.
    #[arg(
        long = "key-quota",
        env = "OPENDEW_KMS_KEY_QUOTA",
        default_value_t = 100
    )]
    pub key_quota: u64,
    /// Region id reported as a key's realm.
    #[arg(long = "region", env = "OPENDEW_REGION", default_value = "local-1")]
    pub region: String,
    /// Database connection pool size.
    #[arg(
        long = "kms-max-connections",
        env = "OPENDEW_KMS_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
}

/// A root key given as text; `Debug` never shows it.
#[derive(Clone)]
pub struct RootKeyHex(RootKey);

impl FromStr for RootKeyHex {
    type Err = crypto::RootKeyError;
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
    fn load_root_key(&self) -> anyhow::Result<RootKey> {
        match (&self.root_key, &self.root_key_file) {
            (Some(key), _) => Ok(key.0.clone()),
            (None, Some(path)) => Ok(RootKey::from_file(path, self.generate_root_key)?),
            (None, None) => anyhow::bail!(
                "no root key configured: set --root-key-file (OPENDEW_ROOT_KEY_FILE) or OPENDEW_ROOT_KEY"
            ),
        }
    }
}

/// Opens the store the URL names and migrates it.
pub async fn open_store(
    url: &DatabaseUrl,
    max_connections: u32,
) -> anyhow::Result<Arc<dyn KeyStore>> {
    let store: Arc<dyn KeyStore> = match url.backend() {
        Backend::Postgres => Arc::new(store::postgres::PgKeyStore::new(
            common::db::connect_postgres(url, "kms", max_connections).await?,
        )),
        Backend::Sqlite => Arc::new(store::sqlite::SqliteKeyStore::new(
            common::db::connect_sqlite(url).await?,
        )),
    };
    store
        .migrate()
        .await
        .context("applying kms-service migrations")?;
    Ok(store)
}

/// Starts kms-service: migrates, checks the root key against the stored
/// fingerprint, and serves gRPC (with health and reflection) until
/// `shutdown` is cancelled.
pub async fn start(
    config: KmsConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<common::grpc::Running> {
    let root = config.load_root_key()?;
    let store = open_store(&config.database_url, config.max_connections).await?;
    let fingerprint = root.fingerprint();
    let stored = store.claim_root_fingerprint(&fingerprint).await?;
    if stored != fingerprint {
        anyhow::bail!(
            "the root key does not match this database: it was written under a root key with fingerprint {stored}, \
             but the configured key has fingerprint {fingerprint}. Check --root-key-file / OPENDEW_ROOT_KEY \
             (a wrong file, or a dev data directory pointed at another database)"
        );
    }
    let service = Arc::new(service::KmsService::new(
        store,
        root,
        config.region.clone(),
        config.key_quota,
    ));
    let (_health, routes) = common::grpc::base_routes(&[SERVICE_NAME]).await?;
    let routes = routes.add_service(KeyManagementServiceServer::from_arc(service));
    let running = common::grpc::spawn(config.listen, routes, shutdown).await?;
    tracing::info!(addr = %running.addr, database = %config.database_url, "kms-service listening");
    Ok(running)
}
