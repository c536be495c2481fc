//! The official Python SDK (pinned in tests/python/requirements.txt)
//! against the real stack. The test creates a virtual environment under the
//! target directory on first run and reuses it afterwards.
//!
//! Without `python3` the test is skipped with a message, except under
//! `CI=true`, where it fails: CI must exercise the real SDK.

mod support;

use std::{path::PathBuf, process::Command};

use support::{Db, TestStack};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The venv's python, creating the venv and installing the SDK if needed.
fn sdk_python() -> Option<PathBuf> {
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

/// Both tests share one venv; the first to get here builds it.
static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

async fn run_sdk_suite(db: Db) {
    let Some(python) = PYTHON.get_or_init(sdk_python).clone() else {
        return;
    };
    let s = TestStack::start(db).await;
    let script = repo_root().join("tests/python/test_sdk.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("OPENDEW_ENDPOINT", &s.base)
        .env("OPENDEW_AK", &s.account.ak)
        .env("OPENDEW_SK", &s.account.sk)
        .env("OPENDEW_PROJECT_ID", &s.account.project_id)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    eprintln!("{report}");
    assert!(output.status.success(), "the official SDK suite failed:\n{report}");
    s.stack.stop().await.unwrap();
}

#[tokio::test]
async fn official_python_sdk_on_sqlite() {
    run_sdk_suite(Db::Sqlite).await;
}

#[tokio::test]
async fn official_python_sdk_on_postgres() {
    let Some(db) = Db::postgres("official Python SDK on Postgres").await else {
        return;
    };
    run_sdk_suite(db).await;
}
