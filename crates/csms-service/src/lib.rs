//! csms-service: secrets, versions and stages, over gRPC.
//!
//! It never sees a master key: each version is sealed with its own data key
//! from kms-service, and only the wrapped data key and the ciphertext are
//! stored. Plaintext data keys live for one seal or open, then are wiped.

use std::sync::Arc;

use anyhow::Context;
use common::db::{Backend, DatabaseUrl};
use proto::csms::v1::secrets_manager_service_server::{SERVICE_NAME, SecretsManagerServiceServer};
use tokio_util::sync::CancellationToken;

pub mod backup;
pub mod batch;
pub mod cache;
pub mod checker;
pub mod config;
pub mod databases;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod events;
pub mod grants;
pub mod grpc;
pub mod instances;
pub mod kms;
pub mod outbound;
pub mod password;
pub mod rotation;
pub mod seal;
pub mod secrets;
pub mod service;
pub mod stages;
pub mod store;
pub mod tags;
mod tasks;
pub mod versions;

pub use config::{CsmsConfig, CsmsJobs, WebhookConfig};
use store::SecretStore;

/// Opens the store the URL names and migrates it.
pub async fn open_store(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Arc<dyn SecretStore>> {
    let store: Arc<dyn SecretStore> = match url.backend() {
        Backend::Postgres => Arc::new(store::postgres::PgSecretStore::new(
            common::db::connect_postgres(url, "csms", max_connections).await?,
        )),
        Backend::Sqlite => {
            Arc::new(store::sqlite::SqliteSecretStore::new(common::db::connect_sqlite(url, "csms").await?))
        }
    };
    store.migrate().await.context("applying csms-service migrations")?;
    Ok(store)
}

/// `--migrate-only`: applies the migrations and returns.
pub async fn migrate(config: CsmsConfig) -> anyhow::Result<()> {
    open_store(&config.database_url()?, 1).await.map(drop)
}

/// Starts csms-service and serves gRPC (with health and reflection) until
/// `shutdown` is cancelled.
pub async fn start(config: CsmsConfig, shutdown: CancellationToken) -> anyhow::Result<common::grpc::Running> {
    let tls = config.serving.internal_tls.load()?;
    let store = open_store(&config.database_url()?, config.max_connections).await?;
    let kms = kms::KmsClient::new(common::grpc::channel(&config.kms_endpoint, tls.as_ref(), "--kms-endpoint")?);
    let sink = delivery::sink(&config.jobs.webhook)?;
    tasks::spawn_purge(store.clone(), config.purge_interval, shutdown.clone());
    tasks::spawn_record_purge(store.clone(), config.purge_interval, shutdown.clone());
    let ready = ready_check(store.clone());
    let instance_key = match &config.jobs.db_instance_key_file {
        Some(path) => Some(instances::InstanceKey::from_file(path)?),
        None => None,
    };
    let service = Arc::new(
        service::CsmsService::new(store.clone(), kms, config.secret_quota, config.jobs.clone(), &shutdown)
            .await?
            .with_instance_key(instance_key),
    );
    delivery::spawn(
        store.clone(),
        sink,
        delivery::schedule(&config.jobs.webhook),
        service.deliveries.clone(),
        shutdown.clone(),
    );
    tasks::spawn_rotation(service.clone(), config.jobs.rotation_check, shutdown.clone());
    tasks::spawn_expiry_watcher(service.clone(), config.jobs.expiry_check, shutdown.clone());
    let (health, routes) = common::grpc::base_routes(&[SERVICE_NAME]).await?;
    // A restore carries a blob of up to `backup::MAX_BLOB_LEN` characters:
    // past tonic's 4 MiB default, a valid 5 MiB blob was refused as a 500.
    let server = SecretsManagerServiceServer::from_arc(service).max_decoding_message_size(backup::MAX_MESSAGE);
    let routes = routes.add_service(server);
    let callers = common::grpc::callers::gateway_only;
    let listen = common::grpc::Listen::new(config.listen, &config.serving, tls, callers);
    let running = common::grpc::spawn(&listen, routes, health, &[SERVICE_NAME], ready, shutdown).await?;
    let transport = if listen.tls.is_some() { "mutual TLS" } else { "plaintext" };
    tracing::info!(addr = %running.addr, database = %config.database_url, kms = %config.kms_endpoint, transport, "csms-service listening");
    Ok(running)
}

/// SERVING only while the database answers.
fn ready_check(store: Arc<dyn SecretStore>) -> common::grpc::ReadyCheck {
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.is_ok() })
    })
}
