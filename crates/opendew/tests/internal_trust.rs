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

    let operator =
        tls_channel(ClientTlsConfig::new().ca_certificate(ca.clone()).identity(identity(&pki.operator))).await;
    call(operator, &forged).await.expect("the internal CA's certificate is accepted");

    // Each internal certificate speaks only where it must (issue #15,
    // finding 7: before, csms-service's certificate, or kms-service's own,
    // could call every KMS operation for any tenant).
    let as_ =
        |pair: &opendew::pki::CertPair| ClientTlsConfig::new().ca_certificate(ca.clone()).identity(identity(pair));
    call(tls_channel(as_(&pki.gateway_client)).await, &forged).await.expect("the gateway speaks for tenants");
    for (who, pair) in [("csms-service", &pki.csms), ("kms-service", &pki.kms)] {
        let refused = call(tls_channel(as_(pair)).await, &forged).await.expect_err(who);
        assert!(refused.contains("PermissionDenied") || refused.contains("may not call"), "{who}: {refused}");
    }
    // csms-service may make its data-key calls, under CSMS's AAD: what
    // answers is the operation's own verdict (no such key), not a refusal
    // of the caller. Outside that AAD (a tenant's own data keys) it is
    // refused (issue #40: before, its certificate could mint and open any
    // tenant's data keys).
    let csms = tls_channel(as_(&pki.csms)).await.unwrap();
    let datakey = |aad: &'static [u8]| {
        let request = forged.request(proto::kms::v1::CreateDatakeyRequest {
            key_id: uuid::Uuid::new_v4().to_string(),
            additional_authenticated_data: aad.to_vec(),
            ..Default::default()
        });
        let mut client = KeyManagementServiceClient::new(csms.clone());
        async move { client.create_datakey(request).await.unwrap_err() }
    };
    let own = datakey(b"opendew/csms/dek/v1|p|s|v1").await;
    assert_ne!(own.code(), tonic::Code::PermissionDenied, "{own:?}");
    for aad in [&b""[..], b"tenant context", b"opendew/kms/x"] {
        let theirs = datakey(aad).await;
        assert_eq!(theirs.code(), tonic::Code::PermissionDenied, "{aad:?}: {theirs:?}");
    }
    let mut as_csms = KeyManagementServiceClient::new(csms.clone());
    let default_key = as_csms
        .ensure_service_default_key(
            forged.request(proto::kms::v1::EnsureServiceDefaultKeyRequest { service: "kms".into() }),
        )
        .await
        .unwrap_err();
    assert_eq!(default_key.code(), tonic::Code::PermissionDenied, "another service's default key");
    // The operator's certificate reads, and changes nothing (issue #40).
    let operator = tls_channel(as_(&pki.operator)).await.unwrap();
    let mut as_operator = KeyManagementServiceClient::new(operator);
    let listed = as_operator.list_keys(forged.request(proto::kms::v1::ListKeysRequest::default())).await;
    assert!(listed.is_ok(), "{listed:?}");
    let created = as_operator
        .create_key(
            forged.request(proto::kms::v1::CreateKeyRequest { key_alias: "by-operator".into(), ..Default::default() }),
        )
        .await
        .unwrap_err();
    assert_eq!(created.code(), tonic::Code::PermissionDenied, "{created:?}");
    assert!(created.message().contains("--operator-break-glass"), "{created:?}");
    // csms-service's port answers the gateway only.
    let csms_port = s.stack.csms.port();
    let channel = Channel::from_shared(format!("https://localhost:{csms_port}")).unwrap();
    let channel = channel.tls_config(as_(&pki.csms)).unwrap().connect().await.unwrap();
    let listed = proto::csms::v1::secrets_manager_service_client::SecretsManagerServiceClient::new(channel)
        .list_secrets(forged.request(proto::csms::v1::ListSecretsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(listed.code(), tonic::Code::PermissionDenied, "{listed:?}");
    s.stack.stop().await.unwrap();
}
