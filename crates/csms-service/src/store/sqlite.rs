//! [`SecretStore`](super::SecretStore) on SQLite, in a file of its own: the
//! shared implementation in [`super::sql`] with SQLite's migrations (how
//! SQLite serialises writers is [`common::db::SqlDialect`]'s).

use async_trait::async_trait;
use sqlx::{Sqlite, SqlitePool};

use super::sql;

/// SQLite-backed secret store.
pub type SqliteSecretStore = sql::SqlSecretStore<Sqlite>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/sqlite");

#[async_trait]
impl sql::Dialect for Sqlite {
    async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(pool).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let url = common::db::DatabaseUrl::sqlite_file(&dir.path().join("csms.db"));
        let pool = common::db::connect_sqlite(&url, "csms").await.unwrap();
        super::super::conformance::run(SqliteSecretStore::new(pool)).await;
    }
}
