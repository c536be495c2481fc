//! [`SecretStore`] on Postgres, in the `csms` schema. The shared
//! implementation is [`super::impl_secret_store`]; this file holds what
//! differs: plain transactions with `FOR UPDATE` row locks.

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};

use super::*;

/// Postgres-backed secret store.
#[derive(Debug, Clone)]
pub struct PgSecretStore {
    pool: PgPool,
}

impl PgSecretStore {
    /// Wraps a pool whose `search_path` is the csms schema.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.map_err(StoreError::db("starting a transaction"))
    }

    /// Serialises secret creation per project, so two concurrent creates
    /// cannot both pass the quota check.
    async fn lock_project(tx: &mut Transaction<'static, Postgres>, project_id: &str) -> Result<(), StoreError> {
        sqlx::query(sql::ENSURE_PROJECT)
            .bind(project_id)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::db("registering the project"))?;
        sqlx::query("SELECT project_id FROM csms_projects WHERE project_id = $1 FOR UPDATE")
            .bind(project_id)
            .execute(&mut **tx)
            .await
            .map_err(StoreError::db("locking the project"))?;
        Ok(())
    }
}

impl_secret_store!(PgSecretStore, Postgres, "../../migrations/csms/postgres", " FOR UPDATE", "string_agg");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let Some(url) = test_support::postgres_url("csms-service PgSecretStore") else { return };
        let db = test_support::fresh_postgres_database(&url).await;
        let pool = common::db::connect_postgres(&db, "csms", 8).await.unwrap();
        super::super::conformance::run(PgSecretStore::new(pool)).await;
    }
}
