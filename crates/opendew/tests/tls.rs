//! HTTPS at the edge: the gateway refuses to start without a transport
//! chosen explicitly, serves the configured certificate, and picks up a new
//! one from its files without a restart (a bad one is ignored).

mod support;

use std::{path::Path, time::Duration};

use base64::Engine;

/// The DER of the first certificate in a PEM file (the leaf).
fn leaf_der(pem_file: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(pem_file).unwrap();
    let body = text.split("-----BEGIN CERTIFICATE-----").nth(1).unwrap().split("-----END").next().unwrap();
    base64::engine::general_purpose::STANDARD.decode(body.split_whitespace().collect::<String>()).unwrap()
}

fn gateway_config(dir: &Path) -> gateway::GatewayConfig {
    support::lone_gateway_config(dir)
}

#[tokio::test]
async fn gateway_needs_tls_files_or_explicit_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = gateway_config(dir.path());
    config.http_plaintext = false;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let error = gateway::start(config.clone(), shutdown.clone()).await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("--tls-cert-file") && text.contains("--http-plaintext"), "{text}");

    // A key that is not PEM is refused at start, naming the setting and file.
    let tls = opendew::pki::ensure(&dir.path().join("tls"), &["localhost".into()]).unwrap().gateway_tls();
    let bad_key = dir.path().join("bad.key");
    std::fs::write(&bad_key, "not a key").unwrap();
    config.tls_cert_file = Some(tls.cert.clone());
    config.tls_key_file = Some(bad_key);
    let text = gateway::start(config, shutdown).await.unwrap_err().to_string();
    assert!(text.contains("--tls-key-file") && text.contains("bad.key"), "{text}");
}

#[tokio::test]
async fn certificate_files_are_reloaded_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let first = opendew::pki::ensure(&dir.path().join("a"), &hosts).unwrap().gateway_tls();
    let second = opendew::pki::ensure(&dir.path().join("b"), &hosts).unwrap().gateway_tls();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();

    let mut config = gateway_config(dir.path());
    config.http_plaintext = false;
    config.tls_cert_file = Some(cert.clone());
    config.tls_key_file = Some(key.clone());
    config.tls_reload_seconds = 1;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = gateway::start(config, shutdown.clone()).await.unwrap();
    let url = format!("https://localhost:{}/healthz", running.addr.port());

    // A fresh client (and so a fresh handshake) per look at the certificate.
    let served = || async {
        let client = reqwest::Client::builder().danger_accept_invalid_certs(true).tls_info(true).build().unwrap();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.extensions().get::<reqwest::tls::TlsInfo>().unwrap().peer_certificate().unwrap().to_vec()
    };
    assert_eq!(served().await, leaf_der(&first.cert));

    // Plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{}/healthz", running.addr.port())).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));

    // A half-written certificate is ignored: the current one stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\ngarbage\n").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(served().await, leaf_der(&first.cert));

    // The new pair, swapped in by rename as a Secret update does it.
    let staged = dir.path().join("staged");
    std::fs::copy(&second.key, &staged).unwrap();
    std::fs::rename(&staged, &key).unwrap();
    std::fs::copy(&second.cert, &staged).unwrap();
    std::fs::rename(&staged, &cert).unwrap();
    let wanted = leaf_der(&second.cert);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while served().await != wanted {
        assert!(tokio::time::Instant::now() < deadline, "the new certificate was not served within 10 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    running.task.await.unwrap().unwrap();
}
