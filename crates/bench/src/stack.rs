//! Starting what is measured: the three services as separate release
//! processes, or the one-process dev stack, each on free ports.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// One server process.
#[derive(Debug)]
pub struct Proc {
    /// Binary name, for the report.
    pub name: String,
    /// Where it listens.
    pub addr: String,
    child: Child,
}

impl Proc {
    /// Peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGTERM and wait.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// The binary `name` next to this executable (same target directory).
pub fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("executable has no directory")?.join(name);
    if !path.exists() {
        bail!("{} not found: build it first (cargo build --release --workspace --bins)", path.display());
    }
    Ok(path)
}

/// Starts `bin` with JSON logs and waits for the log line `message`, whose
/// `addr` field is where it listens.
pub async fn spawn(bin: &Path, args: &[String], envs: &[(&str, String)], message: &str) -> anyhow::Result<Proc> {
    let mut command = Command::new(bin);
    command
        .args(args)
        .args(["--log-format", "json"])
        .env("OPENDEW_LOG", "warn,kms_service=info,csms_service=info,gateway=info")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
            if event["message"] == message {
                return Ok(event["addr"].as_str().unwrap_or_default().to_owned());
            }
        }
        bail!("{} exited before it was ready", bin.display())
    })
    .await
    .with_context(|| format!("{} did not start within 60 s", bin.display()))??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let name = bin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(Proc { name, addr, child })
}

/// Starts a process that prints one JSON line `{"message", "addr"}` when
/// ready (the baseline server), without the services' logging flags.
pub async fn spawn_plain(bin: &Path, args: &[String], message: &str) -> anyhow::Result<Proc> {
    let mut child = Command::new(bin).args(args).stdout(Stdio::piped()).kill_on_drop(true).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut addr = None;
    while let Some(line) = lines.next_line().await? {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if event["message"] == message {
            addr = event["addr"].as_str().map(str::to_owned);
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc { name: "baseline".into(), addr: addr.context("baseline printed no address")?, child })
}

/// Starts `opendew dev` in `dir`; returns it and how long it took to print
/// its banner (ready to serve).
pub async fn spawn_dev(bin: &Path, dir: &Path) -> anyhow::Result<(Proc, Duration)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["dev", "--http-listen", "127.0.0.1:0", "--kms-listen", "127.0.0.1:0", "--csms-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir)
        .env("OPENDEW_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting opendew dev")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let mut endpoint = None;
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.trim().strip_prefix("endpoint") {
            endpoint = Some(rest.trim().trim_start_matches("http://").to_owned());
            break;
        }
    }
    let ready = started.elapsed();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = endpoint.context("opendew dev printed no endpoint")?;
    Ok((Proc { name: "opendew dev".into(), addr, child }, ready))
}
