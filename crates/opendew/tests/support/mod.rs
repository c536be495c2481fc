//! The real stack on port 0 with a fresh database, and an HTTP client that
//! signs like the official SDK.

#![allow(dead_code)]

pub mod procs;

use std::{path::PathBuf, process::Command, time::Duration};

use common::db::DatabaseUrl;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

/// Which database the stack runs on.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite files in the data directory.
    Sqlite,
    /// A fresh Postgres database.
    Postgres(DatabaseUrl),
}

impl Db {
    /// A fresh Postgres database, or `None` (skipped) without a test server.
    pub async fn postgres(test: &str) -> Option<Self> {
        let server = test_support::postgres_url(test)?;
        Some(Self::Postgres(test_support::fresh_postgres_database(&server).await))
    }
}

/// The default account of a stack.
#[derive(Debug, Clone)]
pub struct Account {
    pub ak: String,
    pub sk: String,
    pub project_id: String,
    pub domain_id: String,
    pub user: String,
    pub password: String,
    pub domain_name: String,
}

impl Account {
    /// The first account of a credentials file.
    pub fn from_file(path: &std::path::Path) -> Self {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let c = &file["credentials"][0];
        let s = |k: &str| c[k].as_str().unwrap().to_owned();
        Self {
            ak: s("access_key"),
            sk: s("secret_key"),
            project_id: s("project_id"),
            domain_id: s("domain_id"),
            user: s("user_name"),
            password: s("password"),
            domain_name: s("domain_name"),
        }
    }
}

/// A running stack.
pub struct TestStack {
    pub stack: opendew::DevStack,
    pub dir: tempfile::TempDir,
    pub db: Db,
    pub base: String,
    pub account: Account,
    client: reqwest::Client,
    jobs: csms_service::CsmsJobs,
}

/// csms-service's background tasks as the tests run them: scans every
/// second, so that expiry and delivery show within a test's patience.
pub fn csms_jobs() -> csms_service::CsmsJobs {
    csms_service::CsmsJobs {
        rotation_check: Duration::from_secs(1),
        expiry_check: Duration::from_secs(1),
        ..csms_service::CsmsJobs::default()
    }
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestStack {
    /// Starts the stack on `db` in a new data directory.
    pub async fn start(db: Db) -> Self {
        common::telemetry::init_for_tests();
        common::metrics::recorder();
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(db, dir, false, csms_jobs()).await
    }

    /// As [`TestStack::start`], with csms-service's background tasks set
    /// as given (a webhook, a short rotation hour).
    pub async fn start_with_jobs(db: Db, jobs: csms_service::CsmsJobs) -> Self {
        common::telemetry::init_for_tests();
        common::metrics::recorder();
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(db, dir, false, jobs).await
    }

    /// As [`TestStack::start`], with the gateway on HTTPS (dev mode's
    /// private CA); the client trusts that CA.
    pub async fn start_tls(db: Db) -> Self {
        common::telemetry::init_for_tests();
        common::metrics::recorder();
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(db, dir, true, csms_jobs()).await
    }

    async fn start_in(db: Db, dir: tempfile::TempDir, tls: bool, jobs: csms_service::CsmsJobs) -> Self {
        let config = opendew::DevConfig {
            database_url: match &db {
                Db::Sqlite => None,
                Db::Postgres(url) => Some(url.clone()),
            },
            tls,
            csms_jobs: jobs.clone(),
            ..opendew::DevConfig::on_loopback(dir.path().to_path_buf())
        };
        let stack = opendew::start(config, tokio_util::sync::CancellationToken::new()).await.unwrap();
        let account = Account::from_file(&stack.credentials_file);
        let base = stack.endpoint();
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(tls) = &stack.tls {
            let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls.ca_cert).unwrap()).unwrap();
            client = client.add_root_certificate(ca);
        }
        let client = client.build().unwrap();
        Self { stack, dir, db, base, account, client, jobs }
    }

    /// Stops the stack and starts it again on the same data and database.
    pub async fn restart(self) -> Self {
        let Self { stack, dir, db, jobs, .. } = self;
        let tls = stack.tls.is_some();
        stack.stop().await.unwrap();
        Self::start_in(db, dir, tls, jobs).await
    }

    /// A channel to a service port as the operator (mutual TLS with the
    /// stack's operator certificate), for calls around the gateway.
    pub fn operator_channel(&self, addr: std::net::SocketAddr) -> tonic::transport::Channel {
        let pki = &self.stack.pki;
        let tls = pki.internal(&pki.operator).load().unwrap().unwrap();
        common::grpc::channel(&format!("http://localhost:{}", addr.port()), Some(&tls), "test").unwrap()
    }

    /// A channel to a service port with the gateway's client certificate,
    /// for calls around the gateway that change state or use keys (the
    /// operator's certificate is read-only).
    pub fn gateway_channel(&self, addr: std::net::SocketAddr) -> tonic::transport::Channel {
        let pki = &self.stack.pki;
        let tls = pki.internal(&pki.gateway_client).load().unwrap().unwrap();
        common::grpc::channel(&format!("http://localhost:{}", addr.port()), Some(&tls), "test").unwrap()
    }

    /// Path prefix of KMS calls.
    pub fn kms(&self, op: &str) -> String {
        format!("/v1.0/{}/kms/{op}", self.account.project_id)
    }

    /// Path prefix of CSMS calls.
    pub fn csms(&self, rest: &str) -> String {
        format!("/v1/{}/{rest}", self.account.project_id)
    }

    /// A signed JSON call as the SDK makes it.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap()).unwrap_or_default();
        self.raw(
            method,
            path,
            &[("content-type", "application/json;charset=utf-8")],
            bytes,
            Sign::With(&self.account.ak, &self.account.sk, 0),
        )
        .await
    }

    /// A call with full control over headers, body and signing.
    /// A request signed by the stack's account with a body of the given
    /// content type, sent as is (malformed bodies, other media types).
    pub async fn signed_body(&self, method: Method, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let sign = Sign::With(&self.account.ak, &self.account.sk, 0);
        self.raw(method, path, &[("content-type", content_type)], body.to_vec(), sign).await
    }

    pub async fn raw(
        &self, method: Method, path_and_query: &str, extra: &[(&str, &str)], body: Vec<u8>, sign: Sign<'_>,
    ) -> Reply {
        self.raw_at(&self.base, method, path_and_query, extra, body, sign).await
    }

    /// As [`TestStack::raw`], to another gateway at `base`.
    pub async fn raw_at(
        &self, base: &str, method: Method, path_and_query: &str, extra: &[(&str, &str)], body: Vec<u8>, sign: Sign<'_>,
    ) -> Reply {
        let host = base.split_once("://").map_or(base, |(_, h)| h).to_owned();
        let mut headers = http::HeaderMap::new();
        for (k, v) in extra {
            headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        headers.insert("host", host.parse().unwrap());
        headers.entry("user-agent").or_insert("opendew-tests/1.0".parse().unwrap());
        if let Sign::Terraform(ak, sk) = sign {
            // chnsz/golangsdk signs every header but `host` and adds the
            // project header after signing.
            sign_headers_except(&mut headers, &method, path_and_query, &body, ak, sk, 0, &["host"]);
        }
        headers.entry("x-project-id").or_insert(self.account.project_id.parse().unwrap());
        if let Sign::With(ak, sk, skew_seconds) = sign {
            sign_headers(&mut headers, &method, path_and_query, &body, ak, sk, skew_seconds);
        }
        let response = self
            .client
            .request(method, format!("{base}{path_and_query}"))
            .headers(headers)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, headers, body }
    }

    /// csms-service's database.
    pub fn csms_database(&self) -> common::db::DatabaseUrl {
        match &self.db {
            Db::Sqlite => common::db::DatabaseUrl::sqlite_file(&self.dir.path().join("csms.db")),
            Db::Postgres(url) => url.clone(),
        }
    }

    /// Registers the database instance `id` of `project`, as
    /// `opendew admin db-instance add` does (sealed under the stack's
    /// instance key).
    pub async fn register_instance(&self, project: &str, id: &str, engine: &str, url: &str) {
        let key = self.dir.path().join("db-instance.key");
        let key = csms_service::instances::InstanceKey::from_file(&key).unwrap();
        let new = csms_service::instances::NewInstance {
            project_id: project.to_owned(),
            id: id.to_owned(),
            engine: engine.to_owned(),
            url: crypto::SecretString::new(url.to_owned()),
            password: None,
        };
        let record = csms_service::instances::prepare(&key, new, common::now_ms()).unwrap();
        let store = csms_service::open_store(&self.csms_database(), 1).await.unwrap();
        assert!(store.add_instance(&record).await.unwrap(), "instance {id} registered twice");
    }

    /// Every stored byte of both services' databases, as text.
    pub async fn database_dump(&self) -> String {
        match &self.db {
            Db::Sqlite => {
                let mut out = String::new();
                for entry in std::fs::read_dir(self.dir.path()).unwrap() {
                    let path = entry.unwrap().path();
                    if path.file_name().unwrap().to_string_lossy().contains(".db") {
                        out.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
                    }
                }
                out
            }
            Db::Postgres(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url.expose()).await.unwrap();
                let tables: Vec<(String, String)> = sqlx::query_as(
                    "SELECT table_schema::text, table_name::text FROM information_schema.tables WHERE table_schema IN ('kms', 'csms', 'iam')",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                assert!(tables.len() >= 6, "{tables:?}");
                let mut out = String::new();
                for (schema, table) in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT CAST(t AS TEXT) FROM {schema}.{table} t"))
                            .fetch_all(&mut conn)
                            .await
                            .unwrap();
                    out.push_str(&rows.join("\n"));
                }
                out
            }
        }
    }
}

/// Adds `X-Sdk-Date` and an SDK-HMAC-SHA256 `Authorization` over every
/// header already present, as the official SDK signs.
pub fn sign_headers(
    headers: &mut http::HeaderMap, method: &Method, path_and_query: &str, body: &[u8], ak: &str, sk: &str,
    skew_seconds: i64,
) {
    sign_headers_except(headers, method, path_and_query, body, ak, sk, skew_seconds, &[]);
}

/// As [`sign_headers`], leaving the headers named in `unsigned` out of
/// `SignedHeaders`.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers_except(
    headers: &mut http::HeaderMap, method: &Method, path_and_query: &str, body: &[u8], ak: &str, sk: &str,
    skew_seconds: i64, unsigned: &[&str],
) {
    let date = (chrono::Utc::now() + chrono::Duration::seconds(skew_seconds)).format("%Y%m%dT%H%M%SZ").to_string();
    headers.insert("x-sdk-date", date.parse().unwrap());
    let mut signed: Vec<String> = headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !k.contains('_') && !unsigned.contains(&k.as_str()))
        .collect();
    signed.sort();
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let raw = gateway::signing::RawRequest { method: method.as_str(), path, query, headers, body };
    let canonical = gateway::signing::canonical_request(&raw, &signed).unwrap();
    let signature = gateway::signing::sign(sk.as_bytes(), &gateway::signing::string_to_sign(&date, &canonical));
    let auth = format!("SDK-HMAC-SHA256 Access={ak}, SignedHeaders={}, Signature={signature}", signed.join(";"));
    headers.insert("authorization", auth.parse().unwrap());
}

/// How to authenticate a raw call.
#[derive(Debug, Clone, Copy)]
pub enum Sign<'a> {
    /// AK, SK and a clock skew in seconds.
    With(&'a str, &'a str, i64),
    /// As the Terraform provider signs: every header but `host`, with
    /// `X-Project-Id` added after signing.
    Terraform(&'a str, &'a str),
    /// No credentials at all.
    Not,
}

/// Asserts that `value[field]` has the JSON type `kind` for every pair.
pub fn assert_types(value: &Value, fields: &[(&str, &str)]) {
    for (field, kind) in fields {
        let v = &value[*field];
        let ok = match *kind {
            "string" => v.is_string(),
            "int" => v.is_i64() || v.is_u64(),
            "bool" => v.is_boolean(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            "null" => v.is_null(),
            other => panic!("unknown kind {other}"),
        };
        assert!(ok, "field {field} should be {kind} in {value}");
    }
}

/// Asserts an error's status, code and body shape.
pub fn assert_error(reply: &Reply, status: u16, code: &str, nested: bool) {
    assert_eq!(reply.status.as_u16(), status, "{:?}", reply.body);
    let inner = if nested { &reply.body["error"] } else { &reply.body };
    assert_eq!(inner["error_code"], code, "{:?}", reply.body);
    assert!(inner["error_msg"].is_string(), "{:?}", reply.body);
    assert!(reply.headers.contains_key("x-request-id"));
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The venv's python, creating the venv and installing the SDK if needed.
pub fn sdk_python() -> Option<PathBuf> {
    let python = std::env::var("OPENDEW_PYTHON").unwrap_or_else(|_| "python3".into());
    if Command::new(&python).arg("--version").output().is_err() {
        assert!(!in_ci(), "CI=true but {python} is not available for the SDK tests");
        test_support::say_skipped(&format!("official SDK tests: {python} not found (set OPENDEW_PYTHON)"));
        return None;
    }
    let requirements = repo_root().join("tests/python/requirements.txt");
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sdk-venv");
    let bin = venv.join("bin/python");
    let marker = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        let _ = std::fs::remove_dir_all(&venv);
        let status = Command::new(&python).args(["-m", "venv"]).arg(&venv).status().unwrap();
        assert!(status.success(), "python -m venv failed");
        let status = Command::new(&bin)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements)
            .status()
            .unwrap();
        if !status.success() {
            assert!(!in_ci(), "CI=true but installing the official SDK failed");
            test_support::say_skipped("official SDK tests: pip install of the SDK failed (offline?)");
            return None;
        }
        std::fs::write(&marker, wanted).unwrap();
    }
    Some(bin)
}

/// A name no other test uses: `prefix-` and ten hex digits.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// The tests `sqlite` and `postgres`, each running `$suite(db)` on a fresh
/// stack over that backend (`postgres` is skipped without a server, and
/// fails under CI).
#[macro_export]
macro_rules! on_both_backends {
    ($suite:ident, $what:literal) => {
        #[tokio::test]
        async fn sqlite() {
            $suite(support::Db::Sqlite).await;
        }

        #[tokio::test]
        async fn postgres() {
            let Some(db) = support::Db::postgres($what).await else { return };
            $suite(db).await;
        }
    };
}

/// Settings for a gateway on its own (plain HTTP, an identity store in
/// `dir`, services at a closed port): for tests of the HTTP edge, where no
/// service needs to answer.
pub fn lone_gateway_config(dir: &std::path::Path) -> gateway::GatewayConfig {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let key = dir.join("identity.key");
    identity::seal::SecretSealer::ensure_key_file(&key).unwrap();
    let mut config = gateway::GatewayConfig::plaintext(
        "127.0.0.1:0".parse().unwrap(),
        format!("http://{closed}"),
        format!("http://{closed}"),
        DatabaseUrl::sqlite_file(&dir.join("iam.db")),
        key,
    );
    config.internal_tls = common::grpc::InternalTlsConfig::plaintext();
    config
}

/// Another domain with a project and a user with an access key, straight
/// into the identity store; returns (domain name, user id, project, AK, SK).
pub async fn other_account(s: &TestStack, user_name: &str, password: &str) -> (String, String, String, String, String) {
    let url = match &s.db {
        Db::Sqlite => common::db::DatabaseUrl::sqlite_file(&s.dir.path().join("iam.db")),
        Db::Postgres(url) => url.clone(),
    };
    let store = identity::open_store(&url, 1).await.unwrap();
    let sealer = identity::seal::SecretSealer::from_file(&s.dir.path().join("identity.key")).unwrap();
    use identity::admin;
    let domain_name = unique("grantee-domain");
    let domain = admin::create_domain(&*store, &domain_name).await.unwrap();
    let project = admin::create_project(&*store, &domain.id, "local-1").await.unwrap();
    let secret = identity::credentials::SecretString::new(password.into());
    let user = admin::create_user(&*store, &domain.id, user_name, &secret).await.unwrap();
    let (key, sk) = admin::create_access_key(&*store, &sealer, &user.id, "").await.unwrap();
    let (ak, sk) = (key.access_key.clone(), sk.expose().to_owned());
    // The gateway's directory picks the new account up at its next poll.
    let started = std::time::Instant::now();
    loop {
        let r = as_other(s, &ak, &sk, &project.id, Method::GET, "secrets", None).await;
        if r.status == 200 {
            break;
        }
        assert!(started.elapsed().as_secs() < 10, "the other account never became usable: {:?}", r.body);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    (domain_name, user.id, project.id, ak, sk)
}

pub async fn as_other(
    s: &TestStack, ak: &str, sk: &str, project: &str, method: Method, rest: &str, body: Option<Value>,
) -> Reply {
    let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
    let headers = [("content-type", "application/json;charset=utf-8"), ("x-project-id", project)];
    s.raw(method, &format!("/v1/{project}/{rest}"), &headers, bytes, Sign::With(ak, sk, 0)).await
}
