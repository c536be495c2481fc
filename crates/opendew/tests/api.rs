//! The documented create-key and create-secret contract, end to end:
//! real HTTP into the gateway, real gRPC between the services, a real
//! database (SQLite always, Postgres when a test server is configured).

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Sign, TestStack, assert_error, assert_types};

const KEY_DETAILS_TYPES: &[(&str, &str)] = &[
    ("key_id", "string"),
    ("domain_id", "string"),
    ("key_alias", "string"),
    ("realm", "string"),
    ("key_spec", "string"),
    ("key_usage", "string"),
    ("key_description", "string"),
    ("creation_date", "string"),
    ("scheduled_deletion_date", "string"),
    ("key_state", "string"),
    ("default_key_flag", "string"),
    ("key_type", "string"),
    ("expiration_time", "string"),
    ("origin", "string"),
    ("key_rotation_enabled", "string"),
    ("sys_enterprise_project_id", "string"),
    ("keystore_id", "string"),
];

const SECRET_TYPES: &[(&str, &str)] = &[
    ("id", "string"),
    ("name", "string"),
    ("state", "string"),
    ("kms_key_id", "string"),
    ("description", "string"),
    ("create_time", "int"),
    ("update_time", "int"),
    ("scheduled_delete_time", "null"),
    ("secret_type", "string"),
    ("auto_rotation", "bool"),
    ("event_subscriptions", "array"),
    ("enterprise_project_id", "string"),
];

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

#[tokio::test]
async fn sqlite() {
    suite(Db::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    let Some(db) = Db::postgres("opendew api suite on Postgres").await else {
        return;
    };
    suite(db).await;
}

async fn suite(db: Db) {
    let s = TestStack::start(db).await;
    grpc_health_and_anonymous_calls(&s).await;
    concurrent_first_default_key(&s).await;
    concurrent_alias(&s).await;
    let key_id = kms_contract(&s).await;
    csms_contract(&s, &key_id).await;
    authentication(&s).await;
    let secret_values = no_plaintext_at_rest(&s, &key_id).await;
    // A restart keeps every key and secret readable.
    let s = s.restart().await;
    let described = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": key_id}))).await;
    assert_eq!(described.status, 200, "{:?}", described.body);
    for (name, value) in secret_values {
        let read = s.call(Method::GET, &s.csms(&format!("secrets/{name}/versions/latest")), None).await;
        assert_eq!(read.body["version"]["secret_string"], value, "{:?}", read.body);
    }
    s.stack.stop().await.unwrap();
}

async fn list_all_keys(s: &TestStack) -> Vec<Value> {
    let r = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"key_spec": "ALL"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["key_details"].as_array().unwrap().clone()
}

/// Twenty concurrent first create-secret calls without `kms_key_id`
/// create exactly one `csms/default` key, which all of them use.
async fn concurrent_first_default_key(s: &TestStack) {
    let calls = (0..20).map(|i| {
        let body = json!({"name": format!("first-{i}"), "secret_string": format!("value-{i}")});
        async move { s.call(Method::POST, &s.csms("secrets"), Some(&body)).await }
    });
    let replies = futures::future::join_all(calls).await;
    let mut key_ids = std::collections::HashSet::new();
    for r in &replies {
        assert_eq!(r.status, 200, "{:?}", r.body);
        key_ids.insert(r.body["secret"]["kms_key_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(key_ids.len(), 1);
    let defaults: Vec<_> = list_all_keys(s).await.into_iter().filter(|k| k["key_alias"] == "csms/default").collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["default_key_flag"], "1");
    assert!(key_ids.contains(defaults[0]["key_id"].as_str().unwrap()));
}

/// Two concurrent create-key calls with one alias: exactly one succeeds.
async fn concurrent_alias(s: &TestStack) {
    let alias = unique("race");
    let body = json!({"key_alias": alias});
    let path = s.kms("create-key");
    let (a, b) = tokio::join!(s.call(Method::POST, &path, Some(&body)), s.call(Method::POST, &path, Some(&body)));
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 400], "{:?} {:?}", a.body, b.body);
    let loser = if a.status == 400 { &a } else { &b };
    assert_error(loser, 400, "KMS.1104", true);
    assert_eq!(list_all_keys(s).await.iter().filter(|k| k["key_alias"] == alias.as_str()).count(), 1);
}

async fn kms_contract(s: &TestStack) -> String {
    let alias = unique("orders");
    let created = s
        .call(Method::POST, &s.kms("create-key"), Some(&json!({"key_alias": alias, "key_description": "orders CMK"})))
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert!(created.headers.contains_key("x-request-id"));
    let info = &created.body["key_info"];
    assert_types(info, &[("key_id", "string"), ("domain_id", "string"), ("region_id", "string")]);
    assert_eq!(info["domain_id"], s.account.domain_id.as_str());
    let key_id = info["key_id"].as_str().unwrap().to_owned();

    let described = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": key_id}))).await;
    assert_eq!(described.status, 200);
    let details = &described.body["key_info"];
    assert_types(details, KEY_DETAILS_TYPES);
    assert_eq!(details["key_alias"], alias.as_str());
    assert_eq!(details["key_spec"], "AES_256");
    assert_eq!(details["key_usage"], "ENCRYPT_DECRYPT");
    assert_eq!(details["key_state"], "2");
    assert_eq!(details["default_key_flag"], "0");
    assert_eq!(details["origin"], "kms");
    assert_eq!(details["key_description"], "orders CMK");
    assert_eq!(details["creation_date"].as_str().unwrap().len(), 13);

    // Other specs and origins.
    let hmac = s
        .call(Method::POST, &s.kms("create-key"), Some(&json!({"key_alias": unique("mac"), "key_spec": "HMAC_256"})))
        .await;
    assert_eq!(hmac.status, 200, "{:?}", hmac.body);
    let ext = s
        .call(Method::POST, &s.kms("create-key"), Some(&json!({"key_alias": unique("ext"), "origin": "external"})))
        .await;
    assert_eq!(ext.status, 200, "{:?}", ext.body);
    let ext_id = ext.body["key_info"]["key_id"].as_str().unwrap();
    let ext_info = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": ext_id}))).await;
    assert_eq!(ext_info.body["key_info"]["key_state"], "5");
    assert_eq!(ext_info.body["key_info"]["origin"], "external");

    // list-keys: AES_256 only by default, everything with ALL; paging.
    let listed = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({}))).await;
    assert_types(
        &listed.body,
        &[
            ("keys", "array"),
            ("key_details", "array"),
            ("next_marker", "string"),
            ("truncated", "string"),
            ("total", "int"),
        ],
    );
    assert!(listed.body["key_details"].as_array().unwrap().iter().all(|k| k["key_spec"] == "AES_256"));
    let all_total = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"key_spec": "ALL"}))).await.body["total"]
        .as_u64()
        .unwrap();
    assert_eq!(all_total, listed.body["total"].as_u64().unwrap() + 1);
    let page =
        s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"limit": "1", "marker": "1", "key_spec": "ALL"}))).await;
    assert_eq!(page.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["truncated"], "true");
    assert_eq!(page.body["next_marker"], "2");
    for detail in page.body["key_details"].as_array().unwrap() {
        assert_types(detail, KEY_DETAILS_TYPES);
    }
    let numeric = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"limit": 1}))).await;
    assert_eq!(numeric.status, 200, "numbers are accepted where strings are documented");

    // Every documented error, and none of them writes anything.
    let before = list_all_keys(s).await.len();
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"key_alias": "bad alias!"}), 400, "KMS.1101"),
        (json!({"key_alias": "svc/default"}), 400, "KMS.1101"),
        (json!({"key_alias": "a".repeat(256)}), 400, "KMS.1101"),
        (json!({"key_alias": alias}), 400, "KMS.1104"),
        (json!({"key_alias": unique("d"), "key_description": "x".repeat(256)}), 400, "KMS.1103"),
        (json!({}), 400, "KMS.0204"),
        (json!({"key_alias": unique("s"), "key_spec": "AES_512"}), 400, "KMS.1110"),
        (json!({"key_alias": unique("s"), "key_usage": "SIGN_VERIFY"}), 400, "KMS.1115"),
        (json!({"key_alias": unique("s"), "key_spec": "EC_P256", "key_usage": "ENCRYPT_DECRYPT"}), 400, "KMS.1114"),
        (json!({"key_alias": unique("s"), "sequence": "short"}), 400, "KMS.0206"),
        (json!({"key_alias": ["not", "a", "string"]}), 400, "KMS.0202"),
        (json!({"key_alias": unique("s"), "origin": "cloud"}), 400, "KMS.0308"),
    ];
    for (body, status, code) in cases {
        let r = s.call(Method::POST, &s.kms("create-key"), Some(&body)).await;
        assert_error(&r, status, code, true);
    }
    let malformed = s
        .raw(
            Method::POST,
            &s.kms("create-key"),
            &[("content-type", "application/json")],
            b"{\"key_alias\":".to_vec(),
            Sign::With(&s.account.ak, &s.account.sk, 0),
        )
        .await;
    assert_error(&malformed, 400, "KMS.0202", true);
    let form = s
        .raw(
            Method::POST,
            &s.kms("create-key"),
            &[("content-type", "application/x-www-form-urlencoded")],
            b"key_alias=x".to_vec(),
            Sign::With(&s.account.ak, &s.account.sk, 0),
        )
        .await;
    assert_error(&form, 400, "KMS.0214", true);
    assert_eq!(list_all_keys(s).await.len(), before, "a refused create-key wrote something");

    let bad_id = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": "not-a-uuid"}))).await;
    assert_error(&bad_id, 400, "KMS.0205", true);
    let unknown =
        s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": uuid::Uuid::new_v4().to_string()}))).await;
    assert_error(&unknown, 404, "KMS.0207", true);
    let bad_limit = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"limit": "0"}))).await;
    assert_error(&bad_limit, 400, "KMS.1601", true);
    let bad_marker = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"marker": "-1"}))).await;
    assert_error(&bad_marker, 400, "KMS.1602", true);
    let wrong_method = s.call(Method::GET, &s.kms("create-key"), None).await;
    assert_error(&wrong_method, 405, "KMS.0215", true);
    key_id
}

async fn csms_contract(s: &TestStack, key_id: &str) {
    let name = unique("db.password");
    let created = s
        .call(
            Method::POST,
            &s.csms("secrets"),
            Some(
                &json!({"name": name, "secret_string": "s3cr3t-value", "kms_key_id": key_id, "description": "orders"}),
            ),
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let secret = &created.body["secret"];
    assert_types(secret, SECRET_TYPES);
    assert_eq!(secret["state"], "ENABLED");
    assert_eq!(secret["kms_key_id"], key_id);
    assert_eq!(secret["create_time"].as_i64().unwrap().to_string().len(), 13);

    let shown = s.call(Method::GET, &s.csms(&format!("secrets/{name}")), None).await;
    assert_eq!(shown.status, 200);
    assert_eq!(&shown.body["secret"], secret);
    assert!(shown.body["secret"].get("secret_string").is_none(), "show-secret never returns the value");

    for version in ["latest", "v1"] {
        let read = s.call(Method::GET, &s.csms(&format!("secrets/{name}/versions/{version}")), None).await;
        assert_eq!(read.status, 200, "{:?}", read.body);
        let v = &read.body["version"];
        assert_eq!(v["secret_string"], "s3cr3t-value");
        assert!(v.get("secret_binary").is_none());
        let meta = &v["version_metadata"];
        assert_types(
            meta,
            &[
                ("id", "string"),
                ("create_time", "int"),
                ("expire_time", "null"),
                ("kms_key_id", "string"),
                ("secret_name", "string"),
                ("version_stages", "array"),
            ],
        );
        assert_eq!(meta["id"], "v1");
        assert_eq!(meta["version_stages"], json!(["SYSCURRENT"]));
    }

    // Binary values come back exactly as sent.
    let bin = unique("bin");
    let r = s.call(Method::POST, &s.csms("secrets"), Some(&json!({"name": bin, "secret_binary": "AAEC/w=="}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let read = s.call(Method::GET, &s.csms(&format!("secrets/{bin}/versions/latest")), None).await;
    assert_eq!(read.body["version"]["secret_binary"], "AAEC/w==");
    assert!(read.body["version"].get("secret_string").is_none());

    // Documented errors, flat shape, nothing written.
    let big = "x".repeat(32 * 1024 + 1);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": unique("both"), "secret_string": "a", "secret_binary": "YQ=="}), "CSMS.0002"),
        (json!({"name": unique("neither")}), "CSMS.0002"),
        (json!({"name": unique("big"), "secret_string": big}), "CSMS.0002"),
        (json!({"name": "bad name", "secret_string": "a"}), "CSMS.0002"),
        (json!({"name": unique("desc"), "secret_string": "a", "description": "é".repeat(1025)}), "CSMS.0002"),
        (json!({"name": name, "secret_string": "a"}), "CSMS.0002"),
        (json!({"name": unique("bin"), "secret_binary": "not base64!"}), "CSMS.0002"),
        (json!({"name": unique("kid"), "secret_string": "a", "kms_key_id": "nope"}), "CSMS.0002"),
        (
            json!({"name": unique("kid"), "secret_string": "a", "kms_key_id": uuid::Uuid::new_v4().to_string()}),
            "CSMS.0401",
        ),
        (json!({"name": 42, "secret_string": "a"}), "CSMS.0002"),
    ];
    for (body, code) in cases {
        let r = s.call(Method::POST, &s.csms("secrets"), Some(&body)).await;
        assert_error(&r, 400, code, false);
        if let Some(n) = body["name"].as_str().filter(|n| *n != name) {
            let gone = s.call(Method::GET, &s.csms(&format!("secrets/{n}")), None).await;
            assert_error(&gone, 400, "CSMS.0106", false);
        }
    }
    let exactly_max = s
        .call(
            Method::POST,
            &s.csms("secrets"),
            Some(&json!({"name": unique("max"), "secret_string": "x".repeat(32 * 1024)})),
        )
        .await;
    assert_eq!(exactly_max.status, 200, "{:?}", exactly_max.body);
    let malformed = s
        .raw(
            Method::POST,
            &s.csms("secrets"),
            &[("content-type", "application/json")],
            b"[1,2".to_vec(),
            Sign::With(&s.account.ak, &s.account.sk, 0),
        )
        .await;
    assert_error(&malformed, 400, "CSMS.0004", false);
    let missing = s.call(Method::GET, &s.csms("secrets/does-not-exist"), None).await;
    assert_error(&missing, 400, "CSMS.0106", false);
    let no_version = s.call(Method::GET, &s.csms(&format!("secrets/{name}/versions/v9")), None).await;
    assert_error(&no_version, 400, "CSMS.0005", false);
}

async fn authentication(s: &TestStack) {
    let path = s.kms("list-keys");
    let body = b"{}".to_vec();
    let json_ct = [("content-type", "application/json")];
    let gateway_401 = |r: &support::Reply| {
        assert_error(r, 401, "APIGW.0301", false);
        assert_eq!(r.body["request_id"].as_str().unwrap(), r.headers["x-request-id"].to_str().unwrap());
    };
    gateway_401(&s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::Not).await);
    gateway_401(&s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::With(&s.account.ak, "wrong-sk", 0)).await);
    gateway_401(&s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::With("UNKNOWNAK", &s.account.sk, 0)).await);
    gateway_401(
        &s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::With(&s.account.ak, &s.account.sk, 16 * 60)).await,
    );
    gateway_401(
        &s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::With(&s.account.ak, &s.account.sk, -16 * 60)).await,
    );
    let ok =
        s.raw(Method::POST, &path, &json_ct, body.clone(), Sign::With(&s.account.ak, &s.account.sk, 14 * 60)).await;
    assert_eq!(ok.status, 200, "14 minutes of skew are accepted");

    // A valid caller on another project's path.
    let other = "f".repeat(32);
    let r = s
        .raw(
            Method::POST,
            &format!("/v1.0/{other}/kms/list-keys"),
            &[("content-type", "application/json"), ("x-project-id", &other)],
            body.clone(),
            Sign::With(&s.account.ak, &s.account.sk, 0),
        )
        .await;
    assert_error(&r, 403, "KMS.0305", true);
    let r = s
        .raw(
            Method::GET,
            &format!("/v1/{other}/secrets/x"),
            &[("content-type", "application/json"), ("x-project-id", &other)],
            vec![],
            Sign::With(&s.account.ak, &s.account.sk, 0),
        )
        .await;
    assert_error(&r, 403, "CSMS.0302", false);

    // Unknown route and oversized body.
    let r = s.call(Method::GET, "/v1.0/nope", None).await;
    assert_error(&r, 404, "APIGW.0101", false);
    let huge = vec![b' '; 12 * 1024 * 1024 + 1];
    let r = s.raw(Method::POST, &path, &json_ct, huge, Sign::Not).await;
    assert_error(&r, 413, "APIGW.0201", false);

    // Token authentication.
    let login = |password: &str| json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": s.account.user, "password": password, "domain": {"name": s.account.domain_name}}}}, "scope": {"project": {"id": s.account.project_id}}}});
    let r = s
        .raw(
            Method::POST,
            "/v3/auth/tokens?nocatalog=true",
            &json_ct,
            serde_json::to_vec(&login(&s.account.password)).unwrap(),
            Sign::Not,
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.headers["x-subject-token"].to_str().unwrap().to_owned();
    assert!(token.len() >= 32);
    assert_types(
        &r.body["token"],
        &[
            ("expires_at", "string"),
            ("issued_at", "string"),
            ("methods", "array"),
            ("user", "object"),
            ("project", "object"),
            ("roles", "array"),
        ],
    );
    assert_eq!(r.body["token"]["project"]["id"], s.account.project_id.as_str());
    let with_token = s
        .raw(
            Method::POST,
            &s.kms("create-key"),
            &[("content-type", "application/json"), ("x-auth-token", &token)],
            serde_json::to_vec(&json!({"key_alias": unique("tok")})).unwrap(),
            Sign::Not,
        )
        .await;
    assert_eq!(with_token.status, 200, "{:?}", with_token.body);
    let tampered = format!("{token}x");
    gateway_401(
        &s.raw(
            Method::POST,
            &path,
            &[("content-type", "application/json"), ("x-auth-token", &tampered)],
            body.clone(),
            Sign::Not,
        )
        .await,
    );
    let r =
        s.raw(Method::POST, "/v3/auth/tokens", &json_ct, serde_json::to_vec(&login("wrong")).unwrap(), Sign::Not).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["error"]["code"], 401);
}

/// The databases hold no secret value, password, SK or root key in plaintext.
async fn no_plaintext_at_rest(s: &TestStack, key_id: &str) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for kms_key in [None, Some(key_id)] {
        let name = unique("plain");
        let value = format!("PLAINTEXT-MARKER-{}", uuid::Uuid::new_v4().simple());
        let mut body = json!({"name": name, "secret_string": value});
        if let Some(k) = kms_key {
            body["kms_key_id"] = json!(k);
        }
        let r = s.call(Method::POST, &s.csms("secrets"), Some(&body)).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        values.push((name, value));
    }
    let dump = s.database_dump().await;
    let root_key = std::fs::read_to_string(s.dir.path().join("root.key")).unwrap();
    for (_, value) in &values {
        assert!(!dump.contains(value.as_str()), "a secret value is stored in plaintext");
        assert!(!dump.contains(&hex_of(value)), "a secret value is stored as plain hex");
    }
    for secret in [&s.account.sk, &s.account.password, &root_key.trim().to_owned()] {
        assert!(!dump.contains(secret.as_str()), "a credential or the root key is stored in the database");
    }
    for value in ["s3cr3t-value", "AAEC/w=="] {
        assert!(!dump.contains(value));
    }
    values
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Each service reports SERVING through grpc.health.v1, and refuses a call
/// that carries no caller identity.
async fn grpc_health_and_anonymous_calls(s: &TestStack) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    for (addr, service) in
        [(s.stack.kms, "kms.v1.KeyManagementService"), (s.stack.csms, "csms.v1.SecretsManagerService")]
    {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
        let mut health = HealthClient::new(channel);
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    let mut kms = proto::kms::v1::key_management_service_client::KeyManagementServiceClient::connect(format!(
        "http://{}",
        s.stack.kms
    ))
    .await
    .unwrap();
    let anonymous = kms.list_keys(proto::kms::v1::ListKeysRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}
