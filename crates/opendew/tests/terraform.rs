//! The huaweicloud Terraform provider's call sequences for its KMS
//! resources (huaweicloud/services/dew in terraform-provider-huaweicloud,
//! over chnsz/golangsdk), replayed as the provider makes them: the same
//! paths, bodies (string-typed `pending_days` and `expiration_time`,
//! integer `rotation_interval`), the fields it reads back, and signed as it
//! signs (every header but `host`, `X-Project-Id` added after signing).
//!
//! - `huaweicloud_kms_key`: create, poll describe until "2", disable,
//!   tags, rotation on with an interval, refresh, update (alias,
//!   description, enable, tags, rotation off), delete (schedule deletion,
//!   reading the top-level `key_state` "4"), and the refresh that then
//!   drops it.
//! - `huaweicloud_kms_grant`: create, list (limit 100, following
//!   `next_marker`), revoke.
//! - `huaweicloud_kms_alias`: create, read (`?key_id=&limit=50`, following
//!   `page_info.next_marker`), delete with a JSON body.
//! - `huaweicloud_kms_key_material`: import (wrapped with the `openssl`
//!   command, as Huawei's guide does), read, delete.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Reply, Sign, TestStack, in_ci, unique};

/// What the provider sends with every call.
const HEADERS: [(&str, &str); 3] =
    [("content-type", "application/json"), ("user-agent", "terraform-provider-huaweicloud"), ("x-language", "en-us")];

async fn tf(s: &TestStack, method: Method, path: &str, body: Option<Value>) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    s.raw(method, path, &HEADERS, bytes, Sign::Terraform(&s.account.ak, &s.account.sk)).await
}

/// `POST /v1.0/{project}/kms/{op}`; the provider's client accepts 200 only.
async fn kms(s: &TestStack, op: &str, body: Value) -> Value {
    let r = tf(s, Method::POST, &s.kms(op), Some(body)).await;
    assert_eq!(r.status, 200, "{op}: {:?}", r.body);
    r.body
}

async fn kms_key(s: &TestStack) {
    let alias = unique("tf-key");
    // Create.
    let created = kms(
        s,
        "create-key",
        json!({"key_alias": alias, "key_description": "managed by terraform", "enterprise_project_id": "0"}),
    )
    .await;
    let key_id = created["key_info"]["key_id"].as_str().unwrap().to_owned();
    let describe = || async { kms(s, "describe-key", json!({"key_id": key_id})).await["key_info"].clone() };
    // keyV1StateRefreshFunc: poll until "2" (enabled) or "5".
    let started = std::time::Instant::now();
    while !matches!(describe().await["key_state"].as_str(), Some("2" | "5")) {
        assert!(started.elapsed().as_secs() < 10, "the key never became enabled");
    }
    // is_enabled = false: disable, reading key_info.key_state.
    let disabled = kms(s, "disable-key", json!({"key_id": key_id})).await;
    assert_eq!(disabled["key_info"]["key_state"], "3");
    // tags: tags.Create → POST kms/{id}/tags/action, 200 or 204.
    let tags = json!({"action": "create", "tags": [{"key": "env", "value": "test"}, {"key": "owner", "value": "tf"}]});
    let r = tf(s, Method::POST, &s.kms(&format!("{key_id}/tags/action")), Some(tags)).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // rotation_enabled and rotation_interval.
    kms(s, "enable-key-rotation", json!({"key_id": key_id})).await;
    kms(s, "update-key-rotation-interval", json!({"key_id": key_id, "rotation_interval": 90})).await;

    // Read (refresh).
    let read = |expect_enabled: bool, interval: u64, tags: Value| {
        let key_id = key_id.clone();
        async move {
            let key = kms(s, "describe-key", json!({"key_id": key_id})).await["key_info"].clone();
            assert_eq!(key["sys_enterprise_project_id"], "0");
            for field in [
                "key_alias",
                "key_description",
                "key_spec",
                "creation_date",
                "scheduled_deletion_date",
                "default_key_flag",
                "expiration_time",
                "origin",
                "key_usage",
                "key_state",
                "keystore_id",
            ] {
                assert!(key[field].is_string(), "{field}: {key}");
            }
            let r = tf(s, Method::GET, &s.kms(&format!("{key_id}/tags")), None).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            let mut got: Vec<(String, String)> = r.body["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| (t["key"].as_str().unwrap().to_owned(), t["value"].as_str().unwrap().to_owned()))
                .collect();
            got.sort();
            assert_eq!(serde_json::to_value(got).unwrap(), tags);
            let rotation = kms(s, "get-key-rotation-status", json!({"key_id": key_id})).await;
            assert_eq!(rotation["key_rotation_enabled"], expect_enabled, "{rotation}");
            assert_eq!(rotation["rotation_interval"], interval, "{rotation}");
            assert!(rotation["number_of_rotations"].is_u64(), "{rotation}");
            key
        }
    };
    let key = read(true, 90, json!([["env", "test"], ["owner", "tf"]])).await;
    assert_eq!((key["key_state"].as_str(), key["key_alias"].as_str()), (Some("3"), Some(alias.as_str())));
    // The schedule, on this backend too: 91 days on, one run of the
    // rotation task rotates the key once it is enabled (a disabled key
    // waits), and a second run finds nothing due.
    let in_91_days = common::now_ms() + 91 * 86_400_000;
    let task = &s.stack.kms_service;
    assert!(!task.rotate_due(in_91_days, 86_400_000).await.unwrap().iter().any(|k| k.to_string() == key_id));
    kms(s, "enable-key", json!({"key_id": key_id})).await;
    let rotated = task.rotate_due(in_91_days, 86_400_000).await.unwrap();
    assert!(rotated.iter().any(|k| k.to_string() == key_id), "{rotated:?}");
    assert!(!task.rotate_due(in_91_days, 86_400_000).await.unwrap().iter().any(|k| k.to_string() == key_id));
    let status = kms(s, "get-key-rotation-status", json!({"key_id": key_id})).await;
    assert_eq!(
        (status["number_of_rotations"].as_u64(), status["key_materials"].as_array().map(Vec::len)),
        (Some(1), Some(2))
    );
    kms(s, "disable-key", json!({"key_id": key_id})).await;

    // Update: alias, description, is_enabled, tags (old ones deleted, new
    // ones created), rotation off.
    let renamed = unique("tf-renamed");
    kms(s, "update-key-alias", json!({"key_id": key_id, "key_alias": renamed})).await;
    kms(s, "update-key-description", json!({"key_id": key_id, "key_description": "updated"})).await;
    let enabled = kms(s, "enable-key", json!({"key_id": key_id})).await;
    assert_eq!(enabled["key_info"]["key_state"], "2");
    let old = json!({"action": "delete", "tags": [{"key": "owner", "value": "tf"}]});
    assert_eq!(tf(s, Method::POST, &s.kms(&format!("{key_id}/tags/action")), Some(old)).await.status, 204);
    let new = json!({"action": "create", "tags": [{"key": "env", "value": "prod"}]});
    assert_eq!(tf(s, Method::POST, &s.kms(&format!("{key_id}/tags/action")), Some(new)).await.status, 204);
    kms(s, "disable-key-rotation", json!({"key_id": key_id})).await;
    let key = read(false, 90, json!([["env", "prod"]])).await;
    assert_eq!(
        (key["key_state"].as_str(), key["key_alias"].as_str(), key["key_description"].as_str()),
        (Some("2"), Some(renamed.as_str()), Some("updated"))
    );

    // Delete: describe, then schedule deletion with pending_days "7" and
    // the TOP-LEVEL key_state "4".
    describe().await;
    let deleted = kms(s, "schedule-key-deletion", json!({"key_id": key_id, "pending_days": "7"})).await;
    assert_eq!(deleted["key_state"], "4", "{deleted}");
    // The next refresh sees "4" and drops the resource.
    assert_eq!(describe().await["key_state"], "4");
}

async fn kms_grant(s: &TestStack) {
    let key_id = kms(s, "create-key", json!({"key_alias": unique("tf-grant")})).await["key_info"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let grantee = uuid::Uuid::new_v4().simple().to_string();
    let mut ids = Vec::new();
    for ops in [json!(["describe-key", "create-datakey"]), json!(["encrypt-data"])] {
        let created = kms(
            s,
            "create-grant",
            json!({"key_id": key_id, "grantee_principal": grantee, "operations": ops, "name": "tf-grant",
                   "grantee_principal_type": "user"}),
        )
        .await;
        ids.push(created["grant_id"].as_str().unwrap().to_owned());
    }
    // Read: list-grants with limit "100", looping while next_marker is set.
    let mut seen = Vec::new();
    let mut marker = String::new();
    loop {
        let mut body = json!({"key_id": key_id, "limit": "100"});
        if !marker.is_empty() {
            body["marker"] = json!(marker);
        }
        let page = kms(s, "list-grants", body).await;
        for g in page["grants"].as_array().unwrap() {
            assert_eq!(g["grantee_principal_type"], "user");
            assert!(g["issuing_principal"].as_str().is_some_and(|p| !p.is_empty()), "{g}");
            seen.push(g["grant_id"].as_str().unwrap().to_owned());
        }
        marker = page["next_marker"].as_str().unwrap().to_owned();
        if marker.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ids);
    // Delete: revoke.
    for id in &ids {
        kms(s, "revoke-grant", json!({"key_id": key_id, "grant_id": id})).await;
    }
    assert_eq!(kms(s, "list-grants", json!({"key_id": key_id, "limit": "100"})).await["total"], 0);
}

async fn kms_alias(s: &TestStack) {
    let key_id = kms(s, "create-key", json!({"key_alias": unique("tf-alias")})).await["key_info"]["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let names: Vec<String> =
        (0..60).map(|i| format!("alias/tf-{i:02}-{}", &uuid::Uuid::new_v4().simple().to_string()[..6])).collect();
    // Create: POST kms/aliases (the provider's client accepts any 2xx).
    for name in names.iter().take(50) {
        let r = tf(s, Method::POST, &s.kms("aliases"), Some(json!({"key_id": key_id, "alias": name}))).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let last = &names[49];
    // Read: pages of 50, `aliases` and `page_info.next_marker` at the top.
    let mut all = Vec::new();
    let mut marker = String::new();
    loop {
        let mut path = s.kms(&format!("aliases?key_id={key_id}&limit=50"));
        if !marker.is_empty() {
            path.push_str(&format!("&marker={marker}"));
        }
        let r = tf(s, Method::GET, &path, None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let aliases = r.body["aliases"].as_array().cloned().unwrap_or_default();
        if aliases.is_empty() {
            break;
        }
        all.extend(aliases);
        marker = r.body["page_info"]["next_marker"].as_str().unwrap_or("").to_owned();
        if marker.is_empty() {
            break;
        }
    }
    let found = all.iter().find(|a| a["alias"] == last.as_str()).expect("the alias is found");
    for field in ["key_id", "alias", "alias_urn", "create_time", "update_time"] {
        assert!(found[field].is_string(), "{field}: {found}");
    }
    assert_eq!(all.len(), 50);
    // Delete: DELETE kms/aliases with a JSON body; the next read loses it.
    let r = tf(s, Method::DELETE, &s.kms("aliases"), Some(json!({"key_id": key_id, "aliases": [last]}))).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = tf(s, Method::GET, &s.kms(&format!("aliases?key_id={key_id}&limit=50")), None).await;
    assert!(!r.body["aliases"].as_array().unwrap().iter().any(|a| a["alias"] == last.as_str()));
}

/// Wraps `material` with the DER public key as Huawei's import guide does,
/// with the `openssl` command; None without it (outside CI).
fn openssl_wrap(public_key_der: &[u8], material: &[u8]) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let (key, plain, out) = (dir.path().join("pub.der"), dir.path().join("plain.bin"), dir.path().join("wrapped.bin"));
    std::fs::write(&key, public_key_der).unwrap();
    std::fs::write(&plain, material).unwrap();
    let status = std::process::Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-keyform", "DER", "-inkey"])
        .arg(&key)
        .arg("-in")
        .arg(&plain)
        .arg("-out")
        .arg(&out)
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256", "-pkeyopt", "rsa_mgf1_md:sha256"])
        .status();
    match status {
        Ok(status) if status.success() => Some(std::fs::read(out).unwrap()),
        _ => {
            assert!(!in_ci(), "CI=true but the openssl command failed");
            test_support::say_skipped("huaweicloud_kms_key_material: no openssl command");
            None
        }
    }
}

/// An external key, its import parameters, and `material` wrapped under
/// their public key; `None` (skipped) without openssl.
async fn external_key(s: &TestStack, alias: &str, material: &[u8]) -> Option<(String, Value, Vec<u8>)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let created = kms(s, "create-key", json!({"key_alias": unique(alias), "origin": "external"})).await;
    let key_id = created["key_info"]["key_id"].as_str().unwrap().to_owned();
    let params =
        kms(s, "get-parameters-for-import", json!({"key_id": key_id, "wrapping_algorithm": "RSAES_OAEP_SHA_256"}))
            .await;
    let wrapped = openssl_wrap(&b64.decode(params["public_key"].as_str().unwrap()).unwrap(), material)?;
    Some((key_id, params, wrapped))
}

async fn kms_key_material(s: &TestStack) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let material: [u8; 32] = *uuid::Uuid::new_v4().as_bytes().repeat(2).first_chunk().unwrap();
    let Some((key_id, params, wrapped)) = external_key(s, "tf-ext", &material).await else { return };
    // Create: import-key-material, expiration_time a string of seconds.
    let expires_s = common::now_ms() / 1000 + 3600;
    kms(
        s,
        "import-key-material",
        json!({"key_id": key_id, "import_token": params["import_token"], "encrypted_key_material": b64.encode(wrapped),
               "expiration_time": expires_s.to_string()}),
    )
    .await;
    // Read: describe; the provider divides expiration_time (ms) by 1000.
    let key = kms(s, "describe-key", json!({"key_id": key_id})).await["key_info"].clone();
    assert_eq!(key["key_state"], "2");
    assert_eq!(key["expiration_time"], (expires_s * 1000).to_string());
    let sealed = kms(s, "encrypt-data", json!({"key_id": key_id, "plain_text": "imported"})).await;
    // Delete: describe, then delete-imported-key-material; pending import
    // reads as gone.
    kms(s, "delete-imported-key-material", json!({"key_id": key_id})).await;
    let key = kms(s, "describe-key", json!({"key_id": key_id})).await["key_info"].clone();
    assert_eq!((key["key_state"].as_str(), key["expiration_time"].as_str()), (Some("5"), Some("")));
    let r = tf(s, Method::POST, &s.kms("decrypt-data"), Some(json!({"cipher_text": sealed["cipher_text"]}))).await;
    assert_eq!(r.status, 400, "{:?}", r.body);
}

/// Imported material past its expiry stops working at once and the
/// background task returns the key to pending import.
async fn imported_material_expires(s: &TestStack) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((key_id, params, wrapped)) = external_key(s, "tf-expiring", &[7; 32]).await else { return };
    let expires_s = common::now_ms() / 1000 + 2;
    kms(
        s,
        "import-key-material",
        json!({"key_id": key_id, "import_token": params["import_token"], "encrypted_key_material": b64.encode(wrapped),
               "expiration_time": expires_s}),
    )
    .await;
    kms(s, "encrypt-data", json!({"key_id": key_id, "plain_text": "before expiry"})).await;
    tokio::time::sleep(std::time::Duration::from_millis((expires_s * 1000 - common::now_ms() + 50).max(0) as u64))
        .await;
    let r = tf(s, Method::POST, &s.kms("encrypt-data"), Some(json!({"key_id": key_id, "plain_text": "x"}))).await;
    assert_eq!(r.status, 400, "expired material still encrypts: {:?}", r.body);
    // One run of the background task (it runs every purge interval).
    let expired = s.stack.kms_service.expire_imports(common::now_ms()).await.unwrap();
    assert!(expired.iter().any(|k| k.to_string() == key_id), "{expired:?}");
    let key = kms(s, "describe-key", json!({"key_id": key_id})).await["key_info"].clone();
    assert_eq!((key["key_state"].as_str(), key["expiration_time"].as_str()), (Some("5"), Some("")));
}

async fn suite(db: Db) {
    let s = TestStack::start(db).await;
    kms_key(&s).await;
    kms_grant(&s).await;
    kms_alias(&s).await;
    kms_key_material(&s).await;
    imported_material_expires(&s).await;
    s.stack.stop().await.unwrap();
}

on_both_backends!(suite, "Terraform provider sequences on Postgres");
