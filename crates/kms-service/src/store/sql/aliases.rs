//! [`Aliases`] on SQL: the alias API's aliases.

use super::rows::AliasRow;
use super::*;
use crate::store::Aliases;

#[apply(sql_bounds!)]
impl<D: Dialect> SqlKeyStore<D> {
    /// A write transaction in which `key_id` is locked and may take one
    /// more alias (create and associate both start here).
    async fn alias_target(
        &self, project_id: &str, key_id: KeyId, max_per_key: usize,
    ) -> Result<sqlx::Transaction<'static, D>, UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let key = Self::lock_key(&mut tx, project_id, key_id).await?;
        Self::check_alias_target(&mut tx, &key, max_per_key).await?;
        Ok(tx)
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Aliases for SqlKeyStore<D> {
    async fn create_alias(
        &self, project_id: &str, alias: &str, key_id: KeyId, now_ms: i64, max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError> {
        let mut tx = self.alias_target(project_id, key_id, max_per_key).await?;
        let inserted = sqlx::query(text::INSERT_ALIAS)
            .bind(project_id.to_owned())
            .bind(alias.to_owned())
            .bind(key_id.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            return Err(if common::db::is_unique_violation(&e) {
                UpdateKeyError::AliasTaken
            } else {
                StoreError::db("inserting an alias")(e).into()
            });
        }
        tx.commit().await.map_err(StoreError::db("committing an alias"))?;
        Ok(AliasRecord { alias: alias.to_owned(), key_id, create_ms: now_ms, update_ms: now_ms })
    }

    async fn associate_alias(
        &self, project_id: &str, alias: &str, key_id: KeyId, now_ms: i64, max_per_key: usize,
    ) -> Result<AliasRecord, UpdateKeyError> {
        let mut tx = self.alias_target(project_id, key_id, max_per_key).await?;
        let query = sqlx::query_as(text::MOVE_ALIAS)
            .bind(project_id.to_owned())
            .bind(alias.to_owned())
            .bind(key_id.to_string())
            .bind(now_ms);
        let moved: Option<AliasRow> =
            query.fetch_optional(&mut *tx).await.map_err(StoreError::db("moving an alias"))?;
        let record = AliasRecord::try_from(moved.ok_or(UpdateKeyError::Rejected(Rejection::AliasNotFound))?)?;
        tx.commit().await.map_err(StoreError::db("committing an alias"))?;
        Ok(record)
    }

    async fn delete_aliases(&self, project_id: &str, key_id: KeyId, aliases: &[String]) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        for alias in aliases {
            let query = sqlx::query(text::DELETE_ALIAS)
                .bind(project_id.to_owned())
                .bind(alias.clone())
                .bind(key_id.to_string());
            let deleted = query.execute(&mut *tx).await.map_err(StoreError::db("deleting an alias"))?;
            if D::rows_affected(&deleted) == 0 {
                return Err(UpdateKeyError::Rejected(Rejection::AliasNotFound));
            }
        }
        tx.commit().await.map_err(StoreError::db("committing alias deletions"))?;
        Ok(())
    }

    async fn find_alias(&self, project_id: &str, alias: &str) -> Result<Option<AliasRecord>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::FIND_ALIAS).bind(project_id.to_owned()).bind(alias.to_owned());
        let row: Option<AliasRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading an alias"))?;
        row.map(AliasRecord::try_from).transpose()
    }

    async fn list_aliases(
        &self, project_id: &str, key_id: Option<KeyId>, after: &str, limit: u32,
    ) -> Result<Vec<AliasRecord>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::LIST_ALIASES)
            .bind(project_id.to_owned())
            .bind(key_id.map(|k| k.to_string()))
            .bind(after.to_owned())
            .bind(i64::from(limit));
        let rows: Vec<AliasRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing aliases"))?;
        rows.into_iter().map(AliasRecord::try_from).collect()
    }
}

#[apply(sql_bounds!)]
impl<D: Dialect> SqlKeyStore<D> {
    /// The alias may name `key`: the key is not on its way out, and has
    /// room for one more alias.
    async fn check_alias_target(
        tx: &mut Transaction<'static, D>, key: &KeyRecord, max_per_key: usize,
    ) -> Result<(), UpdateKeyError> {
        if key.default_key {
            return Err(UpdateKeyError::Rejected(Rejection::DefaultKeyForbidden));
        }
        if key.state == KeyState::PendingDeletion {
            return Err(UpdateKeyError::Rejected(Rejection::KeyPendingDeletion));
        }
        let query = sqlx::query_as(text::COUNT_ALIASES).bind(key.key_id.to_string());
        let (n,): (i64,) = query.fetch_one(&mut **tx).await.map_err(StoreError::db("counting aliases"))?;
        if n as usize >= max_per_key {
            return Err(UpdateKeyError::Rejected(Rejection::AliasLimit));
        }
        Ok(())
    }
}
