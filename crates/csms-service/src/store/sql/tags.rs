//! [`Tags`](crate::store::Tags) on SQL.

use async_trait::async_trait;
use macro_rules_attribute::apply;

use super::{Dialect, ReadRow, SecretRow, SqlSecretStore, VersionRow, sql};
use crate::{
    domain::{MAX_TAGS, Rejection, SecretRecord},
    store::{SecretCheck, Secrets, StoreError, Tags, WriteError},
};

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Tags for SqlSecretStore<D> {
    async fn put_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        tags: &[(String, String)],
        check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
        for (key, value) in tags {
            sqlx::query(sql::UPSERT_TAG)
                .bind(&secret.id)
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("writing a tag"))?;
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secret_tags WHERE secret_id = $1")
            .bind(&secret.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db("counting tags"))?;
        if count as usize > MAX_TAGS {
            return Err(Rejection::InvalidParameter(format!("a secret has at most {MAX_TAGS} tags")).into());
        }
        Self::commit(tx).await?;
        Ok(())
    }

    async fn delete_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        keys: &[String],
        must_exist: bool,
        check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
        for key in keys {
            let deleted = sqlx::query("DELETE FROM secret_tags WHERE secret_id = $1 AND tag_key = $2")
                .bind(&secret.id)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db("deleting a tag"))?;
            if must_exist && D::rows_affected(&deleted) == 0 {
                return Err(Rejection::ResourceNotFound("tag").into());
            }
        }
        Self::commit(tx).await?;
        Ok(())
    }

    async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        sqlx::query_as("SELECT tag_key, tag_value FROM secret_tags WHERE secret_id = $1 ORDER BY tag_key")
            .bind(secret_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing tags"))
    }

    async fn secrets_with_tags(
        &self,
        project_id: &str,
    ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError> {
        let secrets = self.list_secrets(project_id, None, u32::MAX, None).await?;
        let tags: Vec<(String, String, String)> = sqlx::query_as(sql::PROJECT_TAGS)
            .bind(project_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing project tags"))?;
        Ok(secrets
            .into_iter()
            .map(|s| {
                let mine = tags.iter().filter(|t| t.0 == s.id).map(|t| (t.1.clone(), t.2.clone())).collect();
                (s, mine)
            })
            .collect())
    }
}
