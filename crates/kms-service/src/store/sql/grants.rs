//! [`Grants`] on SQL.

use super::*;
use crate::store::Grants;

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Grants for SqlKeyStore<D> {
    async fn create_grant(
        &self, grant: &GrantRecord, check: KeyMutation, limits: GrantLimits,
    ) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let mut key = Self::lock_key(&mut tx, &grant.project_id, grant.key_id).await?;
        check(&mut key).map_err(UpdateKeyError::Rejected)?;
        let query = sqlx::query_as(text::COUNT_GRANTS).bind(grant.key_id.to_string());
        let (n,): (i64,) = query.fetch_one(&mut *tx).await.map_err(StoreError::db("counting grants"))?;
        if n as usize >= limits.per_key {
            return Err(UpdateKeyError::Rejected(Rejection::GrantQuota));
        }
        // The project's count under its lock, so that concurrent grants on
        // different keys cannot both take the last place.
        D::lock_project(&mut tx, "kms_projects", &grant.project_id)
            .await
            .map_err(StoreError::db("locking the project"))?;
        let query = sqlx::query_as(text::COUNT_PROJECT_GRANTS).bind(grant.project_id.clone());
        let (n,): (i64,) = query.fetch_one(&mut *tx).await.map_err(StoreError::db("counting grants"))?;
        if n as usize >= limits.per_project {
            return Err(UpdateKeyError::Rejected(Rejection::GrantProjectQuota));
        }
        let operations: Vec<&str> = grant.operations.iter().map(|op| op.as_str()).collect();
        let query = sqlx::query(text::INSERT_GRANT)
            .bind(grant.grant_id.clone())
            .bind(grant.key_id.to_string())
            .bind(grant.project_id.clone())
            .bind(grant.grantee.clone())
            .bind(grant.grantee_type.as_str().to_owned())
            .bind(operations.join(","))
            .bind(grant.issuing_principal.clone())
            .bind(grant.retiring_principal.clone())
            .bind(grant.name.clone())
            .bind(grant.creation_ms);
        query.execute(&mut *tx).await.map_err(StoreError::db("inserting a grant"))?;
        D::notify(&mut tx, CHANGE_CHANNEL, &grant.key_id.to_string())
            .await
            .map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a grant"))?;
        Ok(())
    }

    async fn grants_of(&self, key_id: KeyId) -> Result<Vec<GrantRecord>, StoreError> {
        self.round_trips.tick();
        let statement =
            format!("SELECT {} FROM key_grants WHERE key_id = $1 ORDER BY creation_ms, grant_id", text::GRANT_COLUMNS);
        let query = sqlx::query_as(&statement).bind(key_id.to_string());
        let rows: Vec<GrantRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("reading grants"))?;
        rows.into_iter().map(GrantRecord::try_from).collect()
    }

    async fn find_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        self.round_trips.tick();
        let row: Option<GrantRow> =
            sqlx::query_as(&format!("SELECT {} FROM key_grants WHERE grant_id = $1", text::GRANT_COLUMNS))
                .bind(grant_id.to_owned())
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading a grant"))?;
        row.map(GrantRecord::try_from).transpose()
    }

    async fn delete_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let query = sqlx::query(text::DELETE_GRANT).bind(grant.grant_id.clone());
        let deleted = query.execute(&mut *tx).await.map_err(StoreError::db("deleting a grant"))?;
        D::notify(&mut tx, CHANGE_CHANNEL, &grant.key_id.to_string())
            .await
            .map_err(StoreError::db("notifying a key change"))?;
        tx.commit().await.map_err(StoreError::db("committing a grant deletion"))?;
        Ok(D::rows_affected(&deleted) > 0)
    }

    async fn retirable_grants(
        &self, retiring: &[&str], offset: u64, limit: u32,
    ) -> Result<(Vec<GrantRecord>, u64), StoreError> {
        self.round_trips.tick();
        // A user id and a domain id: at most two principals.
        let (first, second) = (retiring.first().copied().unwrap_or(""), retiring.get(1).copied().unwrap_or(""));
        let statement = format!(
            "SELECT {} FROM key_grants WHERE retiring_principal IN ($1, $2) ORDER BY creation_ms, grant_id \
             LIMIT $3 OFFSET $4",
            text::GRANT_COLUMNS
        );
        let query = sqlx::query_as(&statement)
            .bind(first.to_owned())
            .bind(second.to_owned())
            .bind(i64::from(limit))
            .bind(offset as i64);
        let rows: Vec<GrantRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("listing retirable grants"))?;
        let query = sqlx::query_as("SELECT COUNT(*) FROM key_grants WHERE retiring_principal IN ($1, $2)")
            .bind(first.to_owned())
            .bind(second.to_owned());
        let (total,): (i64,) =
            query.fetch_one(&self.pool).await.map_err(StoreError::db("counting retirable grants"))?;
        Ok((rows.into_iter().map(GrantRecord::try_from).collect::<Result<_, _>>()?, total as u64))
    }
}
