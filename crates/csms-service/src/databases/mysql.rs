//! MySQL, MariaDB and GaussDB-FG (TaurusDB, which speaks MySQL's
//! protocol): `ALTER USER … IDENTIFIED BY` for every host entry of the
//! account, then a login with the new password.
//!
//! The driver is mysql_async over rustls: sqlx's MySQL driver links the
//! `rsa` crate, which has an open advisory (RUSTSEC-2023-0071).

use crypto::SecretString;
use mysql_async::prelude::Queryable;

use super::ServerError;

/// A string literal for MySQL (backslash and quote escaped).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Sets the password of every `user@host` entry of `user` on the server
/// `admin` (a `mysql://` URL with an administrator's credentials) names,
/// then logs in as `user` with it.
pub async fn set_password(admin: &SecretString, user: &str, password: &SecretString) -> Result<(), ServerError> {
    if password.expose().is_empty() || !password.expose().bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ServerError::Invalid("only printable ASCII passwords are set on MySQL".to_owned()));
    }
    let opts = mysql_async::Opts::from_url(admin.expose())
        .map_err(|_| ServerError::Unreachable("the instance URL is not a MySQL URL".to_owned()))?;
    let mut conn =
        mysql_async::Conn::new(opts.clone()).await.map_err(|e| ServerError::Unreachable(message(&e, password)))?;
    let hosts: Vec<String> = conn
        .exec("SELECT Host FROM mysql.user WHERE User = ?", (user,))
        .await
        .map_err(|e| ServerError::Unreachable(message(&e, password)))?;
    if hosts.is_empty() {
        let _ = conn.disconnect().await;
        return Err(ServerError::UnknownAccount(user.to_owned()));
    }
    for host in &hosts {
        let statement =
            format!("ALTER USER {}@{} IDENTIFIED BY {}", literal(user), literal(host), literal(password.expose()));
        conn.query_drop(statement).await.map_err(|e| ServerError::Refused(message(&e, password)))?;
    }
    let _ = conn.disconnect().await;
    // The account's own login proves the server holds the new password.
    let as_user = mysql_async::OptsBuilder::from_opts(opts).user(Some(user)).pass(Some(password.expose()));
    match mysql_async::Conn::new(as_user).await {
        Ok(conn) => {
            let _ = conn.disconnect().await;
            Ok(())
        }
        Err(_) => Err(ServerError::NotApplied),
    }
}

/// A driver error's text, never with the password in it (a syntax error
/// quotes the statement).
fn message(e: &mysql_async::Error, password: &SecretString) -> String {
    let text = match e {
        mysql_async::Error::Server(server) => format!("{} ({})", server.message, server.code),
        mysql_async::Error::Io(_) => "the server cannot be reached".to_owned(),
        _ => "the connection failed".to_owned(),
    };
    if text.contains(password.expose()) { "the server refused the statement".to_owned() } else { text }
}
