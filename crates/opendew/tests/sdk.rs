//! The official Python SDK (pinned in tests/python/requirements.txt)
//! against the real stack. The test creates a virtual environment under the
//! target directory on first run and reuses it afterwards.
//!
//! Without `python3` the test is skipped with a message, except under
//! `CI=true`, where it fails: CI must exercise the real SDK.

mod support;

use std::path::PathBuf;

use support::{Db, TestStack, repo_root, sdk_python};

/// Both tests share one venv; the first to get here builds it.
static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Runs `script` from tests/python with the stack's endpoint and account in
/// its environment (and `extra`), and fails with its report unless it passes.
async fn run_python(s: &TestStack, script: &str, extra: &[(&str, &std::ffi::OsStr)], what: &str) {
    let python = PYTHON.get_or_init(sdk_python).clone().expect("checked by the caller");
    let output = tokio::process::Command::new(python)
        .arg(repo_root().join("tests/python").join(script))
        .env("OPENDEW_ENDPOINT", &s.base)
        .env("OPENDEW_AK", &s.account.ak)
        .env("OPENDEW_SK", &s.account.sk)
        .env("OPENDEW_PROJECT_ID", &s.account.project_id)
        .env("OPENDEW_USER", &s.account.user)
        .env("OPENDEW_PASSWORD", &s.account.password)
        .env("OPENDEW_DOMAIN", &s.account.domain_name)
        .envs(extra.iter().copied())
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    eprintln!("{report}");
    assert!(output.status.success(), "{what} failed:\n{report}");
}

async fn run_sdk_suite(db: Db) {
    if PYTHON.get_or_init(sdk_python).is_none() {
        return;
    }
    let s = TestStack::start(db).await;
    // A user of another account, for grants and change-password.
    let password = "grantee's first password";
    let (_, user_id, project, ak, sk) = support::other_account(&s, "grantee", password).await;
    let grantee: [(&str, &std::ffi::OsStr); 5] = [
        ("OPENDEW_GRANTEE_USER_ID", user_id.as_ref()),
        ("OPENDEW_GRANTEE_PROJECT_ID", project.as_ref()),
        ("OPENDEW_GRANTEE_AK", ak.as_ref()),
        ("OPENDEW_GRANTEE_SK", sk.as_ref()),
        ("OPENDEW_GRANTEE_PASSWORD", password.as_ref()),
    ];
    run_python(&s, "test_sdk.py", &grantee, "the official SDK suite").await;
    s.stack.stop().await.unwrap();
}

/// The SDK over HTTPS (`opendew dev --tls`): with the CA bundle, with
/// verification ignored, and refused with neither.
#[tokio::test]
async fn official_python_sdk_over_https() {
    if PYTHON.get_or_init(sdk_python).is_none() {
        return;
    }
    let s = TestStack::start_tls(Db::Sqlite).await;
    assert!(s.base.starts_with("https://"), "{}", s.base);
    let ca = s.stack.tls.as_ref().unwrap().ca_cert.clone();
    run_python(&s, "test_tls.py", &[("OPENDEW_CA_FILE", ca.as_os_str())], "the SDK over HTTPS").await;
    s.stack.stop().await.unwrap();
}

#[tokio::test]
async fn official_python_sdk_on_sqlite() {
    if PYTHON.get_or_init(sdk_python).is_none() {
        return;
    }
    run_sdk_suite(Db::Sqlite).await;
    // Every operation the gateway serves was called by the SDK suite, with
    // success and with an error: the routes come from the router's own
    // list, the calls from the gateway's request counter (this process's
    // recorder saw the suite's traffic).
    let rendered = common::metrics::recorder().render();
    let mut missing = Vec::new();
    for route in gateway::api_routes() {
        let prefix =
            format!(r#"opendew_http_requests_total{{method="{}",route="{}",status=""#, route.method, route.path);
        let statuses: Vec<&str> = rendered
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        let succeeded = statuses.iter().any(|s| s.starts_with('2'));
        let failed = statuses.iter().any(|s| s.starts_with('4'));
        if !succeeded || !failed {
            missing.push(format!("{} {} (success: {succeeded}, error: {failed})", route.method, route.path));
        }
    }
    assert!(missing.is_empty(), "the SDK suite does not cover:\n{}", missing.join("\n"));
}

#[tokio::test]
async fn official_python_sdk_on_postgres() {
    let Some(db) = Db::postgres("official Python SDK on Postgres").await else {
        return;
    };
    run_sdk_suite(db).await;
}

/// docs/ciphertext-format.md is enough to open every format's vector with
/// pyca/cryptography: the formats are what the document says, and the
/// per-message key derivation of formats 3 and 4 is plain HKDF-Expand.
#[test]
fn ciphertext_vectors_open_in_an_independent_implementation() {
    let Some(python) = PYTHON.get_or_init(sdk_python).clone() else { return };
    let output = std::process::Command::new(python)
        .arg(repo_root().join("tests/python/check_ciphertext_formats.py"))
        .arg(repo_root().join("docs"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
