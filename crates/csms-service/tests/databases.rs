//! Setting a rotated password on a real PostgreSQL server (issue #33).
//! The machine's server trusts local logins, so a login proves nothing:
//! the password is proven by the verifier the server stores, recomputed
//! from the password by an independent implementation (Python's hashlib).

use common::db::DatabaseUrl;
use crypto::SecretString;
use csms_service::databases::{ServerError, postgres};
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
    let role = format!("rotated_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin.expose()).await.unwrap();
    sqlx::raw_sql(&format!("CREATE ROLE \"{role}\" LOGIN PASSWORD 'the-old-password'"))
        .execute(&mut conn)
        .await
        .unwrap();

    let new = SecretString::new("Zq8!r2#Lm5vT9wXy3BcD7eFg1HjK4nPs".to_owned());
    postgres::set_password(&admin, &role, &new).await.unwrap();
    let verifier = stored_verifier(&admin, &role).await;
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    let stored_key = verifier.rsplit_once('$').unwrap().1.split_once(':').unwrap().0;
    assert_eq!(python_stored_key(&verifier, new.expose()), stored_key, "the server holds the new password");
    assert_ne!(python_stored_key(&verifier, "the-old-password"), stored_key, "and not the old one");

    // Refusals change nothing: an unknown account, an unreachable server.
    let missing = postgres::set_password(&admin, "no_such_role_here", &new).await;
    assert!(matches!(missing, Err(ServerError::UnknownAccount(_))), "{missing:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let nowhere: DatabaseUrl = format!("postgres://postgres:admin-secret@{closed}/postgres").parse().unwrap();
    let unreachable = postgres::set_password(&nowhere, &role, &SecretString::new("another-one".into())).await;
    let message = format!("{:?}", unreachable.unwrap_err());
    assert!(!message.contains("admin-secret") && !message.contains("another-one"), "{message}");
    assert_eq!(stored_verifier(&admin, &role).await, verifier, "a failed change left the password as it was");

    sqlx::raw_sql(&format!("DROP ROLE \"{role}\"")).execute(&mut conn).await.unwrap();
}
