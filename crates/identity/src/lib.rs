//! The identity store: domains (accounts), their projects and users, and
//! the users' access keys, owned by the gateway in its own schema (`iam`),
//! with the directory every gateway replica keeps in memory, the sealing of
//! SKs, the credentials file, and the administration `opendew admin` and the
//! gateway's start-up import use.
//!
//! Requests never read it: every gateway replica keeps the whole directory
//! in memory ([`directory::Directory`]) and reloads it when the store's
//! change counter moves, which it polls every few seconds. So a disabled or
//! deleted access key, user or project stops working on every replica
//! within one poll interval, and neither signatures nor tokens cost a
//! database round trip.
//!
//! An SK must stay recoverable to verify HMAC signatures, so it is stored
//! sealed under the gateway's identity key ([`seal::SecretSealer`]);
//! passwords are stored as argon2id hashes.

pub mod admin;
pub mod conformance;
pub mod credentials;
pub mod directory;
pub mod hashing;
pub mod postgres;
pub mod seal;
pub mod sql;
pub mod sqlite;
pub mod store;

pub use store::{
    AccessKeyRow, DomainRow, FirstUse, IdentityError, IdentityStore, Kind, NewRecord, ProjectRow, Records,
    SignatureUse, UserRow,
};

/// Opens the store the URL names (Postgres schema `iam`, or SQLite) and
/// migrates it.
pub async fn open_store(
    url: &common::db::DatabaseUrl, max_connections: u32,
) -> anyhow::Result<std::sync::Arc<dyn IdentityStore>> {
    let store: std::sync::Arc<dyn IdentityStore> = match url.backend() {
        common::db::Backend::Postgres => std::sync::Arc::new(postgres::PgIdentityStore::new(
            common::db::connect_postgres(url, "iam", max_connections).await?,
        )),
        common::db::Backend::Sqlite => {
            std::sync::Arc::new(sqlite::SqliteIdentityStore::new(common::db::connect_sqlite(url, "iam").await?))
        }
    };
    store.migrate().await?;
    Ok(store)
}
