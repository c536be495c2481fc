//! [`SecretStore`](super::SecretStore) on Postgres, in the `csms` schema:
//! the shared implementation in [`super::sql`] with Postgres' migrations
//! (plain transactions with `FOR UPDATE` row locks, from
//! [`common::db::SqlDialect`]).

use sqlx::Postgres;

use super::sql;

/// Postgres-backed secret store.
pub type PgSecretStore = sql::SqlSecretStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/csms/postgres");
    const CREATE_SECRET_AT_ONCE: Option<&'static str> = Some(sql::PG_CREATE_SECRET_AT_ONCE);
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";
}
