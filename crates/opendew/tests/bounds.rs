//! The gateway's edge under hostile input (issue #15). What a client that
//! has not authenticated can cost is bounded (finding 1): the login route
//! buffers small bodies only, hashes no password longer than any account can
//! have, charges every attempt to the throttle before the hash (so a burst
//! cannot all pass), and a client that sends its headers or body too slowly
//! loses the connection or gets 408. Temporary credentials need their
//! security token signed (finding 10). The gateway runs alone here: no
//! service is needed for these paths.

mod support;

use std::{path::Path, time::Duration};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Gateway {
    addr: std::net::SocketAddr,
    base: String,
    client: reqwest::Client,
    dir: std::path::PathBuf,
    account: identity::credentials::Credential,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Gateway {
    /// The identity store the gateway runs on, opened beside it.
    async fn store(&self) -> std::sync::Arc<dyn identity::IdentityStore> {
        identity::open_store(&common::db::DatabaseUrl::sqlite_file(&self.dir.join("iam.db")), 1).await.unwrap()
    }

    /// A token of the account, from a password login.
    async fn token(&self) -> reqwest::Response {
        let body = login_body(self, self.account.password.expose());
        self.client.post(format!("{}/v3/auth/tokens", self.base)).json(&body).send().await.unwrap()
    }
}

async fn gateway(dir: &Path, tweak: impl FnOnce(&mut gateway::GatewayConfig)) -> Gateway {
    let mut config = support::lone_gateway_config(dir);
    let credentials = dir.join("credentials.json");
    identity::credentials::load_or_create(&credentials, "local-1").unwrap();
    config.credentials_file = Some(credentials.clone());
    tweak(&mut config);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = gateway::start(config, shutdown.clone()).await.unwrap();
    let text = std::fs::read_to_string(&credentials).unwrap();
    let file: identity::credentials::CredentialsFile = serde_json::from_str(&text).unwrap();
    let account = file.credentials.into_iter().next().unwrap();
    let base = format!("http://{}", running.addr);
    Gateway { addr: running.addr, base, client: reqwest::Client::new(), dir: dir.to_owned(), account, shutdown }
}

fn login_body(g: &Gateway, password: &str) -> serde_json::Value {
    json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": g.account.user_name, "password": password, "domain": {"name": g.account.domain_name}}}},
        "scope": {"project": {"id": g.account.project_id}}}})
}

async fn login(g: &Gateway, password: &str) -> u16 {
    let url = format!("{}/v3/auth/tokens", g.base);
    g.client.post(url).json(&login_body(g, password)).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn login_bodies_are_small_and_overlong_passwords_are_wrong_without_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |_| {}).await;
    // Before: a 4 MB password was buffered, parsed, cloned and hashed (401).
    assert_eq!(login(&g, &"x".repeat(4 << 20)).await, 413);
    // Longer than any account's password: wrong, and no hash spent on it.
    assert_eq!(login(&g, &"x".repeat(129)).await, 401);
    assert_eq!(login(&g, g.account.password.expose()).await, 201);
    g.shutdown.cancel();
}

#[tokio::test]
async fn a_burst_of_wrong_logins_is_charged_before_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |_| {}).await;
    // Thirty at once against one login whose bucket holds ten. Before, every
    // one passed the throttle (checked before, charged after the hash): 30
    // argon2 hashes and thirty 401s.
    let attempts = (0..30).map(|i| {
        let g = &g;
        async move { login(g, &format!("wrong password {i}")).await }
    });
    let statuses = futures::future::join_all(attempts).await;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(wrong + throttled, 30, "{statuses:?}");
    assert!(wrong <= 10, "at most the bucket's ten attempts were hashed: {statuses:?}");
    g.shutdown.cancel();
}

#[tokio::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |c| {
        c.header_timeout = Duration::from_secs(1);
        c.body_timeout = Duration::from_secs(1);
    })
    .await;
    // Headers that never end: the connection is closed.
    let mut stalled = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    stalled.write_all(b"POST /v3/auth/tokens HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "a connection with unfinished headers was held open");
    // A body short of its length: 408 once the body timeout passes.
    let mut slow = tokio::net::TcpStream::connect(g.addr).await.unwrap();
    let path = format!("/v1.0/{}/kms/gen-random", g.account.project_id);
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{");
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await.expect("answered").unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    g.shutdown.cancel();
}

#[tokio::test]
async fn a_security_token_must_be_signed() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |_| {}).await;
    let (client, base) = (&g.client, &g.base);
    let login = g.token().await;
    let token = login.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": 900}}}});
    let issued = client.post(format!("{base}/v3.0/OS-CREDENTIAL/securitytokens")).header("x-auth-token", token);
    let issued: serde_json::Value = issued.json(&body).send().await.unwrap().json().await.unwrap();
    let credential = &issued["credential"];
    let (ak, sk) = (credential["access"].as_str().unwrap(), credential["secret"].as_str().unwrap());
    let security_token = credential["securitytoken"].as_str().unwrap();
    let path = "/v3/projects";
    let call = |sign_token: bool| {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", g.addr.to_string().parse().unwrap());
        if sign_token {
            headers.insert("x-security-token", security_token.parse().unwrap());
        }
        gateway_sign(&mut headers, "GET", path, b"", ak, sk);
        // Added after signing: present, but not covered by the signature.
        headers.insert("x-security-token", security_token.parse().unwrap());
        client.get(format!("{base}{path}")).headers(headers).send()
    };
    assert_eq!(call(true).await.unwrap().status(), 200);
    // Before: accepted, although auth.md §1.7 requires the token signed.
    assert_eq!(call(false).await.unwrap().status(), 401);
    g.shutdown.cancel();
}

#[tokio::test]
async fn temporary_credentials_die_with_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |c| c.identity_refresh_seconds = 1).await;
    let (client, base) = (&g.client, &g.base);
    let mint = serde_json::to_vec(&json!({"auth": {"identity": {"methods": ["token"],
        "token": {"duration_seconds": 86_400}}}}))
    .unwrap();
    let sts = "/v3.0/OS-CREDENTIAL/securitytokens";

    // From a token: never past the token's own expiry (before: a day from
    // now, past a token issued earlier).
    let login = g.token().await;
    let token = login.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let token_expiry =
        login.json::<serde_json::Value>().await.unwrap()["token"]["expires_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let issued =
        client.post(format!("{base}{sts}")).header("x-auth-token", &token).header("content-type", "application/json");
    let issued: serde_json::Value = issued.body(mint.clone()).send().await.unwrap().json().await.unwrap();
    let expiry = issued["credential"]["expires_at"].as_str().unwrap();
    assert!(expiry <= token_expiry.as_str(), "{expiry} outlives the token's {token_expiry}");

    // From a permanent AK: they stop working when it is deleted (before:
    // they lived on for their whole duration).
    let mut headers = http::HeaderMap::new();
    headers.insert("host", g.addr.to_string().parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    gateway_sign(&mut headers, "POST", sts, &mint, &g.account.access_key, g.account.secret_key.expose());
    let issued = client.post(format!("{base}{sts}")).headers(headers).body(mint).send().await.unwrap();
    assert_eq!(issued.status(), 201);
    let credential = issued.json::<serde_json::Value>().await.unwrap()["credential"].clone();
    let (ak, sk) = (credential["access"].as_str().unwrap(), credential["secret"].as_str().unwrap());
    let security_token = credential["securitytoken"].as_str().unwrap();
    let projects = || {
        let mut headers = http::HeaderMap::new();
        headers.insert("host", g.addr.to_string().parse().unwrap());
        headers.insert("x-security-token", security_token.parse().unwrap());
        gateway_sign(&mut headers, "GET", "/v3/projects", b"", ak, sk);
        client.get(format!("{base}/v3/projects")).headers(headers).send()
    };
    assert_eq!(projects().await.unwrap().status(), 200);
    let store = g.store().await;
    store.delete(identity::Kind::AccessKey, &g.account.access_key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(projects().await.unwrap().status(), 401);
    g.shutdown.cancel();
}

#[tokio::test]
async fn a_password_change_ends_earlier_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let g = gateway(dir.path(), |c| c.identity_refresh_seconds = 1).await;
    let token = g.token().await.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let projects = || g.client.get(format!("{}/v3/projects", g.base)).header("x-auth-token", &token).send();
    assert_eq!(projects().await.unwrap().status(), 200);
    let store = g.store().await;
    let new_password = identity::credentials::SecretString::new("a brand new password".into());
    identity::admin::set_password(&*store, &g.account.user_id, &new_password).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Before: the token lived on for its whole day.
    assert_eq!(projects().await.unwrap().status(), 401);
    assert_eq!(login(&g, "a brand new password").await, 201);
    g.shutdown.cancel();
}

/// Signs over every header present, as the official SDK does.
fn gateway_sign(headers: &mut http::HeaderMap, method: &str, path: &str, body: &[u8], ak: &str, sk: &str) {
    let date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    headers.insert("x-sdk-date", date.parse().unwrap());
    let mut signed: Vec<String> = headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed.sort();
    let raw = gateway::signing::RawRequest { method, path, query: "", headers, body };
    let canonical = gateway::signing::canonical_request(&raw, &signed).unwrap();
    let signature = gateway::signing::sign(sk.as_bytes(), &gateway::signing::string_to_sign(&date, &canonical));
    let auth = format!("SDK-HMAC-SHA256 Access={ak}, SignedHeaders={}, Signature={signature}", signed.join(";"));
    headers.insert("authorization", auth.parse().unwrap());
}
