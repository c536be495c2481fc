//! [`Tags`](crate::store::Tags) on SQL: the shared tag-table SQL of
//! `common::tags::sql`, inside this store's checked transactions.

use async_trait::async_trait;
use common::tags::sql::{TagTable, TagWriteError};
use macro_rules_attribute::apply;

use super::{Dialect, SqlSecretStore};
use crate::{
    domain::{MAX_TAGS, SecretRecord, tag_rejection},
    store::{SecretCheck, Secrets, StoreError, Tags, WriteError},
};

/// Secret tags in the shared tag-table shape.
const TAGS: TagTable = TagTable { table: "secret_tags", owner: "secret_id", owners: "secrets", owner_id: "id" };

fn write_error(e: TagWriteError) -> WriteError {
    match e {
        TagWriteError::Fault(fault) => tag_rejection(fault).into(),
        TagWriteError::Store(e) => e.into(),
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> Tags for SqlSecretStore<D> {
    async fn put_tags(
        &self, project_id: &str, secret_id: &str, tags: &[(String, String)], check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
        common::tags::sql::put(&mut tx, &TAGS, &secret.id, tags, MAX_TAGS).await.map_err(write_error)?;
        Self::commit(tx).await?;
        Ok(())
    }

    async fn delete_tags(
        &self, project_id: &str, secret_id: &str, keys: &[String], must_exist: bool, check: SecretCheck,
    ) -> Result<(), WriteError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(StoreError::db("starting a transaction"))?;
        let secret = Self::checked(&mut tx, project_id, "id", secret_id, check).await?;
        common::tags::sql::delete(&mut tx, &TAGS, &secret.id, keys, must_exist).await.map_err(write_error)?;
        Self::commit(tx).await?;
        Ok(())
    }

    async fn list_tags(&self, secret_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        common::tags::sql::list(&self.pool, &TAGS, secret_id).await
    }

    async fn secrets_with_tags(
        &self, project_id: &str,
    ) -> Result<Vec<(SecretRecord, Vec<(String, String)>)>, StoreError> {
        let secrets = self.list_secrets(project_id, None, u32::MAX, None).await?;
        let mut tags = common::tags::sql::by_owner(common::tags::sql::of_project(&self.pool, &TAGS, project_id).await?);
        Ok(secrets
            .into_iter()
            .map(|s| {
                let mine = tags.remove(&s.id).unwrap_or_default();
                (s, mine)
            })
            .collect())
    }
}
