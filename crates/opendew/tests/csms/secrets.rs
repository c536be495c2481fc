//! Secrets and versions: the lifecycle, concurrent versions, tags and search, passwords, listing, batch import.

use super::*;

/// Create, add three versions, move a custom stage, read through `latest`
/// and each stage, schedule deletion, restore, back up, delete, restore
/// from the blob, and read every version back byte for byte.
pub(super) async fn lifecycle(s: &TestStack) {
    let name = unique("life");
    let values: Vec<String> = (1..=4).map(|i| format!("lifecycle-value-{i}-{}", uuid::Uuid::new_v4())).collect();
    let r = call(s, Method::POST, "csms/events", Some(events::event_body("ev-1", &["SECRET_DELETED"]))).await;
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
    let schedule = |days: u32| {
        let path = format!("secrets/{name}/scheduled-deleted-tasks/create");
        async move { call(s, Method::POST, &path, Some(json!({"recovery_window_in_days": days}))).await }
    };
    assert_error(&schedule(6).await, 400, "CSMS.0002", false);
    assert_error(
        &call(s, Method::POST, &format!("secrets/{name}/scheduled-deleted-tasks/cancel"), None).await,
        400,
        "CSMS.0108",
        false,
    );
    let r = schedule(7).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["secret"]["state"], "PENDING_DELETE");
    let when = r.body["secret"]["scheduled_delete_time"].as_i64().unwrap();
    assert!((when - (common::now_ms() + 7 * 86_400_000)).abs() < 60_000);
    assert_error(&schedule(7).await, 400, "CSMS.0107", false);
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
pub(super) async fn concurrent_versions(s: &TestStack) {
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

pub(super) async fn tags_and_search(s: &TestStack) {
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

pub(super) async fn passwords(s: &TestStack) {
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

pub(super) async fn listing(s: &TestStack) {
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
    ordinary_secret_named(s, "restore").await;
}

/// A batch of 50 with 3 bad elements creates exactly the 47 good ones.
pub(super) async fn batch_import(s: &TestStack) {
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
    ordinary_secret_named(s, "batch-import").await;
}

/// The Tier 1 review: version markers, limit "0", the last page's null.
pub(super) async fn tier_one_review(s: &TestStack) {
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
