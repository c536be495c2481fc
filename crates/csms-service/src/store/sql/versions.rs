//! [`Versions`](crate::store::Versions) on SQL: numbers, inserts with stage moves, the read path,
//! expiry and stages.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, ReadRow, SqlSecretStore, VersionRow, sql};
use crate::{
    domain::{MAX_STAGES, MAX_VERSIONS, Rejection, SYSCURRENT, SYSPENDING, SYSPREVIOUS, SecretRecord, VersionRecord},
    store::{Effects, SecretCheck, SecretMutation, StageRecord, StoreError, Versions, WriteError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Versions for SqlSecretStore<D> {
    async fn reserve_version(
        &self, project_id: &str, name: &str, check: SecretCheck,
    ) -> Result<(SecretRecord, i32), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
        let query = sqlx::query_scalar("SELECT next_version FROM secrets WHERE id = $1").bind(&secret.id);
        let next: i32 = query.fetch_one(&mut *tx).await.map_err(StoreError::db("reading the next version number"))?;
        let query = sqlx::query("UPDATE secrets SET next_version = $2 WHERE id = $1").bind(&secret.id).bind(next + 1);
        query.execute(&mut *tx).await.map_err(StoreError::db("reserving a version number"))?;
        Self::commit(tx).await?;
        Ok((secret, next))
    }

    async fn insert_version(
        &self, project_id: &str, version: &VersionRecord, change: SecretMutation, effects: &Effects,
    ) -> Result<VersionRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut secret = Self::lock_secret(&mut tx, project_id, "id", &version.secret_id)
            .await?
            .ok_or(Rejection::ResourceNotFound("secret"))?;
        change(&mut secret)?;
        let current = Self::stages_in(&mut tx, &secret.id).await?;
        // SYSPENDING is a rotation's lock: staged only where none is.
        if version.stages.iter().any(|s| s == SYSPENDING) && current.iter().any(|s| s.name == SYSPENDING) {
            return Err(Rejection::RotationInProgress.into());
        }
        let old_current = current.iter().find(|s| s.name == SYSCURRENT).map(|s| s.version);
        let gives_previous = version.stages.iter().any(|s| s == SYSCURRENT)
            && !version.stages.iter().any(|s| s == SYSPREVIOUS)
            && old_current.is_some();
        let mut names: std::collections::BTreeSet<&str> = current.iter().map(|s| s.name.as_str()).collect();
        names.extend(version.stages.iter().map(String::as_str));
        if gives_previous {
            names.insert(SYSPREVIOUS);
        }
        if names.len() > MAX_STAGES {
            return Err(Rejection::StageLimit.into());
        }
        Self::bind_version(sqlx::query(sql::INSERT_VERSION), version)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("inserting a secret version"))?;
        for stage in &version.stages {
            Self::upsert_stage(&mut tx, &secret.id, stage, version.number, version.create_ms).await?;
        }
        if let (true, Some(previous)) = (gives_previous, old_current) {
            Self::upsert_stage(&mut tx, &secret.id, SYSPREVIOUS, previous, version.create_ms).await?;
        }
        let query = sqlx::query_scalar("SELECT COUNT(*) FROM secret_versions WHERE secret_id = $1").bind(&secret.id);
        let count: i64 = query.fetch_one(&mut *tx).await.map_err(StoreError::db("counting versions"))?;
        if count as usize > MAX_VERSIONS {
            let query = sqlx::query_scalar(sql::OLDEST_DEPRECATED).bind(&secret.id).bind(version.number);
            let oldest: Option<i32> =
                query.fetch_optional(&mut *tx).await.map_err(StoreError::db("finding a deprecated version"))?;
            let Some(oldest) = oldest else {
                return Err(Rejection::InvalidParameter(format!(
                    "the secret already has {MAX_VERSIONS} versions and every one carries a stage"
                ))
                .into());
            };
            let query = sqlx::query("DELETE FROM secret_versions WHERE secret_id = $1 AND version = $2")
                .bind(&secret.id)
                .bind(oldest);
            query.execute(&mut *tx).await.map_err(StoreError::db("deleting a deprecated version"))?;
        }
        secret.update_ms = version.create_ms;
        Self::write_secret(&mut tx, &secret).await?;
        Self::apply_effects(&mut tx, &secret, effects, version.create_ms).await?;
        let stored = Self::version_in(&mut tx, &secret.id, version.number)
            .await?
            .ok_or_else(|| StoreError::Corrupt(secret.id.clone()))?;
        self.commit_change(tx, &secret.id).await?;
        Ok(stored)
    }

    async fn promote_pending(
        &self, project_id: &str, secret_id: &str, number: i32, change: SecretMutation, effects: &Effects,
    ) -> Result<VersionRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut secret = Self::lock_secret(&mut tx, project_id, "id", secret_id)
            .await?
            .ok_or(Rejection::ResourceNotFound("secret"))?;
        change(&mut secret)?;
        let current = Self::stages_in(&mut tx, &secret.id).await?;
        if !current.iter().any(|s| s.name == SYSPENDING && s.version == number) {
            return Err(Rejection::InvalidRequest("the rotation's pending version is no longer pending".into()).into());
        }
        let now = effects.task.as_ref().map_or_else(common::now_ms, |t| t.task_ms);
        let query = sqlx::query("DELETE FROM secret_stages WHERE secret_id = $1 AND stage_name = $2")
            .bind(&secret.id)
            .bind(SYSPENDING);
        query.execute(&mut *tx).await.map_err(StoreError::db("removing the pending stage"))?;
        Self::upsert_stage(&mut tx, &secret.id, SYSCURRENT, number, now).await?;
        if let Some(old) = current.iter().find(|s| s.name == SYSCURRENT).filter(|s| s.version != number) {
            Self::upsert_stage(&mut tx, &secret.id, SYSPREVIOUS, old.version, now).await?;
        }
        secret.update_ms = now;
        Self::write_secret(&mut tx, &secret).await?;
        Self::apply_effects(&mut tx, &secret, effects, now).await?;
        let stored = Self::version_in(&mut tx, &secret.id, number)
            .await?
            .ok_or_else(|| StoreError::Corrupt(secret.id.clone()))?;
        self.commit_change(tx, &secret.id).await?;
        Ok(stored)
    }

    async fn renew_pending(&self, secret_id: &str, number: i32, seen_ms: i64, now_ms: i64) -> Result<bool, StoreError> {
        let query = sqlx::query(
            "UPDATE secret_stages SET update_ms = $4 \
             WHERE secret_id = $1 AND stage_name = $5 AND version = $2 AND update_ms = $3",
        )
        .bind(secret_id)
        .bind(number)
        .bind(seen_ms)
        .bind(now_ms)
        .bind(SYSPENDING);
        let renewed = query.execute(&self.pool).await.map_err(StoreError::db("renewing a rotation's lease"))?;
        Ok(D::rows_affected(&renewed) == 1)
    }

    async fn read_secret_version(
        &self, project_id: &str, name: &str, stage: Option<&str>, number: Option<i32>,
    ) -> Result<Option<(SecretRecord, Option<VersionRecord>)>, StoreError> {
        let statement = sql::read_secret_version(D::STRING_AGG);
        let query = sqlx::query_as(&statement).bind(project_id).bind(name).bind(stage).bind(number);
        let row: Option<ReadRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a secret value"))?;
        row.map(ReadRow::into_records).transpose()
    }

    async fn get_version(&self, secret_id: &str, number: i32) -> Result<Option<VersionRecord>, StoreError> {
        let sql = sql::select_version();
        let row = sqlx::query_as(&sql).bind(secret_id).bind(number).fetch_optional(&self.pool).await;
        self.with_stages(row.map_err(StoreError::db("reading a secret version"))?).await
    }

    async fn get_version_by_stage(&self, secret_id: &str, stage: &str) -> Result<Option<VersionRecord>, StoreError> {
        let sql = sql::select_version_by_stage();
        let row = sqlx::query_as(&sql).bind(secret_id).bind(stage).fetch_optional(&self.pool).await;
        self.with_stages(row.map_err(StoreError::db("reading a staged secret version"))?).await
    }

    async fn list_versions(
        &self, secret_id: &str, after: Option<i32>, limit: u32,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let query = format!(
            "SELECT {} FROM secret_versions v WHERE v.secret_id = $1 AND v.version > $2 \
             ORDER BY v.version LIMIT $3",
            sql::VERSION_COLUMNS
        );
        let query = sqlx::query_as(&query).bind(secret_id).bind(after.unwrap_or(0)).bind(i64::from(limit));
        let rows: Vec<VersionRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing versions"))?;
        let query = sqlx::query_as(sql::STAGES_OF_SECRET).bind(secret_id);
        let stages: Vec<(String, i32, i64)> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("reading stages"))?;
        rows.into_iter()
            .map(|row| {
                let mine = stages.iter().filter(|s| s.1 == row.version).map(|s| s.0.clone()).collect();
                row.into_record(mine)
            })
            .collect()
    }

    async fn set_version_expiry(
        &self, project_id: &str, name: &str, number: i32, expire_ms: Option<i64>, check: SecretCheck,
    ) -> Result<VersionRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
        let query = sqlx::query("UPDATE secret_versions SET expire_ms = $3 WHERE secret_id = $1 AND version = $2")
            .bind(&secret.id)
            .bind(number)
            .bind(expire_ms);
        let updated = query.execute(&mut *tx).await.map_err(StoreError::db("updating a version"))?;
        if D::rows_affected(&updated) == 0 {
            return Err(Rejection::ResourceNotFound("version").into());
        }
        let version =
            Self::version_in(&mut tx, &secret.id, number).await?.ok_or(Rejection::ResourceNotFound("version"))?;
        self.commit_change(tx, &secret.id).await?;
        Ok(version)
    }

    async fn get_stage(&self, secret_id: &str, stage: &str) -> Result<Option<StageRecord>, StoreError> {
        let row: Option<(String, i32, i64)> = sqlx::query_as(
            "SELECT stage_name, version, update_ms FROM secret_stages WHERE secret_id = $1 AND stage_name = $2",
        )
        .bind(secret_id)
        .bind(stage)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading a stage"))?;
        Ok(row.map(|(name, version, update_ms)| StageRecord { name, version, update_ms }))
    }

    async fn set_stage(
        &self, project_id: &str, name: &str, stage: &str, number: i32, check: SecretCheck,
    ) -> Result<StageRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
        if Self::version_in(&mut tx, &secret.id, number).await?.is_none() {
            return Err(Rejection::ResourceNotFound("version").into());
        }
        let current = Self::stages_in(&mut tx, &secret.id).await?;
        let exists = |n: &str| current.iter().any(|s| s.name == n);
        let old_current = current.iter().find(|s| s.name == SYSCURRENT).map(|s| s.version);
        let gives_previous = stage == SYSCURRENT && old_current.is_some_and(|v| v != number);
        let new_names = usize::from(!exists(stage)) + usize::from(gives_previous && !exists(SYSPREVIOUS));
        if current.len() + new_names > MAX_STAGES {
            return Err(Rejection::StageLimit.into());
        }
        let now = common::now_ms();
        Self::upsert_stage(&mut tx, &secret.id, stage, number, now).await?;
        if let (true, Some(previous)) = (gives_previous, old_current) {
            Self::upsert_stage(&mut tx, &secret.id, SYSPREVIOUS, previous, now).await?;
        }
        self.commit_change(tx, &secret.id).await?;
        Ok(StageRecord { name: stage.to_owned(), version: number, update_ms: now })
    }

    async fn delete_stage(
        &self, project_id: &str, name: &str, stage: &str, check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "name", name, check).await?;
        let query = sqlx::query("DELETE FROM secret_stages WHERE secret_id = $1 AND stage_name = $2")
            .bind(&secret.id)
            .bind(stage);
        let deleted = query.execute(&mut *tx).await.map_err(StoreError::db("deleting a stage"))?;
        if D::rows_affected(&deleted) == 0 {
            return Err(Rejection::ResourceNotFound("stage").into());
        }
        self.commit_change(tx, &secret.id).await?;
        Ok(())
    }
}
