//! The identity store end to end: `opendew admin` (the real binary) creates
//! a domain, project, user and access key; the running gateway accepts them
//! within seconds; disabling the key and deleting the user take effect on
//! every gateway replica within seconds, tokens included.

mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};
use support::{Db, Sign, TestStack};

/// Runs `opendew admin` against the stack's identity store.
fn admin(s: &TestStack, args: &[&str], stdin: Option<&str>) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opendew"));
    command.arg("admin").arg("--data-dir").arg(s.dir.path());
    if let Db::Postgres(url) = &s.db {
        command.env("OPENDEW_IAM_DATABASE_URL", url.expose());
    }
    let mut child = command
        .args(args)
        .env("OPENDEW_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "opendew admin {args:?} failed: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

/// The value after `label` on the line that has it.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|rest| rest.split_whitespace().next().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no `{label}` in {text}"))
}

/// A call with the real curl and an `X-Auth-Token`; the HTTP status.
async fn curl(base: &str, token: &str, method: &str, path: &str, body: &str) -> u16 {
    // Async: the gateway serves on this test's runtime thread.
    let mut command = tokio::process::Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]).arg(format!("{base}{path}"));
    command.args(["-H", &format!("X-Auth-Token: {token}"), "-H", "Content-Type: application/json"]);
    if !body.is_empty() {
        command.args(["-d", body]);
    }
    let output = command.output().await.expect("curl is installed");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0)
}

/// Polls `check` for up to five seconds (two refresh intervals and more).
/// Every half second, not faster: a key polled while still refused counts
/// failed authentications, and ten in a row would throttle it.
async fn within_seconds(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn signed(s: &TestStack, ak: &str, sk: &str, project: &str, op: &str, body: Value) -> u16 {
    signed_at(s, &s.base, ak, sk, project, op, body).await
}

async fn signed_at(s: &TestStack, base: &str, ak: &str, sk: &str, project: &str, op: &str, body: Value) -> u16 {
    let path = format!("/v1.0/{project}/kms/{op}");
    let headers = [("content-type", "application/json"), ("x-project-id", project)];
    let body = serde_json::to_vec(&body).unwrap();
    s.raw_at(base, Method::POST, &path, &headers, body, Sign::With(ak, sk, 0)).await.status.as_u16()
}

async fn with_token(base: &str, token: &str, project: &str) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{base}/v1.0/{project}/kms/gen-random"))
        .header("x-auth-token", token)
        .json(&json!({"random_data_length": "64"}))
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn accounts_follow_the_admin_command(s: TestStack, second_gateway: Option<String>) {
    let domain = admin(&s, &["domain", "create", "acme"], None);
    let domain_id = field(&domain, "created domain ");
    let project = admin(&s, &["project", "create", "--domain", "acme", "local-1"], None);
    let project_id = field(&project, "created project ");
    let user =
        admin(&s, &["user", "create", "--domain", "acme", "alice", "--password-file", "-"], Some("a long password\n"));
    let user_id = field(&user, "created user ");
    assert!(!user.contains("a long password"), "a given password is never echoed");
    let key = admin(&s, &["access-key", "create", "--user", &user_id, "--description", "ci"], None);
    let (ak, sk) = (field(&key, "access key "), field(&key, "secret key "));
    let listed = admin(&s, &["access-key", "list"], None);
    assert!(listed.contains(&ak) && !listed.contains(&sk), "listing shows the AK, never the SK");
    assert!(admin(&s, &["domain", "list"], None).contains(&domain_id));

    // The running gateway learns of them without a restart.
    within_seconds("the new access key works", async || {
        signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 200
    })
    .await;
    // It acts in its own domain's project only.
    let foreign = signed(&s, &ak, &sk, &s.account.project_id, "gen-random", json!({"random_data_length": "64"})).await;
    assert_eq!(foreign, 403);

    // A password token for the new user.
    let login = json!({"auth": {"identity": {"methods": ["password"],
        "password": {"user": {"name": "alice", "password": "a long password", "domain": {"name": "acme"}}}},
        "scope": {"project": {"name": "local-1"}}}});
    let response = reqwest::Client::new().post(format!("{}/v3/auth/tokens", s.base)).json(&login).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let token = response.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token"]["project"]["id"], project_id);
    assert_eq!(with_token(&s.base, &token, &project_id).await, 200);
    // The same token with the real curl, for KMS and CSMS, as the README shows.
    assert_eq!(
        curl(&s.base, &token, "POST", &format!("/v1.0/{project_id}/kms/gen-random"), r#"{"random_data_length":"64"}"#)
            .await,
        200
    );
    assert_eq!(
        curl(
            &s.base,
            &token,
            "POST",
            &format!("/v1/{project_id}/secrets"),
            r#"{"name":"by-curl","secret_string":"v"}"#
        )
        .await,
        200
    );
    assert_eq!(
        curl(&s.base, &token, "GET", &format!("/v1/{project_id}/secrets/by-curl/versions/latest"), "").await,
        200
    );
    let mut bad = login.clone();
    bad["auth"]["identity"]["password"]["user"]["password"] = json!("wrong password");
    let refused = reqwest::Client::new().post(format!("{}/v3/auth/tokens", s.base)).json(&bad).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    // Disabling the key stops it on every replica; enabling brings it back.
    admin(&s, &["access-key", "disable", &ak], None);
    within_seconds("the disabled key is refused", async || {
        signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 401
    })
    .await;
    if let Some(other) = &second_gateway {
        within_seconds("the other replica refuses the disabled key", async || {
            signed_at(&s, other, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 401
        })
        .await;
        // A disabled key is not a disabled user: the token still works.
        assert_eq!(with_token(other, &token, &project_id).await, 200);
    }
    admin(&s, &["access-key", "enable", &ak], None);
    within_seconds("the re-enabled key works", async || {
        signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 200
    })
    .await;

    // Deleting the user ends its token and its keys, on every replica.
    admin(&s, &["user", "delete", &user_id], None);
    within_seconds("the deleted user's token is refused", async || {
        with_token(&s.base, &token, &project_id).await == 401
    })
    .await;
    if let Some(other) = &second_gateway {
        within_seconds("the other replica refuses the deleted user's token", async || {
            with_token(other, &token, &project_id).await == 401
        })
        .await;
    }
    assert_eq!(signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await, 401);
    assert_eq!(curl(&s.base, &token, "GET", &format!("/v1/{project_id}/secrets"), "").await, 401);

    // Deleting an access key ends it too.
    let bob = admin(&s, &["user", "create", "--domain", "acme", "bob"], None);
    let bob_id = field(&bob, "created user ");
    let key = admin(&s, &["access-key", "create", "--user", &bob_id], None);
    let (ak, sk) = (field(&key, "access key "), field(&key, "secret key "));
    within_seconds("bob's key works", async || {
        signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 200
    })
    .await;
    admin(&s, &["access-key", "delete", &ak], None);
    within_seconds("the deleted key is refused", async || {
        signed(&s, &ak, &sk, &project_id, "gen-random", json!({"random_data_length": "64"})).await == 401
    })
    .await;
    s.stack.stop().await.unwrap();
}

/// A signed request that changes state is not served again later: sent
/// again after the repeat grace (as a captured request would be, within
/// its 15-minute window) it gets 401 on every replica, and nothing
/// changes. The same request repeated at once (an identical request signed
/// in the same second) gets its documented answer; reads and cryptographic
/// operations may be repeated any time; a request signed afresh goes
/// through (issue #15, finding 10: before, any signed request could be
/// replayed for 15 minutes).
async fn signed_writes_cannot_be_replayed(s: &TestStack, replicas: &[&str]) {
    let client = reqwest::Client::new();
    let send = async |base: &str, path: &str, headers: &http::HeaderMap, body: &[u8]| {
        let response = client.post(format!("{base}{path}")).headers(headers.clone()).body(body.to_vec());
        let response = response.send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
    };
    let signed = |path: &str, body: &[u8], skew: i64| {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        // One name for every replica, as behind a load balancer.
        headers.insert("host", "kms.example.internal".parse().unwrap());
        headers.insert("x-project-id", s.account.project_id.parse().unwrap());
        support::sign_headers(&mut headers, &Method::POST, path, body, &s.account.ak, &s.account.sk, skew);
        headers
    };
    let after_the_grace = || tokio::time::sleep(Duration::from_millis(gateway::replay::REPEAT_GRACE_MS as u64 + 500));
    let alias = support::unique("replayed");
    let create = s.kms("create-key");
    let body = serde_json::to_vec(&json!({"key_alias": alias})).unwrap();
    let create_headers = signed(&create, &body, 0);
    let (status, created) = send(replicas[0], &create, &create_headers, &body).await;
    assert_eq!(status, 200, "{created}");
    let key = serde_json::to_vec(&json!({"key_id": created["key_info"]["key_id"]})).unwrap();
    // The same disable twice at once: the second answers as documented.
    let disable = s.kms("disable-key");
    let disable_headers = signed(&disable, &key, 0);
    assert_eq!(send(replicas[0], &disable, &disable_headers, &key).await.0, 200);
    let (status, again) = send(replicas[replicas.len() - 1], &disable, &disable_headers, &key).await;
    assert_eq!((status, again["error"]["error_code"].as_str()), (400, Some("KMS.1301")), "{again}");
    // The owner re-enables the key; the captured disable, replayed later
    // on any replica, changes nothing.
    assert_eq!(send(replicas[0], &s.kms("enable-key"), &signed(&s.kms("enable-key"), &key, 0), &key).await.0, 200);
    after_the_grace().await;
    for base in replicas {
        for (path, headers, body) in [(&disable, &disable_headers, &key), (&create, &create_headers, &body)] {
            let (status, refused) = send(base, path, headers, body).await;
            assert_eq!(status, 401, "a replayed {path} on {base}: {refused}");
            assert_eq!(refused["error_code"], "APIGW.0301");
            assert!(refused["error_msg"].as_str().unwrap().contains("already served"), "{refused}");
        }
    }
    let key_id = json!({"key_id": created["key_info"]["key_id"]});
    let described = s.call(Method::POST, &s.kms("describe-key"), Some(&key_id)).await;
    assert_eq!(described.body["key_info"]["key_state"], "2", "still enabled");
    let listed = s.call(Method::POST, &s.kms("list-keys"), Some(&json!({"limit": "1000"}))).await;
    let same_alias = listed.body["key_details"].as_array().unwrap().iter().filter(|k| k["key_alias"] == alias.as_str());
    assert_eq!(same_alias.count(), 1, "the replay created nothing");
    // A read may be sent again, anywhere, any time.
    let describe = s.kms("describe-key");
    let describe_headers = signed(&describe, &key, 0);
    assert_eq!(send(replicas[0], &describe, &describe_headers, &key).await.0, 200);
    after_the_grace().await;
    for base in replicas {
        assert_eq!(send(base, &describe, &describe_headers, &key).await.0, 200);
    }
    // The same operation signed afresh (another X-Sdk-Date) is a new request.
    assert_eq!(send(replicas[0], &disable, &signed(&disable, &key, -1), &key).await.0, 200);

    // A route whose repeat would act again gets no grace: the same
    // create-secret-version sent twice at once (to two replicas where there
    // are two) makes one version, and the repeat gets 401 (issue #40:
    // before, both were served within the grace and made two versions).
    let name = support::unique("replayed-secret");
    let first = s.call(Method::POST, &s.csms("secrets"), Some(&json!({"name": name, "secret_string": "v1"}))).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let versions = s.csms(&format!("secrets/{name}/versions"));
    let value = serde_json::to_vec(&json!({"secret_string": "v2"})).unwrap();
    let version_headers = signed(&versions, &value, 0);
    let (one, two) = tokio::join!(
        send(replicas[0], &versions, &version_headers, &value),
        send(replicas[replicas.len() - 1], &versions, &version_headers, &value)
    );
    let mut statuses = [one.0, two.0];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{one:?} {two:?}");
    let listed = s.call(Method::GET, &versions, None).await;
    assert_eq!(listed.body["version_metadatas"].as_array().unwrap().len(), 2, "{:?}", listed.body);
}

#[tokio::test]
async fn identity_store_on_sqlite() {
    let s = TestStack::start(Db::Sqlite).await;
    signed_writes_cannot_be_replayed(&s, &[&s.base]).await;
    accounts_follow_the_admin_command(s, None).await;
}

/// Two gateway replicas on one Postgres identity store.
#[tokio::test]
async fn identity_store_on_postgres_with_two_gateways() {
    let Some(db) = Db::postgres("identity store on Postgres").await else {
        return;
    };
    let s = TestStack::start(db).await;
    let Db::Postgres(url) = &s.db else { unreachable!() };
    let pki = &s.stack.pki;
    let mut config = gateway::GatewayConfig::plaintext(
        "127.0.0.1:0".parse().unwrap(),
        format!("http://localhost:{}", s.stack.kms.port()),
        format!("http://localhost:{}", s.stack.csms.port()),
        url.clone(),
        s.dir.path().join("identity.key"),
    );
    config.internal_tls = pki.internal(&pki.gateway_client);
    config.token_key_file = Some(s.dir.path().join("token.key"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let other = gateway::start(config, shutdown.clone()).await.unwrap();
    let other_base = format!("http://{}", other.addr);
    signed_writes_cannot_be_replayed(&s, &[&s.base, &other_base]).await;
    accounts_follow_the_admin_command(s, Some(other_base)).await;
    shutdown.cancel();
    other.task.await.unwrap().unwrap();
}
