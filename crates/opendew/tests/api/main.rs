//! The documented create-key and create-secret contract, end to end:
//! real HTTP into the gateway, real gRPC between the services, a real
//! database (SQLite always, Postgres when a test server is configured).

#[path = "../support/mod.rs"]
mod support;

mod access;
mod crypto;
mod keys;
mod secrets;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Sign, TestStack};

use access::{authentication, grpc_health_and_anonymous_calls, no_plaintext_at_rest};
use crypto::{
    asymmetric_keys, data_keys_and_data, hot_path_makes_no_database_round_trips, mac_keys_match_pythons_hmac,
    no_key_pair_for_a_refused_key,
};
use keys::{concurrent_alias, concurrent_first_default_key, key_quota_and_state_filter, kms_contract, kms_lifecycle};
use secrets::csms_contract;

on_both_backends!(suite, "opendew api suite on Postgres");

async fn suite(db: Db) {
    let s = TestStack::start(db).await;
    grpc_health_and_anonymous_calls(&s).await;
    let alive = s.raw(Method::GET, "/healthz", &[], vec![], Sign::Not).await;
    assert_eq!((alive.status.as_u16(), alive.body["status"].as_str()), (200, Some("alive")));
    let ready = s.raw(Method::GET, "/readyz", &[], vec![], Sign::Not).await;
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["services"]["kms.v1.KeyManagementService"], "SERVING");
    assert_eq!(ready.body["services"]["csms.v1.SecretsManagerService"], "SERVING");
    concurrent_first_default_key(&s).await;
    concurrent_alias(&s).await;
    let key_id = kms_contract(&s).await;
    kms_lifecycle(&s).await;
    data_keys_and_data(&s, &key_id).await;
    hot_path_makes_no_database_round_trips(&s, &key_id).await;
    csms_contract(&s, &key_id).await;
    authentication(&s).await;
    mac_keys_match_pythons_hmac(&s).await;
    asymmetric_keys(&s).await;
    key_quota_and_state_filter(&s).await;
    no_key_pair_for_a_refused_key(&s).await;
    let secret_values = no_plaintext_at_rest(&s, &key_id).await;
    metrics_endpoint().await;
    let before_restart = kms(&s, "create-datakey", json!({"key_id": key_id})).await;
    let data_before = kms(&s, "encrypt-data", json!({"key_id": key_id, "plain_text": "written before"})).await;
    // A restart keeps every key and secret readable, and old ciphertexts open.
    let s = s.restart().await;
    let d = kms(
        &s,
        "decrypt-datakey",
        json!({"key_id": key_id, "cipher_text": before_restart.body["cipher_text"], "datakey_cipher_length": "32"}),
    )
    .await;
    assert_eq!(d.body["data_key"], before_restart.body["plain_text"], "{:?}", d.body);
    let d = kms(&s, "decrypt-data", json!({"cipher_text": data_before.body["cipher_text"]})).await;
    assert_eq!(d.body["plain_text"], "written before");
    let described = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": key_id}))).await;
    assert_eq!(described.status, 200, "{:?}", described.body);
    for (name, value) in secret_values {
        let read = s.call(Method::GET, &s.csms(&format!("secrets/{name}/versions/latest")), None).await;
        assert_eq!(read.body["version"]["secret_string"], value, "{:?}", read.body);
    }
    s.stack.stop().await.unwrap();
}

pub(crate) async fn kms(s: &TestStack, op: &str, body: Value) -> support::Reply {
    s.call(Method::POST, &s.kms(op), Some(&body)).await
}

/// A gateway whose services are unreachable is alive but not ready.
#[tokio::test]
async fn readiness_follows_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let key = dir.path().join("identity.key");
    identity::seal::SecretSealer::ensure_key_file(&key).unwrap();
    let mut config = gateway::GatewayConfig::plaintext(
        "127.0.0.1:0".parse().unwrap(),
        format!("http://{closed}"),
        format!("http://{closed}"),
        common::db::DatabaseUrl::sqlite_file(&dir.path().join("iam.db")),
        key,
    );
    config.internal_tls = common::grpc::InternalTlsConfig::plaintext();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = gateway::start(config, shutdown.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let alive = client.get(format!("http://{}/healthz", running.addr)).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    let ready = client.get(format!("http://{}/readyz", running.addr)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["services"]["kms.v1.KeyManagementService"], "UNKNOWN");
    assert_eq!(body["services"]["identity-store"], "SERVING");
    shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

/// The Prometheus endpoint shows requests by route and status, latency,
/// cache hits, database round trips and authentication failures.
async fn metrics_endpoint() {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let addr = common::metrics::serve("127.0.0.1:0".parse().unwrap(), shutdown.clone()).await.unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    for expected in [
        "opendew_http_requests_total{method=\"POST\",route=\"/v1.0/{project_id}/kms/create-key\",status=\"200\"}",
        "opendew_grpc_requests_total{method=\"/kms.v1.KeyManagementService/CreateKey\",code=\"Ok\"}",
        "opendew_grpc_request_duration_seconds_bucket{method=\"/csms.v1.SecretsManagerService/CreateSecret\"",
        "opendew_db_pool_connections{service=\"kms\",state=\"idle\"}",
        "opendew_http_request_duration_seconds_bucket{route=\"/v1.0/{project_id}/kms/create-datakey\"",
        "opendew_kms_key_cache_hits_total",
        "opendew_kms_db_round_trips_total",
        "opendew_auth_failures_total",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    shutdown.cancel();
}
