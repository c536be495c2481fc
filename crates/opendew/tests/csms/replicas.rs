//! Caches on a second replica: reads and list pages follow changes within a second.

use super::*;

/// A second csms-service on the stack's Postgres and kms-service, its
/// change feed running until `feeds` is cancelled.
async fn second_replica(
    s: &TestStack, feeds: &tokio_util::sync::CancellationToken,
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

/// The stack on Postgres, a second csms-service replica on its database
/// (its change feed stops with the guard), and a caller of the stack's
/// account named `user`; `None` (skipped) without a test server.
async fn two_replicas(
    test: &str, user: &str,
) -> Option<(
    TestStack,
    csms_service::service::CsmsService,
    common::identity::CallerIdentity,
    tokio_util::sync::DropGuard,
)> {
    let db = Db::postgres(test).await?;
    let s = TestStack::start(db).await;
    let feeds = tokio_util::sync::CancellationToken::new();
    let other = second_replica(&s, &feeds).await;
    let caller = common::identity::CallerIdentity {
        domain_id: s.account.domain_id.clone(),
        project_id: s.account.project_id.clone(),
        user_id: user.into(),
        request_id: format!("{user}-test"),
    };
    Some((s, other, caller, feeds.drop_guard()))
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

    let Some((s, other, caller, _stop_feeds)) =
        two_replicas("read cache across csms-service replicas", "replica-reader").await
    else {
        return;
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

    let Some((s, other, caller, _stop_feeds)) =
        two_replicas("list pages across csms-service replicas", "replica-lister").await
    else {
        return;
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
