//! `opendew-csi-provider`: the Secrets Store CSI Driver's provider API
//! (`v1alpha1` CSIDriverProvider, our copy in
//! `proto/k8s/secrets-store/v1alpha1/service.proto`) on a unix socket,
//! mounting CSMS secrets into pods as files.
//!
//! - A `SecretProviderClass` (provider `opendew`) names the secrets in its
//!   `objects` parameter ([`spec`]): name, a version id or a stage (default
//!   `SYSCURRENT`), an optional file name and mode, an optional JSON key
//!   to extract.
//! - `Mount` reads each through the gateway's REST API, signed with the
//!   pod's credentials: the volume's `nodePublishSecretRef` Secret, in the
//!   pod's own namespace (`access_key`, `secret_key`, `project_id`). The
//!   provider holds no credentials of its own, so a pod reads only what its
//!   namespace's account may read, and a `projectId` other than the
//!   credentials' own project is refused before anything is called.
//! - It returns the files (the driver writes them into the pod's tmpfs)
//!   and one object version per file: `secret/NAME/FILE` → the CSMS version
//!   id. The driver's rotation poll calls `Mount` again and rewrites the
//!   files when a version changed.
//! - Secret values pass through memory only: they are wiped when the
//!   response is sent and never logged.

pub mod spec;

use std::{path::PathBuf, time::Duration};

use base64::Engine;
use client::{GatewayClient, Signer};
use proto::k8s::csi_v1alpha1::{
    File, MountRequest, MountResponse, ObjectVersion, VersionRequest, VersionResponse,
    csi_driver_provider_server::{CsiDriverProvider, CsiDriverProviderServer},
};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use crate::spec::{MountSpec, Object, Selector, SpecError};

/// The name a `SecretProviderClass` gives as `provider:`; the driver dials
/// `<providers dir>/opendew.sock`.
pub const PROVIDER_NAME: &str = "opendew";

/// Settings of the provider.
#[derive(Debug, Clone, clap::Args)]
pub struct ProviderConfig {
    /// Unix socket the driver dials (its providers directory + `opendew.sock`).
    #[arg(
        long = "socket",
        env = "OPENDEW_CSI_PROVIDER_SOCKET",
        default_value = "/var/run/secrets-store-csi-providers/opendew.sock"
    )]
    pub socket: PathBuf,
    /// The opendew gateway, e.g. `https://opendew.example:8443`.
    #[arg(long = "gateway-url", env = "OPENDEW_GATEWAY_URL")]
    pub gateway_url: String,
    /// CA bundle that signed the gateway's certificate.
    #[arg(long = "ca-file", env = "OPENDEW_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Seconds one call to opendew may take.
    #[arg(long = "timeout-seconds", env = "OPENDEW_CSI_PROVIDER_TIMEOUT_SECONDS", default_value = "5",
          value_parser = common::positive_seconds)]
    pub timeout: Duration,
}

/// The largest request the driver sends (attributes, secrets, object
/// versions): far above a real one, far below tonic's 4 MiB default.
const MAX_REQUEST: usize = 256 * 1024;
/// The driver's own bound on a volume (files over 4 MiB fail its receive).
const MAX_VOLUME: usize = 4 * 1024 * 1024;

/// The provider.
#[derive(Debug)]
pub struct Provider {
    gateway_url: String,
    ca_file: Option<PathBuf>,
    timeout: Duration,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Why a mount failed: a gRPC status for the driver (its message ends up
/// in the pod's events, so it names the object, never a value).
fn refuse(e: SpecError) -> Status {
    Status::invalid_argument(e.to_string())
}

/// One object as read: the version id and the file's bytes.
struct Fetched {
    version: String,
    contents: Zeroizing<Vec<u8>>,
}

impl Provider {
    /// A provider for the gateway at `gateway_url`.
    pub fn new(gateway_url: String, ca_file: Option<PathBuf>, timeout: Duration) -> Self {
        Self { gateway_url, ca_file, timeout }
    }

    async fn get(&self, api: &GatewayClient, object: &Object, path: &str) -> Result<serde_json::Value, Status> {
        let reply = api
            .call(http::Method::GET, path, None)
            .await
            .map_err(|e| Status::unavailable(format!("secret {}: {e}", object.secret_name)))?;
        match reply.status {
            200 => Ok(reply.body),
            401 | 403 => Err(Status::permission_denied(format!(
                "secret {}: opendew refused the pod's credentials ({})",
                object.secret_name,
                reply.error_code()
            ))),
            // CSMS answers 400 for a missing secret (CSMS.0106) or version
            // or stage (CSMS.0005), as Huawei's does.
            _ if reply.status == 404 || matches!(reply.error_code(), "CSMS.0106" | "CSMS.0005") => {
                Err(Status::not_found(format!("secret {}: no such secret, version or stage", object.secret_name)))
            }
            429 | 500..=599 => Err(Status::unavailable(format!(
                "secret {}: opendew answered {} {}",
                object.secret_name,
                reply.status,
                reply.error_code()
            ))),
            status => Err(Status::failed_precondition(format!(
                "secret {}: opendew answered {status} {}",
                object.secret_name,
                reply.error_code()
            ))),
        }
    }

    /// Reads one object: by version id, or by stage (the stage's version
    /// first, then that version, so the version reported is the one read).
    async fn fetch(&self, api: &GatewayClient, object: &Object) -> Result<Fetched, Status> {
        let project = api.project_id();
        let name = &object.secret_name;
        let version = match &object.selector {
            Selector::Version(id) => id.clone(),
            Selector::Stage(stage) => {
                let body = self.get(api, object, &format!("/v1/{project}/secrets/{name}/stages/{stage}")).await?;
                body["stage"]["version_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Status::internal(format!("secret {name}: stage {stage} names no version")))?
            }
        };
        let mut body = self.get(api, object, &format!("/v1/{project}/secrets/{name}/versions/{version}")).await?;
        let read = &mut body["version"];
        let version = read["version_metadata"]["id"].as_str().unwrap_or(&version).to_owned();
        let value = match (read["secret_string"].take(), read["secret_binary"].take()) {
            (serde_json::Value::String(text), _) => Zeroizing::new(text.into_bytes()),
            (_, serde_json::Value::String(encoded)) => {
                let encoded = Zeroizing::new(encoded);
                Zeroizing::new(
                    b64()
                        .decode(encoded.as_bytes())
                        .map_err(|_| Status::internal(format!("secret {name}: the binary value is not Base64")))?,
                )
            }
            _ => return Err(Status::internal(format!("secret {name}: version {version} has no value"))),
        };
        let contents = match &object.json_key {
            None => value,
            Some(key) => spec::extract_json_key(&value, key).map_err(refuse)?,
        };
        Ok(Fetched { version, contents })
    }
}

#[tonic::async_trait]
impl CsiDriverProvider for Provider {
    async fn version(&self, _: Request<VersionRequest>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: "v1alpha1".into(),
            runtime_name: PROVIDER_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn mount(&self, request: Request<MountRequest>) -> Result<Response<MountResponse>, Status> {
        let req = request.into_inner();
        // The node-publish Secret's data holds the pod's SK: wiped on drop.
        let secrets = Zeroizing::new(req.secrets);
        let mount = MountSpec::parse(&req.attributes, &secrets, &req.permission).map_err(refuse)?;
        let signer = Signer {
            ak: mount.credentials.access_key.clone(),
            sk: mount.credentials.secret_key.clone(),
            project_id: mount.project_id.clone(),
        };
        let api = GatewayClient::new(&self.gateway_url, signer, self.ca_file.as_deref(), self.timeout)
            .map_err(|e| Status::failed_precondition(format!("the provider's gateway settings: {e}")))?;
        let mut files = Vec::with_capacity(mount.objects.len());
        let mut versions = Vec::with_capacity(mount.objects.len());
        let mut size = 0usize;
        for object in &mount.objects {
            let mut fetched = self.fetch(&api, object).await?;
            size += fetched.contents.len();
            if size > MAX_VOLUME {
                return Err(Status::resource_exhausted("the objects together exceed the driver's 4 MiB"));
            }
            versions.push(ObjectVersion { id: object.id(), version: fetched.version });
            files.push(File {
                path: object.file_name.clone(),
                mode: object.mode.unwrap_or(mount.default_mode) as i32,
                // Moved, not copied: the response's buffer is the only
                // one left, and tonic drops it once it is encoded (prost
                // messages cannot wipe; every buffer before this one is).
                contents: std::mem::take(&mut *fetched.contents),
            });
        }
        tracing::info!(
            pod = %mount.pod,
            project = %mount.project_id,
            objects = versions.len(),
            "mounted"
        );
        Ok(Response::new(MountResponse { object_version: versions, error: None, files }))
    }
}

/// Serves the provider on its socket until `shutdown`; a stale socket is
/// replaced, the new one is 0600 in a 0700 directory (the driver runs as
/// root beside it): [`common::socket::bind_private`].
pub async fn serve(config: ProviderConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Fails early on a bad URL or CA file rather than at the first mount.
    let probe = Signer { ak: String::new(), sk: String::new().into(), project_id: String::new() };
    GatewayClient::new(&config.gateway_url, probe, config.ca_file.as_deref(), config.timeout)?;
    let provider = Provider::new(config.gateway_url.clone(), config.ca_file.clone(), config.timeout);
    tracing::info!(socket = %config.socket.display(), "Secrets Store CSI provider listening");
    let service = CsiDriverProviderServer::new(provider)
        .max_decoding_message_size(MAX_REQUEST)
        .max_encoding_message_size(MAX_VOLUME + 64 * 1024);
    let routes = tonic::transport::Server::builder().add_service(service);
    common::socket::serve_private(&config.socket, routes, shutdown).await
}
