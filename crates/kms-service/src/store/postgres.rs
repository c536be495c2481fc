//! [`KeyStore`] on Postgres, in the `kms` schema.
//!
//! Every key change sends `NOTIFY opendew_kms_keys, '<key id>'` inside its
//! transaction, so the notification is delivered exactly when the change
//! commits; [`KeyStore::watch`] turns those into cache invalidations on
//! every replica.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use super::{
    CHANGE_CHANNEL, ChangeEvent, ChangeSink, CreateKeyError, KeyFilter, KeyMutation, KeyRow, KeyStore, NewKey,
    QUOTA_HEADROOM, RoundTrips, StoreError, UpdateKeyError, add_count, bind_key, sql,
};
use crate::domain::{KeyId, KeyRecord};

/// Postgres-backed key store.
#[derive(Debug)]
pub struct PgKeyStore {
    pool: PgPool,
    round_trips: RoundTrips,
}

impl PgKeyStore {
    /// Wraps a pool whose `search_path` is the kms schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool, round_trips: RoundTrips::default() }
    }
}

async fn notify(tx: &mut Transaction<'_, Postgres>, key_id: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGE_CHANNEL)
        .bind(key_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db("notifying a key change"))?;
    Ok(())
}

async fn count_user_keys(tx: &mut Transaction<'_, Postgres>, project_id: &str) -> Result<i64, StoreError> {
    sqlx::query_scalar(sql::COUNT_USER_KEYS)
        .bind(project_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(StoreError::db("counting keys"))
}

#[async_trait]
impl KeyStore for PgKeyStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("../../migrations/kms/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn claim_root_fingerprint(&self, fingerprint: &str) -> Result<String, StoreError> {
        self.round_trips.tick();
        sqlx::query(sql::CLAIM_FINGERPRINT)
            .bind(fingerprint)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("storing the root key fingerprint"))?;
        sqlx::query_scalar(sql::READ_FINGERPRINT)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("reading the root key fingerprint"))
    }

    async fn create_key(&self, key: NewKey, quota: Option<u64>) -> Result<KeyRecord, CreateKeyError> {
        self.round_trips.tick();
        let r = &key.record;
        let mut tx = self.pool.begin().await.map_err(StoreError::db("starting a transaction"))?;
        if let Some(quota) = quota {
            let unlocked = count_user_keys(&mut tx, &r.project_id).await? as u64;
            if unlocked + QUOTA_HEADROOM >= quota {
                // Near the quota: serialise this project's creators, so two
                // concurrent creates cannot both see "quota - 1" keys.
                sqlx::query(sql::ENSURE_PROJECT)
                    .bind(&r.project_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("registering the project"))?;
                sqlx::query("SELECT project_id FROM kms_projects WHERE project_id = $1 FOR UPDATE")
                    .bind(&r.project_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("locking the project"))?;
                if count_user_keys(&mut tx, &r.project_id).await? as u64 >= quota {
                    return Err(CreateKeyError::QuotaExceeded);
                }
            }
        }
        if let Err(e) = bind_key!(sqlx::query(sql::INSERT_KEY), r).execute(&mut *tx).await {
            return Err(if common::db::is_unique_violation(&e) {
                CreateKeyError::AliasTaken
            } else {
                StoreError::db("inserting a key")(e).into()
            });
        }
        if let Some(wrapped) = &key.wrapped_material {
            sqlx::query(sql::INSERT_MATERIAL)
                .bind(r.key_id.to_string())
                .bind(1_i32)
                .bind(wrapped)
                .bind(r.creation_ms)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("inserting key material"))?;
        }
        add_count!(tx, &r.project_id, r.spec, r.state, r.default_key, 1)?;
        tx.commit().await.map_err(StoreError::db("committing a new key"))?;
        Ok(key.record)
    }

    async fn get_key(&self, project_id: &str, key_id: KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_id"))
            .bind(project_id)
            .bind(key_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a key"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn find_by_alias(&self, project_id: &str, alias: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<KeyRow> = sqlx::query_as(&sql::select_one("key_alias"))
            .bind(project_id)
            .bind(alias)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a key by alias"))?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn list_keys(
        &self,
        project_id: &str,
        filter: &KeyFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<KeyRecord>, u64), StoreError> {
        self.round_trips.tick();
        let state = filter.state.map(|s| s as i32);
        let spec = filter.spec.map(|s| s.as_str());
        let rows: Vec<KeyRow> = sqlx::query_as(&sql::list_page())
            .bind(project_id)
            .bind(state)
            .bind(spec)
            .bind(i64::from(limit))
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing keys"))?;
        let total: i64 = sqlx::query_scalar(&sql::list_count())
            .bind(project_id)
            .bind(state)
            .bind(spec)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting keys"))?;
        let keys = rows.into_iter().map(KeyRecord::try_from).collect::<Result<_, _>>()?;
        Ok((keys, total as u64))
    }

    async fn materials(&self, key_id: KeyId) -> Result<Vec<(i32, Vec<u8>)>, StoreError> {
        self.round_trips.tick();
        sqlx::query_as(sql::SELECT_MATERIALS)
            .bind(key_id.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading key material"))
    }

    async fn update_key(
        &self,
        project_id: &str,
        key_id: KeyId,
        change: KeyMutation,
    ) -> Result<KeyRecord, UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = self.pool.begin().await.map_err(StoreError::db("starting a transaction"))?;
        let row: Option<KeyRow> = sqlx::query_as(&format!("{} FOR UPDATE", sql::select_one("key_id")))
            .bind(project_id)
            .bind(key_id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("locking a key"))?;
        let mut key = KeyRecord::try_from(row.ok_or(UpdateKeyError::NotFound)?)?;
        let old_state = key.state;
        change(&mut key).map_err(UpdateKeyError::Rejected)?;
        if key.state != old_state {
            add_count!(tx, project_id, key.spec, old_state, key.default_key, -1)?;
            add_count!(tx, project_id, key.spec, key.state, key.default_key, 1)?;
        }
        let updated = sqlx::query(sql::UPDATE_KEY)
            .bind(project_id)
            .bind(key_id.to_string())
            .bind(&key.alias)
            .bind(&key.description)
            .bind(key.state as i32)
            .bind(key.scheduled_deletion_ms)
            .execute(&mut *tx)
            .await;
        if let Err(e) = updated {
            return Err(if common::db::is_unique_violation(&e) {
                UpdateKeyError::AliasTaken
            } else {
                StoreError::db("updating a key")(e).into()
            });
        }
        notify(&mut tx, &key_id.to_string()).await?;
        tx.commit().await.map_err(StoreError::db("committing a key change"))?;
        Ok(key)
    }

    async fn count_user_keys(&self, project_id: &str) -> Result<u64, StoreError> {
        self.round_trips.tick();
        let n: i64 = sqlx::query_scalar(sql::COUNT_USER_KEYS)
            .bind(project_id)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db("counting keys"))?;
        Ok(n as u64)
    }

    async fn purge_due(&self, now_ms: i64) -> Result<Vec<KeyId>, StoreError> {
        self.round_trips.tick();
        let due: Vec<String> = sqlx::query_scalar(sql::DUE_KEYS)
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("finding keys due for deletion"))?;
        let mut deleted = Vec::new();
        for id in due {
            // One short transaction per key; a replica that loses the race
            // deletes nothing and moves on.
            let mut tx = self.pool.begin().await.map_err(StoreError::db("starting a transaction"))?;
            sqlx::query(sql::DELETE_MATERIALS)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("destroying key material"))?;
            let gone: Option<(String, String, bool)> = sqlx::query_as(sql::DELETE_DUE_KEY)
                .bind(&id)
                .bind(now_ms)
                .fetch_optional(&mut *tx)
                .await
                .map_err(StoreError::db("deleting a key"))?;
            if let Some((project_id, spec, default_key)) = gone {
                let spec = crate::domain::KeySpec::parse(&spec).ok_or_else(|| StoreError::Corrupt(id.clone()))?;
                add_count!(tx, &project_id, spec, crate::domain::KeyState::PendingDeletion, default_key, -1)?;
                notify(&mut tx, &id).await?;
                tx.commit().await.map_err(StoreError::db("committing a key deletion"))?;
                if let Ok(uuid) = uuid::Uuid::parse_str(&id) {
                    deleted.push(KeyId(uuid));
                }
            } else {
                tx.rollback().await.map_err(StoreError::db("rolling back"))?;
            }
        }
        Ok(deleted)
    }

    async fn watch(&self, sink: ChangeSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
        let mut listener =
            PgListener::connect_with(&self.pool).await.map_err(StoreError::db("opening the change feed"))?;
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

    fn round_trips(&self) -> u64 {
        self.round_trips.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let Some(url) = test_support::postgres_url("kms-service PgKeyStore") else { return };
        let db = test_support::fresh_postgres_database(&url).await;
        let pool = common::db::connect_postgres(&db, "kms", 8).await.unwrap();
        super::super::conformance::run(PgKeyStore::new(pool)).await;
    }
}
