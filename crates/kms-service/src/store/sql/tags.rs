//! [`Tags`] on SQL: the shared tag-table SQL of `common::tags::sql`,
//! inside this store's locked transactions.

use super::*;
use crate::store::Tags;

fn tag_error(e: common::tags::sql::TagWriteError) -> UpdateKeyError {
    match e {
        common::tags::sql::TagWriteError::Fault(fault) => UpdateKeyError::Rejected(Rejection::Tag(fault)),
        common::tags::sql::TagWriteError::Store(e) => UpdateKeyError::Store(e),
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Tags for SqlKeyStore<D> {
    async fn put_tags(&self, project_id: &str, key_id: KeyId, tags: &[Tag], max: usize) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_key(&mut tx, project_id, key_id).await?;
        common::tags::sql::put(&mut tx, &text::TAGS, &key_id.to_string(), tags, max).await.map_err(tag_error)?;
        tx.commit().await.map_err(StoreError::db("committing tags"))?;
        Ok(())
    }

    async fn delete_tags(
        &self, project_id: &str, key_id: KeyId, keys: &[String], must_exist: bool,
    ) -> Result<(), UpdateKeyError> {
        self.round_trips.tick();
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        Self::lock_key(&mut tx, project_id, key_id).await?;
        common::tags::sql::delete(&mut tx, &text::TAGS, &key_id.to_string(), keys, must_exist)
            .await
            .map_err(tag_error)?;
        tx.commit().await.map_err(StoreError::db("committing tags"))?;
        Ok(())
    }

    async fn tags(&self, key_id: KeyId) -> Result<Vec<Tag>, StoreError> {
        self.round_trips.tick();
        common::tags::sql::list(&self.pool, &text::TAGS, &key_id.to_string()).await
    }

    async fn keys_with_tags(&self, project_id: &str) -> Result<Vec<(KeyRecord, Vec<Tag>)>, StoreError> {
        self.round_trips.tick();
        let statement =
            format!("SELECT {} FROM keys WHERE project_id = $1 ORDER BY creation_ms, key_id", text::KEY_COLUMNS);
        let query = sqlx::query_as(&statement).bind(project_id.to_owned());
        let rows: Vec<KeyRow> = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing keys"))?;
        let mut tags =
            common::tags::sql::by_owner(common::tags::sql::of_project(&self.pool, &text::TAGS, project_id).await?);
        rows.into_iter()
            .map(|row| {
                let key = KeyRecord::try_from(row)?;
                let mine = tags.remove(&key.key_id.to_string()).unwrap_or_default();
                Ok((key, mine))
            })
            .collect()
    }
}
