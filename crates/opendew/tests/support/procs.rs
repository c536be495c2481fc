//! The deployment binaries as separate processes: built once, started with
//! the flags an operator gives them, their JSON logs collected, stopped with
//! SIGTERM or killed with SIGKILL. Used by `processes.rs` and `crash.rs`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// Where cargo put this test, and so the binaries.
pub fn bin_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
            let mut build = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            build.current_dir(super::repo_root()).args([
                "build",
                "--bins",
                "-p",
                "kms-service",
                "-p",
                "csms-service",
                "-p",
                "gateway",
                "-p",
                "opendew-probe",
            ]);
            if dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            assert!(build.status().unwrap().success(), "building the service binaries failed");
            dir
        })
        .clone()
}

/// A running binary and every JSON log line it printed so far.
pub struct Proc {
    pub child: Child,
    pub addr: String,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Proc {
    pub async fn spawn(name: &str, args: &[String], ready: &str, log_filter: &str) -> Self {
        let defaults = ["--log-format", "json", "--shutdown-grace-seconds", "10"].map(String::from);
        Self::spawn_exact(name, &[args, &defaults[..]].concat(), ready, log_filter).await
    }

    /// As [`Proc::spawn`], with exactly `args` (which must ask for JSON logs).
    pub async fn spawn_exact(name: &str, args: &[String], ready: &str, log_filter: &str) -> Self {
        let mut child = Command::new(bin_dir().join(name))
            .args(args)
            .env("OPENDEW_LOG", log_filter)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut reader = BufReader::new(child.stdout.take().unwrap()).lines();
        let (sink, ready) = (lines.clone(), ready.to_owned());
        tokio::spawn(async move {
            let mut tx = Some(tx);
            while let Ok(Some(line)) = reader.next_line().await {
                let Ok(event) = serde_json::from_str::<Value>(&line) else { continue };
                if event["message"] == ready.as_str()
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(event["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push(event);
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("{name} did not start"))
            .unwrap_or_else(|_| panic!("{name} exited before it was ready"));
        Self { child, addr, lines }
    }

    pub fn logs(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    pub fn terminate(&self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    /// Waits for the exit after SIGTERM and asserts it was clean.
    pub async fn exits_cleanly(mut self, name: &str) -> Vec<Value> {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{name} did not exit within 20 s of SIGTERM"))
            .unwrap();
        assert!(status.success(), "{name} exited with {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.logs()
    }
}

/// The flags that make a process present `pair` over mutual TLS.
pub fn mtls(pki: &opendew::pki::Pki, pair: &opendew::pki::CertPair) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "--grpc-cert-file".into(),
        path(&pair.cert),
        "--grpc-key-file".into(),
        path(&pair.key),
        "--grpc-ca-file".into(),
        path(&pki.ca_cert),
    ]
}

impl Proc {
    /// The address of the plaintext health port, from its log line.
    pub fn health_addr(&self) -> String {
        let logs = self.logs();
        let line = logs.iter().find(|l| l["message"] == "health probe port listening").expect("a health port");
        line["addr"].as_str().unwrap().to_owned()
    }
}

impl Proc {
    /// SIGKILL, as the OOM killer or a node failure would; waits for the
    /// process to be gone.
    pub async fn kill_hard(&mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

/// A SQLite URL for `name` in `dir`.
pub fn sqlite_url(dir: &Path, name: &str) -> String {
    format!("sqlite://{}?mode=rwc", dir.join(name).display())
}

/// kms-service's flags: `listen` and `health` addresses, its database.
pub fn kms_args(dir: &Path, pki: &opendew::pki::Pki, database: &str, listen: &str, health: &str) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    [
        mtls(pki, &pki.kms),
        vec!["--health-listen".into(), health.into()],
        vec!["--kms-listen".into(), listen.into(), "--kms-database-url".into(), database.into()],
        vec!["--root-key-file".into(), path("root.key"), "--generate-root-key".into()],
    ]
    .concat()
}

/// csms-service's flags, calling kms-service at `kms_addr`.
pub fn csms_args(pki: &opendew::pki::Pki, database: &str, listen: &str, health: &str, kms_addr: &str) -> Vec<String> {
    let kms_port = kms_addr.rsplit(':').next().unwrap();
    [
        mtls(pki, &pki.csms),
        vec!["--health-listen".into(), health.into()],
        vec!["--csms-listen".into(), listen.into(), "--csms-database-url".into(), database.into()],
        vec!["--kms-endpoint".into(), format!("http://localhost:{kms_port}")],
    ]
    .concat()
}

/// The gateway's flags (plaintext HTTP on `listen`), with the credentials
/// file and identity key in `dir` (created if missing).
pub fn gateway_args(
    dir: &Path, pki: &opendew::pki::Pki, database: &str, listen: &str, kms_addr: &str, csms_addr: &str,
) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    identity::credentials::load_or_create(Path::new(&path("credentials.json")), "local-1").unwrap();
    identity::seal::SecretSealer::ensure_key_file(Path::new(&path("identity.key"))).unwrap();
    // Seeded as the deployments seed: by `--migrate-only`, so the serving
    // gateway is never given the credentials file (issue #40).
    let store = ["--iam-database-url".into(), database.into(), "--identity-key-file".into(), path("identity.key")];
    let seeded = std::process::Command::new(bin_dir().join("gateway"))
        .args(&store)
        .args(["--migrate-only", "--credentials-file", &path("credentials.json")])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "seeding failed: {}", String::from_utf8_lossy(&seeded.stderr));
    [
        mtls(pki, &pki.gateway_client),
        vec!["--http-listen".into(), listen.into(), "--http-plaintext".into()],
        store.to_vec(),
        vec!["--gateway-kms-endpoint".into(), format!("http://{kms_addr}")],
        vec!["--csms-endpoint".into(), format!("http://{csms_addr}")],
    ]
    .concat()
}
