//! The identity store: domains (accounts), their projects and users, and
//! the users' access keys, owned by the gateway in its own schema (`iam`).
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

use async_trait::async_trait;

pub mod admin;
pub mod conformance;
pub mod directory;
pub mod postgres;
pub mod seal;
pub mod sqlite;

/// Which kind of record a change or an error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An account.
    Domain,
    /// A project of a domain.
    Project,
    /// A user of a domain.
    User,
    /// An access key of a user.
    AccessKey,
}

impl Kind {
    fn table(self) -> &'static str {
        match self {
            Kind::Domain => "iam_domains",
            Kind::Project => "iam_projects",
            Kind::User => "iam_users",
            Kind::AccessKey => "iam_access_keys",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Kind::AccessKey => "access_key",
            _ => "id",
        }
    }

    /// Lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Domain => "domain",
            Kind::Project => "project",
            Kind::User => "user",
            Kind::AccessKey => "access key",
        }
    }
}

/// A domain row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DomainRow {
    /// 32 hex.
    pub id: String,
    /// Unique name (the account name users log in with).
    pub name: String,
    /// Disabled domains authenticate nobody.
    pub enabled: bool,
    /// Creation time, ms.
    pub create_ms: i64,
}

/// A project row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProjectRow {
    /// 32 hex.
    pub id: String,
    /// Owning domain.
    pub domain_id: String,
    /// Unique within the domain (a region id such as `local-1`).
    pub name: String,
    /// Disabled projects accept no calls.
    pub enabled: bool,
    /// Creation time, ms.
    pub create_ms: i64,
}

/// A user row.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRow {
    /// 32 hex.
    pub id: String,
    /// Owning domain.
    pub domain_id: String,
    /// Unique within the domain.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Disabled users authenticate with neither password, token nor key.
    pub enabled: bool,
    /// Creation time, ms.
    pub create_ms: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("domain_id", &self.domain_id)
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// An access key row; the SK only sealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessKeyRow {
    /// The AK.
    pub access_key: String,
    /// Owning user.
    pub user_id: String,
    /// The SK sealed by [`seal::SecretSealer`].
    pub sealed_secret: Vec<u8>,
    /// Disabled keys authenticate nothing.
    pub enabled: bool,
    /// Free text.
    pub description: String,
    /// Creation time, ms.
    pub create_ms: i64,
}

/// Everything in the store, as the directory loads it.
#[derive(Debug, Clone, Default)]
pub struct Records {
    /// Change counter the rows were read at.
    pub version: i64,
    /// All domains.
    pub domains: Vec<DomainRow>,
    /// All projects.
    pub projects: Vec<ProjectRow>,
    /// All users.
    pub users: Vec<UserRow>,
    /// All access keys.
    pub access_keys: Vec<AccessKeyRow>,
}

/// One new record.
#[derive(Debug, Clone)]
pub enum NewRecord {
    /// A domain.
    Domain(DomainRow),
    /// A project.
    Project(ProjectRow),
    /// A user.
    User(UserRow),
    /// An access key.
    AccessKey(AccessKeyRow),
}

impl NewRecord {
    fn kind(&self) -> Kind {
        match self {
            NewRecord::Domain(_) => Kind::Domain,
            NewRecord::Project(_) => Kind::Project,
            NewRecord::User(_) => Kind::User,
            NewRecord::AccessKey(_) => Kind::AccessKey,
        }
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// No such record (or, on insert, no such parent).
    #[error("no such {}", .0.as_str())]
    NotFound(Kind),
    /// A unique name or id is taken.
    #[error("that {} already exists", .0.as_str())]
    AlreadyExists(Kind),
    /// Input refused before touching the store.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("identity database error while {context}: {source}")]
    Database {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("applying the identity store migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl IdentityError {
    fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }

    /// Maps an insert's error: unique violations and missing parents become
    /// domain errors, by the constraint that fired.
    fn on_insert(kind: Kind) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| match source.as_database_error() {
            Some(d) if d.is_unique_violation() => Self::AlreadyExists(kind),
            Some(d) if d.is_foreign_key_violation() => Self::NotFound(match kind {
                Kind::AccessKey => Kind::User,
                _ => Kind::Domain,
            }),
            _ => Self::Database { context: "inserting a record", source },
        }
    }
}

/// Storage of the directory. Every change is one transaction that also
/// bumps the change counter.
#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug + 'static {
    /// Applies this backend's migrations.
    async fn migrate(&self) -> Result<(), IdentityError>;
    /// Is the database reachable?
    async fn ping(&self) -> Result<(), IdentityError>;
    /// The change counter.
    async fn version(&self) -> Result<i64, IdentityError>;
    /// Every record, read in one transaction (a consistent snapshot).
    async fn load(&self) -> Result<Records, IdentityError>;
    /// Inserts one record.
    async fn insert(&self, record: &NewRecord) -> Result<(), IdentityError>;
    /// Enables or disables a record.
    async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<(), IdentityError>;
    /// Replaces a user's password hash.
    async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), IdentityError>;
    /// Deletes a record and what it owns (a domain its projects and users,
    /// a user its access keys).
    async fn delete(&self, kind: Kind, id: &str) -> Result<(), IdentityError>;
}

/// SQL shared by both backends (`$n` placeholders work in both).
mod sql {
    pub const BUMP: &str = "UPDATE iam_version SET version = version + 1 WHERE id = 1";
    pub const VERSION: &str = "SELECT version FROM iam_version WHERE id = 1";
    pub const DOMAINS: &str = "SELECT id, name, enabled, create_ms FROM iam_domains";
    pub const PROJECTS: &str = "SELECT id, domain_id, name, enabled, create_ms FROM iam_projects";
    pub const USERS: &str = "SELECT id, domain_id, name, password_hash, enabled, create_ms FROM iam_users";
    pub const ACCESS_KEYS: &str =
        "SELECT access_key, user_id, sealed_secret, enabled, description, create_ms FROM iam_access_keys";
    pub const INSERT_DOMAIN: &str = "INSERT INTO iam_domains (id, name, enabled, create_ms) VALUES ($1, $2, $3, $4)";
    pub const INSERT_PROJECT: &str =
        "INSERT INTO iam_projects (id, domain_id, name, enabled, create_ms) VALUES ($1, $2, $3, $4, $5)";
    pub const INSERT_USER: &str = "INSERT INTO iam_users (id, domain_id, name, password_hash, enabled, create_ms) \
                                   VALUES ($1, $2, $3, $4, $5, $6)";
    pub const INSERT_ACCESS_KEY: &str = "INSERT INTO iam_access_keys \
                                         (access_key, user_id, sealed_secret, enabled, description, create_ms) \
                                         VALUES ($1, $2, $3, $4, $5, $6)";
    pub const SET_PASSWORD: &str = "UPDATE iam_users SET password_hash = $2 WHERE id = $1";
}

/// The one implementation of [`IdentityStore`], instantiated by the
/// Postgres and SQLite siblings with their database type and migrations.
macro_rules! impl_identity_store {
    ($store:ty, $db:ty, $migrations:literal) => {
        impl $store {
            /// Runs `statement` (which must change one row) and bumps the
            /// change counter, in one transaction.
            async fn change<'q>(
                &self,
                statement: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                kind: Kind,
                on_error: impl FnOnce(sqlx::Error) -> IdentityError,
            ) -> Result<(), IdentityError> {
                let mut tx = self.begin().await?;
                let done = statement.execute(&mut *tx).await.map_err(on_error)?;
                if done.rows_affected() == 0 {
                    return Err(IdentityError::NotFound(kind));
                }
                sqlx::query(sql::BUMP).execute(&mut *tx).await.map_err(IdentityError::db("bumping the version"))?;
                tx.commit().await.map_err(IdentityError::db("committing"))
            }
        }

        #[async_trait::async_trait]
        impl IdentityStore for $store {
            async fn migrate(&self) -> Result<(), IdentityError> {
                sqlx::migrate!($migrations).run(&self.pool).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), IdentityError> {
                sqlx::query("SELECT 1").execute(&self.pool).await.map_err(IdentityError::db("pinging"))?;
                Ok(())
            }

            async fn version(&self) -> Result<i64, IdentityError> {
                sqlx::query_scalar(sql::VERSION)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(IdentityError::db("reading the version"))
            }

            async fn load(&self) -> Result<Records, IdentityError> {
                let mut tx = self.begin_read().await?;
                let version = sqlx::query_scalar(sql::VERSION)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(IdentityError::db("reading the version"))?;
                let domains = sqlx::query_as(sql::DOMAINS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(IdentityError::db("reading domains"))?;
                let projects = sqlx::query_as(sql::PROJECTS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(IdentityError::db("reading projects"))?;
                let users =
                    sqlx::query_as(sql::USERS).fetch_all(&mut *tx).await.map_err(IdentityError::db("reading users"))?;
                let access_keys = sqlx::query_as(sql::ACCESS_KEYS)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(IdentityError::db("reading access keys"))?;
                tx.commit().await.map_err(IdentityError::db("ending the read"))?;
                Ok(Records { version, domains, projects, users, access_keys })
            }

            async fn insert(&self, record: &NewRecord) -> Result<(), IdentityError> {
                let kind = record.kind();
                let query = match record {
                    NewRecord::Domain(d) => {
                        sqlx::query(sql::INSERT_DOMAIN).bind(&d.id).bind(&d.name).bind(d.enabled).bind(d.create_ms)
                    }
                    NewRecord::Project(p) => sqlx::query(sql::INSERT_PROJECT)
                        .bind(&p.id)
                        .bind(&p.domain_id)
                        .bind(&p.name)
                        .bind(p.enabled)
                        .bind(p.create_ms),
                    NewRecord::User(u) => sqlx::query(sql::INSERT_USER)
                        .bind(&u.id)
                        .bind(&u.domain_id)
                        .bind(&u.name)
                        .bind(&u.password_hash)
                        .bind(u.enabled)
                        .bind(u.create_ms),
                    NewRecord::AccessKey(k) => sqlx::query(sql::INSERT_ACCESS_KEY)
                        .bind(&k.access_key)
                        .bind(&k.user_id)
                        .bind(&k.sealed_secret)
                        .bind(k.enabled)
                        .bind(&k.description)
                        .bind(k.create_ms),
                };
                self.change(query, kind, IdentityError::on_insert(kind)).await
            }

            async fn set_enabled(&self, kind: Kind, id: &str, enabled: bool) -> Result<(), IdentityError> {
                let text = format!("UPDATE {} SET enabled = $2 WHERE {} = $1", kind.table(), kind.id_column());
                let query = sqlx::query(&text).bind(id).bind(enabled);
                self.change(query, kind, IdentityError::db("changing a record")).await
            }

            async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<(), IdentityError> {
                let query = sqlx::query(sql::SET_PASSWORD).bind(user_id).bind(hash);
                self.change(query, Kind::User, IdentityError::db("changing a password")).await
            }

            async fn delete(&self, kind: Kind, id: &str) -> Result<(), IdentityError> {
                let text = format!("DELETE FROM {} WHERE {} = $1", kind.table(), kind.id_column());
                let query = sqlx::query(&text).bind(id);
                self.change(query, kind, IdentityError::db("deleting a record")).await
            }
        }
    };
}
pub(crate) use impl_identity_store;

/// Opens the store the URL names (Postgres schema `iam`, or SQLite) and
/// migrates it.
pub async fn open_store(
    url: &common::db::DatabaseUrl,
    max_connections: u32,
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
