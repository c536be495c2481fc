//! Helpers for opendew's tests.
//!
//! Postgres-backed tests read `OPENDEW_TEST_POSTGRES_URL` (a server URL
//! whose user may create databases). Without it they print that they were
//! skipped — unless `CI=true`, where a missing URL is a failure: CI must
//! never pass by silently skipping the production backend.

use common::db::DatabaseUrl;

pub mod accounts;

/// Environment variable naming the Postgres server for tests.
pub const POSTGRES_ENV: &str = "OPENDEW_TEST_POSTGRES_URL";

/// The test Postgres URL, or `None` (after printing why) when the test
/// should be skipped. Panics under `CI=true` without a URL.
pub fn postgres_url(test: &str) -> Option<DatabaseUrl> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url.parse().expect("OPENDEW_TEST_POSTGRES_URL is not a postgres:// URL")),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: CI=true but {POSTGRES_ENV} is not set; Postgres-backed tests must run in CI")
        }
        _ => {
            say_skipped(&format!("{test}: set {POSTGRES_ENV}=postgres://… to run it against Postgres"));
            None
        }
    }
}

/// Environment variable naming the MySQL or MariaDB server for tests (a
/// `mysql://` URL of an account that may create users).
pub const MYSQL_ENV: &str = "OPENDEW_TEST_MYSQL_URL";

/// The test MySQL/MariaDB URL, or `None` (after printing why) when the
/// test should be skipped. Panics under `CI=true` without a URL.
pub fn mysql_url(test: &str) -> Option<String> {
    match std::env::var(MYSQL_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("{test}: CI=true but {MYSQL_ENV} is not set; MariaDB-backed tests must run in CI")
        }
        _ => {
            say_skipped(&format!("{test}: set {MYSQL_ENV}=mysql://… to run it against MariaDB"));
            None
        }
    }
}

/// Creates a database with a random name on the server of `server` and
/// returns its URL, so each test starts from an empty database.
pub async fn fresh_postgres_database(server: &DatabaseUrl) -> DatabaseUrl {
    use sqlx::{ConnectOptions, Connection, postgres::PgConnectOptions};
    let name = format!("opendew_test_{}", uuid::Uuid::new_v4().simple());
    let options: PgConnectOptions = server.expose().parse().expect("valid Postgres URL");
    let mut conn = options.connect().await.expect("connect to the test Postgres server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
    conn.close().await.ok();
    let base = server.expose();
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    // Replace the path (database name) of the server URL.
    let authority_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = head[authority_end..].find('/').map(|i| i + authority_end).unwrap_or(head.len());
    format!("{}/{name}{query}", &head[..path_start]).parse().expect("valid URL")
}

/// Prints a skip notice past the test harness's output capture, so that a
/// passing run still shows what it did not test.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}");
}

/// A pool on a fresh Postgres database in `schema`, or `None` when `test`
/// is skipped (see [`postgres_url`]).
pub async fn postgres_pool(test: &str, schema: &str) -> Option<sqlx::PgPool> {
    let server = postgres_url(test)?;
    let url = fresh_postgres_database(&server).await;
    Some(common::db::connect_postgres(&url, schema, 8).await.expect("connect to the fresh test database"))
}

/// A pool on a fresh SQLite file for `service`, with the directory that
/// holds it (the file goes when the directory is dropped).
pub async fn sqlite_pool(service: &str) -> (tempfile::TempDir, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = DatabaseUrl::sqlite_file(&dir.path().join(format!("{service}.db")));
    let pool = common::db::connect_sqlite(&url, service).await.expect("open the test SQLite file");
    (dir, pool)
}

/// Waits (up to five seconds) for a node agent's socket at `path`, and
/// asserts that it is private: 0600 in a 0700 directory.
pub async fn private_socket(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("the socket is there").permissions().mode() & 0o777;
    assert_eq!(mode(path), 0o600, "the socket is for the node's root neighbours only");
    assert_eq!(mode(path.parent().unwrap()), 0o700, "in a directory of its own");
}

/// A gRPC channel to a node agent's unix socket (the URI is a
/// placeholder: the connector dials the socket).
pub async fn unix_channel(socket: std::path::PathBuf) -> tonic::transport::Channel {
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
        .unwrap()
}
