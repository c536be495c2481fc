//! PostgreSQL: `ALTER ROLE … PASSWORD` with a SCRAM-SHA-256 verifier that
//! opendew computes, so that the password itself never travels in SQL
//! text (a server logging statements logs only the verifier).

use crypto::SecretString;
use sqlx::{ConnectOptions, Connection, Executor};

use super::ServerError;

/// A role name as a quoted SQL identifier.
fn identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Sets `role`'s password on the server `admin` (a URL with an
/// administrator's credentials) connects to, and checks the server holds
/// it. Where the administrator may read `pg_authid`, the stored verifier
/// must be the one sent.
pub async fn set_password(admin: &SecretString, role: &str, password: &SecretString) -> Result<(), ServerError> {
    let verifier =
        crypto::scram::new_sha256_verifier(password.expose()).map_err(|e| ServerError::Invalid(e.to_string()))?;
    let mut conn = connect(admin).await?;
    if !role_exists(&mut conn, role).await? {
        return Err(ServerError::UnknownAccount(role.to_owned()));
    }
    // ALTER ROLE takes no parameters; the verifier is Base64 and `$:`, so
    // it needs no escaping, and the role is a quoted identifier.
    let statement = format!("ALTER ROLE {} PASSWORD '{verifier}'", identifier(role));
    conn.execute(statement.as_str()).await.map_err(|e| ServerError::Refused(refusal(&e)))?;
    let stored: Result<Option<Option<String>>, _> =
        sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(role)
            .fetch_optional(&mut conn)
            .await;
    let _ = conn.close().await;
    match stored {
        Ok(Some(Some(stored))) if stored == verifier => Ok(()),
        Ok(_) => Err(ServerError::NotApplied),
        // Not a superuser: pg_authid is closed to it; the statement's
        // success is the server's word.
        Err(_) => Ok(()),
    }
}

/// Makes the role `clone` (unless it exists): it logs in and is a member
/// of `from`, so it holds `from`'s privileges (the alternating-users
/// strategy); it has no password until one is set.
pub async fn clone_role(admin: &SecretString, from: &str, clone: &str) -> Result<(), ServerError> {
    let mut conn = connect(admin).await?;
    if !role_exists(&mut conn, from).await? {
        return Err(ServerError::UnknownAccount(from.to_owned()));
    }
    if !role_exists(&mut conn, clone).await? {
        let statement = format!("CREATE ROLE {} LOGIN IN ROLE {}", identifier(clone), identifier(from));
        conn.execute(statement.as_str()).await.map_err(|e| ServerError::Refused(refusal(&e)))?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// A connection as the administrator, with statement logging off (the
/// ALTER ROLE text holds the verifier).
async fn connect(admin: &SecretString) -> Result<sqlx::PgConnection, ServerError> {
    let options = admin
        .expose()
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|_| ServerError::Unreachable("the instance URL is not a PostgreSQL URL".to_owned()))?
        .disable_statement_logging();
    options.connect().await.map_err(|e| ServerError::Unreachable(without_url(&e)))
}

async fn role_exists(conn: &mut sqlx::PgConnection, role: &str) -> Result<bool, ServerError> {
    let query = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1").bind(role);
    let exists: Option<i32> =
        query.fetch_optional(&mut *conn).await.map_err(|e| ServerError::Unreachable(without_url(&e)))?;
    Ok(exists.is_some())
}

/// A database error's text without the URL it may quote.
fn without_url(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(_) => "TLS failed".to_owned(),
        _ => "connection failed".to_owned(),
    }
}

/// The server's refusal, without the statement (which holds the verifier).
fn refusal(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        _ => "the statement failed".to_owned(),
    }
}
