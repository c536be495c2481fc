//! The docker-compose stack for real (issue #18): images built here with
//! no registry (`deploy/local-images`), `up`, every healthcheck passing,
//! the official SDK against the gateway's published HTTPS port, then the
//! kms-service and Postgres containers killed with SIGKILL in turn while a
//! client keeps writing: `restart: unless-stopped` brings each back and
//! every write the gateway acknowledged is still there. Finally `down -v`.
//!
//! Needs a Docker engine: started here (`dockerd`, Debian's `docker.io`) if
//! none answers and this runs as root. Skipped with a reason where no engine
//! can start; under CI=true that fails instead.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::{in_ci, repo_root, sdk_python};

const PROJECT: &str = "opendew-compose-test";

fn skip_or_fail(why: &str) {
    assert!(!in_ci(), "CI=true but the compose test cannot run: {why}");
    test_support::say_skipped(&format!("compose stack: {why}"));
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A docker client whose `build` uses BuildKit (as deploy/local-images picks).
fn docker() -> String {
    if ok(Command::new("docker").args(["buildx", "version"])) {
        "docker".into()
    } else if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker".into()
    } else {
        "docker".into()
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes sure an engine answers: installs Debian's docker.io (with
/// debootstrap and docker-compose) and starts dockerd when needed.
fn ensure_engine(log_dir: &Path) -> Result<String, String> {
    let has = |tool: &str| ok(Command::new("sh").args(["-c", &format!("command -v {tool}")]));
    if !(has("dockerd")
        && has("debootstrap")
        && (has("docker-compose") || ok(Command::new("docker").args(["compose", "version"]))))
    {
        if !is_root() {
            return Err("dockerd, debootstrap or compose missing and not root to install them".into());
        }
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-q", "docker.io", "debootstrap", "docker-compose"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return Err("apt-get install docker.io debootstrap docker-compose failed".into());
        }
    }
    let docker = docker();
    if ok(Command::new(&docker).arg("info")) {
        return Ok(docker);
    }
    if !is_root() {
        return Err("no Docker engine answers and not root to start dockerd".into());
    }
    let log = std::fs::File::create(log_dir.join("dockerd.log")).unwrap();
    // Left running for later runs, as the machine's other services are.
    Command::new("setsid")
        .args(["dockerd", "--storage-driver=overlay2"])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting dockerd: {e}"))?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if ok(Command::new(&docker).arg("info")) {
            return Ok(docker);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("dockerd did not answer within 60 s (log: {})", log_dir.join("dockerd.log").display()))
}

struct Compose {
    program: Vec<String>,
    files: Vec<PathBuf>,
}

impl Compose {
    fn new() -> Self {
        let program = if ok(Command::new("docker").args(["compose", "version"])) {
            vec!["docker".into(), "compose".into()]
        } else {
            vec!["docker-compose".into()]
        };
        let deploy = repo_root().join("deploy");
        Self { program, files: vec![deploy.join("compose/compose.yaml"), deploy.join("local/compose.local.yaml")] }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..]).args(["-p", PROJECT]);
        for f in &self.files {
            cmd.arg("-f").arg(f);
        }
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "compose {args:?} failed:\n{text}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn container(&self, service: &str) -> String {
        self.run(&["ps", "-a", "-q", service]).trim().to_owned()
    }
}

fn inspect(docker: &str, container: &str, format: &str) -> String {
    let out = Command::new(docker).args(["inspect", "-f", format, container]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until each service's healthcheck passes; how long it took.
fn wait_healthy(docker: &str, compose: &Compose, services: &[&str], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let states: Vec<(String, String)> = services
            .iter()
            .map(|s| {
                let id = compose.container(s);
                (
                    s.to_string(),
                    if id.is_empty() { "absent".into() } else { inspect(docker, &id, "{{.State.Health.Status}}") },
                )
            })
            .collect();
        if states.iter().all(|(_, h)| h == "healthy") {
            return started.elapsed();
        }
        if started.elapsed() > limit {
            let logs = compose.cmd(&["logs", "--tail", "40"]).output().unwrap();
            panic!("not healthy after {limit:?}: {states:?}\n{}", String::from_utf8_lossy(&logs.stdout));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGKILL to the container's main process, from the host: a crash, not a
/// `docker stop`, so the restart policy applies.
fn crash(docker: &str, compose: &Compose, service: &str) {
    let id = compose.container(service);
    let pid = inspect(docker, &id, "{{.State.Pid}}");
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "{service} is not running (pid {pid:?})");
    assert!(ok(Command::new("kill").args(["-9", &pid])), "kill -9 {pid} ({service})");
    // Until the engine has seen it exit, it still reports it healthy.
    let started = Instant::now();
    while inspect(docker, &id, "{{.State.Pid}}") == pid && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Down<'a>(&'a Compose);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["down", "-v", "--remove-orphans"]).output();
    }
}

#[test]
fn compose_stack_runs_survives_kills_and_loses_no_acknowledged_write() {
    let Some(python) = sdk_python() else { return };
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compose-test");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let docker = match ensure_engine(&work) {
        Ok(d) => d,
        Err(why) => return skip_or_fail(&why),
    };
    let mut times = Vec::new();

    // Build: local bases and images, packaging the debug binaries the
    // suite already built (a release build is the script's default).
    let started = Instant::now();
    let built = Command::new(repo_root().join("deploy/local-images"))
        .env("DOCKER", &docker)
        .env("OPENDEW_IMAGE_PROFILE", "debug")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&built.stdout), String::from_utf8_lossy(&built.stderr));
    assert!(built.status.success(), "deploy/local-images failed:\n{text}");
    times.push(("build", started.elapsed()));

    let compose = Compose::new();
    let _ = compose.cmd(&["down", "-v", "--remove-orphans"]).output();
    let _down = Down(&compose);
    let started = Instant::now();
    compose.run(&["up", "-d", "--no-build"]);
    let services = ["postgres", "kms-service", "csms-service", "gateway"];
    wait_healthy(&docker, &compose, &services, Duration::from_secs(180));
    times.push(("up to healthy", started.elapsed()));
    let bootstrap = compose.container("bootstrap");
    assert_eq!(inspect(&docker, &bootstrap, "{{.State.ExitCode}}"), "0");

    // The credentials and the CA, copied out as the compose file's header says.
    for file in ["credentials.json", "tls/ca.pem"] {
        let out = work.join(Path::new(file).file_name().unwrap());
        let copied =
            Command::new(&docker).arg("cp").arg(format!("{bootstrap}:/var/lib/opendew/{file}")).arg(&out).status();
        assert!(copied.is_ok_and(|s| s.success()), "docker cp {file}");
    }
    let creds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("credentials.json")).unwrap()).unwrap();
    let c = &creds["credentials"][0];
    let script = repo_root().join("tests/python/compose_smoke.py");
    let sdk = |args: &[&str]| {
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(args)
            .env("OPENDEW_ENDPOINT", "https://127.0.0.1:8443")
            .env("OPENDEW_CA_FILE", work.join("ca.pem"))
            .env("OPENDEW_AK", c["access_key"].as_str().unwrap())
            .env("OPENDEW_SK", c["secret_key"].as_str().unwrap())
            .env("OPENDEW_PROJECT_ID", c["project_id"].as_str().unwrap());
        cmd
    };
    let smoke = sdk(&["smoke"]).output().unwrap();
    let smoke_text = format!("{}{}", String::from_utf8_lossy(&smoke.stdout), String::from_utf8_lossy(&smoke.stderr));
    assert!(smoke.status.success(), "SDK smoke test failed:\n{smoke_text}");

    // A client keeps writing while each container is killed in turn.
    let (log, stop) = (work.join("acked.jsonl"), work.join("stop"));
    let writer: Child = sdk(&["write", log.to_str().unwrap(), stop.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let acked = || std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0);
    let wait_for_writes = |more: usize| {
        let (from, started) = (acked(), Instant::now());
        while acked() < from + more {
            assert!(started.elapsed() < Duration::from_secs(60), "the writer stalled at {} acknowledged", acked());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for_writes(10);
    for service in ["kms-service", "postgres"] {
        crash(&docker, &compose, service);
        let recovery = wait_healthy(&docker, &compose, &services, Duration::from_secs(120));
        // Healthy again is not enough: writes must be acknowledged again.
        wait_for_writes(10);
        times.push((
            if service == "postgres" {
                "recovery after kill -9 postgres"
            } else {
                "recovery after kill -9 kms-service"
            },
            recovery,
        ));
        let restarts = inspect(&docker, &compose.container(service), "{{.RestartCount}}");
        assert_ne!(restarts, "0", "{service} came back by its restart policy");
    }
    std::fs::write(&stop, b"").unwrap();
    let written = writer.wait_with_output().unwrap();
    let writer_text =
        format!("{}{}", String::from_utf8_lossy(&written.stdout), String::from_utf8_lossy(&written.stderr));
    assert!(written.status.success(), "writer failed:\n{writer_text}");

    let verified = sdk(&["verify", log.to_str().unwrap()]).output().unwrap();
    let verify_text =
        format!("{}{}", String::from_utf8_lossy(&verified.stdout), String::from_utf8_lossy(&verified.stderr));
    assert!(verified.status.success(), "acknowledged writes were lost:\n{verify_text}");

    let started = Instant::now();
    compose.run(&["down", "-v", "--remove-orphans"]);
    times.push(("down -v", started.elapsed()));
    eprintln!("compose stack: {}", smoke_text.trim());
    eprintln!("compose stack: {} / {}", writer_text.trim(), verify_text.trim());
    // Kept for .ci/run, which prints them (a passing test's output is captured).
    let report: String =
        times.iter().map(|(what, took)| format!("compose stack: {what}: {:.1} s\n", took.as_secs_f64())).collect();
    eprint!("{report}");
    std::fs::write(work.join("times.txt"), report).unwrap();
    // The stack is gone; its credentials need not stay on disk.
    let _ = std::fs::remove_file(work.join("credentials.json"));
}
