//! kms-service: master keys, their material and data keys, over gRPC.
//!
//! It is the only component that ever holds the root key or a master key's
//! material. See ARCHITECTURE.md for the floor plan and the invariants.

use std::sync::Arc;

use anyhow::Context;
use common::db::{Backend, DatabaseUrl};
use proto::kms::v1::key_management_service_server::{KeyManagementServiceServer, SERVICE_NAME};
use tokio_util::sync::CancellationToken;

pub mod aliases;
pub mod cache;
mod config;
pub mod data;
pub mod datakeys;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod grants;
pub mod grpc;
pub mod import;
pub mod keys;
pub mod mac;
pub mod rotation;
pub mod service;
pub mod signing;
pub mod store;
pub mod tags;
mod tasks;

pub use config::{KmsConfig, RootKeyHex};
use store::KeyStore;

/// A started kms-service.
#[derive(Debug)]
pub struct Started {
    /// The gRPC server.
    pub running: common::grpc::Running,
    /// The service, for in-process inspection (tests, benchmarks).
    pub service: Arc<service::KmsService>,
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
    let tls = config.serving.internal_tls.load()?;
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
    tasks::spawn_purge(store.clone(), cache.clone(), config.purge_interval, shutdown.clone());
    let ready = ready_check(store.clone());
    let service = Arc::new(service::KmsService::new(store, root, config.region.clone(), config.key_quota, cache));
    tasks::spawn_rotation(service.clone(), config.rotation_check, config.rotation_day_ms, shutdown.clone());
    tasks::spawn_import_expiry(service.clone(), config.purge_interval, shutdown.clone());
    let (health, routes) = common::grpc::base_routes(&[SERVICE_NAME]).await?;
    let routes = routes.add_service(KeyManagementServiceServer::from_arc(service.clone()));
    let listen = common::grpc::Listen::new(config.listen, &config.serving, tls, allowed_callers);
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
