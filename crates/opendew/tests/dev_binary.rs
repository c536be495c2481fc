//! The README's run command as a user runs it: the `opendew dev` binary in
//! its own process, on SQLite, stopped with SIGTERM and started again on the
//! same data directory.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

struct Dev {
    child: Child,
    endpoint: String,
}

impl Dev {
    /// Starts `opendew dev` on free ports and waits for its banner.
    fn start(data_dir: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_opendew"))
            .args([
                "dev",
                "--http-listen",
                "127.0.0.1:0",
                "--kms-listen",
                "127.0.0.1:0",
                "--csms-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("OPENDEW_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start opendew dev");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut endpoint = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(rest) = line.trim().strip_prefix("endpoint") {
                endpoint = Some(rest.trim().to_owned());
            }
            if line.contains("Python SDK") {
                break;
            }
        }
        // Keep reading, as a terminal would, so the process never writes
        // into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, endpoint: endpoint.expect("the banner names the endpoint") }
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "opendew dev exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill().unwrap();
        panic!("opendew dev did not stop within 10 s of SIGTERM");
    }
}

async fn token(client: &reqwest::Client, endpoint: &str, c: &Value) -> String {
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": c["user_name"], "password": c["password"], "domain": {"name": c["domain_name"]}}}}, "scope": {"project": {"name": c["project_name"]}}}});
    let r = client.post(format!("{endpoint}/v3/auth/tokens")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.headers()["x-subject-token"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn dev_stack_runs_and_keeps_its_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    let dev = Dev::start(dir.path());
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("credentials.json")).unwrap()).unwrap();
    let c = file["credentials"][0].clone();
    let project = c["project_id"].as_str().unwrap().to_owned();
    #[cfg(unix)]
    for secret_file in ["root.key", "token.key", "credentials.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(secret_file)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{secret_file} must be private");
    }
    let t = token(&client, &dev.endpoint, &c).await;
    let key = client
        .post(format!("{}/v1.0/{project}/kms/create-key", dev.endpoint))
        .header("x-auth-token", &t)
        .json(&json!({"key_alias": "survives-restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200);
    let key_id = key.json::<Value>().await.unwrap()["key_info"]["key_id"].as_str().unwrap().to_owned();
    let secret = client
        .post(format!("{}/v1/{project}/secrets", dev.endpoint))
        .header("x-auth-token", &t)
        .json(&json!({"name": "survivor", "secret_string": "still here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 200);
    dev.stop();

    // Same data directory: same credentials, same root key, same data.
    let dev = Dev::start(dir.path());
    let t = token(&client, &dev.endpoint, &c).await;
    let described = client
        .post(format!("{}/v1.0/{project}/kms/describe-key", dev.endpoint))
        .header("x-auth-token", &t)
        .json(&json!({"key_id": key_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(described.json::<Value>().await.unwrap()["key_info"]["key_alias"], "survives-restart");
    let read = client
        .get(format!("{}/v1/{project}/secrets/survivor/versions/latest", dev.endpoint))
        .header("x-auth-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(read.json::<Value>().await.unwrap()["version"]["secret_string"], "still here");
    dev.stop();

    // A different root key against the same database is refused at start.
    std::fs::write(dir.path().join("root.key"), "00".repeat(32)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_opendew"))
        .args(["dev", "--http-listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--csms-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("root key does not match"), "{stderr}");
}
