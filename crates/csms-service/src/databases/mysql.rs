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
    for (nth, host) in hosts.iter().enumerate() {
        let statement =
            format!("ALTER USER {}@{} IDENTIFIED BY {}", literal(user), literal(host), literal(password.expose()));
        conn.query_drop(statement).await.map_err(|e| match nth {
            0 => ServerError::Refused(message(&e, password)),
            _ => ServerError::PartlyApplied(message(&e, password)),
        })?;
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

/// Makes `clone` on every host `from` has (where missing), with the
/// grants `from` has there (the alternating-users strategy), with no
/// usable password until one is set.
pub async fn clone_user(admin: &SecretString, from: &str, clone: &str) -> Result<(), ServerError> {
    let opts = mysql_async::Opts::from_url(admin.expose())
        .map_err(|_| ServerError::Unreachable("the instance URL is not a MySQL URL".to_owned()))?;
    let mut conn = mysql_async::Conn::new(opts).await.map_err(|e| ServerError::Unreachable(refusal(&e)))?;
    let result = clone_on(&mut conn, from, clone).await;
    let _ = conn.disconnect().await;
    result
}

async fn clone_on(conn: &mut mysql_async::Conn, from: &str, clone: &str) -> Result<(), ServerError> {
    let hosts: Vec<String> = conn
        .exec("SELECT Host FROM mysql.user WHERE User = ?", (from,))
        .await
        .map_err(|e| ServerError::Unreachable(refusal(&e)))?;
    if hosts.is_empty() {
        return Err(ServerError::UnknownAccount(from.to_owned()));
    }
    for host in &hosts {
        let exists: Option<i32> = conn
            .exec_first("SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?", (clone, host))
            .await
            .map_err(|e| ServerError::Unreachable(refusal(&e)))?;
        if exists.is_some() {
            continue;
        }
        let grants: Vec<String> = conn
            .query(format!("SHOW GRANTS FOR {}@{}", literal(from), literal(host)))
            .await
            .map_err(|e| ServerError::Refused(refusal(&e)))?;
        // Locked until rotation sets its password.
        let create = format!("CREATE USER {}@{} ACCOUNT LOCK", literal(clone), literal(host));
        conn.query_drop(create).await.map_err(|e| ServerError::Refused(refusal(&e)))?;
        let (source, target) = (grantee(from, host), grantee(clone, host));
        for grant in grants {
            let Some(statement) = regranted(&grant, &source, &target) else { continue };
            conn.query_drop(statement).await.map_err(|e| ServerError::Refused(refusal(&e)))?;
        }
        conn.query_drop(format!("ALTER USER {}@{} ACCOUNT UNLOCK", literal(clone), literal(host)))
            .await
            .map_err(|e| ServerError::Refused(refusal(&e)))?;
    }
    Ok(())
}

/// An account as SHOW GRANTS spells it.
fn grantee(user: &str, host: &str) -> String {
    format!("`{}`@`{}`", user.replace('`', "``"), host.replace('`', "``"))
}

/// One line of SHOW GRANTS for `source`, as the same grant to `target`,
/// without its authentication clause (which carries `source`'s password
/// hash); `None` for a line that is not a grant to `source`.
fn regranted(line: &str, source: &str, target: &str) -> Option<String> {
    let to = format!(" TO {source}");
    let at = line.find(&to)?;
    let mut statement = format!("{} TO {target}{}", &line[..at], &line[at + to.len()..]);
    if let Some(start) = statement.find(" IDENTIFIED ") {
        let rest = statement[start..].find(" WITH ").map(|w| statement[start + w..].to_owned()).unwrap_or_default();
        statement.truncate(start);
        statement.push_str(&rest);
    }
    Some(statement)
}

/// A driver error's text without anything the statement quoted.
fn refusal(e: &mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(server) => format!("{} ({})", server.message, server.code),
        mysql_async::Error::Io(_) => "the server cannot be reached".to_owned(),
        _ => "the connection failed".to_owned(),
    }
}

/// A driver error's text, never with the password in it (a syntax error
/// quotes the statement).
fn message(e: &mysql_async::Error, password: &SecretString) -> String {
    let text = refusal(e);
    if text.contains(password.expose()) { "the server refused the statement".to_owned() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_move_to_the_clone_without_the_password_hash() {
        let (source, target) = (grantee("app", "%"), grantee("app_clone", "%"));
        let usage = "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F2822'";
        assert_eq!(regranted(usage, &source, &target).unwrap(), "GRANT USAGE ON *.* TO `app_clone`@`%`");
        let db = "GRANT SELECT, INSERT ON `shop`.* TO `app`@`%` WITH GRANT OPTION";
        assert_eq!(
            regranted(db, &source, &target).unwrap(),
            "GRANT SELECT, INSERT ON `shop`.* TO `app_clone`@`%` WITH GRANT OPTION"
        );
        let via = "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'x' WITH MAX_QUERIES_PER_HOUR 5";
        assert_eq!(
            regranted(via, &source, &target).unwrap(),
            "GRANT USAGE ON *.* TO `app_clone`@`%` WITH MAX_QUERIES_PER_HOUR 5"
        );
        assert!(regranted("GRANT USAGE ON *.* TO `other`@`%`", &source, &target).is_none());
    }
}
