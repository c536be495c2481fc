//! The CSI provider over its unix socket, with a gRPC client generated from
//! the project's proto, against a running opendew stack over HTTPS: the
//! calls the Secrets Store CSI Driver makes at pod start and on each
//! rotation poll.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use base64::Engine;
use proto::k8s::csi_v1alpha1::{
    MountRequest, MountResponse, ObjectVersion, VersionRequest, csi_driver_provider_client::CsiDriverProviderClient,
};
use serde_json::json;
use tonic::transport::Channel;

async fn connect(socket: PathBuf) -> CsiDriverProviderClient<Channel> {
    CsiDriverProviderClient::new(test_support::unix_channel(socket).await)
}

/// The driver's attributes: the class's parameters plus the pod's.
fn attributes(parameters: serde_json::Value) -> String {
    let mut all = json!({
        "secretProviderClass": "orders",
        "csi.storage.k8s.io/pod.name": "orders-0",
        "csi.storage.k8s.io/pod.namespace": "shop",
        "csi.storage.k8s.io/pod.uid": "0f4c1b7e-3d0a-4c55-9b1e-2f8d9a6c1e11",
        "csi.storage.k8s.io/serviceAccount.name": "orders",
        "csi.storage.k8s.io/ephemeral": "false",
    });
    all.as_object_mut().unwrap().extend(parameters.as_object().unwrap().clone());
    all.to_string()
}

fn pod_secret(signer: &client::Signer) -> String {
    json!({"access_key": signer.ak, "secret_key": signer.sk.as_str(), "project_id": signer.project_id}).to_string()
}

fn mount(attributes: String, secrets: String, current: Vec<ObjectVersion>) -> MountRequest {
    MountRequest {
        attributes,
        secrets,
        target_path: "/var/lib/kubelet/pods/0f4c1b7e/volumes/kubernetes.io~csi/secrets/mount".into(),
        permission: "420".into(),
        current_object_version: current,
    }
}

fn files(r: &MountResponse) -> HashMap<&str, (i32, &[u8])> {
    r.files.iter().map(|f| (f.path.as_str(), (f.mode, f.contents.as_slice()))).collect()
}

fn versions(r: &MountResponse) -> HashMap<&str, &str> {
    r.object_version.iter().map(|v| (v.id.as_str(), v.version.as_str())).collect()
}

const OBJECTS: &str = "\
- secretName: orders-db
  fileName: db.json
  fileMode: \"0400\"
- secretName: orders-db
  jsonKey: password
  fileName: db/password
- secretName: tls-key
- secretName: api-key
  version: v1
";

#[tokio::test]
async fn csi_provider_mounts_csms_secrets_as_files_with_their_versions() {
    common::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Two accounts: the pod's, and another one's whose secrets it must not read.
    let (mine, theirs) = (identity::credentials::generate("local-1"), {
        let mut other = identity::credentials::generate("local-1");
        other.domain_name = "elsewhere".into();
        other.user_name = "other-admin".into();
        other
    });
    let file = identity::credentials::CredentialsFile { credentials: vec![mine, theirs] };
    identity::credentials::write_private_file(
        &data.join("credentials.json"),
        serde_json::to_string(&file).unwrap().as_bytes(),
    )
    .unwrap();
    let config = opendew::DevConfig { tls: true, ..opendew::DevConfig::on_loopback(data) };
    let stack = opendew::start(config, tokio_util::sync::CancellationToken::new()).await.unwrap();
    let ca = stack.tls.as_ref().expect("the stack serves HTTPS").ca_cert.clone();
    let signer = |c: &identity::credentials::Credential| client::Signer {
        ak: c.access_key.clone(),
        sk: c.secret_key.expose().to_owned().into(),
        project_id: c.project_id.clone(),
    };
    let (me, other) = (signer(&file.credentials[0]), signer(&file.credentials[1]));
    let api = |s: &client::Signer| {
        client::GatewayClient::new(&stack.endpoint(), s.clone(), Some(&ca), Duration::from_secs(10)).unwrap()
    };
    let (my_api, their_api) = (api(&me), api(&other));
    let create = |api: client::GatewayClient, rest: String, body: serde_json::Value| async move {
        let path = format!("/v1/{}/{rest}", api.project_id());
        let r = api.call(http::Method::POST, &path, Some(&body)).await.unwrap();
        assert_eq!(r.status, 200, "{rest}: {:?}", r.body);
    };
    let db_v1 = json!({"username": "orders", "password": "first-pass"}).to_string();
    create(my_api.clone(), "secrets".into(), json!({"name": "orders-db", "secret_string": db_v1})).await;
    let key_bytes = [0u8, 1, 2, 254, 255];
    let b64 = base64::engine::general_purpose::STANDARD;
    create(my_api.clone(), "secrets".into(), json!({"name": "tls-key", "secret_binary": b64.encode(key_bytes)})).await;
    create(my_api.clone(), "secrets".into(), json!({"name": "api-key", "secret_string": "key-one"})).await;
    create(my_api.clone(), "secrets/api-key/versions".into(), json!({"secret_string": "key-two"})).await;
    create(their_api.clone(), "secrets".into(), json!({"name": "their-db", "secret_string": "not yours"})).await;

    let socket = dir.path().join("providers/opendew.sock");
    let provider_config = csi_provider::ProviderConfig {
        socket: socket.clone(),
        gateway_url: stack.endpoint(),
        ca_file: Some(ca.clone()),
        timeout: Duration::from_secs(5),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(csi_provider::serve(provider_config, shutdown.clone()));
    test_support::private_socket(&socket).await;
    let mut provider = connect(socket.clone()).await;

    let version = provider.version(VersionRequest { version: "v1alpha1".into() }).await.unwrap().into_inner();
    assert_eq!((version.version.as_str(), version.runtime_name.as_str()), ("v1alpha1", "opendew"));
    assert!(version.runtime_version.split('.').count() == 3, "semver: {}", version.runtime_version);

    // Pod start: every object, its contents, mode and version.
    let class = attributes(json!({"objects": OBJECTS, "projectId": me.project_id}));
    let first = provider.mount(mount(class.clone(), pod_secret(&me), vec![])).await.unwrap().into_inner();
    assert!(first.error.is_none());
    let got = files(&first);
    assert_eq!(got.len(), 4);
    assert_eq!(got["db.json"], (0o400, db_v1.as_bytes()));
    assert_eq!(got["db/password"], (0o644, b"first-pass".as_slice()), "one JSON member, the driver's default mode");
    assert_eq!(got["tls-key"], (0o644, key_bytes.as_slice()), "a binary secret is written as its bytes");
    assert_eq!(got["api-key"].1, b"key-one", "pinned to v1 though v2 is current");
    let v = versions(&first);
    assert_eq!(v.len(), 4, "one object version per file: {v:?}");
    assert_eq!(v["secret/orders-db/db.json"], "v1");
    assert_eq!(v["secret/orders-db/db/password"], "v1");
    assert_eq!(v["secret/api-key/api-key"], "v1");
    assert_eq!(v["secret/tls-key/tls-key"], "v1");

    // The secret is updated in opendew; the driver's rotation poll sees a
    // new object version and new contents; the pinned object stays.
    let db_v2 = json!({"username": "orders", "password": "second-pass"}).to_string();
    create(my_api.clone(), "secrets/orders-db/versions".into(), json!({"secret_string": db_v2})).await;
    let polled =
        provider.mount(mount(class.clone(), pod_secret(&me), first.object_version.clone())).await.unwrap().into_inner();
    let (got, v) = (files(&polled), versions(&polled));
    assert_eq!(v["secret/orders-db/db.json"], "v2");
    assert_eq!(v["secret/orders-db/db/password"], "v2");
    assert_eq!(got["db/password"].1, b"second-pass");
    assert_eq!(got["db.json"].1, db_v2.as_bytes());
    assert_eq!((v["secret/api-key/api-key"], got["api-key"].1), ("v1", b"key-one".as_slice()));
    // A stage names the version too.
    let staged = attributes(json!({"objects": "- secretName: orders-db\n  versionStage: SYSPREVIOUS\n"}));
    let previous = provider.mount(mount(staged, pod_secret(&me), vec![])).await.unwrap().into_inner();
    assert_eq!(
        (versions(&previous)["secret/orders-db/orders-db"], files(&previous)["orders-db"].1),
        ("v1", db_v1.as_bytes())
    );

    // Another project's secrets: refused before any call when the class
    // names that project; not found when asked for by name.
    let theirs = attributes(json!({"objects": "- secretName: their-db\n", "projectId": other.project_id}));
    let refused = provider.mount(mount(theirs, pod_secret(&me), vec![])).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("another project"), "{}", refused.message());
    let by_name = attributes(json!({"objects": "- secretName: their-db\n"}));
    let missing = provider.mount(mount(by_name.clone(), pod_secret(&me), vec![])).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let as_them = provider.mount(mount(by_name.clone(), pod_secret(&other), vec![])).await.unwrap().into_inner();
    assert_eq!(files(&as_them)["their-db"].1, b"not yours", "its own account reads it");
    // Wrong SK: opendew refuses the signature; nothing is returned.
    let forged = client::Signer { sk: String::from("not-the-secret-key").into(), ..me.clone() };
    let denied = provider.mount(mount(class.clone(), pod_secret(&forged), vec![])).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(!denied.message().contains("not-the-secret-key"));
    // A class that escapes the volume or is not YAML is refused.
    let escape = attributes(json!({"objects": "- secretName: orders-db\n  fileName: ../../etc/passwd\n"}));
    let bad = provider.mount(mount(escape, pod_secret(&me), vec![])).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let bad = provider.mount(mount(attributes(json!({"objects": "{{{"})), pod_secret(&me), vec![])).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    // A JSON key the value does not have names the key, not the value.
    let no_key = attributes(json!({"objects": "- secretName: orders-db\n  jsonKey: token\n"}));
    let bad = provider.mount(mount(no_key, pod_secret(&me), vec![])).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(!bad.message().contains("second-pass"), "{}", bad.message());
    // A deleted secret fails the next poll (the driver keeps the files it has).
    let path = format!("/v1/{}/secrets/api-key", me.project_id);
    let r = my_api.call(http::Method::DELETE, &path, None).await.unwrap();
    assert!(matches!(r.status, 200 | 204), "{} {:?}", r.status, r.body);
    let gone = provider.mount(mount(class, pod_secret(&me), polled.object_version.clone())).await.unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound, "{gone:?}");

    shutdown.cancel();
    served.await.unwrap().unwrap();
    assert!(!socket.exists(), "the socket is removed at shutdown");
    stack.stop().await.unwrap();
}
