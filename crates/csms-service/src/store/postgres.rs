//! [`SecretStore`](super::SecretStore) on Postgres, in the `csms` schema:
//! the shared implementation in [`super::sql`] with Postgres' migrations
//! (plain transactions with `FOR UPDATE` row locks, from
//! [`common::db::SqlDialect`]).

use async_trait::async_trait;
use sqlx::{PgPool, Postgres};

use super::sql;

/// Postgres-backed secret store.
pub type PgSecretStore = sql::SqlSecretStore<Postgres>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/postgres");

#[async_trait]
impl sql::Dialect for Postgres {
    async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(pool).await
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
