//! [`Materials`] on SQL: material versions, rotation, imported material's
//! expiry.

use super::rows::{KeyRefRow, MaterialRow, MaterialVersionRow, key_refs};
use super::*;
use crate::store::Materials;

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Materials for SqlKeyStore<D> {
    async fn materials(&self, key_id: KeyId) -> Result<Vec<(i32, Vec<u8>)>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::SELECT_MATERIALS).bind(key_id.to_string());
        let rows: Vec<MaterialRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("reading key material"))?;
        Ok(rows.into_iter().map(|row| (row.version, row.wrapped)).collect())
    }

    async fn rotate_key(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation, wrap: WrapMaterial,
    ) -> Result<KeyRecord, UpdateKeyError> {
        self.update_locked(project_id, key_id, change, Some(wrap)).await
    }

    async fn material_versions(&self, key_id: KeyId) -> Result<Vec<(i32, i64)>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::MATERIAL_VERSIONS).bind(key_id.to_string());
        let rows: Vec<MaterialVersionRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("reading key material versions"))?;
        Ok(rows.into_iter().map(|row| (row.version, row.created_ms)).collect())
    }

    async fn due_rotations(&self, now_ms: i64, day_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::DUE_ROTATIONS).bind(now_ms).bind(day_ms).bind(i64::from(limit));
        let rows: Vec<KeyRefRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("finding keys due for rotation"))?;
        key_refs(rows)
    }

    async fn expired_imports(&self, now_ms: i64, limit: u32) -> Result<Vec<(String, KeyId)>, StoreError> {
        self.round_trips.tick();
        let query = sqlx::query_as(text::EXPIRED_IMPORTS).bind(now_ms).bind(i64::from(limit));
        let rows: Vec<KeyRefRow> =
            query.fetch_all(&self.pool).await.map_err(StoreError::db("finding expired imported material"))?;
        key_refs(rows)
    }
}
