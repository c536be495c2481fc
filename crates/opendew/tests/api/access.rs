//! Authentication, anonymous gRPC, and what rests in the database.

use reqwest::Method;
use serde_json::json;

use super::support::{self, Sign, TestStack, assert_error, assert_types, unique};

pub(crate) async fn authentication(s: &TestStack) {
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
    // Inside KMS's path space an unknown operation is KMS's own error.
    let r = s.call(Method::POST, &s.kms("no-such-operation"), Some(&json!({}))).await;
    assert_error(&r, 400, "KMS.0201", true);
    let huge = vec![b' '; 12 * 1024 * 1024 + 1];
    let r = s.raw(Method::POST, &path, &json_ct, huge, Sign::Not).await;
    assert_error(&r, 413, "APIGW.0201", false);
    // Answered before the body was read: the connection is not reused (the
    // next request on it once failed with IncompleteMessage).
    assert_eq!(r.headers.get("connection").map(|v| v.to_str().unwrap()), Some("close"));

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

/// Each service reports SERVING through grpc.health.v1, and refuses a call
/// that carries no caller identity.
pub(crate) async fn grpc_health_and_anonymous_calls(s: &TestStack) {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    for (addr, service) in
        [(s.stack.kms, "kms.v1.KeyManagementService"), (s.stack.csms, "csms.v1.SecretsManagerService")]
    {
        let channel = s.operator_channel(addr);
        let mut health = HealthClient::new(channel);
        let status = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    let mut kms =
        proto::kms::v1::key_management_service_client::KeyManagementServiceClient::new(s.operator_channel(s.stack.kms));
    let anonymous = kms.list_keys(proto::kms::v1::ListKeysRequest::default()).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
}

/// The databases hold no secret value, password, SK or root key in plaintext.
pub(crate) async fn no_plaintext_at_rest(s: &TestStack, key_id: &str) -> Vec<(String, String)> {
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
    let identity_key = std::fs::read_to_string(s.dir.path().join("identity.key")).unwrap();
    for secret in [&s.account.sk, &s.account.password, &root_key.trim().to_owned(), &identity_key.trim().to_owned()] {
        assert!(!dump.contains(secret.as_str()), "a credential or the root key is stored in the database");
    }
    for value in ["s3cr3t-value", "AAEC/w=="] {
        assert!(!dump.contains(value));
    }
    values
}

pub(crate) fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
