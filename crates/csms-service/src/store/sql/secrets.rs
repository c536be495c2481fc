//! [`Secrets`](crate::store::Secrets) on SQL: create, read, list, update, delete and purge.

use async_trait::async_trait;
use common::db::FeedSink;
use macro_rules_attribute::apply;
use tokio_util::sync::CancellationToken;

use super::{CHANGE_CHANNEL, Dialect, NewSecret, PROJECTS, SecretRow, SqlSecretStore, sql};
use crate::{
    domain::{
        Rejection, SecretRecord, VersionRecord,
        events::{EventType, Notice},
    },
    store::{CreateSecretError, Effects, QUOTA_HEADROOM, SecretMutation, Secrets, StoreError, WriteError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Secrets for SqlSecretStore<D> {
    async fn create_secret(
        &self, secret: &SecretRecord, versions: &[VersionRecord], quota: u64, effects: &Effects,
    ) -> Result<(), CreateSecretError> {
        let next = versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
        if let (Some(sql), [version]) = (D::CREATE_SECRET_AT_ONCE, versions)
            && let [stage] = version.stages.as_slice()
            && secret.event_subscriptions.is_empty()
            && effects.task.is_none()
        {
            // With no subscription the effects' notices fire nothing.
            let below = quota.saturating_sub(QUOTA_HEADROOM).min(i64::MAX as u64) as i64;
            if D::GROUPS_CREATES && below > 0 {
                let new = NewSecret { secret: secret.clone(), version: version.clone(), below };
                if self.create_grouped(new).await.is_ok() {
                    self.changed(&secret.id);
                    return Ok(());
                }
            }
            let query = Self::bind_secret(sqlx::query(sql), secret).bind(next).bind(below);
            let query = Self::bind_version(query, version).bind(stage.as_str()).bind(Self::shard());
            let done = query.execute(&self.pool).await.map_err(Self::insert_error)?;
            if D::rows_affected(&done) == 1 {
                // Only this process's feed: its list pages show the new
                // secret at once, other replicas' within common::pages'
                // bound (a NOTIFY would serialise every create's commit).
                self.changed(&secret.id);
                return Ok(());
            }
        }
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        // Far from the quota, creates need no project lock (see
        // QUOTA_HEADROOM); near it they are serialised per project.
        if Self::count_secrets(&mut tx, &secret.project_id).await? + QUOTA_HEADROOM >= quota {
            D::lock_project(&mut tx, PROJECTS, &secret.project_id)
                .await
                .map_err(StoreError::db("locking the project"))?;
            if Self::count_secrets(&mut tx, &secret.project_id).await? >= quota {
                return Err(CreateSecretError::QuotaExceeded);
            }
        }
        if let Err(e) = Self::bind_secret(sqlx::query(sql::INSERT_SECRET), secret).bind(next).execute(&mut *tx).await {
            return Err(Self::insert_error(e));
        }
        Self::insert_versions(&mut tx, versions).await?;
        Self::add_count(&mut tx, &secret.project_id, 1).await?;
        Self::check_subscription(&mut tx, secret).await.map_err(|e| match e {
            WriteError::Rejected(r) => CreateSecretError::Rejected(r),
            WriteError::Store(e) => CreateSecretError::Store(e),
        })?;
        Self::apply_effects(&mut tx, secret, effects, secret.create_ms).await?;
        Self::commit(tx).await?;
        self.changed(&secret.id);
        Ok(())
    }

    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.secret_where(project_id, "name", name).await
    }

    async fn get_secret_by_id(&self, project_id: &str, id: &str) -> Result<Option<SecretRecord>, StoreError> {
        self.secret_where(project_id, "id", id).await
    }

    async fn list_secrets(
        &self, project_id: &str, after: Option<&str>, limit: u32, event: Option<&str>,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        // With an event filter the (small, quota-bounded) remainder is
        // filtered here: event names are not LIKE-safe.
        let sql_limit = if event.is_some() { i64::MAX } else { i64::from(limit) };
        let query = format!(
            "SELECT {} FROM secrets WHERE project_id = $1 AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3",
            sql::SECRET_COLUMNS
        );
        let query = sqlx::query_as(&query).bind(project_id).bind(after).bind(sql_limit);
        let rows: Vec<SecretRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing secrets"))?;
        let mut secrets = rows.into_iter().map(SecretRecord::try_from).collect::<Result<Vec<_>, _>>()?;
        if let Some(event) = event {
            secrets.retain(|s| s.event_subscriptions.iter().any(|e| e == event));
            secrets.truncate(limit as usize);
        }
        Ok(secrets)
    }

    async fn update_secret(
        &self, project_id: &str, name: &str, change: SecretMutation,
    ) -> Result<SecretRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut secret =
            Self::lock_secret(&mut tx, project_id, "name", name).await?.ok_or(Rejection::SecretNotFound)?;
        let before = secret.event_subscriptions.clone();
        change(&mut secret)?;
        if secret.event_subscriptions != before {
            Self::check_subscription(&mut tx, &secret).await?;
        }
        Self::write_secret(&mut tx, &secret).await?;
        self.commit_change(tx, &secret.id).await?;
        Ok(secret)
    }

    async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let Some(secret) = Self::lock_secret(&mut tx, project_id, "name", name).await? else { return Ok(false) };
        Self::fire(&mut tx, &secret, &Notice::of(EventType::Deleted), common::now_ms()).await?;
        let query = sqlx::query("DELETE FROM secrets WHERE id = $1").bind(&secret.id);
        query.execute(&mut *tx).await.map_err(StoreError::db("deleting a secret"))?;
        Self::add_count(&mut tx, project_id, -1).await?;
        self.commit_change(tx, &secret.id).await?;
        Ok(true)
    }

    async fn purge_due(&self, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let due: Vec<String> =
            sqlx::query_scalar("SELECT id FROM secrets WHERE state = 'PENDING_DELETE' AND scheduled_delete_ms <= $1")
                .bind(now_ms)
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db("finding secrets due for deletion"))?;
        let mut deleted = Vec::new();
        let lock = format!(
            "SELECT {} FROM secrets WHERE id = $1 AND state = 'PENDING_DELETE' AND scheduled_delete_ms <= $2{}",
            sql::SECRET_COLUMNS,
            D::ROW_LOCK
        );
        for id in due {
            let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
            // Re-checked on the locked row: another replica may have purged
            // it (or the deletion been cancelled) since the scan.
            let query = sqlx::query_as(&lock).bind(&id).bind(now_ms);
            let row: Option<SecretRow> =
                query.fetch_optional(&mut *tx).await.map_err(StoreError::db("locking a due secret"))?;
            let Some(secret) = row.map(SecretRecord::try_from).transpose()? else { continue };
            Self::fire(&mut tx, &secret, &Notice::of(EventType::Deleted), now_ms).await?;
            let query = sqlx::query("DELETE FROM secrets WHERE id = $1").bind(&id);
            query.execute(&mut *tx).await.map_err(StoreError::db("deleting a due secret"))?;
            Self::add_count(&mut tx, &secret.project_id, -1).await?;
            self.commit_change(tx, &id).await?;
            deleted.push(id);
        }
        Ok(deleted)
    }

    async fn watch(&self, sink: FeedSink, shutdown: CancellationToken) -> Result<bool, StoreError> {
        if self.local.set(sink.clone()).is_err() {
            return Err(StoreError::Corrupt("the secret store's change feed was started twice".into()));
        }
        D::watch(&self.pool, CHANGE_CHANNEL, sink, shutdown).await
    }
}
