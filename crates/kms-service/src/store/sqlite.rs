//! [`KeyStore`](super::KeyStore) on SQLite, in a file of its own: the
//! dialect of the shared implementation in [`super::sql`].
//!
//! SQLite serves one process (development, CI, single-node use), so there is
//! no change feed: the process that writes invalidates its own cache. Its
//! `BEGIN IMMEDIATE` takes the single write lock up front, which serialises
//! writers (so check-then-write is atomic without row locks) and makes a
//! writer wait instead of failing when it would upgrade a read lock.

use sqlx::Sqlite;

use super::sql;

/// SQLite-backed key store.
pub type SqliteKeyStore = sql::SqlKeyStore<Sqlite>;

impl sql::Dialect for Sqlite {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/kms/sqlite");
    // SQLite has no data-modifying WITH.
    const CREATE_KEY_AT_ONCE: Option<&'static str> = None;
}
