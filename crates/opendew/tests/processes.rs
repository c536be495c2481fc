//! The three deployment binaries as separate processes, as an operator runs
//! them: one request id in every log line of a request across all three,
//! and SIGTERM under load, where no request a process accepted fails and
//! each process exits 0.
//!
//! The binaries are built by `cargo build` on first use (a no-op when the
//! workspace build is current), into the target directory of this test.

mod support;

use support::procs::{self, Proc, bin_dir};

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::Method;
use serde_json::{Value, json};

/// The request ids in a log line's spans.
fn span_request_ids(line: &Value) -> Vec<&str> {
    line["spans"]
        .as_array()
        .map(|spans| spans.iter().filter_map(|s| s["request_id"].as_str()).filter(|id| !id.is_empty()).collect())
        .unwrap_or_default()
}

struct Stack {
    kms: Proc,
    csms: Proc,
    gateway: Proc,
    account: support::Account,
    client: reqwest::Client,
    pki: opendew::pki::Pki,
    dir: tempfile::TempDir,
}

impl Stack {
    async fn start() -> Self {
        // The driver's statement lines too: they run inside the request.
        Self::start_logging("info,sqlx::query=debug").await
    }

    async fn start_logging(log_filter: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = |name: &str| procs::sqlite_url(dir.path(), name);
        let pki = opendew::pki::ensure(&dir.path().join("tls"), &["localhost".into()]).unwrap();
        let any = "127.0.0.1:0";
        let kms = procs::kms_args(dir.path(), &pki, &db("kms.db"), any, any);
        let kms = Proc::spawn("kms-service", &kms, "kms-service listening", log_filter).await;
        let csms = procs::csms_args(&pki, &db("csms.db"), any, any, &kms.addr);
        let csms = Proc::spawn("csms-service", &csms, "csms-service listening", log_filter).await;
        let gateway = procs::gateway_args(dir.path(), &pki, &db("iam.db"), any, &kms.addr, &csms.addr);
        let gateway = Proc::spawn("gateway", &gateway, "gateway listening", log_filter).await;
        let account = support::Account::from_file(&dir.path().join("credentials.json"));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { kms, csms, gateway, account, client, pki, dir }
    }

    /// A signed call; `Err` when no HTTP response came back at all.
    async fn call(&self, method: Method, rest: &str, body: Option<Value>) -> Result<(u16, String, Value), String> {
        let bytes = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "application/json;charset=utf-8".parse().unwrap());
        headers.insert("host", self.gateway.addr.parse().unwrap());
        headers.insert("x-project-id", self.account.project_id.parse().unwrap());
        support::sign_headers(&mut headers, &method, rest, &bytes, &self.account.ak, &self.account.sk, 0);
        let response = self
            .client
            .request(method, format!("http://{}{rest}", self.gateway.addr))
            .headers(headers)
            .body(bytes)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, id, body))
    }
}

#[tokio::test]
async fn one_request_id_in_every_log_line_across_the_three_processes() {
    let s = Stack::start().await;
    let project = s.account.project_id.clone();
    let (status, id, body) = s
        .call(
            Method::POST,
            &format!("/v1/{project}/secrets"),
            Some(json!({"name": "correlated", "secret_string": "s3cr3t-value"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(id.len(), 32);
    tokio::time::sleep(Duration::from_millis(300)).await;

    for (name, proc, expect) in [
        ("gateway", &s.gateway, "request"),
        ("csms-service", &s.csms, "grpc call"),
        ("kms-service", &s.kms, "grpc call"),
    ] {
        let logs = proc.logs();
        let ours: Vec<&Value> = logs.iter().filter(|l| span_request_ids(l).contains(&id.as_str())).collect();
        assert!(
            ours.iter().any(|l| l["message"] == expect),
            "{name} logged no `{expect}` line with request id {id}: {ours:?}"
        );
        // Every line logged inside a request's span names its request: the
        // id is on the outermost span, so nothing below it can miss it.
        for line in &logs {
            let in_request = line["spans"].as_array().is_some_and(|spans| {
                spans.iter().any(|sp| sp["name"] == "grpc" || sp["name"] == "http")
                    && !spans.iter().any(|sp| sp["method"].as_str().is_some_and(|m| m.starts_with("/grpc.")))
            });
            if in_request {
                assert!(!span_request_ids(line).is_empty(), "{name}: a line inside a request without its id: {line}");
            }
        }
        // No line of the whole run shows the secret value.
        assert!(!logs.iter().any(|l| l.to_string().contains("s3cr3t-value")), "{name} logged the secret value");
    }
    // The database driver's lines in csms-service carry it too: the id
    // reaches the bottom of the call, not just the access log.
    assert!(
        s.csms.logs().iter().any(|l| l["target"].as_str().is_some_and(|t| t.starts_with("sqlx"))
            && span_request_ids(l).contains(&id.as_str())),
        "no database statement line carries the request id"
    );
    s.gateway.terminate();
    s.gateway.exits_cleanly("gateway").await;
    s.csms.terminate();
    s.csms.exits_cleanly("csms-service").await;
    s.kms.terminate();
    s.kms.exits_cleanly("kms-service").await;
}

/// Clients that keep calling until the server stops answering.
async fn load<F, Fut>(tasks: usize, call: F) -> (HashMap<String, bool>, usize)
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<bool, String>> + Send,
{
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let call = call.clone();
        handles.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while tokio::time::Instant::now() < deadline {
                let id = common::identity::new_hex32();
                match call(id.clone()).await {
                    Ok(ok) => outcomes.push((id, ok)),
                    // The server is gone: this request was never accepted.
                    Err(_) => return (outcomes, 1),
                }
            }
            (outcomes, 0)
        }));
    }
    let mut all = HashMap::new();
    let mut refused = 0;
    for handle in handles {
        let (outcomes, r) = handle.await.unwrap();
        all.extend(outcomes);
        refused += r;
    }
    (all, refused)
}

#[tokio::test]
async fn sigterm_under_load_fails_no_accepted_request() {
    let s = Arc::new(Stack::start().await);
    let project = s.account.project_id.clone();
    let (status, _, body) = s
        .call(Method::POST, &format!("/v1.0/{project}/kms/create-key"), Some(json!({"key_alias": "drain"})))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let key_id = body["key_info"]["key_id"].as_str().unwrap().to_owned();
    let (status, _, body) = s
        .call(Method::POST, &format!("/v1/{project}/secrets"), Some(json!({"name": "drain", "secret_string": "v"})))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // 1. The gateway, under HTTP load that reaches both services. The id
    // the gateway logs is its own, so requests are matched by it: every
    // request the gateway logged must have reached its client, with 200.
    let received = Arc::new(Mutex::new(HashMap::<String, u16>::new()));
    let (stack, sink) = (s.clone(), received.clone());
    let encrypt = format!("/v1.0/{project}/kms/encrypt-data");
    let read = format!("/v1/{project}/secrets/drain/versions/latest");
    let load_task = tokio::spawn(load(8, move |nonce: String| {
        let (stack, sink, encrypt, read, key_id) =
            (stack.clone(), sink.clone(), encrypt.clone(), read.clone(), key_id.clone());
        async move {
            let reply = if nonce.as_bytes()[0].is_multiple_of(2) {
                stack.call(Method::POST, &encrypt, Some(json!({"key_id": key_id, "plain_text": nonce}))).await
            } else {
                stack.call(Method::GET, &read, None).await
            }?;
            sink.lock().unwrap().insert(reply.1.clone(), reply.0);
            Ok(reply.0 == 200)
        }
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.gateway.terminate();
    let (_, refused) = load_task.await.unwrap();
    let s = Arc::try_unwrap(s).ok().expect("load tasks are done");
    let logs = s.gateway.exits_cleanly("gateway").await;
    let received = received.lock().unwrap().clone();
    let logged: Vec<(&str, u64)> = logs
        .iter()
        // The load's two routes (the set-up calls before it are not matched).
        .filter(|l| {
            l["message"] == "request"
                && l["span"]["path"].as_str().is_some_and(|p| p.ends_with("/encrypt-data") || p.ends_with("/latest"))
        })
        .filter_map(|l| Some((span_request_ids(l).first().copied()?, l["status"].as_u64()?)))
        .collect();
    assert!(logged.len() > 50, "too little load to show anything: {} requests", logged.len());
    for (id, status) in &logged {
        assert_eq!(*status, 200, "the gateway answered {status} to accepted request {id}");
        assert_eq!(received.get(*id), Some(&200), "accepted request {id} never reached its client");
    }
    assert!(received.values().all(|s| *s == 200), "a client saw a failure: {received:?}");
    eprintln!("gateway: {} requests answered, {} clients refused after SIGTERM", logged.len(), refused);

    // 2. kms-service, under gRPC load straight at its port. Each call
    // carries its own request id, which the service's access log records.
    use proto::kms::v1::{GenerateRandomRequest, key_management_service_client::KeyManagementServiceClient};
    // The operator's certificate: the port refuses callers without one.
    let operator = s.pki.internal(&s.pki.operator).load().unwrap().unwrap();
    let channel = common::grpc::channel(
        &format!("http://localhost:{}", s.kms.addr.rsplit(':').next().unwrap()),
        Some(&operator),
        "test",
    )
    .unwrap();
    let identity = common::identity::CallerIdentity {
        domain_id: s.account.domain_id.clone(),
        project_id: s.account.project_id.clone(),
        user_id: "drain-test".into(),
        request_id: String::new(),
    };
    let load_task = tokio::spawn(load(8, move |request_id: String| {
        let mut client = KeyManagementServiceClient::new(channel.clone());
        let identity = common::identity::CallerIdentity { request_id, ..identity.clone() };
        async move {
            match client
                .generate_random(identity.request(GenerateRandomRequest { length_bits: 256, ..Default::default() }))
                .await
            {
                Ok(_) => Ok(true),
                // Refused after shutdown began: never accepted.
                Err(status) if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Cancelled) => {
                    Err(status.to_string())
                }
                Err(_) => Ok(false),
            }
        }
    }));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.kms.terminate();
    let (outcomes, refused) = load_task.await.unwrap();
    let logs = s.kms.exits_cleanly("kms-service").await;
    let served: HashSet<&str> = logs
        .iter()
        .filter(|l| {
            l["message"] == "grpc call" && l["span"]["method"].as_str().is_some_and(|m| m.ends_with("/GenerateRandom"))
        })
        .filter_map(|l| {
            assert_eq!(l["code"], "Ok", "kms-service failed an accepted call: {l}");
            // The access line names the caller's certificate (issue #40).
            assert_eq!(l["span"]["caller"], "operator", "{l}");
            span_request_ids(l).first().copied()
        })
        .collect();
    assert!(served.len() > 50, "too little load to show anything: {} calls", served.len());
    for id in &served {
        assert_eq!(outcomes.get(*id), Some(&true), "accepted call {id} did not succeed at its client");
    }
    eprintln!("kms-service: {} calls answered, {} clients refused after SIGTERM", served.len(), refused);
    s.csms.terminate();
    s.csms.exits_cleanly("csms-service").await;
}

/// The images' healthcheck binary: 0 for a healthy service, 1 otherwise.
#[tokio::test]
async fn probe_reports_health_of_each_process() {
    let s = Stack::start().await;
    let probe = |args: Vec<String>| {
        let status = std::process::Command::new(bin_dir().join("opendew-probe")).args(&args).output().unwrap();
        (status.status.code(), String::from_utf8_lossy(&status.stderr).into_owned())
    };
    let (kms_health, csms_health) = (s.kms.health_addr(), s.csms.health_addr());
    // Made-up paths on the plaintext health port are answered, and named in
    // no log line (nor metric label): before, each became a label of its own.
    let tcp = tokio::net::TcpStream::connect(&kms_health).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    for i in 0..20 {
        let request = http::Request::post(format!("http://{kms_health}/made.up{i}.Service/Path{i}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        h2 = h2.ready().await.unwrap();
        let (response, _) = h2.send_request(request, true).unwrap();
        let _ = response.await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let named = s.kms.logs().into_iter().filter(|l| l.to_string().contains("made.up")).collect::<Vec<_>>();
    assert!(named.is_empty(), "made-up paths reached the log: {named:?}");
    assert_eq!(probe(vec!["grpc".into(), kms_health.clone(), "kms.v1.KeyManagementService".into()]).0, Some(0));
    assert_eq!(probe(vec!["grpc".into(), csms_health, "csms.v1.SecretsManagerService".into()]).0, Some(0));
    // The API port itself wants a client certificate, which the probe has not.
    assert_eq!(probe(vec!["grpc".into(), s.kms.addr.clone(), "kms.v1.KeyManagementService".into()]).0, Some(1));
    assert_eq!(probe(vec!["http".into(), format!("http://{}/readyz", s.gateway.addr)]).0, Some(0));
    let (code, why) = probe(vec!["grpc".into(), kms_health, "no.such.Service".into()]);
    assert_eq!(code, Some(1), "{why}");
    assert_eq!(probe(vec!["http".into(), format!("http://{}/nope", s.gateway.addr)]).0, Some(1));
    assert_eq!(probe(vec![]).0, Some(2));
    // Once kms-service is gone the gateway is no longer ready.
    s.kms.terminate();
    s.kms.exits_cleanly("kms-service").await;
    assert_eq!(probe(vec!["http".into(), format!("http://{}/readyz", s.gateway.addr)]).0, Some(1));
    s.gateway.terminate();
    s.gateway.exits_cleanly("gateway").await;
    s.csms.terminate();
    s.csms.exits_cleanly("csms-service").await;
}

/// No SK, password, token, security token, secret value, key file or
/// certificate key appears in any log line of any process, at the most
/// verbose level, through a workload that authenticates every way,
/// succeeds and fails.
#[tokio::test]
async fn no_secret_reaches_any_log_line() {
    let s = Stack::start_logging("trace,h2=debug,hyper=debug,rustls=debug,tower=debug").await;
    let project = s.account.project_id.clone();
    let base = format!("http://{}", s.gateway.addr);
    let http = reqwest::Client::new();
    let value = format!("secret-value-{}", uuid::Uuid::new_v4().simple());
    let (status, _, body) = s
        .call(Method::POST, &format!("/v1/{project}/secrets"), Some(json!({"name": "logged", "secret_string": value})))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, _) =
        s.call(Method::GET, &format!("/v1/{project}/secrets/logged/versions/latest"), None).await.unwrap();
    assert_eq!(status, 200);
    let (_, _, key) = s
        .call(
            Method::POST,
            &format!("/v1.0/{project}/kms/create-datakey"),
            Some(json!({"key_id": "00000000-0000-0000-0000-000000000000"})),
        )
        .await
        .unwrap();
    assert!(key.is_object());
    // Tokens: issued, used, refused when wrong; temporary credentials issued.
    let login = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": s.account.user, "password": s.account.password, "domain": {"name": s.account.domain_name}}}},
        "scope": {"project": {"id": project}}}});
    let issued = http.post(format!("{base}/v3/auth/tokens")).json(&login).send().await.unwrap();
    assert_eq!(issued.status(), 201);
    let token = issued.headers()["x-subject-token"].to_str().unwrap().to_owned();
    let used = http
        .post(format!("{base}/v1.0/{project}/kms/gen-random"))
        .header("x-auth-token", &token)
        .json(&json!({"random_data_length": "64"}))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 200);
    let forged = format!("{}x", &token[..token.len() - 1]);
    let refused = http
        .post(format!("{base}/v1.0/{project}/kms/gen-random"))
        .header("x-auth-token", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let sts = http
        .post(format!("{base}/v3.0/OS-CREDENTIAL/securitytokens"))
        .header("x-auth-token", &token)
        .json(&json!({"auth": {"identity": {"methods": ["token"]}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(sts.status(), 201);
    let credential: Value = sts.json().await.unwrap();
    let mut wrong = login.clone();
    wrong["auth"]["identity"]["password"]["user"]["password"] = json!("wrong-password-123");
    assert_eq!(http.post(format!("{base}/v3/auth/tokens")).json(&wrong).send().await.unwrap().status(), 401);
    // A signature made with a wrong SK.
    let mut headers = http::HeaderMap::new();
    headers.insert("host", s.gateway.addr.parse().unwrap());
    support::sign_headers(
        &mut headers,
        &Method::POST,
        &format!("/v1.0/{project}/kms/gen-random"),
        b"{}",
        &s.account.ak,
        "a-wrong-sk",
        0,
    );
    let bad =
        http.post(format!("{base}/v1.0/{project}/kms/gen-random")).headers(headers).body("{}").send().await.unwrap();
    assert_eq!(bad.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let file = |name: &str| std::fs::read_to_string(s.dir.path().join(name)).unwrap().trim().to_owned();
    let pem_body = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
    };
    let mut secrets = vec![
        ("SK", s.account.sk.clone()),
        ("password", s.account.password.clone()),
        ("token", token.clone()),
        ("token signature", token.rsplit('.').next().unwrap().to_owned()),
        ("security token", credential["credential"]["securitytoken"].as_str().unwrap().to_owned()),
        ("temporary SK", credential["credential"]["secret"].as_str().unwrap().to_owned()),
        ("secret value", value.clone()),
        ("wrong password", "wrong-password-123".into()),
        ("root key", file("root.key")),
        ("identity key", file("identity.key")),
    ];
    for pair in [&s.pki.kms, &s.pki.csms, &s.pki.gateway_client, &s.pki.operator] {
        secrets.push(("certificate key", pem_body(&pair.key)));
    }
    let mut lines = 0;
    for (name, proc) in [("gateway", s.gateway), ("csms-service", s.csms), ("kms-service", s.kms)] {
        proc.terminate();
        let logs = proc.exits_cleanly(name).await;
        lines += logs.len();
        for line in logs {
            let text = line.to_string();
            for (what, secret) in &secrets {
                // The tail: random in every one of them (PEM keys and
                // tokens share their first characters), and long enough
                // that a match is no accident.
                let probe = &secret[secret.len().saturating_sub(24)..];
                assert!(!text.contains(probe), "{name} logged the {what}: {text}");
            }
        }
    }
    assert!(lines > 100, "only {lines} log lines: the scan saw too little");
}
