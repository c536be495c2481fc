//! kms-service: master keys, the key hierarchy and data keys, over gRPC.
//!
//! It is the only component that ever holds the root key or a master key's
//! material. See ARCHITECTURE.md for the hierarchy and the invariants.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr, sync::Arc};

use anyhow::Context;
use common::db::{Backend, DatabaseUrl};
use proto::kms::v1::key_management_service_server::{KeyManagementServiceServer, SERVICE_NAME};
use tokio_util::sync::CancellationToken;

pub mod aliases;
pub mod cache;
pub mod data;
pub mod datakeys;
pub mod domain;
pub mod error;
pub mod grants;
pub mod grpc;
pub mod hierarchy;
pub mod import;
pub mod keys;
pub mod mac;
pub mod rotation;
pub mod service;
pub mod signing;
pub mod store;
pub mod tags;

use hierarchy::RootKey;
use store::KeyStore;

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
    /// Plaintext port serving only grpc.health.v1 (for Kubernetes probes,
    /// which present no client certificate); off when unset.
    #[arg(long = "health-listen", env = "OPENDEW_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
    /// Let the operator's certificate change state and use keys, not only
    /// read (break glass; logged at start). Without it, grpcurl with the
    /// operator certificate can describe, list and get only.
    #[arg(long = "operator-break-glass", env = "OPENDEW_OPERATOR_BREAK_GLASS")]
    pub operator_break_glass: bool,
    #[command(flatten)]
    pub internal_tls: common::grpc::InternalTlsConfig,
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
    /// `internal_tls` before starting).
    pub fn new(database_url: DatabaseUrl, listen: SocketAddr) -> Self {
        Self {
            database_url,
            database_password_file: None,
            listen,
            health_listen: None,
            operator_break_glass: false,
            internal_tls: Default::default(),
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

/// A started kms-service.
#[derive(Debug)]
pub struct Started {
    /// The gRPC server.
    pub running: common::grpc::Running,
    /// The service, for in-process inspection (tests, benchmarks).
    pub service: Arc<service::KmsService>,
}

/// A root key given as text; `Debug` never shows it.
#[derive(Clone)]
pub struct RootKeyHex(RootKey);

impl FromStr for RootKeyHex {
    type Err = hierarchy::RootKeyError;
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

    fn load_root_key(&self) -> anyhow::Result<RootKey> {
        match (&self.root_key, &self.root_key_file) {
            (Some(key), _) => Ok(key.0.clone()),
            (None, Some(path)) => Ok(RootKey::from_file(path, self.generate_root_key)?),
            (None, None) => {
                anyhow::bail!("no root key configured: set --root-key-file (OPENDEW_ROOT_KEY_FILE) or OPENDEW_ROOT_KEY")
            }
        }
    }
}

/// Opens the store the URL names and migrates it.
pub async fn open_store(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Arc<dyn KeyStore>> {
    let store: Arc<dyn KeyStore> = match url.backend() {
        Backend::Postgres => {
            Arc::new(store::postgres::PgKeyStore::new(common::db::connect_postgres(url, "kms", max_connections).await?))
        }
        Backend::Sqlite => Arc::new(store::sqlite::SqliteKeyStore::new(common::db::connect_sqlite(url, "kms").await?)),
    };
    store.migrate().await.context("applying kms-service migrations")?;
    Ok(store)
}

/// Starts kms-service: migrates, checks the root key against the stored
/// fingerprint, and serves gRPC (with health and reflection) until
/// `shutdown` is cancelled.
/// `--migrate-only`: applies the migrations and returns.
pub async fn migrate(config: KmsConfig) -> anyhow::Result<()> {
    open_store(&config.database_url()?, 1).await.map(drop)
}

/// Starts kms-service for its own binary (see [`start`]).
pub async fn serve(config: KmsConfig, shutdown: CancellationToken) -> anyhow::Result<common::grpc::Running> {
    Ok(start(config, shutdown).await?.running)
}

pub async fn start(config: KmsConfig, shutdown: CancellationToken) -> anyhow::Result<Started> {
    let tls = config.internal_tls.load()?;
    let root = config.load_root_key()?;
    let store = open_store(&config.database_url()?, config.max_connections).await?;
    let fingerprint = root.fingerprint();
    let stored = store.claim_root_fingerprint(&fingerprint).await?;
    if stored != fingerprint {
        anyhow::bail!(
            "the root key does not match this database: it was written under a root key with fingerprint {stored}, \
             but the configured key has fingerprint {fingerprint}. Check --root-key-file / OPENDEW_ROOT_KEY \
             (a wrong file, or a dev data directory pointed at another database)"
        );
    }
    let cache = Arc::new(cache::KeyCache::new(config.key_cache_capacity, config.key_cache_ttl));
    let sink_cache = cache.clone();
    store.watch(Arc::new(move |event| sink_cache.apply(event)), shutdown.clone()).await?;
    spawn_purge(store.clone(), cache.clone(), config.purge_interval, shutdown.clone());
    let ready = ready_check(store.clone());
    let service = Arc::new(service::KmsService::new(store, root, config.region.clone(), config.key_quota, cache));
    spawn_rotation(service.clone(), config.rotation_check, config.rotation_day_ms, shutdown.clone());
    spawn_import_expiry(service.clone(), config.purge_interval, shutdown.clone());
    let (health, routes) = common::grpc::base_routes(&[SERVICE_NAME]).await?;
    let routes = routes.add_service(KeyManagementServiceServer::from_arc(service.clone()));
    let listen = common::grpc::Listen {
        addr: config.listen,
        health_addr: config.health_listen,
        tls,
        callers: allowed_callers,
        operator_break_glass: config.operator_break_glass,
    };
    if config.operator_break_glass {
        tracing::warn!("--operator-break-glass: the operator certificate may change state and use keys");
    }
    let running = common::grpc::spawn(&listen, routes, health, &[SERVICE_NAME], ready, shutdown).await?;
    let transport = if listen.tls.is_some() { "mutual TLS" } else { "plaintext" };
    tracing::info!(addr = %running.addr, database = %config.database_url, transport, "kms-service listening");
    Ok(Started { running, service })
}

/// The gateway for every tenant operation; csms-service only for the three
/// calls it makes (the default key, and sealing and opening data keys).
fn allowed_callers(method: &str) -> &'static [&'static str] {
    use common::grpc::callers::{CSMS_SERVICE, GATEWAY, OPERATOR};
    match method.rsplit('/').next() {
        Some("EnsureServiceDefaultKey" | "CreateDatakey" | "DecryptDatakey") => &[GATEWAY, CSMS_SERVICE, OPERATOR],
        _ => common::grpc::callers::gateway_only(method),
    }
}

/// SERVING only while the database answers.
fn ready_check(store: Arc<dyn KeyStore>) -> common::grpc::ReadyCheck {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.is_ok() })
    })
}

/// Rotates keys whose automatic rotation is due. Every replica runs it;
/// each rotation re-checks "due" on the locked row, so a key is rotated
/// once per period whichever replica gets there first (see `rotation`).
fn spawn_rotation(
    service: Arc<service::KmsService>,
    interval: std::time::Duration,
    day_ms: i64,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            // Due by the database's clock, which every replica shares.
            let result = match service.store.clock_ms().await {
                Ok(now_ms) => service.rotate_due(now_ms, day_ms).await,
                Err(e) => Err(e.into()),
            };
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!("opendew_kms_rotation_runs_total", "result" => outcome).increment(1);
            match result {
                Ok(rotated) => metrics::counter!("opendew_kms_keys_rotated_total").increment(rotated.len() as u64),
                Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed; retrying next interval"),
            }
        }
    });
}

/// Deletes imported material past its expiry (the key goes back to pending
/// import). Safe on several replicas: each deletion re-checks the expiry on
/// the locked row.
fn spawn_import_expiry(service: Arc<service::KmsService>, interval: std::time::Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            let result = match service.store.clock_ms().await {
                Ok(now_ms) => service.expire_imports(now_ms).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(expired) => metrics::counter!("opendew_kms_imports_expired_total").increment(expired.len() as u64),
                Err(e) => tracing::warn!(error = %e, "expiring imported key material failed; retrying next interval"),
            }
        }
    });
}

/// Deletes keys past their scheduled deletion date, with their material.
/// Every replica runs it; deletions are idempotent, so replicas need not
/// coordinate.
fn spawn_purge(
    store: Arc<dyn KeyStore>,
    cache: Arc<cache::KeyCache>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = common::Ticker::new(interval, shutdown);
        while ticks.next().await {
            // Due by the database's clock, which every replica shares.
            let result = match store.clock_ms().await {
                Ok(now_ms) => store.purge_due(now_ms).await,
                Err(e) => Err(e),
            };
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!("opendew_kms_purge_runs_total", "result" => outcome).increment(1);
            match result {
                Ok(deleted) => {
                    metrics::counter!("opendew_kms_keys_purged_total").increment(deleted.len() as u64);
                    for key_id in deleted {
                        cache.invalidate(key_id);
                        tracing::info!(%key_id, "key deleted after its scheduled date; material destroyed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "key purge failed; retrying next interval"),
            }
        }
    });
}
