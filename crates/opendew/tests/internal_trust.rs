//! No way around the gateway: a service port answers only callers that
//! present a certificate from the internal CA. Forged identity metadata is
//! refused over plaintext, over TLS without a client certificate, and with
//! a certificate from another CA; the stack's own certificate works.

mod support;

use common::identity::CallerIdentity;
use proto::kms::v1::{GenerateRandomRequest, key_management_service_client::KeyManagementServiceClient};
use support::{Db, TestStack};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

async fn call(channel: Result<Channel, tonic::transport::Error>, forged: &CallerIdentity) -> Result<(), String> {
    let channel = channel.map_err(|e| e.to_string())?;
    KeyManagementServiceClient::new(channel)
        .generate_random(forged.request(GenerateRandomRequest { length_bits: 64, ..Default::default() }))
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn service_ports_refuse_callers_without_an_internal_certificate() {
    let s = TestStack::start(Db::Sqlite).await;
    let pki = s.stack.pki.clone();
    let forged = CallerIdentity {
        domain_id: s.account.domain_id.clone(),
        project_id: s.account.project_id.clone(),
        user_id: "intruder".into(),
        request_id: String::new(),
    };
    let port = s.stack.kms.port();
    let ca = Certificate::from_pem(std::fs::read(&pki.ca_cert).unwrap());
    let identity = |pair: &opendew::pki::CertPair| {
        Identity::from_pem(std::fs::read(&pair.cert).unwrap(), std::fs::read(&pair.key).unwrap())
    };
    let tls_channel = |tls: ClientTlsConfig| async move {
        Channel::from_shared(format!("https://localhost:{port}")).unwrap().tls_config(tls)?.connect().await
    };

    let plaintext = Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await;
    assert!(call(plaintext, &forged).await.is_err(), "plaintext call answered");

    let anonymous = tls_channel(ClientTlsConfig::new().ca_certificate(ca.clone())).await;
    assert!(call(anonymous, &forged).await.is_err(), "call without a client certificate answered");

    let other = tempfile::tempdir().unwrap();
    let stranger = opendew::pki::ensure(&other.path().join("tls"), &["localhost".into()]).unwrap();
    let foreign =
        tls_channel(ClientTlsConfig::new().ca_certificate(ca.clone()).identity(identity(&stranger.operator))).await;
    assert!(call(foreign, &forged).await.is_err(), "a certificate from another CA was accepted");

    let operator = tls_channel(ClientTlsConfig::new().ca_certificate(ca).identity(identity(&pki.operator))).await;
    call(operator, &forged).await.expect("the internal CA's certificate is accepted");
    s.stack.stop().await.unwrap();
}
