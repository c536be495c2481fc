//! Database URLs: the scheme picks the backend.
//!
//! `postgres://` (production) or `sqlite://` (the embedded default for
//! development and tests). Each service keeps its tables apart: on Postgres
//! in a schema named after the service (so kms-service and csms-service may
//! share one database and still migrate independently), on SQLite in a file
//! of its own.

use std::{fmt, str::FromStr, time::Duration};

use sqlx::{
    ConnectOptions,
    postgres::{PgConnectOptions, PgPool, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous},
};

/// Which SQL dialect a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite://` (file) or `sqlite::memory:`.
    Sqlite,
}

/// A database URL whose `Debug` and `Display` never show a password.
///
/// The password may also come from a file (`--…-database-password-file`),
/// so the URL can sit in plain configuration and the password in a mounted
/// Kubernetes Secret; it then overrides any password in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: Backend,
    password: Option<zeroize::Zeroizing<String>>,
}

/// Why a database URL was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "unsupported database URL scheme in {0}: use postgres://user@host:5432/db or sqlite://path/to/file.db?mode=rwc"
)]
pub struct UnsupportedUrl(String);

impl FromStr for DatabaseUrl {
    type Err = UnsupportedUrl;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let backend = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Backend::Postgres
        } else if s.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(UnsupportedUrl(redact(s)));
        };
        Ok(Self { url: s.to_owned(), backend, password: None })
    }
}

impl DatabaseUrl {
    /// The backend the scheme selects.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The full URL, password included. Never log this.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// A SQLite URL for a file, created when missing.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self { url: format!("sqlite://{}?mode=rwc", path.display()), backend: Backend::Sqlite, password: None }
    }

    /// Takes the password from `file` (its first line) when given. `setting`
    /// names the flag in errors. Only Postgres URLs have passwords.
    pub fn with_password_file(mut self, file: Option<&std::path::Path>, setting: &str) -> anyhow::Result<Self> {
        let Some(file) = file else { return Ok(self) };
        anyhow::ensure!(self.backend == Backend::Postgres, "{setting} applies to postgres:// URLs only");
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read {setting} {}: {e}", file.display()))?,
        );
        let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
        anyhow::ensure!(!password.is_empty(), "{setting} {} is empty", file.display());
        self.password = Some(zeroize::Zeroizing::new(password.to_owned()));
        Ok(self)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.url))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..scheme_end + 3], &authority[..colon], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

/// Opens a Postgres pool whose connections live in `schema` (created if
/// missing), so that each service migrates and queries only its own tables.
pub async fn connect_postgres(url: &DatabaseUrl, schema: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    debug_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    let options: PgConnectOptions = url
        .expose()
        .parse::<PgConnectOptions>()
        .map_err(|e| anyhow::anyhow!("invalid Postgres URL {url}: {e}"))?
        .log_statements(tracing::log::LevelFilter::Trace);
    let options = match &url.password {
        Some(password) => options.password(password),
        None => options,
    };
    // Create the schema (if missing) with a short-lived connection, then
    // point every pooled connection's search_path at it. A deployment with
    // one role per service creates each schema beforehand, owned by its
    // role, and gives no role CREATE on the database (deploy/postgres):
    // `CREATE SCHEMA IF NOT EXISTS` checks that privilege even when the
    // schema exists, so it is not issued then.
    {
        let mut conn =
            options.connect().await.map_err(|e| anyhow::anyhow!("cannot connect to Postgres at {url}: {e}"))?;
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut conn)
            .await?;
        if !exists {
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut conn).await.or_else(|e| {
                // Two services starting at once may race on CREATE SCHEMA.
                if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
                    Ok(Default::default())
                } else {
                    Err(e)
                }
            })?;
        }
    }
    // Plans are made per execution, with the table's current size: a
    // generic plan cached by a statement prepared while a table was empty
    // (every fresh deployment) costs index choices as ties and kept
    // scanning a whole project through the wrong index until autovacuum's
    // first ANALYZE of that table (issue #16). Planning these short
    // statements costs far less than one such scan.
    let options = options.options([("search_path", schema), ("plan_cache_mode", "force_custom_plan")]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    spawn_pool_gauges(pool.clone(), schema.to_owned());
    Ok(pool)
}

/// Begins a transaction in which statements run on a cached generic plan:
/// for the batch writers' one statement (`common::group`: the replay
/// ledger, grouped create-key and create-secret). Their `UNNEST` inserts
/// with several data-modifying `WITH` parts cost about 1 ms to plan, a
/// quarter of Postgres' CPU under a create load when planned per execution
/// (BENCHMARKS.md, session 13), while the pool plans per execution
/// ([`connect_postgres`]). A generic plan is safe for them: they read
/// only a count table by its primary key, so no index choice depends on a
/// table's size. `SET LOCAL` ends with the transaction; the BEGIN and the
/// setting are one round trip.
pub async fn begin_generic_plans(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan").await
}

/// Publishes a pool's size every few seconds as
/// `opendew_db_pool_connections{service, state="in_use"|"idle"}` and
/// `opendew_db_pool_max_connections{service}`, until the pool is closed.
fn spawn_pool_gauges<DB: sqlx::Database>(pool: sqlx::Pool<DB>, service: String) {
    tokio::spawn(async move {
        let max = f64::from(pool.options().get_max_connections());
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        while !pool.is_closed() {
            tick.tick().await;
            let (size, idle) = (pool.size() as f64, pool.num_idle() as f64);
            metrics::gauge!("opendew_db_pool_connections", "service" => service.clone(), "state" => "in_use")
                .set(size - idle);
            metrics::gauge!("opendew_db_pool_connections", "service" => service.clone(), "state" => "idle").set(idle);
            metrics::gauge!("opendew_db_pool_max_connections", "service" => service.clone()).set(max);
        }
    });
}

/// Opens a SQLite pool in WAL mode with full synchronous commits: a write is
/// acknowledged only once it is durable.
pub async fn connect_sqlite(url: &DatabaseUrl, service: &str) -> anyhow::Result<SqlitePool> {
    let options: SqliteConnectOptions = url
        .expose()
        .parse::<SqliteConnectOptions>()
        .map_err(|e| anyhow::anyhow!("invalid SQLite URL {url}: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let is_memory = url.expose().contains(":memory:") || url.expose().contains("mode=memory");
    let pool = SqlitePoolOptions::new()
        // An in-memory database exists per connection: keep exactly one.
        .max_connections(if is_memory { 1 } else { 8 })
        .min_connections(if is_memory { 1 } else { 0 })
        .idle_timeout(None::<Duration>)
        .max_lifetime(None::<Duration>)
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open SQLite database {url}: {e}"))?;
    spawn_pool_gauges(pool.clone(), service.to_owned());
    Ok(pool)
}

/// True when a database error is a violation of the named unique constraint
/// (Postgres) or of a unique index on the named table (SQLite, whose error
/// text names the columns).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|d| d.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url: DatabaseUrl = "postgres://app:hunter2@db:5432/kms".parse().unwrap();
        assert_eq!(format!("{url:?}"), "DatabaseUrl(postgres://app:***@db:5432/kms)");
        assert!(!url.to_string().contains("hunter2"));
        assert_eq!(url.backend(), Backend::Postgres);
    }

    #[test]
    fn password_file_overrides_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from-the-file\n").unwrap();
        let url: DatabaseUrl = "postgres://app@db:5432/kms".parse().unwrap();
        let url = url.with_password_file(Some(&file), "--kms-database-password-file").unwrap();
        assert_eq!(url.password.as_deref().map(String::as_str), Some("from-the-file"));
        assert!(!format!("{url:?}{url}").contains("from-the-file"));
        let sqlite: DatabaseUrl = "sqlite://x.db".parse().unwrap();
        let err = sqlite.with_password_file(Some(&file), "--kms-database-password-file").unwrap_err();
        assert!(err.to_string().contains("--kms-database-password-file"));
        let missing = "postgres://db/x".parse::<DatabaseUrl>().unwrap();
        let err = missing.with_password_file(Some(&dir.path().join("nope")), "--csms-database-password-file");
        assert!(err.unwrap_err().to_string().contains("--csms-database-password-file"));
    }

    #[test]
    fn unknown_schemes_name_valid_examples() {
        let err = "mysql://root:pw@x/y".parse::<DatabaseUrl>().unwrap_err().to_string();
        assert!(err.contains("postgres://") && err.contains("sqlite://") && !err.contains("pw"));
    }
}

/// A storage failure with a sentence of context: the error of every SQL
/// store (a refusal the store decides, such as a taken name, is the
/// store's own error type or a domain rejection, not this).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("{context}: {source}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored row does not decode into the domain model.
    #[error("corrupt stored row of {0}")]
    Corrupt(String),
    /// Migrations failed at start.
    #[error("migrating the schema failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Wraps a driver error with what the store was doing.
    pub fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }
}

/// What the SQL stores need of a backend beyond the SQL text they share
/// (both accept `$n` placeholders and `ON CONFLICT … DO UPDATE`): how a
/// writing transaction starts, how a project's creators are serialised,
/// the row-lock clause and the string aggregate.
#[async_trait::async_trait]
pub trait SqlDialect: sqlx::Database {
    /// Appended to a `SELECT` that locks the row it reads (`FOR UPDATE` on
    /// Postgres; empty on SQLite, whose writers are serialised by
    /// [`begin_write`](Self::begin_write)).
    const ROW_LOCK: &'static str;

    /// The string aggregate (`string_agg`, `group_concat`).
    const STRING_AGG: &'static str;

    /// A query answering the database's clock in ms since the epoch.
    const NOW_MS: &'static str;

    /// Starts a transaction that is going to write.
    async fn begin_write(pool: &sqlx::Pool<Self>) -> Result<sqlx::Transaction<'static, Self>, sqlx::Error>;

    /// Serialises creation in one project for the length of `tx` (so two
    /// concurrent creates cannot both pass a quota check), through a row
    /// per project in `projects`, a table with a `project_id` key.
    async fn lock_project(
        tx: &mut sqlx::Transaction<'static, Self>, projects: &'static str, project_id: &str,
    ) -> Result<(), sqlx::Error>;

    /// Rows a statement changed (sqlx has no common trait for it).
    fn rows_affected(result: &Self::QueryResult) -> u64;

    /// Tells every replica's change feed on `channel`, when `tx` commits
    /// and only then, that `payload` (a record's id) changed. Nothing on
    /// SQLite, whose file one process owns.
    async fn notify(
        tx: &mut sqlx::Transaction<'static, Self>, channel: &'static str, payload: &str,
    ) -> Result<(), sqlx::Error>;

    /// Starts the change feed of `channel` (see [`watch_postgres`]); false
    /// when the backend has none (SQLite: the writing process invalidates
    /// its own caches, and that is complete).
    async fn watch(
        pool: &sqlx::Pool<Self>, channel: &'static str, sink: FeedSink, shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<bool, StoreError>;
}

/// What a change feed tells a cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// The record with this id (the notification's payload) changed or
    /// was deleted, in a committed transaction.
    Changed(String),
    /// Notifications may have been missed (the feed is reconnecting): forget
    /// everything. `healthy` tells whether the feed is delivering again.
    Reset {
        /// The feed is connected and delivering.
        healthy: bool,
    },
}

/// Receives a change feed's events.
pub type FeedSink = std::sync::Arc<dyn Fn(FeedEvent) + Send + Sync>;

/// Listens on `channel` and hands every notification to `sink`, from a
/// task that runs until `shutdown`.
///
/// Postgres delivers a `NOTIFY` made inside a transaction when, and only
/// if, that transaction commits, milliseconds later, to every listening
/// connection. If the listening connection drops, notifications are lost
/// until it is back: the sink hears `Reset { healthy: false }` at once
/// (a cache must then be bypassed) and `Reset { healthy: true }` after the
/// reconnect (and must forget everything it held), so a lost notification
/// never leaves a stale entry behind.
pub async fn watch_postgres(
    pool: &PgPool, channel: &'static str, sink: FeedSink, shutdown: tokio_util::sync::CancellationToken,
) -> Result<bool, StoreError> {
    use sqlx::postgres::PgListener;
    let mut listener = PgListener::connect_with(pool).await.map_err(StoreError::db("opening the change feed"))?;
    listener.listen(channel).await.map_err(StoreError::db("listening for changes"))?;
    sink(FeedEvent::Reset { healthy: true });
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => sink(FeedEvent::Changed(notification.payload().to_owned())),
                Ok(None) | Err(_) => {
                    sink(FeedEvent::Reset { healthy: false });
                    tracing::warn!(channel, "change feed lost; caches bypassed until it reconnects");
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                        // Forces a reconnect; the listener re-LISTENs its channels.
                        if listener.listen_all(std::iter::empty::<&str>()).await.is_ok() {
                            break;
                        }
                    }
                    sink(FeedEvent::Reset { healthy: true });
                    tracing::info!(channel, "change feed reconnected");
                }
            }
        }
    });
    Ok(true)
}

/// Plain transactions and `FOR UPDATE` row locks.
#[async_trait::async_trait]
impl SqlDialect for sqlx::Postgres {
    const ROW_LOCK: &'static str = " FOR UPDATE";
    const STRING_AGG: &'static str = "string_agg";
    const NOW_MS: &'static str = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

    async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Self>, sqlx::Error> {
        pool.begin().await
    }

    async fn lock_project(
        tx: &mut sqlx::Transaction<'static, Self>, projects: &'static str, project_id: &str,
    ) -> Result<(), sqlx::Error> {
        let insert = format!("INSERT INTO {projects} (project_id) VALUES ($1) ON CONFLICT DO NOTHING");
        sqlx::query(&insert).bind(project_id).execute(&mut **tx).await?;
        let lock = format!("SELECT project_id FROM {projects} WHERE project_id = $1 FOR UPDATE");
        sqlx::query(&lock).bind(project_id).execute(&mut **tx).await?;
        Ok(())
    }

    fn rows_affected(result: &sqlx::postgres::PgQueryResult) -> u64 {
        result.rows_affected()
    }

    async fn notify(
        tx: &mut sqlx::Transaction<'static, Self>, channel: &'static str, payload: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(payload).execute(&mut **tx).await?;
        Ok(())
    }

    async fn watch(
        pool: &PgPool, channel: &'static str, sink: FeedSink, shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<bool, StoreError> {
        watch_postgres(pool, channel, sink, shutdown).await
    }
}

/// `BEGIN IMMEDIATE` takes SQLite's single write lock up front, so writers
/// are serialised without row locks (check-then-write is atomic), and a
/// writer waits instead of failing when it would upgrade a read lock.
#[async_trait::async_trait]
impl SqlDialect for sqlx::Sqlite {
    const ROW_LOCK: &'static str = "";
    const STRING_AGG: &'static str = "group_concat";
    const NOW_MS: &'static str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

    async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Self>, sqlx::Error> {
        pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Nothing to do: the write lock taken by `begin_write` covers it.
    async fn lock_project(
        _tx: &mut sqlx::Transaction<'static, Self>, _projects: &'static str, _project_id: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    fn rows_affected(result: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    /// Nothing to tell: no other process shares the file.
    async fn notify(
        _tx: &mut sqlx::Transaction<'static, Self>, _channel: &'static str, _payload: &str,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn watch(
        _pool: &SqlitePool, _channel: &'static str, _sink: FeedSink, _shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
}

/// What every store does with its database rather than its records:
/// migrate it, and tell whether it answers.
#[async_trait::async_trait]
pub trait Schema: Send + Sync {
    /// Applies the backend's migrations (idempotent: every replica runs it
    /// at start).
    async fn migrate(&self) -> Result<(), StoreError>;

    /// One trivial statement: is the database reachable? Readiness checks
    /// use it; no request path does.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The database's clock, in ms since the epoch. Background tasks that
    /// act on stored deadlines (purges) read it rather than their own
    /// replica's clock, so replicas with skewed clocks agree on what is due
    /// (issue #15, finding 11).
    async fn clock_ms(&self) -> Result<i64, StoreError>;
}

/// A store over one sqlx pool, with its migrations: [`Schema`] comes with
/// it.
pub trait SqlStore: Send + Sync {
    /// The database.
    type Db: sqlx::Database;

    /// The store's migrations for this database.
    const MIGRATOR: sqlx::migrate::Migrator;

    /// The pool.
    fn pool(&self) -> &sqlx::Pool<Self::Db>;
}

/// Implements [`SqlStore`] for a store generic over its dialect `D`,
/// whose migrations are the dialect's `MIGRATOR` and whose pool is its
/// `pool` field (every store of the three services has that shape).
#[macro_export]
macro_rules! sql_store {
    ($store:ident<$d:ident: $dialect:path>) => {
        impl<$d: $dialect> $crate::db::SqlStore for $store<$d> {
            type Db = $d;
            const MIGRATOR: sqlx::migrate::Migrator = <$d as $dialect>::MIGRATOR;
            fn pool(&self) -> &sqlx::Pool<$d> {
                &self.pool
            }
        }
    };
}

#[async_trait::async_trait]
impl<S: SqlStore> Schema for S
where
    S::Db: SqlDialect,
    <S::Db as sqlx::Database>::Connection: sqlx::migrate::Migrate,
    for<'c> &'c sqlx::Pool<S::Db>: sqlx::Executor<'c, Database = S::Db>,
    for<'q> <S::Db as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, S::Db>,
    for<'r> (i64,): sqlx::FromRow<'r, <S::Db as sqlx::Database>::Row>,
{
    async fn migrate(&self) -> Result<(), StoreError> {
        Ok(Self::MIGRATOR.run(self.pool()).await?)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        use sqlx::Connection;
        let mut conn = self.pool().acquire().await.map_err(StoreError::db("connecting to the database"))?;
        conn.ping().await.map_err(StoreError::db("pinging the database"))
    }

    async fn clock_ms(&self) -> Result<i64, StoreError> {
        let (ms,): (i64,) = sqlx::query_as(<S::Db as SqlDialect>::NOW_MS)
            .fetch_one(self.pool())
            .await
            .map_err(StoreError::db("reading the database clock"))?;
        Ok(ms)
    }
}

/// Puts on an `impl<D: Dialect> … for Store<D>` block the bounds under which
/// one generic SQL store compiles for both Postgres and SQLite: executors for
/// a connection and for the pool, decoders for the `rows` it reads and
/// encoders for the values it `binds`, and migrations on a connection.
///
/// Rust has no stable trait aliases, and a `where` clause on a trait is not
/// carried to its users, so without this every `impl` block of a store would
/// repeat the same twenty lines. A service wraps it once in a local macro that
/// names its rows and bound types, and marks each block with
/// `#[macro_rules_attribute::apply(that_macro!)]`; the block itself stays
/// ordinary, rustfmt-formatted code. `db` names the sqlx database.
#[macro_export]
macro_rules! with_sql_bounds {
    (db: $db:ty, rows: $rows:tt, binds: $binds:tt, item:
        $(#[$attr:meta])* impl<D: $dialect:ident> $trait:ident for $self_ty:ty { $($body:tt)* }
    ) => {
        $crate::with_sql_bounds!(@emit $db, [$(#[$attr])* impl<D: $dialect> $trait for $self_ty] $rows $binds { $($body)* });
    };
    (db: $db:ty, rows: $rows:tt, binds: $binds:tt, item:
        $(#[$attr:meta])* impl<D: $dialect:ident> $self_ty:ty { $($body:tt)* }
    ) => {
        $crate::with_sql_bounds!(@emit $db, [$(#[$attr])* impl<D: $dialect> $self_ty] $rows $binds { $($body)* });
    };
    (@emit $db:ty, [$($head:tt)*] [$($row:ty),* $(,)?] [$($bind:ty),* $(,)?] { $($body:tt)* }) => {
        $($head)*
        where
            for<'c> &'c mut <$db as ::sqlx::Database>::Connection: ::sqlx::Executor<'c, Database = $db>,
            for<'c> &'c ::sqlx::Pool<$db>: ::sqlx::Executor<'c, Database = $db>,
            for<'q> <$db as ::sqlx::Database>::Arguments<'q>: ::sqlx::IntoArguments<'q, $db>,
            <$db as ::sqlx::Database>::Connection: ::sqlx::migrate::Migrate,
            $(for<'r> $row: ::sqlx::FromRow<'r, <$db as ::sqlx::Database>::Row>,)*
            $(for<'q> $bind: ::sqlx::Encode<'q, $db> + ::sqlx::Type<$db>,)*
        { $($body)* }
    };
}
