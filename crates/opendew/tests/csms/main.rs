//! The CSMS lifecycle end to end through the gateway, on SQLite and on
//! Postgres: versions, stages, deletion with recovery, tags, passwords,
//! backup and restore, and concurrent version creation; one module per
//! area, one test binary.

#[path = "../support/mod.rs"]
mod support;

mod events;
mod grants;
mod replicas;
mod rotation;
mod secrets;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Reply, TestStack, assert_error, assert_types, unique};

use events::events_fire_and_leave_records;
use grants::grants_users_and_account_paths;
use rotation::rotation_and_tasks;
use secrets::{batch_import, concurrent_versions, lifecycle, listing, passwords, tags_and_search, tier_one_review};

on_both_backends!(suite, "opendew CSMS suite on Postgres");

async fn suite(db: Db) {
    let s = TestStack::start(db).await;
    lifecycle(&s).await;
    concurrent_versions(&s).await;
    tags_and_search(&s).await;
    passwords(&s).await;
    listing(&s).await;
    events_fire_and_leave_records(&s).await;
    rotation_and_tasks(&s).await;
    batch_import(&s).await;
    tier_one_review(&s).await;
    grants_users_and_account_paths(&s).await;
    let dump = s.database_dump().await;
    for marker in ["lifecycle-value-", "concurrent-value-"] {
        assert!(!dump.contains(marker), "a secret value is stored in plaintext");
    }
    s.stack.stop().await.unwrap();
}

async fn call(s: &TestStack, method: Method, path: &str, body: Option<Value>) -> Reply {
    s.call(method, &s.csms(path), body.as_ref()).await
}

async fn read(s: &TestStack, name: &str, version: &str) -> Reply {
    call(s, Method::GET, &format!("secrets/{name}/versions/{version}"), None).await
}

/// A secret named like a route word (`checker`, `restore`,
/// `batch-import`) is an ordinary secret for create, read and delete.
async fn ordinary_secret_named(s: &TestStack, name: &str) {
    call(s, Method::POST, "secrets", Some(json!({"name": name, "secret_string": name}))).await;
    assert_eq!(call(s, Method::GET, &format!("secrets/{name}"), None).await.body["secret"]["name"], name);
    assert_eq!(read(s, name, "latest").await.body["version"]["secret_string"], name);
    assert_eq!(call(s, Method::DELETE, &format!("secrets/{name}"), None).await.status, 200);
}

fn version_types(v: &Value) {
    assert_types(
        v,
        &[
            ("id", "string"),
            ("create_time", "int"),
            ("kms_key_id", "string"),
            ("secret_name", "string"),
            ("version_stages", "array"),
        ],
    );
}
