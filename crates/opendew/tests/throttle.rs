//! A caller that keeps failing to authenticate is slowed down (429 with
//! Retry-After), per access key, per login name and per source address,
//! while callers that authenticate go on unaffected.

mod support;

use reqwest::Method;
use serde_json::json;
use support::{Db, Sign, TestStack};

#[tokio::test]
async fn failing_callers_are_slowed_and_others_are_not() {
    let s = TestStack::start(Db::Sqlite).await;
    let path = s.kms("gen-random");
    let body = serde_json::to_vec(&json!({"random_data_length": "64"})).unwrap();
    let headers = [("content-type", "application/json")];
    let good = || s.raw(Method::POST, &path, &headers, body.clone(), Sign::With(&s.account.ak, &s.account.sk, 0));
    let wrong_sk = || s.raw(Method::POST, &path, &headers, body.clone(), Sign::With(&s.account.ak, "not-the-sk", 0));
    let unknown = || s.raw(Method::POST, &path, &headers, body.clone(), Sign::With("ODEWNOSUCHKEY0000000", "x", 0));

    // An unknown AK: ten failures, then 429 instead of 401.
    for _ in 0..10 {
        assert_eq!(unknown().await.status, 401);
    }
    let slowed = unknown().await;
    assert_eq!(slowed.status, 429, "{:?}", slowed.body);
    assert_eq!(slowed.body["error_code"], "APIGW.0308");
    assert!(slowed.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // The real key, from the same address, is not slowed.
    assert_eq!(good().await.status, 200);

    // Guessing a login's password: past its bucket, every attempt on the
    // name waits one failure's drain time before its check, even with the
    // right password (which then passes: refusing it let anyone who knew
    // the name lock its owner out, issue #40); another login is not slowed.
    let login = |user: &str, password: &str| {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "password": password, "domain": {"name": s.account.domain_name}}}},
            "scope": {"project": {"id": s.account.project_id}}}});
        let url = format!("{}/v3/auth/tokens", s.base);
        async move { reqwest::Client::new().post(url).json(&body).send().await.unwrap().status().as_u16() }
    };
    for _ in 0..10 {
        assert_eq!(login("mallory", "guess-guess").await, 401);
    }
    let started = std::time::Instant::now();
    assert_eq!(login("mallory", "guess-guess").await, 401);
    assert!(started.elapsed() >= std::time::Duration::from_secs(5), "the eleventh guess waited");
    let started = std::time::Instant::now();
    assert_eq!(login(&s.account.user, &s.account.password).await, 201, "another login is not slowed");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // A wrong SK for the real AK fills that AK's bucket: further wrong
    // signatures get 429. The owner's valid signatures still pass: before,
    // they got 429 too, so anyone who knew an AK could lock its owner out
    // (issue #15, finding 5).
    for _ in 0..10 {
        assert_eq!(wrong_sk().await.status, 401);
    }
    assert_eq!(wrong_sk().await.status, 429);
    assert_eq!(good().await.status, 200);

    // Finally the address: past its larger bucket, everything from it waits.
    let mut refused = 0;
    for i in 0..40 {
        let ak = format!("ODEWSPRAY{i:011}");
        let r = s.raw(Method::POST, &path, &headers, body.clone(), Sign::With(&ak, "x", 0)).await;
        refused += usize::from(r.status == 429);
    }
    assert!(refused > 0, "the address was never slowed");
    // A valid signature from that address (one proxy in front of many
    // clients) still passes.
    assert_eq!(good().await.status, 200);
    s.stack.stop().await.unwrap();
}
