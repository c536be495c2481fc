//! [`Secrets`](crate::store::Secrets) on SQL: create, read, list, update, delete and purge.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, PROJECTS, ReadRow, SecretRow, SqlSecretStore, VersionRow, sql};
use crate::{
    domain::{Rejection, SecretRecord, VersionRecord},
    store::{CreateSecretError, QUOTA_HEADROOM, SecretMutation, Secrets, StoreError, WriteError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Secrets for SqlSecretStore<D> {
    async fn create_secret(
        &self,
        secret: &SecretRecord,
        versions: &[VersionRecord],
        quota: u64,
    ) -> Result<(), CreateSecretError> {
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
        let next = versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
        if let Err(e) = Self::bind_secret(sqlx::query(sql::INSERT_SECRET), secret).bind(next).execute(&mut *tx).await {
            return Err(if common::db::is_unique_violation(&e) {
                CreateSecretError::NameTaken
            } else {
                StoreError::db("inserting a secret")(e).into()
            });
        }
        Self::insert_versions(&mut tx, versions).await?;
        Self::add_count(&mut tx, &secret.project_id, 1).await?;
        Self::commit(tx).await?;
        Ok(())
    }

    async fn get_secret(&self, project_id: &str, name: &str) -> Result<Option<SecretRecord>, StoreError> {
        let row: Option<SecretRow> = sqlx::query_as(&sql::select_secret())
            .bind(project_id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    async fn get_secret_by_id(&self, project_id: &str, id: &str) -> Result<Option<SecretRecord>, StoreError> {
        let query = format!("SELECT {} FROM secrets WHERE project_id = $1 AND id = $2", sql::SECRET_COLUMNS);
        let row: Option<SecretRow> = sqlx::query_as(&query)
            .bind(project_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading a secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    async fn list_secrets(
        &self,
        project_id: &str,
        after: Option<&str>,
        limit: u32,
        event: Option<&str>,
    ) -> Result<Vec<SecretRecord>, StoreError> {
        // With an event filter the (small, quota-bounded) remainder is
        // filtered here: event names are not LIKE-safe.
        let sql_limit = if event.is_some() { i64::MAX } else { i64::from(limit) };
        let query = format!(
            "SELECT {} FROM secrets WHERE project_id = $1 AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3",
            sql::SECRET_COLUMNS
        );
        let rows: Vec<SecretRow> = sqlx::query_as(&query)
            .bind(project_id)
            .bind(after)
            .bind(sql_limit)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing secrets"))?;
        let mut secrets = rows.into_iter().map(SecretRecord::try_from).collect::<Result<Vec<_>, _>>()?;
        if let Some(event) = event {
            secrets.retain(|s| s.event_subscriptions.iter().any(|e| e == event));
            secrets.truncate(limit as usize);
        }
        Ok(secrets)
    }

    async fn update_secret(
        &self,
        project_id: &str,
        name: &str,
        change: SecretMutation,
    ) -> Result<SecretRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut secret =
            Self::lock_secret(&mut tx, project_id, "name", name).await?.ok_or(Rejection::SecretNotFound)?;
        change(&mut secret)?;
        sqlx::query(sql::UPDATE_SECRET)
            .bind(project_id)
            .bind(&secret.id)
            .bind(secret.state.as_str())
            .bind(&secret.kms_key_id)
            .bind(&secret.description)
            .bind(secret.auto_rotation)
            .bind(&secret.rotation_period)
            .bind(serde_json::to_string(&secret.event_subscriptions).expect("strings serialise"))
            .bind(&secret.rotation_func_urn)
            .bind(secret.update_ms)
            .bind(secret.scheduled_delete_ms)
            .bind(secret.next_rotation_ms)
            .bind(secret.state_before_delete.map(|st| st.as_str()))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("updating a secret"))?;
        Self::commit(tx).await?;
        Ok(secret)
    }

    async fn delete_secret(&self, project_id: &str, name: &str) -> Result<bool, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let deleted = sqlx::query("DELETE FROM secrets WHERE project_id = $1 AND name = $2")
            .bind(project_id)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("deleting a secret"))?;
        if D::rows_affected(&deleted) != 1 {
            return Ok(false);
        }
        Self::add_count(&mut tx, project_id, -1).await?;
        Self::commit(tx).await?;
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
        for id in due {
            let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
            let gone: Option<String> = sqlx::query_scalar(
                "DELETE FROM secrets WHERE id = $1 AND state = 'PENDING_DELETE' AND scheduled_delete_ms <= $2 \
                 RETURNING project_id",
            )
            .bind(&id)
            .bind(now_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db("deleting a due secret"))?;
            if let Some(project_id) = gone {
                Self::add_count(&mut tx, &project_id, -1).await?;
                Self::commit(tx).await?;
                deleted.push(id);
            }
        }
        Ok(deleted)
    }
}
