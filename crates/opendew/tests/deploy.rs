//! deploy/ is checked offline: the compose file against the Compose
//! Specification, every Kubernetes overlay rendered and validated strictly,
//! the Dockerfile linted (`deploy/check`). Each check is also shown to
//! fail on a deliberately broken copy, so a green run means something.
//!
//! The validators come from PyPI into a venv under the target directory
//! on first run. Without `python3` the test is skipped, except under CI.

mod support;

use std::{path::Path, process::Command};

use support::{in_ci, repo_root};

/// Runs deploy/check on `dir`; (success, combined output).
fn check(dir: &Path) -> (bool, String) {
    let output = Command::new("bash")
        .arg(repo_root().join("deploy/check"))
        .arg(dir)
        .env("OPENDEW_DEPLOY_TOOLS", Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy-tools"))
        .output()
        .expect("run deploy/check");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// How a case breaks a file.
type Edit = fn(String) -> String;

/// A copy of deploy/ with `file` changed by `edit`.
fn broken(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("cp").arg("-r").arg(repo_root().join("deploy/.")).arg(dir.path()).status().unwrap();
    assert!(status.success());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = edit(text.clone());
    assert_ne!(changed, text, "the edit of {file} changed nothing");
    std::fs::write(&path, changed).unwrap();
    dir
}

#[test]
fn deploy_files_validate_and_each_check_can_fail() {
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(!in_ci(), "CI=true but python3 is missing for deploy/check");
        test_support::say_skipped("deploy checks: python3 not found");
        return;
    }
    let (ok, text) = check(&repo_root().join("deploy"));
    assert!(ok, "deploy/check failed on the committed files:\n{text}");
    assert!(text.contains("overlay dev") && text.contains("overlay production"), "{text}");

    assert!(text.contains("integrations"), "{text}");

    let cases: [(&str, &str, Edit); 13] = [
        ("compose/compose.yaml", "compose", |t| t.replace("condition: service_healthy", "condition: service_ready")),
        ("k8s/base/gateway.yaml", "k8s:production", |t| {
            t.replacen("  replicas: 1\n", "  replicas: 1\n  replica: 2\n", 1)
        }),
        ("k8s/overlays/dev/postgres.yaml", "k8s:dev", |t| {
            t.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false")
        }),
        ("Dockerfile", "dockerfile", |t| t.replacen("WORKDIR /src\n", "WORKDIR /src\nMAINTAINER someone\n", 1)),
        // Least privilege: the gateway given the bootstrap volume (the CA
        // key, the root key), or kms-service's database Secret.
        ("compose/compose.yaml", "compose:privilege", |t| {
            t.replace("      - gateway-files:/var/lib/opendew:ro", "      - bootstrap:/var/lib/opendew:ro")
        }),
        ("k8s/base/gateway.yaml", "k8s:dev:privilege", |t| {
            t.replace("secretName: opendew-database-iam", "secretName: opendew-database-kms")
        }),
        // The seed credentials left with the serving gateway (issue #40).
        ("compose/compose.yaml", "compose:privilege", |t| {
            t.replace(
                "      OPENDEW_TOKEN_KEY_FILE: /var/lib/opendew/token.key\n",
                "      OPENDEW_TOKEN_KEY_FILE: /var/lib/opendew/token.key\n      OPENDEW_CREDENTIALS_FILE: /var/lib/opendew/c.json\n",
            )
        }),
        ("k8s/base/gateway.yaml", "k8s:dev:privilege", |t| {
            t.replacen(
                "            - name: OPENDEW_TOKEN_KEY_FILE\n",
                "            - name: OPENDEW_CREDENTIALS_FILE\n              value: /etc/opendew/seed/credentials.json\n            - name: OPENDEW_TOKEN_KEY_FILE\n",
                1,
            )
        }),
        // The node agents: a schema error, a capability, more of the host,
        // kube-apiserver pointed at another socket, a class the provider
        // would refuse.
        ("k8s/integrations/csi-provider/daemonset.yaml", "k8s:integrations", |t| {
            t.replace("  updateStrategy:\n", "  updateStrategy:\n    kind: Rolling\n")
        }),
        ("k8s/integrations/kms-plugin/opendew-kms-plugin.yaml", "k8s:integrations:privilege", |t| {
            t.replace("drop: [\"ALL\"]", "drop: [\"ALL\"]\n          add: [\"SYS_ADMIN\"]")
        }),
        ("k8s/integrations/csi-provider/daemonset.yaml", "k8s:integrations:privilege", |t| {
            t.replace("path: /var/run/secrets-store-csi-providers", "path: /var/lib/kubelet")
        }),
        ("k8s/integrations/kms-plugin/encryption-configuration.yaml", "k8s:integrations:privilege", |t| {
            t.replace("unix:///var/run/kmsplugin/socket.sock", "unix:///var/run/kmsplugin/other.sock")
        }),
        ("k8s/integrations/csi-provider/examples/secret-provider-class.yaml", "k8s:integrations:privilege", |t| {
            t.replace("jsonKey: password", "jsonkey: password")
        }),
    ];
    for (file, stage, edit) in cases {
        let dir = broken(file, edit);
        let (ok, text) = check(dir.path());
        assert!(!ok, "deploy/check passed with a broken {file}:\n{text}");
        let verdict = text.lines().find(|l| l.starts_with("deploy checks failed")).unwrap_or_default();
        assert!(verdict.contains(stage), "broken {file} should fail `{stage}`:\n{text}");
    }
}
