//! The KMS v2 plugin over its unix socket, with a gRPC client generated
//! from the project's proto, against a running opendew stack.

use std::{path::PathBuf, time::Duration};

use base64::Engine;
use proto::k8s::kms_v2::{
    DecryptRequest, EncryptRequest, StatusRequest, key_management_service_client::KeyManagementServiceClient,
};
use serde_json::json;
use tonic::transport::Channel;

async fn connect(socket: PathBuf) -> KeyManagementServiceClient<Channel> {
    KeyManagementServiceClient::new(test_support::unix_channel(socket).await)
}

/// The dev stack on SQLite under `data`, on loopback ports.
async fn dev_stack(data: &std::path::Path) -> opendew::DevStack {
    let config = opendew::DevConfig::on_loopback(data.to_path_buf());
    opendew::start(config, tokio_util::sync::CancellationToken::new()).await.unwrap()
}

#[tokio::test]
async fn kms_v2_plugin_wraps_data_keys_under_an_opendew_key() {
    common::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let stack = dev_stack(&dir.path().join("data")).await;
    let signer = client::Signer::from_file(&stack.credentials_file).unwrap();
    let api = client::GatewayClient::new(&stack.endpoint(), signer.clone(), None, Duration::from_secs(10)).unwrap();
    let kms = |op: &str| format!("/v1.0/{}/kms/{op}", signer.project_id);
    let new_key = |alias: &'static str| {
        let (api, path) = (api.clone(), kms("create-key"));
        async move {
            let r = api.call(http::Method::POST, &path, Some(&json!({"key_alias": alias}))).await.unwrap();
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body["key_info"]["key_id"].as_str().unwrap().to_owned()
        }
    };
    let (key, other) = (new_key("k8s-kek").await, new_key("other").await);

    let socket = dir.path().join("kms/socket.sock");
    let plugin_config = kms_plugin::PluginConfig {
        socket: socket.clone(),
        gateway_url: stack.endpoint(),
        credentials_file: stack.credentials_file.clone(),
        ca_file: None,
        key_id: key.clone(),
        timeout: Duration::from_secs(2),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let served = tokio::spawn(kms_plugin::serve(plugin_config, shutdown.clone()));
    test_support::private_socket(&socket).await;
    let mut plugin = connect(socket.clone()).await;

    let status = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.version.as_str(), status.healthz.as_str()), ("v2", "ok"));
    assert_eq!(status.key_id, format!("{key}:0"));

    let dek = vec![7u8; 32];
    let wrapped =
        plugin.encrypt(EncryptRequest { plaintext: dek.clone(), uid: "u1".into() }).await.unwrap().into_inner();
    assert_eq!(wrapped.key_id, status.key_id);
    assert!(!wrapped.ciphertext.windows(dek.len()).any(|w| w == dek.as_slice()));
    assert!(wrapped.annotations.keys().all(|k| k.ends_with(".opendew.io")));
    let unwrap = |ciphertext: Vec<u8>, key_id: String, annotations| DecryptRequest {
        ciphertext,
        uid: "u2".into(),
        key_id,
        annotations,
    };
    let opened = plugin
        .decrypt(unwrap(wrapped.ciphertext.clone(), wrapped.key_id.clone(), wrapped.annotations.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(opened.plaintext, dek);

    // A ciphertext of another opendew key fails, whatever key id it claims.
    let b64 = base64::engine::general_purpose::STANDARD;
    let foreign = api
        .call(
            http::Method::POST,
            &kms("encrypt-data"),
            Some(&json!({"key_id": other, "plain_text": b64.encode([1u8; 32])})),
        )
        .await
        .unwrap();
    let foreign = foreign.body["cipher_text"].as_str().unwrap().as_bytes().to_vec();
    for claimed in [format!("{key}:0"), format!("{other}:0")] {
        let refused = plugin.decrypt(unwrap(foreign.clone(), claimed, Default::default())).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    let mut bad = wrapped.annotations.clone();
    bad.insert("Not A DNS Name".into(), b"x".to_vec());
    let refused = plugin.decrypt(unwrap(wrapped.ciphertext.clone(), wrapped.key_id.clone(), bad)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    // Rotation of the opendew key: a new key id; old ciphertexts still open.
    let rotated = api.call(http::Method::POST, &kms("rotate-on-demand"), Some(&json!({"key_id": key}))).await.unwrap();
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let after = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((after.healthz.as_str(), after.key_id.clone()), ("ok", format!("{key}:1")));
    let newer = plugin.encrypt(EncryptRequest { plaintext: dek.clone(), uid: "u3".into() }).await.unwrap().into_inner();
    assert_eq!(newer.key_id, after.key_id);
    let old =
        plugin.decrypt(unwrap(wrapped.ciphertext, wrapped.key_id, wrapped.annotations)).await.unwrap().into_inner();
    assert_eq!(old.plaintext, dek);

    // A disabled key is unhealthy.
    let disabled = api.call(http::Method::POST, &kms("disable-key"), Some(&json!({"key_id": key}))).await.unwrap();
    assert_eq!(disabled.status, 200);
    let status = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_ne!(status.healthz, "ok");
    let enabled = api.call(http::Method::POST, &kms("enable-key"), Some(&json!({"key_id": key}))).await.unwrap();
    assert_eq!(enabled.status, 200);

    // opendew stopped: Status says so within kube-apiserver's probe period
    // (it polls every minute, and more often once unhealthy).
    stack.stop().await.unwrap();
    let started = std::time::Instant::now();
    let status = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_ne!(status.healthz, "ok");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(status.key_id, format!("{key}:1"), "the last known key id is still reported");
    shutdown.cancel();
    served.await.unwrap().unwrap();
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

/// Starts a plugin for `key_id` with `credentials` on a socket under `dir`.
async fn start_plugin(
    dir: &std::path::Path, gateway_url: String, credentials: PathBuf, key_id: String,
    shutdown: tokio_util::sync::CancellationToken,
) -> (KeyManagementServiceClient<Channel>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let socket = dir.join("plugin/socket.sock");
    let config = kms_plugin::PluginConfig {
        socket: socket.clone(),
        gateway_url,
        credentials_file: credentials,
        ca_file: None,
        key_id,
        timeout: Duration::from_secs(2),
    };
    let served = tokio::spawn(kms_plugin::serve(config, shutdown));
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (connect(socket).await, served)
}

/// The least-privilege set-up of the docs: the plugin's identity is a user
/// of another account that holds only a grant of describe-key,
/// encrypt-data and decrypt-data on the cluster's key. Status (health and
/// rotation) and Encrypt/Decrypt all work with it; before, Status called
/// get-key-rotation-status, which no grant gives, and was never healthy.
#[tokio::test]
async fn a_grant_only_identity_runs_the_plugin() {
    common::telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stack = dev_stack(&data).await;
    let owner = client::Signer::from_file(&stack.credentials_file).unwrap();
    let api = client::GatewayClient::new(&stack.endpoint(), owner.clone(), None, Duration::from_secs(10)).unwrap();
    let kms = |op: &str| format!("/v1.0/{}/kms/{op}", owner.project_id);
    let created = api.call(http::Method::POST, &kms("create-key"), Some(&json!({"key_alias": "k8s"}))).await.unwrap();
    let key = created.body["key_info"]["key_id"].as_str().unwrap().to_owned();

    // The plugin's account: its own domain, project, user and AK, nothing
    // on the key but the grant.
    let store = identity::open_store(&common::db::DatabaseUrl::sqlite_file(&data.join("iam.db")), 1).await.unwrap();
    let sealer = identity::seal::SecretSealer::from_file(&data.join("identity.key")).unwrap();
    let domain = identity::admin::create_domain(&*store, "cluster").await.unwrap();
    let project = identity::admin::create_project(&*store, &domain.id, "local-1").await.unwrap();
    let password = identity::admin::random_password();
    let user = identity::admin::create_user(&*store, &domain.id, "kms-plugin", &password).await.unwrap();
    let (ak, sk) = identity::admin::create_access_key(&*store, &sealer, &user.id, "").await.unwrap();
    let credentials = dir.path().join("plugin.json");
    std::fs::write(
        &credentials,
        json!({"access_key": ak.access_key, "secret_key": sk.expose(), "project_id": project.id}).to_string(),
    )
    .unwrap();
    let plugin_api = client::GatewayClient::new(
        &stack.endpoint(),
        client::Signer::from_file(&credentials).unwrap(),
        None,
        Duration::from_secs(10),
    )
    .unwrap();
    let plugin_kms = |op: &str| format!("/v1.0/{}/kms/{op}", project.id);
    let started = std::time::Instant::now();
    loop {
        // The new account reaches the gateway's directory within moments.
        let random = json!({"random_data_length": "64"});
        let r = plugin_api.call(http::Method::POST, &plugin_kms("gen-random"), Some(&random)).await.unwrap();
        if r.status == 200 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the plugin's account never became usable");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Without the grant the key is not there for it.
    let unseen = plugin_api
        .call(http::Method::POST, &plugin_kms("get-key-rotation-status"), Some(&json!({"key_id": key})))
        .await
        .unwrap();
    assert_eq!(unseen.status, 404, "{:?}", unseen.body);
    let grant = json!({"key_id": key, "grantee_principal": user.id,
                       "operations": ["describe-key", "encrypt-data", "decrypt-data"]});
    let granted = api.call(http::Method::POST, &kms("create-grant"), Some(&grant)).await.unwrap();
    assert_eq!(granted.status, 200, "{:?}", granted.body);
    // The grant gives no rotation status (that is the owner's).
    let refused = plugin_api
        .call(http::Method::POST, &plugin_kms("get-key-rotation-status"), Some(&json!({"key_id": key})))
        .await
        .unwrap();
    assert_ne!(refused.status, 200, "{:?}", refused.body);

    let shutdown = tokio_util::sync::CancellationToken::new();
    let (mut plugin, served) =
        start_plugin(dir.path(), stack.endpoint(), credentials.clone(), key.clone(), shutdown.clone()).await;
    let status = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.healthz.as_str(), status.key_id.clone()), ("ok", format!("{key}:0")));
    let dek = vec![9u8; 32];
    let wrapped =
        plugin.encrypt(EncryptRequest { plaintext: dek.clone(), uid: "g1".into() }).await.unwrap().into_inner();
    assert_eq!(wrapped.key_id, format!("{key}:0"));
    let request = |w: &proto::k8s::kms_v2::EncryptResponse| DecryptRequest {
        ciphertext: w.ciphertext.clone(),
        uid: "g2".into(),
        key_id: w.key_id.clone(),
        annotations: w.annotations.clone(),
    };
    assert_eq!(plugin.decrypt(request(&wrapped)).await.unwrap().into_inner().plaintext, dek);

    // The owner rotates: the grant-only plugin sees it in Status and in
    // the key id of what it wraps next; older ciphertexts still open.
    let rotated = api.call(http::Method::POST, &kms("rotate-on-demand"), Some(&json!({"key_id": key}))).await.unwrap();
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let after = plugin.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!((after.healthz.as_str(), after.key_id.clone()), ("ok", format!("{key}:1")));
    let newer = plugin.encrypt(EncryptRequest { plaintext: dek.clone(), uid: "g3".into() }).await.unwrap().into_inner();
    assert_eq!(newer.key_id, format!("{key}:1"));
    assert_eq!(plugin.decrypt(request(&wrapped)).await.unwrap().into_inner().plaintext, dek);

    // The grant revoked: unhealthy, and Encrypt is refused.
    let grant_id = granted.body["grant_id"].as_str().unwrap();
    let revoked = api
        .call(http::Method::POST, &kms("revoke-grant"), Some(&json!({"key_id": key, "grant_id": grant_id})))
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{:?}", revoked.body);
    let started = std::time::Instant::now();
    while plugin.status(StatusRequest {}).await.unwrap().into_inner().healthz == "ok" {
        assert!(started.elapsed() < Duration::from_secs(5), "a revoked grant still runs the plugin");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(plugin.encrypt(EncryptRequest { plaintext: dek, uid: "g4".into() }).await.is_err());
    shutdown.cancel();
    served.await.unwrap().unwrap();
    stack.stop().await.unwrap();
}
