//! [`SecretStore`](super::SecretStore) on SQLite, in a file of its own: the
//! shared implementation in [`super::sql`] with SQLite's migrations (how
//! SQLite serialises writers is [`common::db::SqlDialect`]'s).

use sqlx::Sqlite;

use super::sql;

/// SQLite-backed secret store.
pub type SqliteSecretStore = sql::SqlSecretStore<Sqlite>;

impl sql::Dialect for Sqlite {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/sqlite");
    const CREATE_SECRET_AT_ONCE: Option<&'static str> = None;
    const SKIP_LOCKED: &'static str = "";
}
