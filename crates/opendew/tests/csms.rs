//! The CSMS lifecycle end to end through the gateway, on SQLite and on
//! Postgres: versions, stages, deletion with recovery, tags, passwords,
//! backup and restore, and concurrent version creation.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Reply, TestStack, assert_error, assert_types, unique};

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

/// Create, add three versions, move a custom stage, read through `latest`
/// and each stage, schedule deletion, restore, back up, delete, restore
/// from the blob, and read every version back byte for byte.
async fn lifecycle(s: &TestStack) {
    let name = unique("life");
    let values: Vec<String> = (1..=4).map(|i| format!("lifecycle-value-{i}-{}", uuid::Uuid::new_v4())).collect();
    let r = call(s, Method::POST, "csms/events", Some(event_body("ev-1", &["SECRET_DELETED"]))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = call(
        s,
        Method::POST,
        "secrets",
        Some(json!({"name": name, "secret_string": values[0], "event_subscriptions": ["ev-1"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    for (i, value) in values.iter().enumerate().skip(1) {
        let r = call(s, Method::POST, &format!("secrets/{name}/versions"), Some(json!({"secret_string": value}))).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let meta = &r.body["version_metadata"];
        version_types(meta);
        assert_eq!(meta["id"], format!("v{}", i + 1));
        assert_eq!(meta["version_stages"], json!(["SYSCURRENT"]));
    }
    let listed = call(s, Method::GET, &format!("secrets/{name}/versions"), None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    let stages: Vec<Value> =
        listed.body["version_metadatas"].as_array().unwrap().iter().map(|v| v["version_stages"].clone()).collect();
    assert_eq!(stages, vec![json!([]), json!([]), json!(["SYSPREVIOUS"]), json!(["SYSCURRENT"])]);
    assert_types(&listed.body["page_info"], &[("current_count", "int")]);
    let page = call(s, Method::GET, &format!("secrets/{name}/versions?limit=2&marker=v1"), None).await;
    let ids: Vec<&str> =
        page.body["version_metadatas"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["v2", "v3"]);
    assert_eq!(page.body["page_info"]["next_marker"], "v3");

    // A custom stage, moved.
    let r = call(s, Method::PUT, &format!("secrets/{name}/stages/STAGING"), Some(json!({"version_id": "v1"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(
        &r.body["stage"],
        &[("name", "string"), ("update_time", "int"), ("secret_name", "string"), ("version_id", "string")],
    );
    let r = call(s, Method::PUT, &format!("secrets/{name}/stages/STAGING"), Some(json!({"version_id": "v2"}))).await;
    assert_eq!(r.body["stage"]["version_id"], "v2");
    let shown = call(s, Method::GET, &format!("secrets/{name}/stages/STAGING"), None).await;
    assert_eq!(shown.body["stage"]["version_id"], "v2");
    // Read through latest and through each stage.
    assert_eq!(read(s, &name, "latest").await.body["version"]["secret_string"], values[3].as_str());
    for (stage, expected) in [("SYSCURRENT", &values[3]), ("SYSPREVIOUS", &values[2]), ("STAGING", &values[1])] {
        let st = call(s, Method::GET, &format!("secrets/{name}/stages/{stage}"), None).await;
        let version = st.body["stage"]["version_id"].as_str().unwrap().to_owned();
        assert_eq!(read(s, &name, &version).await.body["version"]["secret_string"], expected.as_str());
    }
    // Moving SYSCURRENT back gives SYSPREVIOUS to v4.
    let r = call(s, Method::PUT, &format!("secrets/{name}/stages/SYSCURRENT"), Some(json!({"version_id": "v3"}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(read(s, &name, "latest").await.body["version"]["secret_string"], values[2].as_str());
    let prev = call(s, Method::GET, &format!("secrets/{name}/stages/SYSPREVIOUS"), None).await;
    assert_eq!(prev.body["stage"]["version_id"], "v4");
    assert_error(
        &call(s, Method::DELETE, &format!("secrets/{name}/stages/SYSCURRENT"), None).await,
        400,
        "CSMS.0105",
        false,
    );
    assert_error(&call(s, Method::DELETE, &format!("secrets/{name}/stages/NOPE"), None).await, 400, "CSMS.0005", false);
    // A multi-byte last character once panicked the period parser: a 500
    // `CSMS.0001` (issue #15, finding 8). Now the invalid-parameter answer.
    let body = json!({"auto_rotation": true, "rotation_period": "6é"});
    assert_error(&call(s, Method::PUT, &format!("secrets/{name}"), Some(body)).await, 400, "CSMS.0002", false);
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}/stages/X"), Some(json!({"version_id": "v99"}))).await,
        400,
        "CSMS.0005",
        false,
    );
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}/stages/bad.stage"), Some(json!({"version_id": "v1"}))).await,
        400,
        "CSMS.0002",
        false,
    );
    // Expiry.
    let r = call(
        s,
        Method::PUT,
        &format!("secrets/{name}/versions/v2"),
        Some(json!({"expire_time": 1_900_000_000_000_i64})),
    )
    .await;
    assert_eq!(r.body["version_metadata"]["expire_time"], 1_900_000_000_000_i64, "{:?}", r.body);
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}/versions/v2"), Some(json!({"expire_time": -1}))).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}/versions/v77"), Some(json!({"expire_time": 1}))).await,
        400,
        "CSMS.0005",
        false,
    );
    // Update metadata.
    let r = call(s, Method::PUT, &format!("secrets/{name}"), Some(json!({"description": "updated"}))).await;
    assert_eq!(r.body["secret"]["description"], "updated", "{:?}", r.body);
    assert_eq!(r.body["secret"]["event_subscriptions"], json!(["ev-1"]));
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}"), Some(json!({"auto_rotation": true}))).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(
        &call(
            s,
            Method::PUT,
            &format!("secrets/{name}"),
            Some(json!({"kms_key_id": uuid::Uuid::new_v4().to_string()})),
        )
        .await,
        400,
        "CSMS.0401",
        false,
    );
    // A new master key applies to versions created afterwards; older
    // versions keep opening with their own key.
    let key = s.call(Method::POST, &s.kms("create-key"), Some(&json!({"key_alias": unique("rekey")}))).await;
    let key_id = key.body["key_info"]["key_id"].as_str().unwrap().to_owned();
    let r = call(s, Method::PUT, &format!("secrets/{name}"), Some(json!({"kms_key_id": key_id}))).await;
    assert_eq!(r.body["secret"]["kms_key_id"], key_id.as_str(), "{:?}", r.body);
    let old_key = read(s, &name, "v1").await.body["version"]["version_metadata"]["kms_key_id"].clone();
    assert_ne!(old_key, key_id.as_str());
    assert_eq!(read(s, &name, "v1").await.body["version"]["secret_string"], values[0].as_str());

    // Scheduled deletion and restore.
    assert_error(
        &call(
            s,
            Method::POST,
            &format!("secrets/{name}/scheduled-deleted-tasks/create"),
            Some(json!({"recovery_window_in_days": 6})),
        )
        .await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(
        &call(s, Method::POST, &format!("secrets/{name}/scheduled-deleted-tasks/cancel"), None).await,
        400,
        "CSMS.0108",
        false,
    );
    let r = call(
        s,
        Method::POST,
        &format!("secrets/{name}/scheduled-deleted-tasks/create"),
        Some(json!({"recovery_window_in_days": 7})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["secret"]["state"], "PENDING_DELETE");
    let when = r.body["secret"]["scheduled_delete_time"].as_i64().unwrap();
    assert!((when - (common::now_ms() + 7 * 86_400_000)).abs() < 60_000);
    assert_error(
        &call(
            s,
            Method::POST,
            &format!("secrets/{name}/scheduled-deleted-tasks/create"),
            Some(json!({"recovery_window_in_days": 7})),
        )
        .await,
        400,
        "CSMS.0107",
        false,
    );
    assert_error(&read(s, &name, "latest").await, 400, "CSMS.0103", false);
    assert_error(
        &call(s, Method::POST, &format!("secrets/{name}/versions"), Some(json!({"secret_string": "x"}))).await,
        400,
        "CSMS.0103",
        false,
    );
    assert_error(
        &call(s, Method::PUT, &format!("secrets/{name}"), Some(json!({"description": "x"}))).await,
        400,
        "CSMS.0103",
        false,
    );
    assert_error(&call(s, Method::POST, &format!("secrets/{name}/backup"), None).await, 400, "CSMS.0103", false);
    assert_eq!(call(s, Method::GET, &format!("secrets/{name}"), None).await.status, 200, "metadata stays readable");
    let r = call(s, Method::POST, &format!("secrets/{name}/scheduled-deleted-tasks/cancel"), None).await;
    assert_eq!(r.body["secret"]["state"], "ENABLED", "{:?}", r.body);
    assert_eq!(r.body["secret"]["scheduled_delete_time"], Value::Null);

    // Back up, delete, restore from the blob.
    let backup = call(s, Method::POST, &format!("secrets/{name}/backup"), None).await;
    assert_eq!(backup.status, 200, "{:?}", backup.body);
    let blob = backup.body["secret_blob"].as_str().unwrap().to_owned();
    for value in &values {
        assert!(!blob.contains(value.as_str()));
    }
    assert_error(
        &call(s, Method::POST, "secrets/restore", Some(json!({"secret_blob": blob}))).await,
        400,
        "CSMS.0002",
        false,
    );
    let r = call(s, Method::DELETE, &format!("secrets/{name}"), None).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &Value::Null));
    assert_error(&call(s, Method::GET, &format!("secrets/{name}"), None).await, 400, "CSMS.0106", false);
    assert_error(&call(s, Method::DELETE, &format!("secrets/{name}"), None).await, 400, "CSMS.0106", false);
    let mut tampered = blob.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_error(
        &call(s, Method::POST, "secrets/restore", Some(json!({"secret_blob": tampered}))).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(
        &call(s, Method::POST, "secrets/restore", Some(json!({"secret_blob": "garbage"}))).await,
        400,
        "CSMS.0002",
        false,
    );
    // Another project cannot restore it (asked through the service directly,
    // as the gateway's one account has one project).
    let mut grpc = proto::csms::v1::secrets_manager_service_client::SecretsManagerServiceClient::new(
        s.gateway_channel(s.stack.csms),
    );
    let foreign = common::identity::CallerIdentity {
        domain_id: "d".repeat(32),
        project_id: "e".repeat(32),
        user_id: "u".into(),
        request_id: "r".into(),
    };
    let err =
        grpc.upload_secret_blob(foreign.request(proto::csms::v1::SecretBlob { blob: blob.clone() })).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let restored = call(s, Method::POST, "secrets/restore", Some(json!({"secret_blob": blob}))).await;
    assert_eq!(restored.status, 200, "{:?}", restored.body);
    assert_eq!(restored.body["secret"]["name"], name.as_str());
    assert_eq!(restored.body["secret"]["description"], "updated");
    for (i, value) in values.iter().enumerate() {
        assert_eq!(read(s, &name, &format!("v{}", i + 1)).await.body["version"]["secret_string"], value.as_str());
    }
    assert_eq!(read(s, &name, "latest").await.body["version"]["secret_string"], values[2].as_str());
    let st = call(s, Method::GET, &format!("secrets/{name}/stages/STAGING"), None).await;
    assert_eq!(st.body["stage"]["version_id"], "v2");
    // New versions continue the numbering.
    let r = call(s, Method::POST, &format!("secrets/{name}/versions"), Some(json!({"secret_binary": "AAEC"}))).await;
    assert_eq!(r.body["version_metadata"]["id"], "v5", "{:?}", r.body);
    assert_eq!(r.body["version_metadata"]["kms_key_id"], key_id.as_str(), "the new key seals new versions");
    assert_eq!(read(s, &name, "v5").await.body["version"]["secret_binary"], "AAEC");

    // Version creation errors.
    let path = format!("secrets/{name}/versions");
    assert_error(&call(s, Method::POST, &path, Some(json!({}))).await, 400, "CSMS.0002", false);
    assert_error(
        &call(s, Method::POST, &path, Some(json!({"secret_string": "a", "secret_binary": "YQ=="}))).await,
        400,
        "CSMS.0002",
        false,
    );
    let thirteen: Vec<String> = (0..13).map(|i| format!("S{i}")).collect();
    assert_error(
        &call(s, Method::POST, &path, Some(json!({"secret_string": "a", "version_stages": thirteen}))).await,
        400,
        "CSMS.0204",
        false,
    );
    let ten: Vec<String> = (0..10).map(|i| format!("T{i}")).collect();
    assert_error(
        &call(s, Method::POST, &path, Some(json!({"secret_string": "a", "version_stages": ten}))).await,
        400,
        "CSMS.0203",
        false,
    );
    assert_error(
        &call(s, Method::POST, "secrets/nope/versions", Some(json!({"secret_string": "a"}))).await,
        400,
        "CSMS.0106",
        false,
    );
    // Custom stages without SYSCURRENT leave SYSCURRENT where it is.
    let r = call(s, Method::POST, &path, Some(json!({"secret_string": "side", "version_stages": ["CANARY"]}))).await;
    assert_eq!(r.body["version_metadata"]["version_stages"], json!(["CANARY"]), "{:?}", r.body);
    assert_eq!(read(s, &name, "latest").await.body["version"]["secret_binary"], "AAEC");

    // The 20-version cap drops the oldest version without stages.
    let capped = unique("cap");
    call(s, Method::POST, "secrets", Some(json!({"name": capped, "secret_string": "v1"}))).await;
    for i in 2..=25 {
        let r = call(
            s,
            Method::POST,
            &format!("secrets/{capped}/versions"),
            Some(json!({"secret_string": format!("v{i}")})),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let listed = call(s, Method::GET, &format!("secrets/{capped}/versions?limit=100"), None).await;
    let ids: Vec<&str> =
        listed.body["version_metadatas"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 20);
    assert_eq!(ids.first(), Some(&"v6"));
    assert_eq!(ids.last(), Some(&"v25"));
}

/// Twenty concurrent create-secret-version calls: distinct ids, one
/// SYSCURRENT, one SYSPREVIOUS, every acknowledged version readable.
async fn concurrent_versions(s: &TestStack) {
    let name = unique("race");
    call(s, Method::POST, "secrets", Some(json!({"name": name, "secret_string": "concurrent-value-0"}))).await;
    let calls = (1..=20).map(|i| {
        let name = name.clone();
        async move {
            let body = json!({"secret_string": format!("concurrent-value-{i}")});
            (i, call(s, Method::POST, &format!("secrets/{name}/versions"), Some(body)).await)
        }
    });
    let replies = futures::future::join_all(calls).await;
    let mut ids = std::collections::HashSet::new();
    for (i, r) in &replies {
        assert_eq!(r.status, 200, "{:?}", r.body);
        let id = r.body["version_metadata"]["id"].as_str().unwrap().to_owned();
        let read_back = read(s, &name, &id).await;
        assert_eq!(read_back.body["version"]["secret_string"], format!("concurrent-value-{i}"), "{id}");
        assert!(ids.insert(id));
    }
    assert_eq!(ids.len(), 20);
    let listed = call(s, Method::GET, &format!("secrets/{name}/versions?limit=100"), None).await;
    let versions = listed.body["version_metadatas"].as_array().unwrap();
    let holders = |stage: &str| {
        versions.iter().filter(|v| v["version_stages"].as_array().unwrap().iter().any(|x| x == stage)).count()
    };
    assert_eq!((holders("SYSCURRENT"), holders("SYSPREVIOUS")), (1, 1));
}

async fn tags_and_search(s: &TestStack) {
    let name = unique("tagged");
    let created = call(s, Method::POST, "secrets", Some(json!({"name": name, "secret_string": "t"}))).await;
    let id = created.body["secret"]["id"].as_str().unwrap().to_owned();
    let r =
        call(s, Method::POST, &format!("csms/{id}/tags"), Some(json!({"tag": {"key": "env", "value": "prod"}}))).await;
    assert_eq!((r.status.as_u16(), &r.body), (204, &Value::Null), "{:?}", r.body);
    let r = call(s, Method::POST, &format!("csms/{id}/tags/action"), Some(json!({"action": "create", "tags": [{"key": "team", "value": "orders"}, {"key": "my key:1", "value": "x/y"}]}))).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let listed = call(s, Method::GET, &format!("csms/{id}/tags"), None).await;
    assert_types(&listed.body, &[("tags", "array"), ("sys_tags", "array")]);
    assert_eq!(listed.body["tags"].as_array().unwrap().len(), 3);
    // A tag key with a space and a colon, percent-encoded in the path.
    let r = call(s, Method::DELETE, &format!("csms/{id}/tags/my%20key%3A1"), None).await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_error(&call(s, Method::DELETE, &format!("csms/{id}/tags/absent"), None).await, 400, "CSMS.0005", true);
    assert_error(
        &call(s, Method::POST, &format!("csms/{id}/tags"), Some(json!({"tag": {"key": "_sys_x", "value": "v"}}))).await,
        400,
        "CSMS.0002",
        true,
    );
    assert_error(
        &call(
            s,
            Method::POST,
            &format!("csms/{id}/tags/action"),
            Some(json!({"action": "zap", "tags": [{"key": "a"}]})),
        )
        .await,
        400,
        "CSMS.0002",
        true,
    );
    let unknown = uuid::Uuid::new_v4();
    assert_error(&call(s, Method::GET, &format!("csms/{unknown}/tags"), None).await, 400, "CSMS.0005", true);
    let many: Vec<Value> = (0..21).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    assert_error(
        &call(s, Method::POST, &format!("csms/{id}/tags/action"), Some(json!({"action": "create", "tags": many})))
            .await,
        400,
        "CSMS.0002",
        true,
    );

    let project = call(s, Method::GET, "csms/tags", None).await;
    let env = project.body["tags"].as_array().unwrap().iter().find(|t| t["key"] == "env").unwrap().clone();
    assert_eq!(env["values"], json!(["prod"]));

    let filter = call(
        s,
        Method::POST,
        "csms/resource_instances/action",
        Some(json!({"action": "filter", "tags": [{"key": "env", "values": ["prod"]}]})),
    )
    .await;
    assert_eq!(filter.status, 200, "{:?}", filter.body);
    assert_types(&filter.body, &[("resources", "array"), ("total_count", "int")]);
    assert_eq!(filter.body["total_count"], 1);
    let res = &filter.body["resources"][0];
    assert_types(
        res,
        &[
            ("resource_id", "string"),
            ("resource_name", "string"),
            ("resource_detail", "object"),
            ("tags", "array"),
            ("sys_tags", "array"),
        ],
    );
    assert_eq!(res["resource_id"], id.as_str());
    let count = call(
        s,
        Method::POST,
        "csms/resource_instances/action",
        Some(json!({"action": "count", "matches": [{"key": "resource_name", "value": "TAGGED"}]})),
    )
    .await;
    assert_eq!(count.body["total_count"], 1, "{:?}", count.body);
    assert_error(
        &call(s, Method::POST, "csms/other_word/action", Some(json!({"action": "filter"}))).await,
        400,
        "CSMS.0003",
        true,
    );
    let r = call(
        s,
        Method::POST,
        &format!("csms/{id}/tags/action"),
        Some(json!({"action": "delete", "tags": [{"key": "env"}, {"key": "ghost"}]})),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(call(s, Method::GET, &format!("csms/{id}/tags"), None).await.body["tags"].as_array().unwrap().len(), 1);
}

async fn passwords(s: &TestStack) {
    let r = call(s, Method::POST, "csms/generate-password", Some(json!({}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["password"].as_str().unwrap().len(), 32);
    let r =
        call(s, Method::POST, "csms/generate-password", Some(json!({"length": 20, "exclude_punctuation": true}))).await;
    let p = r.body["password"].as_str().unwrap();
    assert!(p.len() == 20 && p.chars().all(|c| c.is_ascii_alphanumeric()), "{p}");
    assert_error(
        &call(s, Method::POST, "csms/generate-password", Some(json!({"length": 256}))).await,
        400,
        "CSMS.0002",
        false,
    );
    let none = json!({"exclude_lowercase": true, "exclude_uppercase": true, "exclude_numbers": true, "exclude_punctuation": true});
    assert_error(&call(s, Method::POST, "csms/generate-password", Some(none)).await, 400, "CSMS.0002", false);
}

async fn listing(s: &TestStack) {
    let all = call(s, Method::GET, "secrets?limit=1000", None).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let total = all.body["secrets"].as_array().unwrap().len();
    assert!(total >= 4);
    for secret in all.body["secrets"].as_array().unwrap() {
        assert!(secret.get("secret_string").is_none());
    }
    let first = call(s, Method::GET, "secrets?limit=2", None).await;
    assert_eq!(first.body["page_info"]["current_count"], 2);
    let marker = first.body["page_info"]["next_marker"].as_str().unwrap().to_owned();
    let second = call(s, Method::GET, &format!("secrets?limit=1000&marker={marker}"), None).await;
    assert_eq!(second.body["secrets"].as_array().unwrap().len(), total - 2);
    assert_eq!(second.body["page_info"]["next_marker"], Value::Null);
    let by_event = call(s, Method::GET, "secrets?event_name=ev-1", None).await;
    assert_eq!(by_event.body["secrets"].as_array().unwrap().len(), 1, "{:?}", by_event.body);
    assert_error(&call(s, Method::GET, "secrets?limit=0", None).await, 400, "CSMS.0002", false);
    // A secret named "restore" is an ordinary secret for GET/PUT/DELETE.
    call(s, Method::POST, "secrets", Some(json!({"name": "restore", "secret_string": "r"}))).await;
    assert_eq!(call(s, Method::GET, "secrets/restore", None).await.body["secret"]["name"], "restore");
    assert_eq!(call(s, Method::DELETE, "secrets/restore", None).await.status, 200);
}

fn event_body(name: &str, types: &[&str]) -> Value {
    json!({"name": name, "event_types": types, "state": "ENABLED",
           "notification": {"target_type": "SMN", "target_id": format!("urn:smn:local-1:0:{name}"), "target_name": name}})
}

/// The project's records of `secret`, newest first, once `n` are there
/// and every one has left PENDING.
async fn records_of(s: &TestStack, secret: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = call(s, Method::GET, "csms/notification-records?limit=1000", None).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let mine: Vec<Value> =
            r.body["records"].as_array().unwrap().iter().filter(|r| r["secret_name"] == secret).cloned().collect();
        if mine.len() >= n && mine.iter().all(|r| r["notification_status"] != "PENDING") {
            return mine;
        }
        assert!(std::time::Instant::now() < deadline, "{n} records of {secret} did not arrive: {mine:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Each documented event type fires on a subscribed secret and leaves a
/// record; a disabled event and an unsubscribed type leave none.
async fn events_fire_and_leave_records(s: &TestStack) {
    let all = [
        "SECRET_VERSION_CREATED",
        "SECRET_VERSION_EXPIRED",
        "SECRET_ROTATED",
        "SECRET_DELETED",
        "SECRET_ROTATED_FAILED",
    ];
    let r = call(s, Method::POST, "csms/events", Some(event_body("all-types", &all))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let event = &r.body["event"];
    assert_types(
        event,
        &[
            ("name", "string"),
            ("event_id", "string"),
            ("event_types", "array"),
            ("state", "string"),
            ("create_time", "int"),
            ("update_time", "int"),
            ("notification", "object"),
        ],
    );
    // The errors of events are nested.
    assert_error(
        &call(s, Method::POST, "csms/events", Some(event_body("all-types", &all))).await,
        400,
        "CSMS.0002",
        true,
    );
    assert_error(
        &call(s, Method::POST, "csms/events", Some(event_body("bad", &["SECRET_ROTATED", "SECRET_ROTATED"]))).await,
        400,
        "CSMS.0002",
        true,
    );
    let mut bad_target = event_body("bad", &all);
    bad_target["notification"]["target_type"] = json!("HTTP");
    assert_error(&call(s, Method::POST, "csms/events", Some(bad_target)).await, 400, "CSMS.0002", true);
    assert_error(&call(s, Method::GET, "csms/events/no-such-event", None).await, 400, "CSMS.0005", true);
    let shown = call(s, Method::GET, "csms/events/all-types", None).await;
    assert_eq!(shown.body["event"]["event_types"], json!(all));
    let listed = call(s, Method::GET, "csms/events?limit=1", None).await;
    assert_eq!(listed.body["events"].as_array().unwrap().len(), 1, "{:?}", listed.body);
    let marker = listed.body["page_info"]["next_marker"].as_str().unwrap().to_owned();
    let rest = call(s, Method::GET, &format!("csms/events?marker={marker}"), None).await;
    assert!(rest.body["events"].as_array().unwrap().iter().all(|e| e["name"].as_str().unwrap() > marker.as_str()));
    let quiet = call(s, Method::POST, "csms/events", Some(event_body("quiet", &all))).await;
    assert_eq!(quiet.status, 200);
    let off = call(s, Method::PUT, "csms/events/quiet", Some(json!({"state": "DISABLED"}))).await;
    assert_eq!((off.status.as_u16(), off.body["event"]["state"].as_str()), (200, Some("DISABLED")), "{:?}", off.body);

    // A secret may only subscribe to an event that exists.
    let missing = json!({"name": "ev-orphan", "secret_string": "x", "event_subscriptions": ["no-such-event"]});
    assert_error(&call(s, Method::POST, "secrets", Some(missing)).await, 400, "CSMS.0005", false);

    // VERSION_CREATED (create and create-version), VERSION_EXPIRED,
    // ROTATED (with its version), ROTATED_FAILED and DELETED.
    let db = unique("ev-db");
    let value = json!({"username": "app", "password": "first"}).to_string();
    let body = json!({"name": db, "secret_string": value, "secret_type": "RDS-FG", "event_subscriptions": ["all-types"],
                      "rotation_config": r#"{"InstanceId":"i-1","SecretSubType":"SingleUser"}"#});
    assert_eq!(call(s, Method::POST, "secrets", Some(body)).await.status, 200);
    let v2 = call(s, Method::POST, &format!("secrets/{db}/versions"), Some(json!({"secret_string": value}))).await;
    assert_eq!(v2.status, 200, "{:?}", v2.body);
    let past = common::now_ms() - 1_000;
    let r = call(s, Method::PUT, &format!("secrets/{db}/versions/v1"), Some(json!({"expire_time": past}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let rotated = call(s, Method::POST, &format!("secrets/{db}/rotate"), None).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_eq!(rotated.body["version_id"], "v3");
    // MultiUser with no SYSPREVIOUS account... has one now (v2): make one
    // that cannot rotate: its value is not JSON credentials.
    let broken = unique("ev-broken");
    let body = json!({"name": broken, "secret_string": "not json", "secret_type": "GaussDB-FG",
                      "event_subscriptions": ["all-types"], "rotation_config": r#"{"InstanceId":"i-2"}"#});
    assert_eq!(call(s, Method::POST, "secrets", Some(body)).await.status, 200);
    let failed = call(s, Method::POST, &format!("secrets/{broken}/rotate"), None).await;
    assert_eq!(failed.status, 200, "{:?}", failed.body);
    assert!(failed.body.get("version_id").is_none(), "{:?}", failed.body);
    // The expiry watcher fires within its interval; then the deletion.
    records_of(s, &db, 5).await;
    assert_eq!(call(s, Method::DELETE, &format!("secrets/{db}"), None).await.status, 200);
    let records = records_of(s, &db, 6).await;
    let mut types: Vec<&str> = records.iter().map(|r| r["trigger_event_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(
        types,
        [
            "SECRET_DELETED",
            "SECRET_ROTATED",
            "SECRET_VERSION_CREATED",
            "SECRET_VERSION_CREATED",
            "SECRET_VERSION_CREATED",
            "SECRET_VERSION_EXPIRED"
        ],
        "{records:?}"
    );
    for record in &records {
        assert_types(
            record,
            &[
                ("event_name", "string"),
                ("trigger_event_type", "string"),
                ("create_time", "int"),
                ("secret_name", "string"),
                ("secret_type", "string"),
                ("notification_target_name", "string"),
                ("notification_target_id", "string"),
                ("notification_content", "string"),
                ("notification_status", "string"),
            ],
        );
        assert_eq!(record["notification_status"], "SUCCESS");
        assert_eq!(record["secret_type"], "RDS-FG");
        let content: Value = serde_json::from_str(record["notification_content"].as_str().unwrap()).unwrap();
        assert_eq!(content["eventType"], record["trigger_event_type"]);
        assert!(!record.to_string().contains("first"), "a value in a record: {record}");
    }
    let expired = records.iter().find(|r| r["trigger_event_type"] == "SECRET_VERSION_EXPIRED").unwrap();
    let content: Value = serde_json::from_str(expired["notification_content"].as_str().unwrap()).unwrap();
    assert_eq!(content["data"]["versionId"], "v1");
    let failures = records_of(s, &broken, 2).await;
    let mut types: Vec<&str> = failures.iter().map(|r| r["trigger_event_type"].as_str().unwrap()).collect();
    types.sort();
    assert_eq!(types, ["SECRET_ROTATED_FAILED", "SECRET_VERSION_CREATED"]);
    // Records page newest first.
    let page = call(s, Method::GET, "csms/notification-records?limit=2", None).await;
    assert_eq!(page.body["records"].as_array().unwrap().len(), 2);
    let times: Vec<i64> =
        page.body["records"].as_array().unwrap().iter().map(|r| r["create_time"].as_i64().unwrap()).collect();
    assert!(times[0] >= times[1]);
    let next = page.body["page_info"]["next_marker"].as_str().unwrap().to_owned();
    let after = call(s, Method::GET, &format!("csms/notification-records?limit=1000&marker={next}"), None).await;
    assert!(!after.body["records"].as_array().unwrap().is_empty());

    // The disabled event fires nothing; a subscribed event cannot be deleted.
    let q = unique("ev-quiet");
    let body = json!({"name": q, "secret_string": "x", "event_subscriptions": ["quiet"]});
    assert_eq!(call(s, Method::POST, "secrets", Some(body)).await.status, 200);
    assert_error(&call(s, Method::DELETE, "csms/events/quiet", None).await, 400, "CSMS.0002", true);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let r = call(s, Method::GET, "csms/notification-records?limit=1000", None).await;
    assert!(r.body["records"].as_array().unwrap().iter().all(|r| r["secret_name"] != q.as_str()));
    let unsub = call(s, Method::PUT, &format!("secrets/{q}"), Some(json!({"event_subscriptions": []}))).await;
    assert_eq!(unsub.status, 200, "{:?}", unsub.body);
    assert_eq!(call(s, Method::DELETE, "csms/events/quiet", None).await.status, 204);
    assert_error(&call(s, Method::DELETE, "csms/events/quiet", None).await, 400, "CSMS.0005", true);
}

/// rotate-secret on single- and multi-user database secrets, COMMON
/// refused, the task list's filters, exclusivity rule and paging, and an
/// update of the description leaving the schedule alone.
async fn rotation_and_tasks(s: &TestStack) {
    let common_name = unique("rot-common");
    call(s, Method::POST, "secrets", Some(json!({"name": common_name, "secret_string": "x"}))).await;
    assert_error(&call(s, Method::POST, &format!("secrets/{common_name}/rotate"), None).await, 400, "CSMS.0002", true);
    assert_error(&call(s, Method::POST, "secrets/no-such-secret/rotate", None).await, 400, "CSMS.0106", true);

    let single = unique("rot-single");
    let value = json!({"username": "app", "password": "old-password", "host": "db.local"});
    let body = json!({"name": single, "secret_string": value.to_string(), "secret_type": "RDS-FG",
                      "auto_rotation": true, "rotation_period": "30d",
                      "rotation_config": r#"{"InstanceId":"i-1","SecretSubType":"SingleUser"}"#});
    let created = call(s, Method::POST, "secrets", Some(body)).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let next = created.body["secret"]["next_rotation_time"].as_i64().unwrap();
    let r = call(s, Method::PUT, &format!("secrets/{single}"), Some(json!({"description": "only this"}))).await;
    assert_eq!(r.body["secret"]["next_rotation_time"], next, "a description change moved the schedule");
    let r = call(s, Method::POST, &format!("secrets/{single}/rotate"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("version_id", "string"), ("secret_name", "string"), ("rotation_task_id", "string")]);
    let task_id = r.body["rotation_task_id"].as_str().unwrap().to_owned();
    let new: Value =
        serde_json::from_str(read(s, &single, "latest").await.body["version"]["secret_string"].as_str().unwrap())
            .unwrap();
    assert_eq!((new["username"].as_str(), new["host"].as_str()), (Some("app"), Some("db.local")));
    let password = new["password"].as_str().unwrap();
    assert!(password != "old-password" && password.len() == 32, "{password}");
    let previous = read(s, &single, "v1").await;
    assert_eq!(previous.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));
    let shown = call(s, Method::GET, &format!("secrets/{single}"), None).await;
    assert!(shown.body["secret"]["rotation_time"].as_i64().is_some(), "{:?}", shown.body);
    assert!(shown.body["secret"]["next_rotation_time"].as_i64().unwrap() > next);

    // MultiUser rotates the SYSPREVIOUS account and swaps the two.
    let multi = unique("rot-multi");
    let alice = json!({"username": "alice", "password": "a0"}).to_string();
    let bob = json!({"username": "bob", "password": "b0"}).to_string();
    let body = json!({"name": multi, "secret_string": alice, "secret_type": "GaussDB-FG",
                      "rotation_config": r#"{"InstanceId":"i-2","SecretSubType":"MultiUser"}"#});
    call(s, Method::POST, "secrets", Some(body)).await;
    let no_second = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert!(no_second.body.get("version_id").is_none(), "one account only: {:?}", no_second.body);
    call(s, Method::POST, &format!("secrets/{multi}/versions"), Some(json!({"secret_string": bob}))).await;
    // The same rotate again: signed in the next second, as a new request
    // (an identical signature is a replay, and rotate acts each time).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = call(s, Method::POST, &format!("secrets/{multi}/rotate"), None).await;
    assert_eq!(r.body["version_id"], "v3", "{:?}", r.body);
    let current: Value =
        serde_json::from_str(read(s, &multi, "latest").await.body["version"]["secret_string"].as_str().unwrap())
            .unwrap();
    assert_eq!(current["username"], "alice", "the idle account became current");
    assert_ne!(current["password"], "a0");
    let prev = read(s, &multi, "v2").await;
    assert_eq!(prev.body["version"]["version_metadata"]["version_stages"], json!(["SYSPREVIOUS"]));

    // Tasks: filters, the task_id rule (flat errors), paging.
    let r = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("total", "int"), ("tasks", "array"), ("next_marker", "string")]);
    assert_eq!(r.body["total"], 2);
    let statuses: Vec<&str> =
        r.body["tasks"].as_array().unwrap().iter().map(|t| t["task_status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["FAILED", "SUCCESS"]);
    let t = &r.body["tasks"][0];
    assert_types(
        t,
        &[
            ("task_id", "string"),
            ("secret_name", "string"),
            ("task_status", "string"),
            ("operate_type", "string"),
            ("task_time", "int"),
            ("attempt_nums", "int"),
            ("task_error_code", "string"),
            ("task_error_msg", "string"),
        ],
    );
    assert_eq!(t["operate_type"], "MULTI_USER");
    assert!(!t["task_error_msg"].as_str().unwrap().is_empty());
    let failed = call(s, Method::GET, &format!("csms/tasks?secret_name={multi}&status=FAILED"), None).await;
    assert_eq!(failed.body["total"], 1);
    let one = call(s, Method::GET, &format!("csms/tasks?task_id={task_id}"), None).await;
    assert_eq!(
        (one.body["total"].as_u64(), one.body["tasks"][0]["secret_name"].as_str()),
        (Some(1), Some(single.as_str()))
    );
    assert_error(
        &call(s, Method::GET, &format!("csms/tasks?task_id={task_id}&status=SUCCESS"), None).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(&call(s, Method::GET, "csms/tasks?status=RUNNING", None).await, 400, "CSMS.0002", false);
    let page = call(s, Method::GET, "csms/tasks?limit=1", None).await;
    let marker = page.body["next_marker"].as_str().unwrap().to_owned();
    let rest = call(s, Method::GET, &format!("csms/tasks?limit=1000&marker={marker}"), None).await;
    assert_eq!(rest.body["tasks"].as_array().unwrap().len() + 1, page.body["total"].as_u64().unwrap() as usize);
}

/// A batch of 50 with 3 bad elements creates exactly the 47 good ones.
async fn batch_import(s: &TestStack) {
    let prefix = unique("batch");
    let mut secrets: Vec<Value> = (0..50)
        .map(|i| json!({"name": format!("{prefix}-{i:02}"), "secret_string": format!("batch-value-{i}")}))
        .collect();
    secrets[7] = json!({"name": format!("{prefix}-00"), "secret_string": "duplicate of element 0"});
    secrets[20] = json!({"name": "has space", "secret_string": "bad name"});
    secrets[33] = json!({"name": format!("{prefix}-33"), "secret_string": 33});
    let r = call(s, Method::POST, "secrets/batch-import", Some(json!({"secrets": secrets}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("total", "int"), ("success", "int"), ("failed", "int"), ("error_list", "array")]);
    assert_eq!(
        (r.body["total"].as_u64(), r.body["success"].as_u64(), r.body["failed"].as_u64()),
        (Some(50), Some(47), Some(3))
    );
    let names: Vec<&str> =
        r.body["error_list"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, [format!("{prefix}-00").as_str(), "has space", &format!("{prefix}-33")]);
    for e in r.body["error_list"].as_array().unwrap() {
        assert!(e["error_msg"].as_str().unwrap().starts_with("The value of parameter is invalid."), "{e}");
    }
    let listed = call(s, Method::GET, "secrets?limit=1000", None).await;
    let created = listed.body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"].as_str().unwrap().starts_with(&prefix))
        .count();
    assert_eq!(created, 47);
    assert_eq!(read(s, &format!("{prefix}-00"), "latest").await.body["version"]["secret_string"], "batch-value-0");
    assert_eq!(read(s, &format!("{prefix}-07"), "latest").await.status, 400, "the duplicate did not replace");
    // The quota holds under a batch: a fresh project (quota 200) gets 200
    // of 201.
    let (_, _, project, ak, sk) = support::other_account(s, "importer", "importer password").await;
    let many: Vec<Value> = (0..201).map(|i| json!({"name": format!("q-{i:03}"), "secret_string": "q"})).collect();
    let r =
        support::as_other(s, &ak, &sk, &project, Method::POST, "secrets/batch-import", Some(json!({"secrets": many})))
            .await;
    assert_eq!((r.body["success"].as_u64(), r.body["failed"].as_u64()), (Some(200), Some(1)), "{:?}", r.body);
    assert!(r.body["error_list"][0]["error_msg"].as_str().unwrap().contains("upper limit"), "{:?}", r.body);
    // A malformed body is refused whole (flat errors).
    assert_error(
        &call(s, Method::POST, "secrets/batch-import", Some(json!({"secrets": "no"}))).await,
        400,
        "CSMS.0002",
        false,
    );
    assert_error(
        &call(s, Method::POST, "secrets/batch-import", Some(json!({"secrets": []}))).await,
        400,
        "CSMS.0002",
        false,
    );
    // A secret named batch-import is an ordinary secret for GET/PUT/DELETE.
    call(s, Method::POST, "secrets", Some(json!({"name": "batch-import", "secret_string": "b"}))).await;
    assert_eq!(call(s, Method::GET, "secrets/batch-import", None).await.body["secret"]["name"], "batch-import");
    assert_eq!(read(s, "batch-import", "latest").await.body["version"]["secret_string"], "b");
    assert_eq!(call(s, Method::DELETE, "secrets/batch-import", None).await.status, 200);
}

/// The Tier 1 review: version markers, limit "0", the last page's null.
async fn tier_one_review(s: &TestStack) {
    let name = unique("markers");
    call(s, Method::POST, "secrets", Some(json!({"name": name, "secret_string": "1"}))).await;
    call(s, Method::POST, &format!("secrets/{name}/versions"), Some(json!({"secret_string": "2"}))).await;
    let ids = |r: &Reply| -> Vec<String> {
        r.body["version_metadatas"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
    };
    let page = call(s, Method::GET, &format!("secrets/{name}/versions?marker=v0000000001"), None).await;
    assert_eq!(ids(&page), ["v2"], "{:?}", page.body);
    let page = call(s, Method::GET, &format!("secrets/{name}/versions?marker=latest"), None).await;
    assert_eq!(ids(&page), Vec::<String>::new(), "{:?}", page.body);
    let page = call(s, Method::GET, &format!("secrets/{name}/versions?marker=v9999999999"), None).await;
    assert_eq!((page.status.as_u16(), ids(&page).len()), (200, 0));
    for bad in ["v", "v12345678901", "2", "vx"] {
        let r = call(s, Method::GET, &format!("secrets/{name}/versions?marker={bad}"), None).await;
        assert_error(&r, 400, "CSMS.0002", false);
    }
    let zero =
        call(s, Method::POST, "csms/resource_instances/action", Some(json!({"action": "filter", "limit": "0"}))).await;
    assert_error(&zero, 400, "CSMS.0002", true);
    // Dapr pages until next_marker is null: the last page says null.
    let mut marker = String::new();
    for _ in 0..100 {
        let r = call(s, Method::GET, &format!("secrets?limit=7{marker}"), None).await;
        let next = &r.body["page_info"]["next_marker"];
        assert_ne!(next, &json!(""), "an empty marker makes Dapr loop forever");
        match next.as_str() {
            Some(m) => marker = format!("&marker={m}"),
            None => return,
        }
    }
    panic!("list-secrets never reached its last page");
}

/// What the loopback webhook receiver saw.
#[derive(Default)]
struct Received {
    /// (headers, body) of every request, in arrival order.
    requests: Vec<(http::HeaderMap, Vec<u8>)>,
}

/// The webhook sink against a real HTTP server on loopback: records arrive
/// signed; the API call that fired one returns while the endpoint hangs; a
/// failing answer is retried with backoff until it succeeds; an endpoint
/// that always fails leaves the record FAIL after the last attempt.
#[tokio::test]
async fn webhook_sink_delivers_signed_records_and_retries() {
    use std::sync::{Arc, Mutex};
    let received = Arc::new(Mutex::new(Received::default()));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let app = {
        let (received, gate) = (received.clone(), gate.clone());
        axum::Router::new().route(
            "/hooks/csms",
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let (received, gate) = (received.clone(), gate.clone());
                async move {
                    let n = {
                        let mut r = received.lock().unwrap();
                        r.requests.push((headers, body.to_vec()));
                        r.requests.len()
                    };
                    let doc: Value = serde_json::from_slice(&body).unwrap();
                    if doc["secret_name"].as_str().unwrap().starts_with("hook-fail") {
                        return http::StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    match n {
                        // The first request hangs until the test lets it go.
                        1 => {
                            let _ = gate.acquire().await;
                            http::StatusCode::SERVICE_UNAVAILABLE
                        }
                        2 => http::StatusCode::SERVICE_UNAVAILABLE,
                        _ => http::StatusCode::NO_CONTENT,
                    }
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let keys = tempfile::tempdir().unwrap();
    let key = "webhook-signing-key-0123456789abcdef";
    std::fs::write(keys.path().join("webhook.key"), format!("{key}\n")).unwrap();
    let mut jobs = support::csms_jobs();
    jobs.webhook.url = Some(format!("http://{addr}/hooks/csms"));
    jobs.webhook.secret_file = Some(keys.path().join("webhook.key"));
    jobs.webhook.retry_base_ms = 100;
    jobs.webhook.max_attempts = 3;
    let s = TestStack::start_with_jobs(Db::Sqlite, jobs).await;

    let r = call(&s, Method::POST, "csms/events", Some(event_body("hooked", &["SECRET_VERSION_CREATED"]))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = json!({"name": "hook-ok", "secret_string": "hook-value-1", "event_subscriptions": ["hooked"]});
    assert_eq!(call(&s, Method::POST, "secrets", Some(body)).await.status, 200);
    // The endpoint now holds the first delivery; API calls do not wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while received.lock().unwrap().requests.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the webhook was never called");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let v2 = call(&s, Method::POST, "secrets/hook-ok/versions", Some(json!({"secret_string": "hook-value-2"}))).await;
    assert_eq!(v2.status, 200, "{:?}", v2.body);
    assert_eq!(gate.available_permits(), 0, "the API call returned while the endpoint still hung");
    let body = json!({"name": "hook-fail", "secret_string": "x", "event_subscriptions": ["hooked"]});
    assert_eq!(call(&s, Method::POST, "secrets", Some(body)).await.status, 200);
    gate.add_permits(1);

    let ok = records_of(&s, "hook-ok", 2).await;
    assert!(ok.iter().all(|r| r["notification_status"] == "SUCCESS"), "{ok:?}");
    let failed = records_of(&s, "hook-fail", 1).await;
    assert_eq!(failed[0]["notification_status"], "FAIL", "{failed:?}");

    let requests = received.lock().unwrap().requests.clone();
    let mut attempts: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    for (headers, body) in &requests {
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        let timestamp = header("x-opendew-timestamp");
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(key.as_bytes()).unwrap();
        hmac::Mac::update(&mut mac, format!("{timestamp}.").as_bytes());
        hmac::Mac::update(&mut mac, body);
        let expected = format!("v1={}", hex::encode(hmac::Mac::finalize(mac).into_bytes()));
        assert_eq!(header("x-opendew-signature"), expected, "a webhook request is not signed with the key");
        let doc: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(header("x-opendew-event"), doc["trigger_event_type"].as_str().unwrap());
        assert_eq!(doc["notification_content"]["eventName"], "hooked");
        assert!(!String::from_utf8_lossy(body).contains("hook-value"), "a value went to the webhook");
        attempts.entry(header("x-opendew-delivery")).or_default().push(doc["attempt"].as_i64().unwrap());
    }
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts.values().any(|a| a.len() > 1), "a failed delivery was retried: {attempts:?}");
    assert!(attempts.values().all(|a| a.windows(2).all(|w| w[1] == w[0] + 1)), "{attempts:?}");
    assert!(attempts.values().any(|a| a == &[1, 2, 3]), "the failing endpoint got exactly 3 attempts: {attempts:?}");
    s.stack.stop().await.unwrap();
}

/// Scheduled rotation with a short period (a rotation "hour" of 100 ms:
/// `6h` is 600 ms), with a second csms-service replica on the same
/// database: the secret rotates every period, and no period is rotated
/// twice.
async fn scheduled_rotation_across_replicas(db: Db) {
    let mut jobs = support::csms_jobs();
    jobs.rotation_hour_ms = 100;
    let s = TestStack::start_with_jobs(db, jobs.clone()).await;
    let pki = &s.stack.pki;
    let database_url = match &s.db {
        Db::Sqlite => common::db::DatabaseUrl::sqlite_file(&s.dir.path().join("csms.db")),
        Db::Postgres(url) => url.clone(),
    };
    // Two more replicas, driven here: each calls the scheduler's step
    // every 50 ms, at the same moments, so that a period rotated twice
    // would show.
    let tls = pki.internal(&pki.csms).load().unwrap();
    let mut replicas = Vec::new();
    let feeds = tokio_util::sync::CancellationToken::new();
    let _stop_feeds = feeds.clone().drop_guard();
    for _ in 0..2 {
        let store = csms_service::open_store(&database_url, 4).await.unwrap();
        let channel = common::grpc::channel(&format!("http://{}", s.stack.kms), tls.as_ref(), "test").unwrap();
        let kms = csms_service::kms::KmsClient::new(channel);
        let service = csms_service::service::CsmsService::new(store, kms, 200, jobs.clone(), &feeds).await.unwrap();
        replicas.push(std::sync::Arc::new(service));
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let driver = {
        let (stop, replicas) = (stop.clone(), replicas.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let now = common::now_ms();
                let (a, b) = tokio::join!(replicas[0].rotate_due(now), replicas[1].rotate_due(now));
                a.unwrap();
                b.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };

    let name = unique("scheduled");
    let body = json!({"name": name, "secret_string": json!({"username": "app", "password": "p0"}).to_string(),
                      "secret_type": "RDS-FG", "auto_rotation": true, "rotation_period": "6h",
                      "rotation_config": r#"{"InstanceId":"i-9","SecretSubType":"SingleUser"}"#});
    assert_eq!(call(&s, Method::POST, "secrets", Some(body)).await.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let tasks = call(&s, Method::GET, &format!("csms/tasks?secret_name={name}&status=SUCCESS"), None).await;
        if tasks.body["total"].as_u64().unwrap() >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no scheduled rotations: {:?}", tasks.body);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    stop.cancel();
    let off = call(&s, Method::PUT, &format!("secrets/{name}"), Some(json!({"auto_rotation": false}))).await;
    assert_eq!(off.status, 200, "{:?}", off.body);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    let tasks = call(&s, Method::GET, &format!("csms/tasks?secret_name={name}&limit=1000"), None).await;
    let tasks = tasks.body["tasks"].as_array().unwrap().clone();
    assert!(tasks.iter().all(|t| t["task_status"] == "SUCCESS"), "{tasks:?}");
    let times: Vec<i64> = tasks.iter().map(|t| t["task_time"].as_i64().unwrap()).collect();
    for pair in times.windows(2) {
        // A period is 600 ms: two rotations closer than that would be one
        // period rotated twice (by two replicas racing).
        assert!(pair[1] - pair[0] >= 550, "two rotations {} ms apart: {times:?}", pair[1] - pair[0]);
    }
    let versions = call(&s, Method::GET, &format!("secrets/{name}/versions?limit=1000"), None).await;
    let versions = versions.body["version_metadatas"].as_array().unwrap().len();
    assert_eq!(versions, tasks.len() + 1, "one version per rotation");
    let mut passwords = std::collections::BTreeSet::new();
    for n in 1..=versions {
        let v = read(&s, &name, &format!("v{n}")).await;
        let doc: Value = serde_json::from_str(v.body["version"]["secret_string"].as_str().unwrap()).unwrap();
        passwords.insert(doc["password"].as_str().unwrap().to_owned());
    }
    assert_eq!(passwords.len(), versions, "every rotation made a new password");
    driver.await.unwrap();
    s.stack.stop().await.unwrap();
}

#[tokio::test]
async fn scheduled_rotation_on_sqlite() {
    scheduled_rotation_across_replicas(Db::Sqlite).await;
}

#[tokio::test]
async fn scheduled_rotation_on_postgres() {
    let Some(db) = Db::postgres("scheduled rotation across replicas on Postgres").await else { return };
    scheduled_rotation_across_replicas(db).await;
}

/// Grants enforced for a user of another account; the account-level
/// paths: agencies, users (with a password change that ends the user's
/// tokens), function templates; and the secret checker.
async fn grants_users_and_account_paths(s: &TestStack) {
    let (domain_name, grantee, project, ak, sk) = support::other_account(s, "carol", "carol's first password").await;
    let shared = unique("shared");
    let id = call(s, Method::POST, "secrets", Some(json!({"name": shared, "secret_string": "shared-value"})))
        .await
        .body["secret"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = unique("kept");
    let kept_id = call(s, Method::POST, "secrets", Some(json!({"name": kept, "secret_string": "kept-value"})))
        .await
        .body["secret"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read_as_grantee = |secret_id: String| {
        let (ak, sk, project) = (ak.clone(), sk.clone(), project.clone());
        async move {
            support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{secret_id}/versions/latest"), None)
                .await
        }
    };
    assert_error(&read_as_grantee(id.clone()).await, 400, "CSMS.0106", false);

    let grant = json!({"resource_id": id, "type": "SECRET", "grantee_type": "0", "grantee_target_id": grantee});
    let r = call(s, Method::POST, "csms/grants", Some(grant.clone())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(
        &r.body["data"],
        &[
            ("uuid", "string"),
            ("resourceId", "string"),
            ("type", "string"),
            ("granteeUser", "string"),
            ("createTime", "int"),
            ("updateTime", "int"),
            ("state", "int"),
        ],
    );
    assert_eq!(r.body["data"]["validityTime"], Value::Null);
    // The grantee reads exactly the granted secret, by id, and nothing else.
    let granted = read_as_grantee(id.clone()).await;
    assert_eq!(
        (granted.status.as_u16(), granted.body["version"]["secret_string"].as_str()),
        (200, Some("shared-value")),
        "{:?}",
        granted.body
    );
    let shown = support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{id}"), None).await;
    assert_eq!(shown.body["secret"]["name"], shared.as_str(), "{:?}", shown.body);
    let versions = support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{id}/versions"), None).await;
    assert_eq!(versions.status, 200, "{:?}", versions.body);
    assert_error(&read_as_grantee(kept_id.clone()).await, 400, "CSMS.0106", false);
    let write = support::as_other(
        s,
        &ak,
        &sk,
        &project,
        Method::PUT,
        &format!("secrets/{id}"),
        Some(json!({"description": "x"})),
    )
    .await;
    assert_error(&write, 400, "CSMS.0106", false);
    let add = support::as_other(
        s,
        &ak,
        &sk,
        &project,
        Method::POST,
        &format!("secrets/{id}/versions"),
        Some(json!({"secret_string": "x"})),
    )
    .await;
    assert_error(&add, 400, "CSMS.0106", false);
    // Only the owner sees and changes the grants.
    let listed = call(s, Method::GET, &format!("csms/grants?resource_id={id}"), None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["data"]["name"], shared.as_str());
    assert_eq!(listed.body["data"]["grantee_user"][0]["user_name"], "carol");
    assert_error(
        &support::as_other(s, &ak, &sk, &project, Method::GET, &format!("csms/grants?resource_id={id}"), None).await,
        400,
        "CSMS.0005",
        false,
    );
    let mut dated = grant.clone();
    dated["validity_time"] = json!("2999-12-31");
    let updated = call(s, Method::PUT, &format!("csms/grants?resource_id={id}"), Some(dated)).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert!(updated.body["data"]["validityTime"].as_i64().unwrap() > common::now_ms());
    let mut past = grant.clone();
    past["validity_time"] = json!("2000-01-01");
    assert_error(
        &call(s, Method::PUT, &format!("csms/grants?resource_id={id}"), Some(past)).await,
        400,
        "CSMS.0002",
        false,
    );
    let mut nobody = grant.clone();
    nobody["grantee_target_id"] = json!("0".repeat(32));
    assert_error(&call(s, Method::POST, "csms/grants", Some(nobody)).await, 400, "CSMS.0002", false);
    let mut group = grant.clone();
    group["grantee_type"] = json!("2");
    assert_error(&call(s, Method::POST, "csms/grants", Some(group)).await, 400, "CSMS.0002", false);
    // Deleting the grant ends it at once.
    let deleted = call(s, Method::DELETE, &format!("csms/grants?resource_id={id}&grantee_user={grantee}"), None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_error(&read_as_grantee(id.clone()).await, 400, "CSMS.0106", false);
    assert_error(
        &call(s, Method::DELETE, &format!("csms/grants?resource_id={id}&grantee_user={grantee}"), None).await,
        400,
        "CSMS.0005",
        false,
    );

    // Agencies, by the credential's project (no project in the path).
    let r = s.call(Method::POST, "/v1/csms/agencies", Some(&json!({"secret_type": "RDS-FG"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["agencies"].as_array().unwrap().len(), 2);
    assert_eq!(s.call(Method::GET, "/v1/csms/agencies?secret_type=RDS-FG", None).await.body["agency_granted"], "true");
    assert_eq!(
        s.call(Method::GET, "/v1/csms/agencies?secret_type=GaussDB-FG", None).await.body["agency_granted"],
        "false"
    );
    assert_error(&s.call(Method::GET, "/v1/csms/agencies?secret_type=COMMON", None).await, 400, "CSMS.0002", false);

    // Function templates.
    let t = s
        .call(
            Method::GET,
            "/v1/csms/function-templates?secret_type=RDS-FG&secret_sub_type=MultiUser&engine=mysql",
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    assert!(t.body["function_templates"].as_str().unwrap().contains("mysql"));
    let bad = s
        .call(
            Method::GET,
            "/v1/csms/function-templates?secret_type=GaussDB-FG&secret_sub_type=SingleUser&engine=mysql",
            None,
        )
        .await;
    assert_error(&bad, 400, "CSMS.0002", false);

    // Users: the caller's domain only.
    let users = s.call(Method::GET, "/v1/csms/users?offset=0&limit=10", None).await;
    assert_eq!(users.status, 200, "{:?}", users.body);
    let me = users.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_name"] == s.account.user.as_str())
        .unwrap()
        .clone();
    assert_types(
        &me,
        &[("user_id", "string"), ("disabled", "string"), ("pwd_must_modify", "bool"), ("extension", "string")],
    );
    assert!(users.body["users"].as_array().unwrap().iter().all(|u| u["user_name"] != "carol"));
    assert_error(&s.call(Method::GET, "/v1/csms/users?offset=0&limit=5", None).await, 400, "CSMS.0002", true);
    let detail = s.call(Method::GET, &format!("/v1/csms/users/{}", me["user_id"].as_str().unwrap()), None).await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_types(
        &detail.body,
        &[("disabled", "bool"), ("grade", "int"), ("extension", "object"), ("domain_id", "string")],
    );
    assert_error(&s.call(Method::GET, &format!("/v1/csms/users/{grantee}"), None).await, 400, "CSMS.0005", false);

    // carol changes her password: her token from the old one stops working.
    let login = |password: &str| {
        json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "carol", "password": password, "domain": {"name": domain_name}}}}, "scope": {"project": {"id": project}}}})
    };
    let ct = [("content-type", "application/json")];
    let r = s
        .raw(
            Method::POST,
            "/v3/auth/tokens",
            &ct,
            serde_json::to_vec(&login("carol's first password")).unwrap(),
            support::Sign::Not,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.headers["x-subject-token"].to_str().unwrap().to_owned();
    let with_token = |token: String| {
        let project = project.clone();
        async move {
            let headers = [("x-auth-token", token.as_str())];
            s.raw(Method::GET, &format!("/v1/{project}/secrets"), &headers, Vec::new(), support::Sign::Not).await
        }
    };
    assert_eq!(with_token(token.clone()).await.status, 200);
    let wrong = json!({"old_password": "not it at all", "password": "carol's second password"});
    let r = s
        .raw(
            Method::POST,
            "/v1/csms/users/change-password",
            &[("content-type", "application/json"), ("x-project-id", project.as_str())],
            serde_json::to_vec(&wrong).unwrap(),
            support::Sign::With(&ak, &sk, 0),
        )
        .await;
    assert_error(&r, 400, "CSMS.0002", false);
    let change = json!({"old_password": "carol's first password", "password": "carol's second password"});
    let r = s
        .raw(
            Method::POST,
            "/v1/csms/users/change-password",
            &[("content-type", "application/json"), ("x-project-id", project.as_str())],
            serde_json::to_vec(&change).unwrap(),
            support::Sign::With(&ak, &sk, 0),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["user_id"].as_str()), (200, Some(grantee.as_str())), "{:?}", r.body);
    assert_eq!(with_token(token).await.status, 401, "a token of the old password still works");
    let old = s
        .raw(
            Method::POST,
            "/v3/auth/tokens",
            &ct,
            serde_json::to_vec(&login("carol's first password")).unwrap(),
            support::Sign::Not,
        )
        .await;
    assert_eq!(old.status, 401);
    let new = s
        .raw(
            Method::POST,
            "/v3/auth/tokens",
            &ct,
            serde_json::to_vec(&login("carol's second password")).unwrap(),
            support::Sign::Not,
        )
        .await;
    assert_eq!(new.status, 201, "{:?}", new.body);

    // The checker: a switch, and verdicts that never carry the value.
    assert_eq!(call(s, Method::GET, "secrets/checker/config", None).await.body["checking_secret_strength"], false);
    let on = call(s, Method::POST, "secrets/checker/config", Some(json!({"checking_secret_strength": true}))).await;
    assert_eq!(on.body["checking_secret_strength"], true, "{:?}", on.body);
    assert_eq!(call(s, Method::GET, "secrets/checker/config", None).await.body["checking_secret_strength"], true);
    assert_error(&call(s, Method::POST, "secrets/checker/config", Some(json!({}))).await, 400, "CSMS.0002", false);
    let weak = call(
        s,
        Method::POST,
        "secrets/checker/check",
        Some(json!({"type": "PASSWORD", "data": {"secret_string": "password1"}})),
    )
    .await;
    assert_eq!(
        (weak.body["type"].as_str(), weak.body["data"]["strength"].as_str()),
        (Some("PASSWORD"), Some("WEAK")),
        "{:?}",
        weak.body
    );
    let stored = call(
        s,
        Method::POST,
        "secrets/checker/check",
        Some(json!({"type": "SECRET", "data": {"secret_name": shared}})),
    )
    .await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    assert!(!stored.body.to_string().contains("shared-value"));
    assert_error(
        &call(s, Method::POST, "secrets/checker/check", Some(json!({"type": "X", "data": {}}))).await,
        400,
        "CSMS.0002",
        false,
    );
    // A secret named checker keeps its own paths.
    call(s, Method::POST, "secrets", Some(json!({"name": "checker", "secret_string": "c"}))).await;
    assert_eq!(call(s, Method::GET, "secrets/checker", None).await.body["secret"]["name"], "checker");
    assert_eq!(read(s, "checker", "latest").await.body["version"]["secret_string"], "c");
    assert_eq!(call(s, Method::DELETE, "secrets/checker", None).await.status, 200);
}

/// A second csms-service on the stack's Postgres and kms-service, its
/// change feed running until `feeds` is cancelled.
async fn second_replica(
    s: &TestStack,
    feeds: &tokio_util::sync::CancellationToken,
) -> csms_service::service::CsmsService {
    let Db::Postgres(url) = &s.db else { unreachable!() };
    let tls = s.stack.pki.internal(&s.stack.pki.csms).load().unwrap();
    let channel = common::grpc::channel(&format!("http://{}", s.stack.kms), tls.as_ref(), "test").unwrap();
    csms_service::service::CsmsService::new(
        csms_service::open_store(url, 4).await.unwrap(),
        csms_service::kms::KmsClient::new(channel),
        200,
        support::csms_jobs(),
        feeds,
    )
    .await
    .unwrap()
}

/// The read caches (issue #16) on a second csms-service replica: a secret
/// read there is served from its cache, and every change made through the
/// stack's replica — a new version, a stage moved, a scheduled deletion, a
/// deletion, the secret's KMS key disabled — shows on the second replica
/// within a second.
#[tokio::test]
async fn secret_reads_follow_changes_on_every_replica_within_a_second() {
    use csms_service::error::CsmsError;
    use std::time::{Duration, Instant};

    let Some(db) = Db::postgres("read cache across csms-service replicas").await else { return };
    let s = TestStack::start(db).await;
    let feeds = tokio_util::sync::CancellationToken::new();
    let _stop_feeds = feeds.clone().drop_guard();
    let other = second_replica(&s, &feeds).await;
    let caller = common::identity::CallerIdentity {
        domain_id: s.account.domain_id.clone(),
        project_id: s.account.project_id.clone(),
        user_id: "replica-reader".into(),
        request_id: "read-cache-test".into(),
    };
    let value = |r: &Result<csms_service::versions::OpenedVersion, CsmsError>| {
        r.as_ref().ok().map(|o| String::from_utf8(o.value.expose().to_vec()).unwrap())
    };
    // Polls the other replica until `seen` holds; how long that took.
    let until = |name: String, version: &'static str, seen: fn(&Result<_, CsmsError>) -> bool| {
        let (other, caller) = (&other, &caller);
        async move {
            let start = Instant::now();
            loop {
                let read = other.show_version(caller, &name, version).await;
                if seen(&read) {
                    return start.elapsed();
                }
                assert!(start.elapsed() < Duration::from_secs(5), "the other replica still reads {read:?} after 5 s");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    let name = unique("cached");
    let r = call(&s, Method::POST, "secrets", Some(json!({"name": name, "secret_string": "cache-value-1"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    for _ in 0..3 {
        assert_eq!(value(&other.show_version(&caller, &name, "latest").await).as_deref(), Some("cache-value-1"));
    }

    let r =
        call(&s, Method::POST, &format!("secrets/{name}/versions"), Some(json!({"secret_string": "cache-value-2"})))
            .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = until(name.clone(), "latest", |r| r.as_ref().is_ok_and(|o| o.value.expose() == b"cache-value-2")).await;
    assert!(took < Duration::from_secs(1), "a new version reached the other replica after {took:?}");

    // A stage moved back to v1 (SYSCURRENT through the stage API).
    let r =
        call(&s, Method::PUT, &format!("secrets/{name}/stages/SYSCURRENT"), Some(json!({"version_id": "v1"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = until(name.clone(), "latest", |r| r.as_ref().is_ok_and(|o| o.value.expose() == b"cache-value-1")).await;
    assert!(took < Duration::from_secs(1), "a stage move reached the other replica after {took:?}");

    // Scheduled deletion refuses reads; a deletion makes the secret unknown.
    assert_eq!(other.show_version(&caller, &name, "v2").await.unwrap().value.expose(), b"cache-value-2");
    let r = call(
        &s,
        Method::POST,
        &format!("secrets/{name}/scheduled-deleted-tasks/create"),
        Some(json!({"recovery_window_in_days": 7})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = until(name.clone(), "v2", |r| r.is_err()).await;
    assert!(took < Duration::from_secs(1), "a scheduled deletion reached the other replica after {took:?}");
    let r = call(&s, Method::POST, &format!("secrets/{name}/scheduled-deleted-tasks/cancel"), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    until(name.clone(), "v2", |r| r.is_ok()).await;
    let r = call(&s, Method::DELETE, &format!("secrets/{name}"), None).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    let took = until(name.clone(), "v2", |r| {
        matches!(r, Err(CsmsError::Rejected(csms_service::domain::Rejection::SecretNotFound)))
    })
    .await;
    assert!(took < Duration::from_secs(1), "a deletion reached the other replica after {took:?}");

    // The secret's KMS key disabled: the other replica's data-key cache
    // lets go within a second.
    let key = s.call(Method::POST, &s.kms("create-key"), Some(&json!({"key_alias": unique("cached-key")}))).await;
    let key_id = key.body["key_info"]["key_id"].as_str().unwrap().to_owned();
    let name = unique("cached-key-secret");
    let r = call(
        &s,
        Method::POST,
        "secrets",
        Some(json!({"name": name, "secret_string": "cache-value-3", "kms_key_id": key_id})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(other.show_version(&caller, &name, "latest").await.is_ok());
    let r = s.call(Method::POST, &s.kms("disable-key"), Some(&json!({"key_id": key_id}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let took = until(name.clone(), "latest", |r| matches!(r, Err(CsmsError::KmsKeyUnusable(_)))).await;
    assert!(
        took < Duration::from_secs(1),
        "a disabled KMS key still opened secrets on the other replica after {took:?}"
    );
    s.stack.stop().await.unwrap();
}

/// The names on the first list-secrets page, through the gateway.
async fn listed(s: &TestStack) -> Vec<String> {
    let r = call(s, Method::GET, "secrets?limit=50", None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["secrets"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap().to_owned()).collect()
}

/// list-secrets pages are remembered (common::pages, issue #16): the
/// stack's replica lists its own create at once, and a second replica's
/// remembered page follows a create, an update and a deletion made through
/// the stack within a second.
#[tokio::test]
async fn list_pages_follow_changes_on_every_replica_within_a_second() {
    use std::time::{Duration, Instant};

    let Some(db) = Db::postgres("list pages across csms-service replicas").await else { return };
    let s = TestStack::start(db).await;
    let feeds = tokio_util::sync::CancellationToken::new();
    let _stop_feeds = feeds.clone().drop_guard();
    let other = second_replica(&s, &feeds).await;
    let caller = common::identity::CallerIdentity {
        domain_id: s.account.domain_id.clone(),
        project_id: s.account.project_id.clone(),
        user_id: "replica-lister".into(),
        request_id: "list-cache-test".into(),
    };
    // Polls the other replica's list until `seen` holds; how long that took.
    type Seen = Box<dyn Fn(&[csms_service::domain::SecretRecord]) -> bool>;
    let until = |seen: Seen| {
        let (other, caller) = (&other, &caller);
        async move {
            let start = Instant::now();
            loop {
                let page = other.list_secrets(caller, Some(50), "", "").await.unwrap();
                if seen(&page.items) {
                    return start.elapsed();
                }
                assert!(
                    start.elapsed() < Duration::from_secs(5),
                    "the other replica still lists {:?} after 5 s",
                    page.items
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };

    let first = unique("listed");
    let r = call(&s, Method::POST, "secrets", Some(json!({"name": first, "secret_string": "v"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Both replicas now hold a page with it.
    assert!(listed(&s).await.contains(&first));
    let f = first.clone();
    until(Box::new(move |items| items.iter().any(|x| x.name == f))).await;

    let second = unique("listed");
    let r = call(&s, Method::POST, "secrets", Some(json!({"name": second, "secret_string": "v"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(listed(&s).await.contains(&second), "a replica's own create is in its next list");
    let n = second.clone();
    let took = until(Box::new(move |items| items.iter().any(|x| x.name == n))).await;
    assert!(took < Duration::from_secs(1), "a create reached the other replica's list after {took:?}");

    let r = call(&s, Method::PUT, &format!("secrets/{first}"), Some(json!({"description": "changed"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let f = first.clone();
    let took = until(Box::new(move |items| items.iter().any(|x| x.name == f && x.description == "changed"))).await;
    assert!(took < Duration::from_secs(1), "an update reached the other replica's list after {took:?}");

    let r = call(&s, Method::DELETE, &format!("secrets/{first}"), None).await;
    assert!(r.status.is_success(), "{:?}", r.body);
    assert!(!listed(&s).await.contains(&first), "a replica's own deletion is in its next list");
    let f = first.clone();
    let took = until(Box::new(move |items| !items.iter().any(|x| x.name == f))).await;
    assert!(took < Duration::from_secs(1), "a deletion reached the other replica's list after {took:?}");
    s.stack.stop().await.unwrap();
}
