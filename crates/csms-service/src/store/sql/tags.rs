//! [`Tags`](crate::store::Tags) on SQL.

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Type};

use super::{Dialect, ReadRow, SecretRow, SqlSecretStore, VersionRow, sql};
use crate::{
    domain::{MAX_TAGS, Rejection, SecretRecord},
    store::{SecretCheck, Secrets, StoreError, Tags, WriteError},
};

#[async_trait]
impl<D: Dialect> Tags for SqlSecretStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'c> &'c Pool<D::Db>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'r> SecretRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> VersionRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> ReadRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String,): FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (i32,): FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (i64,): FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String, String): FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String, i32, i64): FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String, String, String): FromRow<'r, <D::Db as Database>::Row>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i32: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i32>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn put_tags(
        &self,
        project_id: &str,
        secret_id: &str,
        tags: &[(String, String)],
        check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
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
        let mut tx = D::begin(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
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
