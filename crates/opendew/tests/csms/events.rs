//! Events, their notification records, and the webhook sink.

use super::*;

pub(super) fn event_body(name: &str, types: &[&str]) -> Value {
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
pub(super) async fn events_fire_and_leave_records(s: &TestStack) {
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
    // The rotation acts on a real PostgreSQL role.
    let Some(pg) = test_support::postgres_url("rotation events on a PostgreSQL instance") else { return };
    let role = test_support::accounts::postgres_role(&pg, "first").await;
    let instance = unique("ev-pg");
    s.register_instance(&s.account.project_id, &instance, "postgresql", pg.expose()).await;
    let r = s.call(Method::POST, "/v1/csms/agencies", Some(&json!({"secret_type": "RDS-FG"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let db = unique("ev-db");
    let value = json!({"username": role, "password": "first"}).to_string();
    let config = json!({"InstanceId": instance, "SecretSubType": "SingleUser"}).to_string();
    let body = json!({"name": db, "secret_string": value, "secret_type": "RDS-FG", "event_subscriptions": ["all-types"],
                      "rotation_config": config});
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

/// Events have a quota per project (issue #34): past it create answers
/// `CSMS.0202` and stores nothing; another project still creates.
#[tokio::test]
async fn events_have_a_quota_per_project() {
    let jobs = csms_service::CsmsJobs { event_quota: 2, ..support::csms_jobs() };
    let s = TestStack::start_with_jobs(Db::Sqlite, jobs).await;
    for name in ["quota-1", "quota-2"] {
        assert_eq!(
            call(&s, Method::POST, "csms/events", Some(event_body(name, &["SECRET_DELETED"]))).await.status,
            200
        );
    }
    let refused = call(&s, Method::POST, "csms/events", Some(event_body("quota-3", &["SECRET_DELETED"]))).await;
    assert_error(&refused, 400, "CSMS.0202", true);
    assert!(refused.body.to_string().contains("event"), "{:?}", refused.body);
    assert_error(&call(&s, Method::GET, "csms/events/quota-3", None).await, 400, "CSMS.0005", true);
    let (_, _, project, ak, sk) = support::other_account(&s, "events-elsewhere", "another password").await;
    let body = Some(event_body("quota-1", &["SECRET_DELETED"]));
    let other = support::as_other(&s, &ak, &sk, &project, Method::POST, "csms/events", body).await;
    assert_eq!(other.status, 200, "another project has its own quota: {:?}", other.body);
    s.stack.stop().await.unwrap();
}
