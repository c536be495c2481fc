//! `opendew-kms-plugin`: Kubernetes' KMS v2 plugin API
//! (`k8s.io/kms/apis/v2`, our copy in `proto/k8s/kms/v2/api.proto`) on a
//! unix socket, wrapping kube-apiserver's data keys under an opendew key
//! through the gateway's REST API (`encrypt-data`/`decrypt-data`, signed
//! with an AK/SK from a file by the codebase's one signing client).
//!
//! - `Status` answers `v2`, `healthz` "ok" only when opendew answers, the
//!   key is enabled and wraps a probe, and a `key_id` of
//!   `KEY_ID:ROTATIONS`: it changes when the key's material rotates (or
//!   another key is configured), which tells kube-apiserver to re-encrypt;
//!   older ciphertexts still decrypt. The rotation count is read from the
//!   probe's ciphertext header, so the plugin needs only what a grant
//!   gives (describe-key, encrypt-data, decrypt-data), not the owner's
//!   get-key-rotation-status.
//! - `Encrypt` sends the DEK as Base64 text and keeps opendew's ciphertext
//!   (Base64 text, naming key and material version) as the ciphertext.
//! - `Decrypt` refuses a ciphertext of another opendew key and annotations
//!   beyond the API's limits before it calls anything.

use std::{collections::HashMap, path::PathBuf, sync::Mutex, time::Duration};

use base64::Engine;
use client::GatewayClient;
use proto::k8s::kms_v2::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusRequest, StatusResponse,
    key_management_service_server::{KeyManagementService, KeyManagementServiceServer},
};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

/// Settings of the plugin.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginConfig {
    /// Unix socket kube-apiserver connects to (its `endpoint: unix:///…`).
    #[arg(long = "socket", env = "OPENDEW_KMS_PLUGIN_SOCKET", default_value = "/var/run/kmsplugin/socket.sock")]
    pub socket: PathBuf,
    /// The opendew gateway, e.g. `https://opendew.example:8443`.
    #[arg(long = "gateway-url", env = "OPENDEW_GATEWAY_URL")]
    pub gateway_url: String,
    /// Credentials file: {"access_key", "secret_key", "project_id"}.
    #[arg(long = "credentials-file", env = "OPENDEW_CREDENTIALS_FILE")]
    pub credentials_file: PathBuf,
    /// CA bundle that signed the gateway's certificate.
    #[arg(long = "ca-file", env = "OPENDEW_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The opendew key (id) that wraps the data keys.
    #[arg(long = "key-id", env = "OPENDEW_KMS_PLUGIN_KEY_ID")]
    pub key_id: String,
    /// Seconds a call to opendew may take (kube-apiserver probes Status
    /// with a short deadline; an unreachable opendew is reported within it).
    #[arg(long = "timeout-seconds", env = "OPENDEW_KMS_PLUGIN_TIMEOUT_SECONDS", default_value = "3",
          value_parser = common::positive_seconds)]
    pub timeout: Duration,
}

/// The largest DEK wrapped (kube-apiserver's are 32 bytes): encrypt-data
/// takes at most 4096 characters of text, and this is that in Base64.
const MAX_PLAINTEXT: usize = 3072;
/// The API's bound on annotation keys and values together.
const MAX_ANNOTATIONS: usize = 32 * 1024;
/// The API's bound on a ciphertext and on a key id.
const MAX_CIPHERTEXT: usize = 1024;
/// Set on every ciphertext: which format the plugin wrote.
const FORMAT_ANNOTATION: &str = "format.kms-plugin.opendew.io";

/// The plugin.
#[derive(Debug)]
pub struct Plugin {
    client: GatewayClient,
    key_id: String,
    /// The key id last reported, for Encrypt between Status polls.
    current: Mutex<Option<String>>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// An RFC 1123 DNS subdomain, as the API wants annotation keys.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The material version an encrypt-data ciphertext was sealed under, as
/// rotations so far (material versions count from 1), read from its
/// self-describing header (`docs/ciphertext-format.md`: format byte, key
/// id, material version), which must name `key_id`.
fn rotations_in(cipher_text: &str, key_id: &str) -> Option<u64> {
    let blob = b64().decode(cipher_text).ok()?;
    let header = blob.get(..21)?;
    let named: String = header[1..17].iter().map(|b| format!("{b:02x}")).collect();
    if named != key_id.replace('-', "").to_ascii_lowercase() {
        return None;
    }
    let version = u32::from_be_bytes(header[17..21].try_into().ok()?);
    Some(u64::from(version.checked_sub(1)?))
}

/// Base64 of `bytes` in a buffer of its final size, wiped when dropped.
fn encode_secret(bytes: &[u8]) -> Zeroizing<String> {
    let mut text = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
    b64().encode_string(bytes, &mut text);
    text
}

/// encrypt-data's answer.
#[derive(serde::Deserialize)]
struct Encrypted {
    cipher_text: String,
}

/// decrypt-data's answer: the DEK's Base64 is wiped when dropped.
#[derive(serde::Deserialize)]
struct Decrypted {
    key_id: String,
    plain_text: Zeroizing<String>,
}

impl Plugin {
    /// A plugin over `client` for the opendew key `key_id`.
    pub fn new(client: GatewayClient, key_id: String) -> Self {
        Self { client, key_id, current: Mutex::new(None) }
    }

    fn kms(&self, op: &str) -> String {
        format!("/v1.0/{}/kms/{op}", self.client.project_id())
    }

    /// Wraps `plaintext` with encrypt-data; the ciphertext and the
    /// `KEY_ID:ROTATIONS` of the material that sealed it. Only operations
    /// a grant can give are called (describe-key, encrypt-data,
    /// decrypt-data), so a least-privilege identity that holds nothing but
    /// a grant on the key runs the plugin (docs: kms-plugin example).
    async fn wrap(&self, plaintext: &[u8]) -> Result<(String, String), String> {
        let text = encode_secret(plaintext);
        let key_id = serde_json::to_string(&self.key_id).expect("a string serialises");
        let mut body = Zeroizing::new(Vec::with_capacity(key_id.len() + text.len() + 32));
        body.extend_from_slice(b"{\"key_id\":");
        body.extend_from_slice(key_id.as_bytes());
        body.extend_from_slice(b",\"plain_text\":\"");
        body.extend_from_slice(text.as_bytes());
        body.extend_from_slice(b"\"}");
        let r = self
            .client
            .call_sensitive(http::Method::POST, &self.kms("encrypt-data"), body)
            .await
            .map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("encrypt-data answered {} {}", r.status, r.error_code()));
        }
        let encrypted: Encrypted = r.json().ok_or("encrypt-data answered no cipher_text")?;
        let rotations = rotations_in(&encrypted.cipher_text, &self.key_id)
            .ok_or("encrypt-data's ciphertext names another key or no material version")?;
        let id = format!("{}:{rotations}", self.key_id);
        *self.current.lock().expect("not poisoned") = Some(id.clone());
        Ok((encrypted.cipher_text, id))
    }

    /// `KEY_ID:ROTATIONS` when opendew answers, the key is enabled and
    /// wraps: the rotation count is that of a probe's ciphertext, so it is
    /// the material that Encrypt would use now.
    async fn current_key_id(&self) -> Result<String, String> {
        let key = json!({"key_id": self.key_id});
        let described = self
            .client
            .call(http::Method::POST, &self.kms("describe-key"), Some(&key))
            .await
            .map_err(|e| e.to_string())?;
        if described.status != 200 {
            return Err(format!("describe-key answered {} {}", described.status, described.error_code()));
        }
        let state = described.body["key_info"]["key_state"].as_str().unwrap_or("");
        if state != "2" {
            return Err(format!("the key {} is not enabled (key_state {state})", self.key_id));
        }
        self.wrap(b"opendew-kms-plugin-status").await.map(|(_, id)| id)
    }
}

#[tonic::async_trait]
impl KeyManagementService for Plugin {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let (healthz, key_id) = match self.current_key_id().await {
            Ok(id) => ("ok".to_owned(), id),
            Err(why) => {
                tracing::warn!(reason = %why, "KMS plugin unhealthy");
                let last = self.current.lock().expect("not poisoned").clone();
                (format!("opendew: {why}"), last.unwrap_or_else(|| format!("{}:unknown", self.key_id)))
            }
        };
        Ok(Response::new(StatusResponse { version: "v2".into(), healthz, key_id }))
    }

    async fn encrypt(&self, request: Request<EncryptRequest>) -> Result<Response<EncryptResponse>, Status> {
        let req = request.into_inner();
        // kube-apiserver's DEK (or seed): wiped when this returns.
        let plaintext = Zeroizing::new(req.plaintext);
        if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
            return Err(Status::invalid_argument(format!("plaintext must be 1-{MAX_PLAINTEXT} bytes")));
        }
        // The key id is that of the material that sealed this very
        // ciphertext, never one read before a rotation.
        let (cipher_text, key_id) = self.wrap(&plaintext).await.map_err(|why| {
            if why.starts_with("encrypt-data answered 4") {
                Status::failed_precondition(why)
            } else {
                Status::unavailable(format!("opendew: {why}"))
            }
        })?;
        let ciphertext = cipher_text.into_bytes();
        if ciphertext.is_empty() || ciphertext.len() > MAX_CIPHERTEXT {
            return Err(Status::internal("opendew's ciphertext does not fit the KMS v2 bound"));
        }
        tracing::info!(uid = %req.uid, key_id = %key_id, "data key wrapped");
        let annotations = HashMap::from([(FORMAT_ANNOTATION.to_owned(), b"encrypt-data/base64/1".to_vec())]);
        Ok(Response::new(EncryptResponse { ciphertext, key_id, annotations }))
    }

    async fn decrypt(&self, request: Request<DecryptRequest>) -> Result<Response<DecryptResponse>, Status> {
        let req = request.into_inner();
        if req.ciphertext.is_empty() || req.ciphertext.len() > MAX_CIPHERTEXT {
            return Err(Status::invalid_argument(format!("ciphertext must be 1-{MAX_CIPHERTEXT} bytes")));
        }
        let size: usize = req.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size >= MAX_ANNOTATIONS || req.annotations.keys().any(|k| !is_dns_name(k)) {
            return Err(Status::invalid_argument("annotations must be DNS-named and under 32 KiB together"));
        }
        // Ours were written by this plugin for this key (`KEY_ID:n`).
        if req.key_id.split(':').next() != Some(self.key_id.as_str()) {
            return Err(Status::invalid_argument("the ciphertext was written under another key"));
        }
        let cipher_text = std::str::from_utf8(&req.ciphertext)
            .map_err(|_| Status::invalid_argument("not a ciphertext of this plugin"))?;
        let body = serde_json::to_vec(&json!({"cipher_text": cipher_text})).expect("JSON serialises");
        let r = self
            .client
            .call_sensitive(http::Method::POST, &self.kms("decrypt-data"), Zeroizing::new(body))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        if r.status != 200 {
            return Err(Status::failed_precondition(format!("decrypt-data answered {} {}", r.status, r.error_code())));
        }
        let decrypted: Decrypted =
            r.json().ok_or_else(|| Status::invalid_argument("not a ciphertext of this plugin"))?;
        if decrypted.key_id != self.key_id {
            return Err(Status::invalid_argument("the ciphertext was written under another key"));
        }
        let plaintext = b64()
            .decode(decrypted.plain_text.as_bytes())
            .map_err(|_| Status::invalid_argument("not a ciphertext of this plugin"))?;
        tracing::info!(uid = %req.uid, "data key unwrapped");
        Ok(Response::new(DecryptResponse { plaintext }))
    }
}

/// Builds the plugin from its settings.
pub fn plugin(config: &PluginConfig) -> anyhow::Result<Plugin> {
    let signer = client::Signer::from_file(&config.credentials_file)?;
    let client = GatewayClient::new(&config.gateway_url, signer, config.ca_file.as_deref(), config.timeout)?;
    anyhow::ensure!(!config.key_id.is_empty() && config.key_id.len() <= 200, "--key-id is required");
    Ok(Plugin::new(client, config.key_id.clone()))
}

/// Serves the plugin on its socket until `shutdown`; the socket is
/// replaced if a stale one is there, and made 0600 in a 0700 directory
/// (kube-apiserver runs as root beside it): [`common::socket::bind_private`].
pub async fn serve(config: PluginConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let plugin = plugin(&config)?;
    tracing::info!(socket = %config.socket.display(), key_id = %config.key_id, "KMS v2 plugin listening");
    let routes = tonic::transport::Server::builder().add_service(KeyManagementServiceServer::new(plugin));
    common::socket::serve_private(&config.socket, routes, shutdown).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn annotation_keys_are_dns_names() {
        assert!(super::is_dns_name("format.kms-plugin.opendew.io"));
        assert!(!super::is_dns_name("Format.example"));
        assert!(!super::is_dns_name("a..b"));
        assert!(!super::is_dns_name("-a.b"));
    }
}
