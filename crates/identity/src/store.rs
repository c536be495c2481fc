//! The store's records, its error and the [`IdentityStore`] trait its SQL
//! backends implement ([`crate::sql`]).

use async_trait::async_trait;

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
    pub(crate) fn table(self) -> &'static str {
        match self {
            Kind::Domain => "iam_domains",
            Kind::Project => "iam_projects",
            Kind::User => "iam_users",
            Kind::AccessKey => "iam_access_keys",
        }
    }

    pub(crate) fn id_column(self) -> &'static str {
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
    /// The SK sealed by [`crate::seal::SecretSealer`].
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
    pub(crate) fn kind(&self) -> Kind {
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
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }

    /// Maps an insert's error: unique violations and missing parents become
    /// domain errors, by the constraint that fired.
    pub(crate) fn on_insert(kind: Kind) -> impl FnOnce(sqlx::Error) -> Self {
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
/// One use of a one-shot request's signature (see
/// [`IdentityStore::use_signatures`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureUse {
    /// SHA-256 over the access key and the signature.
    pub digest: [u8; 32],
    /// When it is used, by the caller's clock. A store that runs in the
    /// caller's process (SQLite, one gateway) records this; a shared store
    /// (Postgres, many replicas) uses its own clock instead, so that every
    /// replica measures a repeat's age on one clock.
    pub now_ms: i64,
    /// When the signature stops being valid (after that it is forgotten).
    pub expires_ms: i64,
}

/// What recording a [`SignatureUse`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstUse {
    /// When the signature was first used (by the store's clock).
    pub first_ms: i64,
    /// How long ago that was, by the same clock: the replay grace compares
    /// this, never one replica's clock with another's (issue #40).
    pub age_ms: i64,
    /// This use is the first: it inserted the row. Exactly one use of a
    /// signature ever is, whatever the clocks say (two uses in one
    /// millisecond have one first).
    pub this_one: bool,
}

#[async_trait]
pub trait IdentityStore: common::db::Schema + std::fmt::Debug + 'static {
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
    /// Records uses of one-shot requests' signatures and returns, for each
    /// in order, when its signature was first used (its own `now_ms` for a
    /// first use, earlier for a repeat) and whether it is the first (a
    /// digest twice in `uses` is one use and a repeat). One row per
    /// signature, shared by every gateway replica; racing first uses agree
    /// on one time and one first. One commit for the whole batch: the
    /// gateway groups concurrent requests' uses (`gateway::replay`), so
    /// many writers wait on one fsync.
    async fn use_signatures(&self, uses: &[SignatureUse]) -> Result<Vec<FirstUse>, IdentityError>;
    /// [`use_signatures`](Self::use_signatures) for one.
    async fn use_signature(&self, digest: &[u8; 32], now_ms: i64, expires_ms: i64) -> Result<FirstUse, IdentityError> {
        let first = self.use_signatures(&[SignatureUse { digest: *digest, now_ms, expires_ms }]).await?;
        Ok(first[0])
    }
    /// Forgets one signature's use, so that its next use is a first one
    /// again (the gateway does this when the first use failed and changed
    /// nothing).
    async fn forget_signature(&self, digest: &[u8; 32]) -> Result<(), IdentityError>;
    /// Forgets signatures whose validity ended before `now_ms`; returns
    /// how many.
    async fn forget_used_signatures(&self, now_ms: i64) -> Result<u64, IdentityError>;
}
