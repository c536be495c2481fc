//! The create-secret contract.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{TestStack, assert_error, assert_types, unique};

pub(crate) const SECRET_TYPES: &[(&str, &str)] = &[
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

pub(crate) async fn csms_contract(s: &TestStack, key_id: &str) {
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
    let malformed = s.signed_body(Method::POST, &s.csms("secrets"), "application/json", b"[1,2").await;
    assert_error(&malformed, 400, "CSMS.0004", false);
    let missing = s.call(Method::GET, &s.csms("secrets/does-not-exist"), None).await;
    assert_error(&missing, 400, "CSMS.0106", false);
    let no_version = s.call(Method::GET, &s.csms(&format!("secrets/{name}/versions/v9")), None).await;
    assert_error(&no_version, 400, "CSMS.0005", false);
}
