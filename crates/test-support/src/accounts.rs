//! Database accounts for rotation tests (issue #33), on the machine's real
//! servers. The PostgreSQL server trusts local logins, so a login proves
//! nothing there: a PostgreSQL password is proven by the SCRAM verifier the
//! server stores. MariaDB checks passwords at login. Names start with
//! `odtest_`, which CI's sweep drops.

use common::db::DatabaseUrl;
use mysql_async::prelude::Queryable;
use sqlx::Connection;

/// A fresh name for a test account.
pub fn account_name() -> String {
    format!("odtest_{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

/// Makes a PostgreSQL login role with `password`; returns its name.
pub async fn postgres_role(admin: &DatabaseUrl, password: &str) -> String {
    let role = account_name();
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.expect("connect to PostgreSQL");
    let statement = format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{}'", password.replace('\'', "''"));
    sqlx::raw_sql(&statement).execute(&mut conn).await.expect("create a role");
    role
}

/// Whether the server holds `password` for `role`: its stored SCRAM
/// verifier recomputed from `password` with the stored salt and count.
pub async fn postgres_holds(admin: &DatabaseUrl, role: &str, password: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.expect("connect to PostgreSQL");
    let query = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1").bind(role);
    let stored: Option<Option<String>> = query.fetch_optional(&mut conn).await.expect("read pg_authid");
    let Some(Some(stored)) = stored else { return false };
    let Some((iterations, salt)) =
        stored.strip_prefix("SCRAM-SHA-256$").and_then(|r| r.split('$').next()?.split_once(':'))
    else {
        return false;
    };
    use base64::Engine;
    let salt = base64::engine::general_purpose::STANDARD.decode(salt).expect("a Base64 salt");
    let again = crypto::scram::sha256_verifier(password, &salt, iterations.parse().expect("an iteration count"));
    again.is_ok_and(|v| v == stored)
}

/// Whether `role` exists on the PostgreSQL server.
pub async fn postgres_role_exists(admin: &DatabaseUrl, role: &str) -> bool {
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.expect("connect to PostgreSQL");
    let query = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1").bind(role);
    let found: Option<i32> = query.fetch_optional(&mut conn).await.expect("read pg_roles");
    found.is_some()
}

/// Makes a MariaDB/MySQL user on the hosts local logins use, with
/// `password`; returns its name.
pub async fn mysql_user(admin: &str, password: &str) -> String {
    let user = account_name();
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(admin).expect("a mysql:// URL"))
        .await
        .expect("connect to MariaDB");
    for host in ["127.0.0.1", "localhost"] {
        let statement = format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{}'", password.replace('\'', "\\'"));
        conn.query_drop(statement).await.expect("create a user");
    }
    conn.disconnect().await.ok();
    user
}

/// Whether `user` logs in to the server of `admin` with `password`.
pub async fn mysql_login(admin: &str, user: &str, password: &str) -> bool {
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(admin).expect("a mysql:// URL"))
        .user(Some(user))
        .pass(Some(password));
    match mysql_async::Conn::new(opts).await {
        Ok(conn) => conn.disconnect().await.is_ok(),
        Err(_) => false,
    }
}
