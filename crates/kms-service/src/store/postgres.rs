//! [`KeyStore`](super::KeyStore) on Postgres, in the `kms` schema.
//!
//! Every key change sends `NOTIFY opendew_kms_keys, '<key id>'` inside its
//! transaction, so the notification is delivered exactly when the change
//! commits; [`KeyStore::watch`](super::KeyStore::watch) turns those into cache invalidations on
//! every replica.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use super::{CHANGE_CHANNEL, ChangeEvent, ChangeSink, StoreError, sql};
use crate::domain::KeyId;

/// Postgres-backed key store.
pub type PgKeyStore = sql::SqlKeyStore<Postgres>;

#[async_trait]
impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/postgres");

    async fn notify(tx: &mut Transaction<'static, Postgres>, key_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(CHANGE_CHANNEL).bind(key_id).execute(&mut **tx).await?;
        Ok(())
    }

    async fn watch(pool: &PgPool, sink: ChangeSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
        let mut listener = PgListener::connect_with(pool).await.map_err(StoreError::db("opening the change feed"))?;
        listener.listen(CHANGE_CHANNEL).await.map_err(StoreError::db("listening for key changes"))?;
        sink(ChangeEvent::Reset { healthy: true });
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    next = listener.try_recv() => next,
                };
                match next {
                    Ok(Some(notification)) => {
                        if let Ok(uuid) = uuid::Uuid::parse_str(notification.payload()) {
                            sink(ChangeEvent::Key(KeyId(uuid)));
                        }
                    }
                    // The connection dropped: notifications may be lost until
                    // it is back, so the cache must not be trusted meanwhile.
                    Ok(None) | Err(_) => {
                        sink(ChangeEvent::Reset { healthy: false });
                        tracing::warn!("key change feed lost; cache bypassed until it reconnects");
                        loop {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                            }
                            // Forces a reconnect; the listener re-LISTENs its channels.
                            if listener.listen_all(std::iter::empty::<&str>()).await.is_ok() {
                                break;
                            }
                        }
                        sink(ChangeEvent::Reset { healthy: true });
                        tracing::info!("key change feed reconnected");
                    }
                }
            }
        });
        Ok(true)
    }
}
