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
    // Create the schema with a short-lived connection, then point every
    // pooled connection's search_path at it.
    {
        let mut conn =
            options.connect().await.map_err(|e| anyhow::anyhow!("cannot connect to Postgres at {url}: {e}"))?;
        sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}")).execute(&mut conn).await.or_else(|e| {
            // Two services starting at once may race on CREATE SCHEMA.
            if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("23505") {
                Ok(Default::default())
            } else {
                Err(e)
            }
        })?;
    }
    let options = options.options([("search_path", schema)]);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?;
    spawn_pool_gauges(pool.clone(), schema.to_owned());
    Ok(pool)
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
