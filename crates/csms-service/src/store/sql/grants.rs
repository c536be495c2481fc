//! [`Grants`](crate::store::Grants) on SQL, and the per-project settings.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, GrantRow, SecretRow, SqlSecretStore, rows::GRANT_COLUMNS, sql};
use crate::{
    domain::{Rejection, SecretRecord, grants::GrantRecord},
    store::{Grants, StoreError, WriteError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Grants for SqlSecretStore<D> {
    async fn put_grant(&self, g: &GrantRecord) -> Result<GrantRecord, WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_secret(&mut tx, &g.project_id, "id", &g.secret_id)
            .await?
            .ok_or(Rejection::ResourceNotFound("secret"))?;
        sqlx::query(
            "INSERT INTO csms_grants (id, project_id, secret_id, grantee_id, create_ms, update_ms, validity_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (secret_id, grantee_id) \
             DO UPDATE SET update_ms = excluded.update_ms, validity_ms = excluded.validity_ms",
        )
        .bind(g.id.as_str())
        .bind(g.project_id.as_str())
        .bind(g.secret_id.as_str())
        .bind(g.grantee_id.as_str())
        .bind(g.create_ms)
        .bind(g.update_ms)
        .bind(g.validity_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("writing a grant"))?;
        let statement = format!("SELECT {GRANT_COLUMNS} FROM csms_grants WHERE secret_id = $1 AND grantee_id = $2");
        let query = sqlx::query_as(&statement).bind(g.secret_id.as_str()).bind(g.grantee_id.as_str());
        let row: GrantRow = query.fetch_one(&mut *tx).await.map_err(StoreError::db("reading a grant"))?;
        Self::commit(tx).await?;
        Ok(row.into())
    }

    async fn grants_of(&self, secret_id: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let statement = format!("SELECT {GRANT_COLUMNS} FROM csms_grants WHERE secret_id = $1 ORDER BY grantee_id");
        let query = sqlx::query_as(&statement).bind(secret_id);
        let rows: Vec<GrantRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing grants"))?;
        Ok(rows.into_iter().map(GrantRecord::from).collect())
    }

    async fn update_grant(
        &self, secret_id: &str, grantee_id: &str, validity_ms: Option<i64>, now_ms: i64,
    ) -> Result<GrantRecord, WriteError> {
        let statement = format!(
            "UPDATE csms_grants SET validity_ms = $3, update_ms = $4 WHERE secret_id = $1 AND grantee_id = $2 \
             RETURNING {GRANT_COLUMNS}"
        );
        let query = sqlx::query_as(&statement).bind(secret_id).bind(grantee_id).bind(validity_ms).bind(now_ms);
        let row: Option<GrantRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("updating a grant"))?;
        Ok(row.ok_or(Rejection::ResourceNotFound("grant"))?.into())
    }

    async fn delete_grants(&self, secret_id: &str, grantee: Option<&str>) -> Result<u64, StoreError> {
        let query = sqlx::query("DELETE FROM csms_grants WHERE secret_id = $1 AND ($2 IS NULL OR grantee_id = $2)")
            .bind(secret_id)
            .bind(grantee);
        let deleted = query.execute(&self.pool).await.map_err(StoreError::db("deleting grants"))?;
        Ok(D::rows_affected(&deleted))
    }

    async fn granted_secret(
        &self, secret_id: &str, grantee: &str, now_ms: i64,
    ) -> Result<Option<SecretRecord>, StoreError> {
        let columns = sql::SECRET_COLUMNS.split(", ").map(|c| format!("s.{c}")).collect::<Vec<_>>().join(", ");
        let statement = format!(
            "SELECT {columns} FROM csms_grants g JOIN secrets s ON s.id = g.secret_id \
             WHERE g.secret_id = $1 AND g.grantee_id = $2 AND (g.validity_ms IS NULL OR g.validity_ms > $3)"
        );
        let query = sqlx::query_as(&statement).bind(secret_id).bind(grantee).bind(now_ms);
        let row: Option<SecretRow> =
            query.fetch_optional(&self.pool).await.map_err(StoreError::db("reading a granted secret"))?;
        row.map(SecretRecord::try_from).transpose()
    }

    async fn checking_strength(&self, project_id: &str) -> Result<bool, StoreError> {
        let on: Option<bool> =
            sqlx::query_scalar("SELECT checking_secret_strength FROM csms_settings WHERE project_id = $1")
                .bind(project_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::db("reading the checker setting"))?;
        Ok(on.unwrap_or(false))
    }

    async fn set_checking_strength(&self, project_id: &str, on: bool) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO csms_settings (project_id, checking_secret_strength) VALUES ($1, $2) \
             ON CONFLICT (project_id) DO UPDATE SET checking_secret_strength = excluded.checking_secret_strength",
        )
        .bind(project_id)
        .bind(on)
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("writing the checker setting"))?;
        Ok(())
    }

    async fn put_agencies(
        &self, project_id: &str, secret_type: &str, names: &[&str], now_ms: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        for name in names {
            sqlx::query(
                "INSERT INTO csms_agencies (project_id, secret_type, agency_name, agency_id, create_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, secret_type, agency_name) DO NOTHING",
            )
            .bind(project_id)
            .bind(secret_type)
            .bind(*name)
            .bind(uuid::Uuid::new_v4().simple().to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db("recording an agency"))?;
        }
        Self::commit(tx).await?;
        self.agencies(project_id, secret_type).await
    }

    async fn agencies(&self, project_id: &str, secret_type: &str) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as(
            "SELECT agency_name, agency_id FROM csms_agencies WHERE project_id = $1 AND secret_type = $2 \
             ORDER BY agency_name",
        )
        .bind(project_id)
        .bind(secret_type)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading agencies"))
    }
}
