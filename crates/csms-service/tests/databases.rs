//! Setting a rotated password on real PostgreSQL and MariaDB servers
//! (issue #33).
//! The machine's server trusts local logins, so a login proves nothing:
//! the password is proven by the verifier the server stores, recomputed
//! from the password by an independent implementation (Python's hashlib).

use common::db::DatabaseUrl;
use crypto::SecretString;
use csms_service::{
    databases::{Server, ServerError, mysql, postgres},
    domain::instances::DbEngine,
};
use mysql_async::prelude::Queryable;
use sqlx::Connection;

/// StoredKey of `password` under the salt and iterations of `verifier`, by
/// Python's standard library.
fn python_stored_key(verifier: &str, password: &str) -> String {
    let script = r#"
import base64, hashlib, hmac, sys
verifier, password = sys.argv[1], sys.argv[2]
iterations, salt = verifier.split('$')[1].split(':')
salted = hashlib.pbkdf2_hmac('sha256', password.encode(), base64.b64decode(salt), int(iterations))
client_key = hmac.new(salted, b'Client Key', 'sha256').digest()
print(base64.b64encode(hashlib.sha256(client_key).digest()).decode())
"#;
    let out = std::process::Command::new("python3").args(["-c", script, verifier, password]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn stored_verifier(admin: &DatabaseUrl, role: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.unwrap();
    let query = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1").bind(role);
    query.fetch_one(&mut conn).await.unwrap()
}

#[tokio::test]
async fn a_postgres_role_gets_the_new_password_as_a_verifier() {
    let Some(admin) = test_support::postgres_url("PostgreSQL password rotation") else { return };
    let role = format!("odtest_rotated_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.unwrap();
    sqlx::raw_sql(&format!("CREATE ROLE \"{role}\" LOGIN PASSWORD 'the-old-password'"))
        .execute(&mut conn)
        .await
        .unwrap();

    let admin_secret = SecretString::new(admin.expose().to_owned());
    let new = SecretString::new("Zq8!r2#Lm5vT9wXy3BcD7eFg1HjK4nPs".to_owned());
    postgres::set_password(&admin_secret, &role, &new).await.unwrap();
    let verifier = stored_verifier(&admin, &role).await;
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    let stored_key = verifier.rsplit_once('$').unwrap().1.split_once(':').unwrap().0;
    assert_eq!(python_stored_key(&verifier, new.expose()), stored_key, "the server holds the new password");
    assert_ne!(python_stored_key(&verifier, "the-old-password"), stored_key, "and not the old one");

    // Refusals change nothing: an unknown account, an unreachable server.
    let missing = postgres::set_password(&admin_secret, "no_such_role_here", &new).await;
    assert!(matches!(missing, Err(ServerError::UnknownAccount(_))), "{missing:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere_secret = SecretString::new(format!("postgres://postgres:admin-secret@{closed}/postgres"));
    let unreachable = postgres::set_password(&nowhere_secret, &role, &SecretString::new("another-one".into())).await;
    let message = format!("{:?}", unreachable.unwrap_err());
    assert!(!message.contains("admin-secret") && !message.contains("another-one"), "{message}");
    assert_eq!(stored_verifier(&admin, &role).await, verifier, "a failed change left the password as it was");

    // MultiUser's second account: a member of the first, with its own
    // password; made once.
    let clone = format!("{role}_clone");
    let server = Server { engine: DbEngine::Postgresql, admin: admin_secret.clone() };
    server.clone_account(&role, &clone, &new).await.unwrap();
    server.clone_account(&role, &clone, &new).await.unwrap();
    let member: bool = sqlx::query_scalar("SELECT pg_has_role($1, $2, 'USAGE')")
        .bind(&clone)
        .bind(&role)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(member, "the clone holds the first account's privileges");
    let verifier = stored_verifier(&admin, &clone).await;
    let stored_key = verifier.rsplit_once('$').unwrap().1.split_once(':').unwrap().0;
    assert_eq!(python_stored_key(&verifier, new.expose()), stored_key);

    sqlx::raw_sql(&format!("DROP ROLE \"{clone}\"; DROP ROLE \"{role}\"")).execute(&mut conn).await.unwrap();
}

/// Whether `user` can log in to the MariaDB at `admin` with `password`.
async fn mariadb_login(admin: &str, user: &str, password: &str) -> bool {
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(admin).unwrap())
        .user(Some(user))
        .pass(Some(password));
    match mysql_async::Conn::new(opts).await {
        Ok(conn) => conn.disconnect().await.is_ok(),
        Err(_) => false,
    }
}

/// MariaDB checks passwords at login: the new one logs in on every host
/// entry of the account, the old one is refused, and a refusal changes
/// nothing.
#[tokio::test]
async fn a_mariadb_account_gets_the_new_password() {
    let Some(admin) = test_support::mysql_url("MariaDB password rotation") else { return };
    let user = format!("odtest_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let mut conn = mysql_async::Conn::new(mysql_async::Opts::from_url(&admin).unwrap()).await.unwrap();
    for host in ["127.0.0.1", "localhost"] {
        conn.query_drop(format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY 'the-old-password'")).await.unwrap();
    }
    assert!(mariadb_login(&admin, &user, "the-old-password").await);

    let admin_secret = SecretString::new(admin.clone());
    let new = SecretString::new("Zq8!r2#Lm5vT9wXy3BcD7eFg1HjK4nPs".to_owned());
    mysql::set_password(&admin_secret, &user, &new).await.unwrap();
    assert!(mariadb_login(&admin, &user, new.expose()).await, "the new password logs in");
    assert!(!mariadb_login(&admin, &user, "the-old-password").await, "the old one is refused");

    let missing = mysql::set_password(&admin_secret, "odtest_nobody", &new).await;
    assert!(matches!(missing, Err(ServerError::UnknownAccount(_))), "{missing:?}");
    let quoted = mysql::set_password(&admin_secret, &user, &SecretString::new("it's".into())).await;
    assert!(quoted.is_ok(), "quotes are escaped, not refused: {quoted:?}");
    assert!(mariadb_login(&admin, &user, "it's").await);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere = SecretString::new(format!("mysql://root:admin-secret@{closed}/"));
    let message = format!("{:?}", mysql::set_password(&nowhere, &user, &new).await.unwrap_err());
    assert!(!message.contains("admin-secret") && !message.contains(new.expose()), "{message}");
    assert!(mariadb_login(&admin, &user, "it's").await, "a failed change left the password as it was");

    // MultiUser's second account: on every host, with the first one's
    // grants, logging in with its own password.
    let database = format!("{user}_db");
    conn.query_drop(format!("CREATE DATABASE `{database}`")).await.unwrap();
    conn.query_drop(format!("CREATE TABLE `{database}`.t (n INT)")).await.unwrap();
    for host in ["127.0.0.1", "localhost"] {
        conn.query_drop(format!("GRANT SELECT ON `{database}`.* TO '{user}'@'{host}'")).await.unwrap();
    }
    let clone = format!("{user}_clone");
    let server = Server { engine: DbEngine::Mysql, admin: admin_secret.clone() };
    server.clone_account(&user, &clone, &new).await.unwrap();
    server.clone_account(&user, &clone, &new).await.unwrap();
    assert!(mariadb_login(&admin, &clone, new.expose()).await, "the clone logs in with its password");
    let opts = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&admin).unwrap())
        .user(Some(clone.clone()))
        .pass(Some(new.expose()));
    let mut as_clone = mysql_async::Conn::new(opts).await.unwrap();
    let rows: Vec<i32> = as_clone.query(format!("SELECT n FROM `{database}`.t")).await.unwrap();
    assert!(rows.is_empty(), "the clone holds the first account's grants");
    as_clone.disconnect().await.unwrap();

    for host in ["127.0.0.1", "localhost"] {
        conn.query_drop(format!("DROP USER '{user}'@'{host}'")).await.unwrap();
        conn.query_drop(format!("DROP USER '{clone}'@'{host}'")).await.unwrap();
    }
    conn.query_drop(format!("DROP DATABASE `{database}`")).await.unwrap();
    conn.disconnect().await.unwrap();
}
