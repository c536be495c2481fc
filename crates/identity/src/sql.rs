//! The one implementation of [`IdentityStore`], generic over a [`Dialect`]
//! (Postgres and SQLite supply their migrations and how a snapshot read
//! starts; the rest is [`SqlDialect`]'s). The SQL text is shared: `$n`
//! placeholders work in both.

use async_trait::async_trait;
use common::db::SqlDialect;
use macro_rules_attribute::apply;
use sqlx::{Database, Pool, Transaction};

use crate::store::{
    AccessKeyRow, DomainRow, FirstUse, IdentityError, IdentityStore, Kind, NewRecord, ProjectRow, Records,
    SignatureUse, UserRow,
};

/// What differs between the SQL backends of the identity store beyond
/// [`SqlDialect`].
#[async_trait]
pub trait Dialect: SqlDialect {
    /// This backend's migrations.
    const MIGRATOR: sqlx::migrate::Migrator;

    /// Starts a read that sees every table at one moment (the directory
    /// loads all of them with the version they belong to).
    async fn begin_snapshot(pool: &Pool<Self>) -> Result<Transaction<'static, Self>, sqlx::Error>;

    /// Inserts the first use of each of `uses` (distinct digests, sorted,
    /// so that two replicas' overlapping batches lock rows in one order and
    /// cannot deadlock) in one transaction, and returns each digest with
    /// its stored first use.
    /// Records distinct `uses`, returning each digest, its first use,
    /// whether this statement inserted it, and the store's clock now.
    async fn use_signatures(pool: &Pool<Self>, uses: &[SignatureUse]) -> Result<Vec<UsedRow>, sqlx::Error>;
}

/// The identity store over one pool of dialect `D`.
#[derive(Debug, Clone)]
pub struct SqlIdentityStore<D: Dialect> {
    pool: Pool<D>,
}

common::sql_store!(SqlIdentityStore<D: Dialect>);

impl<D: Dialect> SqlIdentityStore<D> {
    /// Wraps a pool (on Postgres, one whose `search_path` is the iam schema).
    pub fn new(pool: Pool<D>) -> Self {
        Self { pool }
    }
}

const BUMP: &str = "UPDATE iam_version SET version = version + 1 WHERE id = 1";
const VERSION: &str = "SELECT version FROM iam_version WHERE id = 1";
const DOMAINS: &str = "SELECT id, name, enabled, create_ms FROM iam_domains";
const PROJECTS: &str = "SELECT id, domain_id, name, enabled, create_ms FROM iam_projects";
const USERS: &str = "SELECT id, domain_id, name, password_hash, enabled, create_ms FROM iam_users";
const ACCESS_KEYS: &str =
    "SELECT access_key, user_id, sealed_secret, enabled, description, create_ms FROM iam_access_keys";
const INSERT_DOMAIN: &str = "INSERT INTO iam_domains (id, name, enabled, create_ms) VALUES ($1, $2, $3, $4)";
const INSERT_PROJECT: &str =
    "INSERT INTO iam_projects (id, domain_id, name, enabled, create_ms) VALUES ($1, $2, $3, $4, $5)";
const INSERT_USER: &str = "INSERT INTO iam_users (id, domain_id, name, password_hash, enabled, create_ms) \
                           VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_ACCESS_KEY: &str = "INSERT INTO iam_access_keys \
                                 (access_key, user_id, sealed_secret, enabled, description, create_ms) \
                                 VALUES ($1, $2, $3, $4, $5, $6)";
const SET_PASSWORD: &str = "UPDATE iam_users SET password_hash = $2 WHERE id = $1";

/// The bounds of every generic `impl` block here; see
/// [`common::with_sql_bounds`].
macro_rules! sql_bounds {
    ($($item:tt)*) => {
        common::with_sql_bounds! {
            db: D,
            rows: [DomainRow, ProjectRow, UserRow, AccessKeyRow, (i64,)],
            binds: [&'q str, &'q String, &'q Vec<u8>, bool, i64],
            item: $($item)*
        }
    };
}

type Query<'q, D> = sqlx::query::Query<'q, D, <D as Database>::Arguments<'q>>;

#[apply(sql_bounds!)]
impl<D: Dialect> SqlIdentityStore<D> {
    /// Runs `statement` (which must change one row) and bumps the change
    /// counter, in one transaction.
    async fn change<'q>(
        &self, statement: Query<'q, D>, kind: Kind, on_error: impl FnOnce(sqlx::Error) -> IdentityError + Send,
    ) -> Result<(), IdentityError> {
        let mut tx = D::begin_write(&self.pool).await.map_err(IdentityError::db("starting a transaction"))?;
        let done = statement.execute(&mut *tx).await.map_err(on_error)?;
        if D::rows_affected(&done) == 0 {
            return Err(IdentityError::NotFound(kind));
        }
        sqlx::query(BUMP).execute(&mut *tx).await.map_err(IdentityError::db("bumping the version"))?;
        tx.commit().await.map_err(IdentityError::db("committing"))
    }
}

#[apply(sql_bounds!)]
#[async_trait]
impl<D: Dialect> IdentityStore for SqlIdentityStore<D> {
    async fn version(&self) -> Result<i64, IdentityError> {
        let (version,) =
            sqlx::query_as(VERSION).fetch_one(&self.pool).await.map_err(IdentityError::db("reading the version"))?;
        Ok(version)
    }

    async fn load(&self) -> Result<Records, IdentityError> {
        let mut tx = D::begin_snapshot(&self.pool).await.map_err(IdentityError::db("starting a read"))?;
        let (version,) =
            sqlx::query_as(VERSION).fetch_one(&mut *tx).await.map_err(IdentityError::db("reading the version"))?;
        let domains =
            sqlx::query_as(DOMAINS).fetch_all(&mut *tx).await.map_err(IdentityError::db("reading domains"))?;
        let projects =
            sqlx::query_as(PROJECTS).fetch_all(&mut *tx).await.map_err(IdentityError::db("reading projects"))?;
        let users = sqlx::query_as(USERS).fetch_all(&mut *tx).await.map_err(IdentityError::db("reading users"))?;
        let access_keys =
            sqlx::query_as(ACCESS_KEYS).fetch_all(&mut *tx).await.map_err(IdentityError::db("reading access keys"))?;
        tx.commit().await.map_err(IdentityError::db("ending the read"))?;
        Ok(Records { version, domains, projects, users, access_keys })
    }

    async fn insert(&self, record: &NewRecord) -> Result<(), IdentityError> {
        let kind = record.kind();
        let query = match record {
            NewRecord::Domain(d) => {
                sqlx::query(INSERT_DOMAIN).bind(&d.id).bind(&d.name).bind(d.enabled).bind(d.create_ms)
            }
            NewRecord::Project(p) => sqlx::query(INSERT_PROJECT)
                .bind(&p.id)
                .bind(&p.domain_id)
                .bind(&p.name)
                .bind(p.enabled)
                .bind(p.create_ms),
            NewRecord::User(u) => sqlx::query(INSERT_USER)
                .bind(&u.id)
                .bind(&u.domain_id)
                .bind(&u.name)
                .bind(&u.password_hash)
                .bind(u.enabled)
                .bind(u.create_ms),
            NewRecord::AccessKey(k) => sqlx::query(INSERT_ACCESS_KEY)
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
        let query = sqlx::query(SET_PASSWORD).bind(user_id).bind(hash);
        self.change(query, Kind::User, IdentityError::db("changing a password")).await
    }

    async fn delete(&self, kind: Kind, id: &str) -> Result<(), IdentityError> {
        let text = format!("DELETE FROM {} WHERE {} = $1", kind.table(), kind.id_column());
        let query = sqlx::query(&text).bind(id);
        self.change(query, kind, IdentityError::db("deleting a record")).await
    }

    async fn use_signatures(&self, uses: &[SignatureUse]) -> Result<Vec<FirstUse>, IdentityError> {
        // The primary key decides between racing replicas (one insert wins),
        // and a repeat's no-op update returns the winner's time.
        let mut distinct: Vec<SignatureUse> = Vec::with_capacity(uses.len());
        for u in uses {
            if !distinct.iter().any(|d| d.digest == u.digest) {
                distinct.push(*u);
            }
        }
        distinct.sort_unstable_by_key(|u| u.digest);
        let stored =
            D::use_signatures(&self.pool, &distinct).await.map_err(IdentityError::db("recording signatures"))?;
        uses.iter()
            .enumerate()
            .map(|(at, u)| {
                let row =
                    stored.iter().find(|row| row.digest.as_slice() == u.digest).ok_or(IdentityError::Database {
                        context: "recording signatures",
                        source: sqlx::Error::RowNotFound,
                    })?;
                // Of a digest twice in the batch, the earlier one was recorded.
                let earliest = uses.iter().position(|v| v.digest == u.digest) == Some(at);
                let age_ms = if row.inserted && earliest { 0 } else { (row.now_ms - row.first_ms).max(0) };
                Ok(FirstUse { first_ms: row.first_ms, age_ms, this_one: row.inserted && earliest })
            })
            .collect()
    }

    async fn forget_signature(&self, digest: &[u8; 32]) -> Result<(), IdentityError> {
        let digest = digest.to_vec();
        let query = sqlx::query(FORGET_ONE).bind(&digest);
        query.execute(&self.pool).await.map_err(IdentityError::db("forgetting a signature"))?;
        Ok(())
    }

    async fn forget_used_signatures(&self, now_ms: i64) -> Result<u64, IdentityError> {
        let query = sqlx::query(FORGET_USED).bind(now_ms);
        let done = query.execute(&self.pool).await.map_err(IdentityError::db("forgetting signatures"))?;
        Ok(D::rows_affected(&done))
    }
}

/// What recording one signature found (see [`Dialect::use_signatures`]).
#[derive(Debug, sqlx::FromRow)]
pub struct UsedRow {
    /// The signature's digest.
    pub digest: Vec<u8>,
    /// Its first use.
    pub first_ms: i64,
    /// This statement inserted it.
    pub inserted: bool,
    /// The store's clock when it recorded the use.
    pub now_ms: i64,
}

/// One signature's first use (SQLite runs it per use inside one
/// transaction): a row only if this inserted it; else [`FIRST_USE`].
pub(crate) const USE_SIGNATURE: &str = "INSERT INTO iam_used_signatures (digest, first_ms, expires_ms) \
     VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING RETURNING first_ms";
/// A recorded signature's first use.
pub(crate) const FIRST_USE: &str = "SELECT first_ms FROM iam_used_signatures WHERE digest = $1";
const FORGET_USED: &str = "DELETE FROM iam_used_signatures WHERE expires_ms < $1";
const FORGET_ONE: &str = "DELETE FROM iam_used_signatures WHERE digest = $1";
