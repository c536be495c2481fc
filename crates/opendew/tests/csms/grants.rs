//! Grants, users and the account-level paths.

use super::*;

/// Grants enforced for a user of another account; the account-level
/// paths: agencies, users (with a password change that ends the user's
/// tokens), function templates; and the secret checker.
pub(super) async fn grants_users_and_account_paths(s: &TestStack) {
    let (domain_name, grantee, project, ak, sk) = support::other_account(s, "carol", "carol's first password").await;
    let shared = unique("shared");
    let id = call(s, Method::POST, "secrets", Some(json!({"name": shared, "secret_string": "shared-value"})))
        .await
        .body["secret"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kept = unique("kept");
    let kept_id = call(s, Method::POST, "secrets", Some(json!({"name": kept, "secret_string": "kept-value"})))
        .await
        .body["secret"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let read_as_grantee = |secret_id: String| {
        let (ak, sk, project) = (ak.clone(), sk.clone(), project.clone());
        async move {
            support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{secret_id}/versions/latest"), None)
                .await
        }
    };
    assert_error(&read_as_grantee(id.clone()).await, 400, "CSMS.0106", false);

    let grant = json!({"resource_id": id, "type": "SECRET", "grantee_type": "0", "grantee_target_id": grantee});
    let r = call(s, Method::POST, "csms/grants", Some(grant.clone())).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_types(
        &r.body["data"],
        &[
            ("uuid", "string"),
            ("resourceId", "string"),
            ("type", "string"),
            ("granteeUser", "string"),
            ("createTime", "int"),
            ("updateTime", "int"),
            ("state", "int"),
        ],
    );
    assert_eq!(r.body["data"]["validityTime"], Value::Null);
    // The grantee reads exactly the granted secret, by id, and nothing else.
    let granted = read_as_grantee(id.clone()).await;
    assert_eq!(
        (granted.status.as_u16(), granted.body["version"]["secret_string"].as_str()),
        (200, Some("shared-value")),
        "{:?}",
        granted.body
    );
    let shown = support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{id}"), None).await;
    assert_eq!(shown.body["secret"]["name"], shared.as_str(), "{:?}", shown.body);
    let versions = support::as_other(s, &ak, &sk, &project, Method::GET, &format!("secrets/{id}/versions"), None).await;
    assert_eq!(versions.status, 200, "{:?}", versions.body);
    assert_error(&read_as_grantee(kept_id.clone()).await, 400, "CSMS.0106", false);
    let write = support::as_other(
        s,
        &ak,
        &sk,
        &project,
        Method::PUT,
        &format!("secrets/{id}"),
        Some(json!({"description": "x"})),
    )
    .await;
    assert_error(&write, 400, "CSMS.0106", false);
    let add = support::as_other(
        s,
        &ak,
        &sk,
        &project,
        Method::POST,
        &format!("secrets/{id}/versions"),
        Some(json!({"secret_string": "x"})),
    )
    .await;
    assert_error(&add, 400, "CSMS.0106", false);
    // Only the owner sees and changes the grants.
    let listed = call(s, Method::GET, &format!("csms/grants?resource_id={id}"), None).await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["data"]["name"], shared.as_str());
    assert_eq!(listed.body["data"]["grantee_user"][0]["user_name"], "carol");
    assert_error(
        &support::as_other(s, &ak, &sk, &project, Method::GET, &format!("csms/grants?resource_id={id}"), None).await,
        400,
        "CSMS.0005",
        false,
    );
    let mut dated = grant.clone();
    dated["validity_time"] = json!("2999-12-31");
    let updated = call(s, Method::PUT, &format!("csms/grants?resource_id={id}"), Some(dated)).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert!(updated.body["data"]["validityTime"].as_i64().unwrap() > common::now_ms());
    let mut past = grant.clone();
    past["validity_time"] = json!("2000-01-01");
    assert_error(
        &call(s, Method::PUT, &format!("csms/grants?resource_id={id}"), Some(past)).await,
        400,
        "CSMS.0002",
        false,
    );
    let mut nobody = grant.clone();
    nobody["grantee_target_id"] = json!("0".repeat(32));
    assert_error(&call(s, Method::POST, "csms/grants", Some(nobody)).await, 400, "CSMS.0002", false);
    let mut group = grant.clone();
    group["grantee_type"] = json!("2");
    assert_error(&call(s, Method::POST, "csms/grants", Some(group)).await, 400, "CSMS.0002", false);
    // Deleting the grant ends it at once.
    let deleted = call(s, Method::DELETE, &format!("csms/grants?resource_id={id}&grantee_user={grantee}"), None).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    assert_error(&read_as_grantee(id.clone()).await, 400, "CSMS.0106", false);
    assert_error(
        &call(s, Method::DELETE, &format!("csms/grants?resource_id={id}&grantee_user={grantee}"), None).await,
        400,
        "CSMS.0005",
        false,
    );

    // Agencies, by the credential's project (no project in the path).
    let r = s.call(Method::POST, "/v1/csms/agencies", Some(&json!({"secret_type": "RDS-FG"}))).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["agencies"].as_array().unwrap().len(), 2);
    assert_eq!(s.call(Method::GET, "/v1/csms/agencies?secret_type=RDS-FG", None).await.body["agency_granted"], "true");
    assert_eq!(
        s.call(Method::GET, "/v1/csms/agencies?secret_type=GaussDB-FG", None).await.body["agency_granted"],
        "false"
    );
    assert_error(&s.call(Method::GET, "/v1/csms/agencies?secret_type=COMMON", None).await, 400, "CSMS.0002", false);

    // Function templates.
    let t = s
        .call(
            Method::GET,
            "/v1/csms/function-templates?secret_type=RDS-FG&secret_sub_type=MultiUser&engine=mysql",
            None,
        )
        .await;
    assert_eq!(t.status, 200, "{:?}", t.body);
    assert!(t.body["function_templates"].as_str().unwrap().contains("mysql"));
    let bad = s
        .call(
            Method::GET,
            "/v1/csms/function-templates?secret_type=GaussDB-FG&secret_sub_type=SingleUser&engine=mysql",
            None,
        )
        .await;
    assert_error(&bad, 400, "CSMS.0002", false);

    // Users: the caller's domain only.
    let users = s.call(Method::GET, "/v1/csms/users?offset=0&limit=10", None).await;
    assert_eq!(users.status, 200, "{:?}", users.body);
    let me = users.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_name"] == s.account.user.as_str())
        .unwrap()
        .clone();
    assert_types(
        &me,
        &[("user_id", "string"), ("disabled", "string"), ("pwd_must_modify", "bool"), ("extension", "string")],
    );
    assert!(users.body["users"].as_array().unwrap().iter().all(|u| u["user_name"] != "carol"));
    assert_error(&s.call(Method::GET, "/v1/csms/users?offset=0&limit=5", None).await, 400, "CSMS.0002", true);
    let detail = s.call(Method::GET, &format!("/v1/csms/users/{}", me["user_id"].as_str().unwrap()), None).await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_types(
        &detail.body,
        &[("disabled", "bool"), ("grade", "int"), ("extension", "object"), ("domain_id", "string")],
    );
    assert_error(&s.call(Method::GET, &format!("/v1/csms/users/{grantee}"), None).await, 400, "CSMS.0005", false);

    // carol changes her password: her token from the old one stops working.
    const CT_JSON: [(&str, &str); 1] = [("content-type", "application/json")];
    let login = |password: &str| {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "carol", "password": password, "domain": {"name": domain_name}}}}, "scope": {"project": {"id": project}}}});
        s.raw(Method::POST, "/v3/auth/tokens", &CT_JSON, serde_json::to_vec(&body).unwrap(), support::Sign::Not)
    };
    let r = login("carol's first password").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let token = r.headers["x-subject-token"].to_str().unwrap().to_owned();
    let with_token = |token: String| {
        let project = project.clone();
        async move {
            let headers = [("x-auth-token", token.as_str())];
            s.raw(Method::GET, &format!("/v1/{project}/secrets"), &headers, Vec::new(), support::Sign::Not).await
        }
    };
    assert_eq!(with_token(token.clone()).await.status, 200);
    let wrong = json!({"old_password": "not it at all", "password": "carol's second password"});
    let r = s
        .raw(
            Method::POST,
            "/v1/csms/users/change-password",
            &[("content-type", "application/json"), ("x-project-id", project.as_str())],
            serde_json::to_vec(&wrong).unwrap(),
            support::Sign::With(&ak, &sk, 0),
        )
        .await;
    assert_error(&r, 400, "CSMS.0002", false);
    let change = json!({"old_password": "carol's first password", "password": "carol's second password"});
    let r = s
        .raw(
            Method::POST,
            "/v1/csms/users/change-password",
            &[("content-type", "application/json"), ("x-project-id", project.as_str())],
            serde_json::to_vec(&change).unwrap(),
            support::Sign::With(&ak, &sk, 0),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.body["user_id"].as_str()), (200, Some(grantee.as_str())), "{:?}", r.body);
    assert_eq!(with_token(token).await.status, 401, "a token of the old password still works");
    let old = login("carol's first password").await;
    assert_eq!(old.status, 401);
    let new = login("carol's second password").await;
    assert_eq!(new.status, 201, "{:?}", new.body);

    // The checker: a switch, and verdicts that never carry the value.
    assert_eq!(call(s, Method::GET, "secrets/checker/config", None).await.body["checking_secret_strength"], false);
    let on = call(s, Method::POST, "secrets/checker/config", Some(json!({"checking_secret_strength": true}))).await;
    assert_eq!(on.body["checking_secret_strength"], true, "{:?}", on.body);
    assert_eq!(call(s, Method::GET, "secrets/checker/config", None).await.body["checking_secret_strength"], true);
    assert_error(&call(s, Method::POST, "secrets/checker/config", Some(json!({}))).await, 400, "CSMS.0002", false);
    let weak = call(
        s,
        Method::POST,
        "secrets/checker/check",
        Some(json!({"type": "PASSWORD", "data": {"secret_string": "password1"}})),
    )
    .await;
    assert_eq!(
        (weak.body["type"].as_str(), weak.body["data"]["strength"].as_str()),
        (Some("PASSWORD"), Some("WEAK")),
        "{:?}",
        weak.body
    );
    let stored = call(
        s,
        Method::POST,
        "secrets/checker/check",
        Some(json!({"type": "SECRET", "data": {"secret_name": shared}})),
    )
    .await;
    assert_eq!(stored.status, 200, "{:?}", stored.body);
    assert!(!stored.body.to_string().contains("shared-value"));
    assert_error(
        &call(s, Method::POST, "secrets/checker/check", Some(json!({"type": "X", "data": {}}))).await,
        400,
        "CSMS.0002",
        false,
    );
    // What the switch does: while it is on, weak new values are refused
    // (create and new version), strong ones and binary ones are not.
    let weak_secret = json!({"name": unique("weak"), "secret_string": "password1"});
    let refused = call(s, Method::POST, "secrets", Some(weak_secret.clone())).await;
    assert_error(&refused, 400, "CSMS.0002", false);
    assert!(refused.body.to_string().contains("weak") && !refused.body.to_string().contains("password1"));
    let strong = json!({"name": unique("strong"), "secret_string": "vK7#qL9!zR2@wX5$-tN4&"});
    assert_eq!(call(s, Method::POST, "secrets", Some(strong.clone())).await.status, 200);
    let name = strong["name"].as_str().unwrap();
    let weak_version = json!({"secret_string": "123456"});
    let r = call(s, Method::POST, &format!("secrets/{name}/versions"), Some(weak_version.clone())).await;
    assert_error(&r, 400, "CSMS.0002", false);
    let off = call(s, Method::POST, "secrets/checker/config", Some(json!({"checking_secret_strength": false}))).await;
    assert_eq!(off.status, 200);
    assert_eq!(call(s, Method::POST, "secrets", Some(weak_secret)).await.status, 200, "off: weak values are taken");
    assert_eq!(call(s, Method::POST, &format!("secrets/{name}/versions"), Some(weak_version)).await.status, 200);
    ordinary_secret_named(s, "checker").await;
}
