//! Proven isolation: two domains with a project each. For every route the
//! gateway serves (enumerated from `gateway::api_routes()`, the list the
//! router is built from), a caller of project A
//! - is refused (403) on B's project path, and
//! - on its own path, naming B's resources (keys, data-key and encrypt-data
//!   ciphertexts, secrets, versions, stages, tags, backups), gets exactly
//!   the answer it gets for resources that do not exist: it can neither
//!   read, change nor use them, nor learn that they exist;
//! - listing and searching never show B's resources.
//!
//! Afterwards B's resources are as B left them. A route without a case
//! here fails the suite.

mod support;

use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Reply, Sign, TestStack};

/// A tenant: its project and access key.
#[derive(Debug, Clone)]
struct Tenant {
    project: String,
    ak: String,
    sk: String,
}

/// The resources a request names.
#[derive(Debug, Clone)]
struct Ids {
    key_id: String,
    datakey_cipher: String,
    data_cipher: String,
    secret_name: String,
    secret_id: String,
    stage: String,
    tag_key: String,
    alias: String,
    grant_id: String,
    event_name: String,
    user_id: String,
}

impl Ids {
    /// Resources of the same shape that exist nowhere.
    fn absent(b: &Ids) -> Self {
        let fresh_key = uuid::Uuid::new_v4();
        // The same ciphertexts, naming a key that does not exist.
        let mut datakey = hex::decode(&b.datakey_cipher).unwrap();
        datakey[1..17].copy_from_slice(fresh_key.as_bytes());
        let engine = base64::engine::general_purpose::STANDARD;
        let mut data = engine.decode(&b.data_cipher).unwrap();
        data[1..17].copy_from_slice(fresh_key.as_bytes());
        Self {
            key_id: fresh_key.to_string(),
            datakey_cipher: hex::encode_upper(datakey),
            data_cipher: engine.encode(data),
            secret_name: format!("absent-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            secret_id: uuid::Uuid::new_v4().to_string(),
            stage: "ABSENT_STAGE".into(),
            tag_key: "absent-tag".into(),
            alias: "alias/absent".into(),
            grant_id: hex::encode([0x5a; 32]),
            event_name: "absent-event".into(),
            // A real user either way: what differs is the secret.
            user_id: b.user_id.clone(),
        }
    }
}

async fn call(s: &TestStack, who: &Tenant, method: Method, path: &str, body: Option<Value>) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let headers = [("content-type", "application/json;charset=utf-8"), ("x-project-id", who.project.as_str())];
    s.raw(method, path, &headers, bytes, Sign::With(&who.ak, &who.sk, 0)).await
}

/// The request a route gets when it names `ids`: path (with `{project_id}`
/// still in it) and body. Lists and searches look for B's names. Panics
/// for a route without a case, so a new route cannot go untested.
fn request(method: &Method, pattern: &str, ids: &Ids) -> (String, Option<Value>) {
    let key = json!({"key_id": ids.key_id});
    let dek = [7u8; 32];
    let sha = {
        use sha2::Digest;
        hex::encode_upper(sha2::Sha256::digest(dek))
    };
    let op = pattern.rsplit('/').next().unwrap();
    let body = match (method.as_str(), pattern) {
        ("GET", "/v3/projects" | "/v3/auth/domains" | "/v3/auth/catalog") => None,
        ("POST", "/v3.0/OS-CREDENTIAL/securitytokens") => {
            Some(json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": 900}}}}))
        }
        ("POST", p) if p.starts_with("/v1.0/") => Some(match op {
            "create-key" => json!({"key_alias": format!("a-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])}),
            "describe-key" | "enable-key" | "disable-key" | "cancel-key-deletion" => key,
            "list-keys" => json!({"limit": "100"}),
            "schedule-key-deletion" => json!({"key_id": ids.key_id, "pending_days": "7"}),
            "update-key-alias" => json!({"key_id": ids.key_id, "key_alias": "stolen-alias"}),
            "update-key-description" => json!({"key_id": ids.key_id, "key_description": "stolen"}),
            "create-datakey" | "create-datakey-without-plaintext" => {
                json!({"key_id": ids.key_id, "datakey_length": "256"})
            }
            "encrypt-datakey" => {
                json!({"key_id": ids.key_id, "plain_text": format!("{}{sha}", hex::encode(dek)), "datakey_plain_length": "32"})
            }
            "decrypt-datakey" => {
                json!({"key_id": ids.key_id, "cipher_text": ids.datakey_cipher, "datakey_cipher_length": "32"})
            }
            "encrypt-data" => json!({"key_id": ids.key_id, "plain_text": "from a"}),
            "decrypt-data" => json!({"cipher_text": ids.data_cipher}),
            "gen-random" => json!({"random_data_length": "64"}),
            "enable-key-rotation" | "disable-key-rotation" | "get-key-rotation-status" | "rotate-on-demand" => key,
            "update-key-rotation-interval" => json!({"key_id": ids.key_id, "rotation_interval": 90}),
            "tags" => json!({"tag": {"key": "stolen", "value": "x"}}),
            "action" if pattern.contains("/tags/") => {
                json!({"action": "delete", "tags": [{"key": ids.tag_key, "value": "b-tag-value"}]})
            }
            "action" => {
                json!({"action": "filter", "limit": "100", "matches": [{"key": "resource_name", "value": "b-key"}]})
            }
            "aliases" => json!({"key_id": ids.key_id, "alias": "alias/stolen"}),
            "associate" => json!({"alias": ids.alias, "target_key_id": ids.key_id}),
            "create-grant" => {
                json!({"key_id": ids.key_id, "grantee_principal": "someone0else", "operations": ["describe-key"]})
            }
            "list-grants" => json!({"key_id": ids.key_id, "limit": "100"}),
            "revoke-grant" | "retire-grant" => json!({"key_id": ids.key_id, "grant_id": ids.grant_id}),
            "list-retirable-grants" => json!({"limit": "100"}),
            "get-parameters-for-import" => json!({"key_id": ids.key_id, "wrapping_algorithm": "RSAES_OAEP_SHA_256"}),
            "import-key-material" => json!({"key_id": ids.key_id, "import_token": "A".repeat(400),
                                            "encrypted_key_material": "A".repeat(344)}),
            "delete-imported-key-material" | "get-publickey" => key,
            "sign" => json!({"key_id": ids.key_id, "signing_algorithm": "ECDSA_SHA_256", "message_type": "RAW",
                             "message": "ZnJvbSBh"}),
            "verify" => json!({"key_id": ids.key_id, "signing_algorithm": "ECDSA_SHA_256", "message_type": "RAW",
                               "message": "ZnJvbSBh", "signature": "MEUCIQ=="}),
            "generate-mac" => json!({"key_id": ids.key_id, "mac_algorithm": "HMAC_SHA_256", "message": "ZnJvbSBh"}),
            "verify-mac" => json!({"key_id": ids.key_id, "mac_algorithm": "HMAC_SHA_256", "message": "ZnJvbSBh",
                                   "mac": "00".repeat(32)}),
            "re-encrypt" => json!({"cipher_text": ids.data_cipher, "destination_key_id": ids.key_id}),
            other => panic!("no isolation case for KMS operation {other}"),
        }),
        ("GET", p) if p.starts_with("/v1.0/") => None,
        ("DELETE", "/v1.0/{project_id}/kms/aliases") => Some(json!({"key_id": ids.key_id, "aliases": [ids.alias]})),
        ("DELETE", p) if p.starts_with("/v1.0/") => None,
        ("POST", "/v1/{project_id}/secrets") => {
            Some(json!({"name": format!("a-{}", &ids.secret_id[..8]), "secret_string": "a"}))
        }
        ("GET", "/v1/{project_id}/secrets") => None,
        ("POST", "/v1/{project_id}/secrets/restore") => None, // built by the caller: a backup blob
        (_, "/v1/{project_id}/secrets/restore") => None,
        ("PUT", "/v1/{project_id}/secrets/{secret_name}") => Some(json!({"description": "stolen"})),
        ("POST", p) if p.ends_with("/scheduled-deleted-tasks/create") => Some(json!({"recovery_window_in_days": 7})),
        ("POST", p) if p.ends_with("/scheduled-deleted-tasks/cancel") => None,
        ("POST", "/v1/{project_id}/secrets/{secret_name}/versions") => Some(json!({"secret_string": "overwritten"})),
        ("PUT", p) if p.ends_with("/versions/{version_id}") => {
            Some(json!({"expire_time": common::now_ms() + 86_400_000}))
        }
        ("PUT", p) if p.ends_with("/stages/{stage_name}") => Some(json!({"version_id": "v1"})),
        ("POST", p) if p.ends_with("/backup") => None,
        ("POST", "/v1/{project_id}/csms/generate-password") => Some(json!({"password_length": 16})),
        ("POST", "/v1/{project_id}/csms/{secret_id}/action") => Some(json!({
            "action": "filter", "limit": "100", "matches": [{"key": "resource_name", "value": ids.secret_name}]})),
        ("POST", "/v1/{project_id}/csms/{secret_id}/tags") => Some(json!({"tag": {"key": "stolen", "value": "x"}})),
        ("POST", "/v1/{project_id}/csms/{secret_id}/tags/action") => {
            Some(json!({"action": "delete", "tags": [{"key": ids.tag_key, "value": "b-tag-value"}]}))
        }
        ("POST", "/v1/{project_id}/csms/events") => Some(json!({
            "name": format!("a-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]), "event_types": ["SECRET_DELETED"],
            "state": "ENABLED", "notification": {"target_type": "SMN", "target_id": "urn:smn:a", "target_name": "a"}})),
        ("PUT", "/v1/{project_id}/csms/events/{event_name}") => Some(json!({"state": "DISABLED"})),
        ("POST", p) if p.ends_with("/rotate") => None,
        ("POST", "/v1/{project_id}/secrets/batch-import") => Some(json!({"secrets": [
            {"name": format!("a-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]), "secret_string": "a"}]})),
        ("PUT", "/v1/{project_id}/secrets/batch-import") => Some(json!({"description": "stolen"})),
        ("POST" | "PUT", "/v1/{project_id}/csms/grants") => {
            Some(json!({"resource_id": ids.secret_id, "type": "SECRET",
            "grantee_type": "0", "grantee_target_id": ids.user_id}))
        }
        ("POST", "/v1/{project_id}/secrets/checker/config") => Some(json!({"checking_secret_strength": false})),
        ("POST", "/v1/{project_id}/secrets/checker/check") => {
            Some(json!({"type": "SECRET", "data": {"secret_name": ids.secret_name}}))
        }
        ("POST", "/v1/csms/agencies") => Some(json!({"secret_type": "RDS-FG"})),
        ("POST", "/v1/csms/users/change-password") => {
            Some(json!({"old_password": "not the password", "password": "a new password"}))
        }
        ("GET", p) if p.starts_with("/v1/csms/") => None,
        ("GET" | "DELETE", p) if p.starts_with("/v1/{project_id}/") => None,
        (m, p) => panic!("no isolation case for {m} {p}"),
    };
    let query = if pattern.ends_with("/kms/aliases") && method == Method::GET {
        format!("?key_id={}&limit=50", ids.key_id)
    } else if pattern.ends_with("/csms/tasks") {
        format!("?secret_name={}", ids.secret_name)
    } else if pattern.ends_with("/csms/grants") {
        format!("?resource_id={}&grantee_user={}", ids.secret_id, ids.user_id)
    } else if pattern.ends_with("/csms/agencies") && method == Method::GET {
        "?secret_type=RDS-FG".to_owned()
    } else if pattern.ends_with("/csms/users") {
        "?offset=0&limit=10".to_owned()
    } else if pattern.ends_with("/function-templates") {
        "?secret_type=RDS-FG&secret_sub_type=SingleUser&engine=mysql".to_owned()
    } else {
        String::new()
    };
    let path = pattern
        .replace("{key_id}", &ids.key_id)
        .replace("{secret_name}", &ids.secret_name)
        .replace("{version_id}", "v1")
        .replace("{stage_name}", &ids.stage)
        .replace("{event_name}", &ids.event_name)
        .replace("{user_id}", &ids.user_id)
        .replace("{key}", &ids.tag_key)
        .replace(
            "{secret_id}",
            if pattern.ends_with("/action") && !pattern.contains("/tags/") {
                "resource_instances"
            } else {
                &ids.secret_id
            },
        );
    (path + &query, body)
}

/// Routes whose answer lists or makes things rather than naming one
/// resource: they succeed, and must not show B's.
fn is_listing(method: &Method, pattern: &str) -> bool {
    let op = pattern.rsplit('/').next().unwrap();
    matches!(
        (method.as_str(), op),
        ("GET", "projects" | "domains" | "catalog" | "secrets" | "user-quotas" | "user-instances")
            | (
                "POST",
                "create-key"
                    | "list-keys"
                    | "gen-random"
                    | "secrets"
                    | "generate-password"
                    | "securitytokens"
                    | "list-retirable-grants"
                    | "batch-import"
            )
            | ("GET", "notification-records" | "tasks" | "users" | "function-templates")
            | ("GET" | "POST", "events" | "config" | "agencies")
    ) || pattern.ends_with("/csms/tags")
        || pattern.ends_with("/csms/{secret_id}/action")
        || pattern.ends_with("/kms/tags")
        || pattern.ends_with("/kms/resource_instances/action")
        || (method == Method::GET && pattern.ends_with("/kms/aliases"))
}

async fn isolation(db: Db) {
    let s = TestStack::start(db).await;
    let a = Tenant { project: s.account.project_id.clone(), ak: s.account.ak.clone(), sk: s.account.sk.clone() };

    // Tenant B: another domain with its own project, user and key.
    let url = match &s.db {
        Db::Sqlite => common::db::DatabaseUrl::sqlite_file(&s.dir.path().join("iam.db")),
        Db::Postgres(url) => url.clone(),
    };
    let store = identity::open_store(&url, 1).await.unwrap();
    let sealer = identity::seal::SecretSealer::from_file(&s.dir.path().join("identity.key")).unwrap();
    use identity::admin;
    let domain = admin::create_domain(&*store, "tenant-b").await.unwrap();
    let project = admin::create_project(&*store, &domain.id, "local-1").await.unwrap();
    let password = identity::credentials::SecretString::new("tenant b password".into());
    let user = admin::create_user(&*store, &domain.id, "bob", &password).await.unwrap();
    let (key, secret) = admin::create_access_key(&*store, &sealer, &user.id, "").await.unwrap();
    let b = Tenant { project: project.id.clone(), ak: key.access_key.clone(), sk: secret.expose().to_owned() };
    let kms_b = |op: &str| format!("/v1.0/{}/kms/{op}", b.project);
    let csms_b = |rest: &str| format!("/v1/{}/{rest}", b.project);
    let started = std::time::Instant::now();
    while call(&s, &b, Method::POST, &kms_b("gen-random"), Some(json!({"random_data_length": "64"}))).await.status
        != 200
    {
        assert!(started.elapsed().as_secs() < 10, "tenant B never became usable");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // B's resources.
    let ok = |r: Reply| {
        assert!(r.status.is_success(), "{:?}", r.body);
        r.body
    };
    let created = ok(call(&s, &b, Method::POST, &kms_b("create-key"), Some(json!({"key_alias": "b-key"}))).await);
    let key_id = created["key_info"]["key_id"].as_str().unwrap().to_owned();
    let dk = ok(call(
        &s,
        &b,
        Method::POST,
        &kms_b("create-datakey"),
        Some(json!({"key_id": key_id, "datakey_length": "256"})),
    )
    .await);
    let data =
        ok(call(&s, &b, Method::POST, &kms_b("encrypt-data"), Some(json!({"key_id": key_id, "plain_text": "b-data"})))
            .await);
    let sec = ok(call(
        &s,
        &b,
        Method::POST,
        &csms_b("secrets"),
        Some(json!({"name": "b-secret", "secret_string": "b-value"})),
    )
    .await);
    let secret_id = sec["secret"]["id"].as_str().unwrap().to_owned();
    ok(call(&s, &b, Method::POST, &csms_b("secrets/b-secret/versions"), Some(json!({"secret_string": "b-value-2"})))
        .await);
    ok(call(&s, &b, Method::PUT, &csms_b("secrets/b-secret/stages/B_STAGE"), Some(json!({"version_id": "v1"}))).await);
    for (tags, value) in
        [(csms_b(&format!("csms/{secret_id}/tags")), "b-tag-value"), (kms_b(&format!("{key_id}/tags")), "v")]
    {
        ok(call(&s, &b, Method::POST, &tags, Some(json!({"tag": {"key": "b-tag-key", "value": value}}))).await);
    }
    ok(call(&s, &b, Method::POST, &kms_b("aliases"), Some(json!({"key_id": key_id, "alias": "alias/b-alias"}))).await);
    ok(call(&s, &b, Method::POST, &kms_b("enable-key-rotation"), Some(json!({"key_id": key_id}))).await);
    // B's grant of its key to a third party, retirable by B's user.
    let b_grant = ok(call(
        &s,
        &b,
        Method::POST,
        &kms_b("create-grant"),
        Some(json!({"key_id": key_id, "grantee_principal": "third0party", "operations": ["describe-key"],
                    "retiring_principal": user.id})),
    )
    .await);
    let b_grant_id = b_grant["grant_id"].as_str().unwrap().to_owned();
    // B's event, which its secrets fire (records), and a database secret
    // rotated once (a task, failed).
    ok(call(
        &s,
        &b,
        Method::POST,
        &csms_b("csms/events"),
        Some(json!({"name": "b-event",
        "event_types": ["SECRET_VERSION_CREATED", "SECRET_ROTATED_FAILED"], "state": "ENABLED",
        "notification": {"target_type": "SMN", "target_id": "urn:smn:b", "target_name": "b-topic"}})),
    )
    .await);
    ok(call(
        &s,
        &b,
        Method::POST,
        &csms_b("secrets"),
        Some(json!({"name": "b-rds",
        "secret_string": json!({"username": "b-user", "password": "b-pass"}).to_string(),
        "secret_type": "RDS-FG", "rotation_config": r#"{"InstanceId":"b"}"#, "event_subscriptions": ["b-event"]})),
    )
    .await);
    // (It fails: B registered no instance "b". A failed rotation is a
    // task too, and what matters here is that only B sees it.)
    let rotated = ok(call(&s, &b, Method::POST, &csms_b("secrets/b-rds/rotate"), None).await);
    assert!(rotated["rotation_task_id"].is_string(), "{rotated}");
    let backup = ok(call(&s, &b, Method::POST, &csms_b("secrets/b-secret/backup"), None).await);
    let blob = backup["secret_blob"].as_str().unwrap().to_owned();
    let ids_b = Ids {
        key_id: key_id.clone(),
        datakey_cipher: dk["cipher_text"].as_str().unwrap().to_owned(),
        data_cipher: data["cipher_text"].as_str().unwrap().to_owned(),
        secret_name: "b-secret".into(),
        secret_id: secret_id.clone(),
        stage: "B_STAGE".into(),
        tag_key: "b-tag-key".into(),
        alias: "alias/b-alias".into(),
        grant_id: b_grant_id.clone(),
        event_name: "b-event".into(),
        user_id: user.id.clone(),
    };
    // Each name marker holds a letter beyond f (the ids are whole), so no random UUID or hex id can
    // contain it by chance ("b-db" once matched a key id's "…b76b-db2d…").
    let never_shown = [
        key_id.as_str(),
        "b-key",
        "b-secret",
        secret_id.as_str(),
        "b-tag-key",
        "B_STAGE",
        "b-alias",
        "third0party",
        b_grant_id.as_str(),
        "b-event",
        "b-rds",
        user.id.as_str(),
        "b-topic",
        "b-user",
        &b.project,
        &domain.id,
    ];

    let routes = gateway::api_routes();
    assert!(routes.len() >= 45, "{routes:?}");
    for route in &routes {
        let what = format!("{} {}", route.method, route.path);
        let absent = Ids::absent(&ids_b);
        let (path_b, body_b) = request(&route.method, route.path, &ids_b);
        let (path_x, body_x) = request(&route.method, route.path, &absent);
        let (body_b, body_x) = if route.path.ends_with("/secrets/restore") && route.method == Method::POST {
            // A's restore of B's backup, against a blob of nobody's.
            let mut other = base64::engine::general_purpose::STANDARD.decode(&blob).unwrap_or_default();
            if let Some(byte) = other.last_mut() {
                *byte ^= 1;
            }
            (
                Some(json!({"secret_blob": blob})),
                Some(json!({"secret_blob": base64::engine::general_purpose::STANDARD.encode(other)})),
            )
        } else {
            (body_b, body_x)
        };

        // 1. A on B's project path: forbidden, whatever it names.
        if route.path.contains("{project_id}") {
            let on_b =
                call(&s, &a, route.method.clone(), &path_b.replace("{project_id}", &b.project), body_b.clone()).await;
            assert_eq!(on_b.status, 403, "{what} on B's project path: {:?}", on_b.body);
        }
        // 2. A on its own path, naming B's resources.
        let mine = |p: &str| p.replace("{project_id}", &a.project);
        let named_b = call(&s, &a, route.method.clone(), &mine(&path_b), body_b).await;
        let text = named_b.body.to_string();
        for shown in never_shown {
            assert!(!text.contains(shown), "{what} shows B's {shown}: {text}");
        }
        if is_listing(&route.method, route.path) {
            assert!(named_b.status.is_success(), "{what}: {:?}", named_b.body);
            continue;
        }
        let named_x = call(&s, &a, route.method.clone(), &mine(&path_x), body_x).await;
        assert!(!named_b.status.is_success(), "{what} succeeded on B's resource: {text}");
        let code = |r: &Reply| {
            let inner = if r.body["error"].is_object() { &r.body["error"] } else { &r.body };
            inner["error_code"].clone()
        };
        assert_eq!(
            (named_b.status, code(&named_b)),
            (named_x.status, code(&named_x)),
            "{what}: B's resource answers differently from an absent one: {text} vs {}",
            named_x.body
        );
    }

    // B's alias names nothing for A: by alias and by URN, the key does not exist.
    for name in ["alias/b-alias".to_owned(), format!("kms:local-1:{}:alias:alias/b-alias", domain.id)] {
        let r =
            call(&s, &a, Method::POST, &format!("/v1.0/{}/kms/describe-key", a.project), Some(json!({"key_id": name})))
                .await;
        assert_eq!(r.status, 404, "{:?}", r.body);
    }

    granted_operations_and_nothing_else(&s, &a, &b, &user.id).await;

    // B's resources are as B left them.
    let described = ok(call(&s, &b, Method::POST, &kms_b("describe-key"), Some(json!({"key_id": key_id}))).await);
    assert_eq!(
        (described["key_info"]["key_state"].as_str(), described["key_info"]["key_alias"].as_str()),
        (Some("2"), Some("b-key"))
    );
    let opened =
        ok(call(&s, &b, Method::POST, &kms_b("decrypt-data"), Some(json!({"cipher_text": ids_b.data_cipher}))).await);
    assert_eq!(opened["plain_text"], "b-data");
    let shown = ok(call(&s, &b, Method::GET, &csms_b("secrets/b-secret"), None).await);
    assert_eq!(shown["secret"]["state"], "ENABLED");
    assert_ne!(shown["secret"]["description"], "stolen");
    let v1 = ok(call(&s, &b, Method::GET, &csms_b("secrets/b-secret/versions/v1"), None).await);
    assert_eq!(v1["version"]["secret_string"], "b-value");
    let versions = ok(call(&s, &b, Method::GET, &csms_b("secrets/b-secret/versions"), None).await);
    assert_eq!(versions["version_metadatas"].as_array().unwrap().len(), 2, "{versions}");
    ok(call(&s, &b, Method::GET, &csms_b("secrets/b-secret/stages/B_STAGE"), None).await);
    let by_alias =
        ok(call(&s, &b, Method::POST, &kms_b("describe-key"), Some(json!({"key_id": "alias/b-alias"}))).await);
    assert_eq!(by_alias["key_info"]["key_id"], key_id.as_str());
    let rotation =
        ok(call(&s, &b, Method::POST, &kms_b("get-key-rotation-status"), Some(json!({"key_id": key_id}))).await);
    assert_eq!(
        (rotation["key_rotation_enabled"].as_bool(), rotation["number_of_rotations"].as_u64()),
        (Some(true), Some(0))
    );
    let grants = ok(call(&s, &b, Method::POST, &kms_b("list-grants"), Some(json!({"key_id": key_id}))).await);
    assert_eq!(grants["grants"][0]["grant_id"], b_grant_id.as_str(), "{grants}");
    let key_tags = ok(call(&s, &b, Method::GET, &kms_b(&format!("{key_id}/tags")), None).await);
    assert_eq!(key_tags["tags"], json!([{"key": "b-tag-key", "value": "v"}]), "{key_tags}");
    let event = ok(call(&s, &b, Method::GET, &csms_b("csms/events/b-event"), None).await);
    assert_eq!(event["event"]["state"], "ENABLED", "{event}");
    let tasks = ok(call(&s, &b, Method::GET, &csms_b("csms/tasks?secret_name=b-rds"), None).await);
    assert_eq!(tasks["total"], 1, "{tasks}");
    let records = ok(call(&s, &b, Method::GET, &csms_b("csms/notification-records"), None).await);
    assert!(records["records"].as_array().unwrap().len() >= 2, "{records}");
    let tags = ok(call(&s, &b, Method::GET, &csms_b(&format!("csms/{secret_id}/tags")), None).await);
    assert_eq!(tags["tags"].as_array().unwrap().len(), 1, "{tags}");
    assert_eq!(tags["tags"][0]["key"], "b-tag-key");
    s.stack.stop().await.unwrap();
}

/// A grants B's user three operations on one key. Through its own project,
/// B can do exactly those with that key; every other KMS operation on it,
/// and every operation on A's other key, answers as for a key that does
/// not exist. Revoked, the grant opens nothing (within the second a
/// disable takes).
async fn granted_operations_and_nothing_else(s: &TestStack, a: &Tenant, b: &Tenant, b_user: &str) {
    let kms = |t: &Tenant, op: &str| format!("/v1.0/{}/kms/{op}", t.project);
    let ok = |r: Reply| {
        assert!(r.status.is_success(), "{:?}", r.body);
        r.body
    };
    let new_key = |alias: &'static str| async move {
        let created =
            ok(call(s, a, Method::POST, &kms(a, "create-key"), Some(json!({"key_alias": unique(alias)}))).await);
        created["key_info"]["key_id"].as_str().unwrap().to_owned()
    };
    let (granted, other) = (new_key("granted").await, new_key("not-granted").await);
    let ids_of = |key_id: String| async move {
        let dk = ok(call(s, a, Method::POST, &kms(a, "create-datakey"), Some(json!({"key_id": key_id}))).await);
        let data =
            ok(call(s, a, Method::POST, &kms(a, "encrypt-data"), Some(json!({"key_id": key_id, "plain_text": "a"})))
                .await);
        Ids {
            key_id,
            datakey_cipher: dk["cipher_text"].as_str().unwrap().to_owned(),
            data_cipher: data["cipher_text"].as_str().unwrap().to_owned(),
            secret_name: "none".into(),
            secret_id: uuid::Uuid::new_v4().to_string(),
            stage: "NONE".into(),
            tag_key: "none".into(),
            alias: "alias/none".into(),
            grant_id: hex::encode([0x11; 32]),
            event_name: "none".into(),
            user_id: "0".repeat(32),
        }
    };
    let (ids_granted, ids_other) = (ids_of(granted.clone()).await, ids_of(other.clone()).await);
    let allowed = ["describe-key", "encrypt-data", "decrypt-data"];
    let grant = ok(call(
        s,
        a,
        Method::POST,
        &kms(a, "create-grant"),
        Some(json!({"key_id": granted, "grantee_principal": b_user, "operations": allowed})),
    )
    .await);
    let grant_id = grant["grant_id"].as_str().unwrap().to_owned();

    let kms_routes: Vec<_> = gateway::api_routes().into_iter().filter(|r| r.path.starts_with("/v1.0/")).collect();
    for route in &kms_routes {
        let what = format!("{} {}", route.method, route.path);
        let op = route.path.rsplit('/').next().unwrap();
        let on_b = |p: &str| p.replace("{project_id}", &b.project);
        let (path_x, body_x) = request(&route.method, route.path, &Ids::absent(&ids_other));
        let absent = call(s, b, route.method.clone(), &on_b(&path_x), body_x).await;
        // re-encrypt of a data blob needs decrypt-data on its key and
        // encrypt-data on the destination: this grant gives both.
        let granted_op = allowed.contains(&op) || op == "re-encrypt";
        for (ids, may) in [(&ids_granted, granted_op), (&ids_other, false)] {
            let (path, body) = request(&route.method, route.path, ids);
            let r = call(s, b, route.method.clone(), &on_b(&path), body).await;
            if is_listing(&route.method, route.path) {
                assert!(!r.body.to_string().contains(&ids.key_id), "{what} lists A's key to B: {:?}", r.body);
                continue;
            }
            if may {
                assert!(r.status.is_success(), "{what}: the grant should allow it: {:?}", r.body);
                continue;
            }
            let code = |r: &Reply| {
                let inner = if r.body["error"].is_object() { &r.body["error"] } else { &r.body };
                inner["error_code"].clone()
            };
            assert!(!r.status.is_success(), "{what} on A's key {} succeeded for B: {:?}", ids.key_id, r.body);
            assert_eq!(
                (r.status, code(&r)),
                (absent.status, code(&absent)),
                "{what}: A's key answers B differently from an absent one: {:?} vs {:?}",
                r.body,
                absent.body
            );
        }
    }
    // Retiring: a grantee without retire-grant is refused (it knows the
    // grant, so it learns nothing new); one allowed to retire may.
    let retire = |grant_id: &str| {
        let body = json!({"key_id": granted, "grant_id": grant_id});
        async move { call(s, b, Method::POST, &kms(b, "retire-grant"), Some(body)).await }
    };
    let refused = retire(&grant_id).await;
    assert_eq!((refused.status.as_u16(), refused.body["error"]["error_code"].as_str()), (403, Some("KMS.0306")));
    let retirable = ok(call(
        s,
        a,
        Method::POST,
        &kms(a, "create-grant"),
        Some(json!({"key_id": granted, "grantee_principal": b_user, "operations": ["describe-key", "retire-grant"]})),
    )
    .await);
    ok(retire(retirable["grant_id"].as_str().unwrap()).await);

    // B's use leaves A's key as it was, and the grant as A made it.
    let described = ok(call(s, a, Method::POST, &kms(a, "describe-key"), Some(json!({"key_id": granted}))).await);
    assert_eq!(described["key_info"]["key_state"], "2");

    ok(call(s, a, Method::POST, &kms(a, "revoke-grant"), Some(json!({"key_id": granted, "grant_id": grant_id}))).await);
    let started = std::time::Instant::now();
    loop {
        let r = call(s, b, Method::POST, &kms(b, "describe-key"), Some(json!({"key_id": granted}))).await;
        let used =
            call(s, b, Method::POST, &kms(b, "encrypt-data"), Some(json!({"key_id": granted, "plain_text": "x"})))
                .await;
        if r.status == 404 && used.status == 404 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "the revoked grant still works: {:?}",
            used.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

on_both_backends!(isolation, "isolation suite on Postgres");
