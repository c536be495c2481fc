//! [`KeyStore`](super::KeyStore) on Postgres, in the `kms` schema.
//!
//! Every key change sends `NOTIFY opendew_kms_keys, '<key id>'` inside its
//! transaction, so the notification is delivered exactly when the change
//! commits; [`KeyStore::watch`](super::KeyStore::watch) turns those into
//! cache invalidations on every replica (`common::db::watch_postgres`).

use sqlx::Postgres;

use super::sql;

/// Postgres-backed key store.
pub type PgKeyStore = sql::SqlKeyStore<Postgres>;

impl sql::Dialect for Postgres {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/postgres");
    const CREATE_KEY_AT_ONCE: Option<&'static str> = Some(sql::PG_CREATE_KEY_AT_ONCE);
}
