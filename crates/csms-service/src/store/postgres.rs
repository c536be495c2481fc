//! [`SecretStore`](super::SecretStore) on Postgres, in the `csms` schema:
//! the dialect of the shared implementation in [`super::sql`] (plain
//! transactions with `FOR UPDATE` row locks).

use async_trait::async_trait;
use sqlx::{PgPool, Postgres, Transaction};

use super::sql;

/// Postgres-backed secret store.
pub type PgSecretStore = sql::SqlSecretStore<Pg>;

/// The Postgres dialect.
#[derive(Debug)]
pub struct Pg;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/postgres");

#[async_trait]
impl sql::Dialect for Pg {
    type Db = Postgres;

    const ROW_LOCK: &'static str = " FOR UPDATE";
    const STRING_AGG: &'static str = "string_agg";

    async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(pool).await
    }

    async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        pool.begin().await
    }

    async fn lock_project(tx: &mut Transaction<'static, Postgres>, project_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("INSERT INTO csms_projects (project_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(project_id)
            .execute(&mut **tx)
            .await?;
        sqlx::query("SELECT project_id FROM csms_projects WHERE project_id = $1 FOR UPDATE")
            .bind(project_id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }
}

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
