//! Key creation, the key contract, lifecycle and quotas.

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    kms,
    support::{self, Sign, TestStack, assert_error, assert_types, unique},
};

pub(crate) const KEY_DETAILS_TYPES: &[(&str, &str)] = &[
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

pub(crate) async fn list_all_keys(s: &TestStack) -> Vec<Value> {
    let r = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"key_spec": "ALL"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["key_details"].as_array().unwrap().clone()
}

/// Twenty concurrent first create-secret calls without `kms_key_id`
/// create exactly one `csms/default` key, which all of them use.
pub(crate) async fn concurrent_first_default_key(s: &TestStack) {
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
pub(crate) async fn concurrent_alias(s: &TestStack) {
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

pub(crate) async fn kms_contract(s: &TestStack) -> String {
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
        (json!({"key_alias": ""}), 400, "KMS.1101"),
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
    let malformed = s.signed_body(Method::POST, &s.kms("create-key"), "application/json", b"{\"key_alias\":").await;
    assert_error(&malformed, 400, "KMS.0202", true);
    let form =
        s.signed_body(Method::POST, &s.kms("create-key"), "application/x-www-form-urlencoded", b"key_alias=x").await;
    assert_error(&form, 400, "KMS.0214", true);
    assert_eq!(list_all_keys(s).await.len(), before, "a refused create-key wrote something");

    let bad_id = s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": "not-a-uuid"}))).await;
    assert_error(&bad_id, 400, "KMS.0205", true);
    let unknown =
        s.call(Method::POST, &s.kms("describe-key"), Some(&json!({"key_id": uuid::Uuid::new_v4().to_string()}))).await;
    assert_error(&unknown, 404, "KMS.0207", true);
    let bad_limit = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"limit": "0"}))).await;
    assert_error(&bad_limit, 400, "KMS.1601", true);
    // An offset past i64::MAX once became a negative OFFSET: a 500 on
    // Postgres (issue #15, finding 11).
    let huge = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"marker": u64::MAX.to_string()}))).await;
    assert_error(&huge, 400, "KMS.1602", true);
    let bad_marker = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"marker": "-1"}))).await;
    assert_error(&bad_marker, 400, "KMS.1602", true);
    let wrong_method = s.call(Method::GET, &s.kms("create-key"), None).await;
    assert_error(&wrong_method, 405, "KMS.0215", true);
    key_id
}

/// enable / disable / schedule / cancel / rename, with every state rule.
pub(crate) async fn kms_lifecycle(s: &TestStack) {
    let created = kms(s, "create-key", json!({"key_alias": unique("life")})).await;
    let id = created.body["key_info"]["key_id"].as_str().unwrap().to_owned();
    let key = json!({"key_id": id});
    let state = |r: &support::Reply| r.body["key_info"]["key_state"].as_str().unwrap_or_default().to_owned();

    assert_error(&kms(s, "enable-key", key.clone()).await, 400, "KMS.1201", true);
    let r = kms(s, "disable-key", key.clone()).await;
    assert_eq!((r.status.as_u16(), state(&r)), (200, "3".to_owned()), "{:?}", r.body);
    assert_types(&r.body["key_info"], &[("key_id", "string"), ("key_state", "string")]);
    assert_error(&kms(s, "disable-key", key.clone()).await, 400, "KMS.1301", true);
    let dk = kms(s, "create-datakey", key.clone()).await;
    assert_error(&dk, 400, "KMS.0209", true);
    let r = kms(s, "enable-key", key.clone()).await;
    assert_eq!(state(&r), "2");

    for days in ["6", "1097", "seven"] {
        assert_error(
            &kms(s, "schedule-key-deletion", json!({"key_id": id, "pending_days": days})).await,
            400,
            "KMS.1401",
            true,
        );
    }
    assert_error(&kms(s, "schedule-key-deletion", json!({"key_id": id})).await, 400, "KMS.0204", true);
    let r = kms(s, "schedule-key-deletion", json!({"key_id": id, "pending_days": "7"})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(&r.body, &[("key_id", "string"), ("key_state", "string")]);
    assert_eq!(r.body["key_state"], "4");
    let d = kms(s, "describe-key", key.clone()).await;
    let when: i64 = d.body["key_info"]["scheduled_deletion_date"].as_str().unwrap().parse().unwrap();
    let expected = common::now_ms() + 7 * 86_400_000;
    assert!((when - expected).abs() < 60_000, "deletion date is now + 7 days");
    assert_error(
        &kms(s, "schedule-key-deletion", json!({"key_id": id, "pending_days": "8"})).await,
        400,
        "KMS.1402",
        true,
    );
    assert_error(&kms(s, "create-datakey", key.clone()).await, 400, "KMS.0210", true);
    assert_error(
        &kms(s, "update-key-alias", json!({"key_id": id, "key_alias": unique("x")})).await,
        400,
        "KMS.0210",
        true,
    );
    assert_error(
        &kms(s, "update-key-description", json!({"key_id": id, "key_description": "x"})).await,
        400,
        "KMS.0210",
        true,
    );
    assert_error(&kms(s, "enable-key", key.clone()).await, 400, "KMS.1201", true);
    let r = kms(s, "cancel-key-deletion", key.clone()).await;
    assert_eq!((r.status.as_u16(), r.body["key_state"].as_str()), (200, Some("3")), "{:?}", r.body);
    let d = kms(s, "describe-key", key.clone()).await;
    assert_eq!(d.body["key_info"]["scheduled_deletion_date"], "");
    assert_error(&kms(s, "cancel-key-deletion", key.clone()).await, 400, "KMS.1501", true);
    kms(s, "enable-key", key.clone()).await;

    // Renames.
    let alias = unique("renamed");
    let r = kms(s, "update-key-alias", json!({"key_id": id, "key_alias": alias})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["key_info"], json!({"key_id": id, "key_alias": alias}));
    let other = kms(s, "create-key", json!({"key_alias": unique("other")})).await;
    let other_alias =
        kms(s, "describe-key", json!({"key_id": other.body["key_info"]["key_id"]})).await.body["key_info"]["key_alias"]
            .clone();
    assert_error(
        &kms(s, "update-key-alias", json!({"key_id": id, "key_alias": other_alias})).await,
        400,
        "KMS.1104",
        true,
    );
    assert_error(
        &kms(s, "update-key-alias", json!({"key_id": id, "key_alias": "x/default"})).await,
        400,
        "KMS.1101",
        true,
    );
    assert_error(&kms(s, "update-key-alias", json!({"key_id": id})).await, 400, "KMS.0204", true);
    let r = kms(s, "update-key-description", json!({"key_id": id, "key_description": "new words"})).await;
    assert_eq!(r.body["key_info"], json!({"key_id": id, "key_description": "new words"}));
    assert_error(
        &kms(s, "update-key-description", json!({"key_id": id, "key_description": "x".repeat(256)})).await,
        400,
        "KMS.1103",
        true,
    );

    // The csms/default key refuses every change.
    let default_id =
        list_all_keys(s).await.into_iter().find(|k| k["key_alias"] == "csms/default").unwrap()["key_id"].clone();
    for (op, extra) in [
        ("disable-key", json!({})),
        ("schedule-key-deletion", json!({"pending_days": "7"})),
        ("update-key-alias", json!({"key_alias": unique("d")})),
        ("update-key-description", json!({"key_description": "d"})),
    ] {
        let mut body = extra;
        body["key_id"] = default_id.clone();
        assert_error(&kms(s, op, body).await, 400, "KMS.0211", true);
    }
    let unknown = json!({"key_id": uuid::Uuid::new_v4().to_string()});
    for op in ["enable-key", "disable-key", "cancel-key-deletion"] {
        assert_error(&kms(s, op, unknown.clone()).await, 404, "KMS.0207", true);
        assert_error(&kms(s, op, json!({"key_id": "nope"})).await, 400, "KMS.0205", true);
        assert_error(&kms(s, op, json!({})).await, 400, "KMS.0204", true);
    }

    // Quotas and instances count user keys only.
    let q = s.call(Method::GET, &s.kms("user-quotas"), None).await;
    assert_eq!(q.status, 200, "{:?}", q.body);
    let resources = q.body["quotas"]["resources"].as_array().unwrap();
    let cmk = resources.iter().find(|r| r["type"] == "CMK").unwrap();
    assert_types(cmk, &[("type", "string"), ("used", "int"), ("quota", "int")]);
    assert_eq!(cmk["quota"], 100);
    let user_keys = list_all_keys(s).await.iter().filter(|k| k["default_key_flag"] == "0").count();
    assert_eq!(cmk["used"].as_u64().unwrap() as usize, user_keys);
    let i = s.call(Method::GET, &s.kms("user-instances"), None).await;
    assert_eq!(i.body, json!({"instance_num": user_keys}));

    // Version documents need no credentials.
    let v = s.raw(Method::GET, "/", &[], vec![], Sign::Not).await;
    assert_eq!(v.body["versions"][0]["id"], "v1.0");
    assert_types(
        &v.body["versions"][0],
        &[
            ("id", "string"),
            ("links", "array"),
            ("version", "string"),
            ("status", "string"),
            ("updated", "string"),
            ("min_version", "string"),
        ],
    );
    let v = s.raw(Method::GET, "/v1.0", &[], vec![], Sign::Not).await;
    assert_eq!(v.body["version"]["status"], "CURRENT");
    assert_error(&s.raw(Method::GET, "/v9.9", &[], vec![], Sign::Not).await, 404, "KMS.0201", true);
}

/// The key quota (100, default keys excluded) and the list-keys state filter.
pub(crate) async fn key_quota_and_state_filter(s: &TestStack) {
    let disabled = kms(s, "create-key", json!({"key_alias": unique("filter")})).await;
    let disabled_id = disabled.body["key_info"]["key_id"].clone();
    kms(s, "disable-key", json!({"key_id": disabled_id})).await;
    let listed = kms(s, "list-keys", json!({"key_state": "3", "key_spec": "ALL"})).await;
    let states: Vec<_> =
        listed.body["key_details"].as_array().unwrap().iter().map(|k| k["key_state"].clone()).collect();
    assert!(!states.is_empty() && states.iter().all(|st| st == "3"), "{states:?}");
    assert!(listed.body["keys"].as_array().unwrap().contains(&disabled_id));
    assert_error(&kms(s, "list-keys", json!({"key_state": "9"})).await, 400, "KMS.0308", true);
    // "1" (pending activation) is a state no key here is ever in.
    let none = kms(s, "list-keys", json!({"key_state": "1", "key_spec": "ALL"})).await;
    assert_eq!((none.body["keys"].clone(), none.body["total"].clone()), (json!([]), json!(0)), "{:?}", none.body);

    let used = s.call(Method::GET, &s.kms("user-instances"), None).await.body["instance_num"].as_u64().unwrap();
    for _ in used..100 {
        let r = kms(s, "create-key", json!({"key_alias": unique("fill")})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    assert_error(&kms(s, "create-key", json!({"key_alias": unique("over")})).await, 400, "KMS.1105", true);
    let q = s.call(Method::GET, &s.kms("user-quotas"), None).await;
    let cmk = q.body["quotas"]["resources"].as_array().unwrap().iter().find(|r| r["type"] == "CMK").unwrap().clone();
    assert_eq!((cmk["used"].as_u64(), cmk["quota"].as_u64()), (Some(100), Some(100)));
}
