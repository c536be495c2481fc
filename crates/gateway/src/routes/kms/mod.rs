//! KMS routes (`/v1.0/{project_id}/kms/...`): Huawei's stringly-typed JSON
//! (kms-api.md §1.6) in, kms.v1 gRPC calls out. [`KmsCall`] does the
//! authorisation and parsing; [`keys`], [`crypto`] and [`account`] hold the
//! handlers, each with its route entries.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
};
use common::identity::CallerIdentity;
use proto::{
    kms::v1::{ErrorReason as R, key_management_service_client::KeyManagementServiceClient},
    wire::WireName,
};
use tonic::transport::Channel;

use super::ApiRoute;
use crate::{
    error::{ApiError, KmsFault},
    json::{BodyError, JsonBody},
    state::AppState,
};

pub mod account;
pub mod aliases;
pub mod crypto;
pub mod grants;
pub mod import;
pub mod keys;
pub mod rotation;
pub mod signing;
pub mod tags;

/// The KMS family's routes.
pub(crate) fn routes() -> Vec<ApiRoute> {
    [
        keys::routes(),
        rotation::routes(),
        tags::routes(),
        aliases::routes(),
        grants::routes(),
        import::routes(),
        crypto::routes(),
        signing::routes(),
        account::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The AAD prefix of opendew's internal uses, which tenants may not send.
pub const RESERVED_AAD_PREFIX: &[u8] = b"opendew/";

/// A handler's answer: a typed body, or the error in KMS's shape.
pub type KmsResult<T> = Result<axum::Json<T>, ApiError>;

/// One KMS request, authorised for the path's project, its JSON body parsed
/// (an empty body reads as `{}`); every field accessor answers with KMS's
/// error for the problem it finds.
pub struct KmsCall {
    app: Arc<AppState>,
    identity: CallerIdentity,
    body: JsonBody,
    /// The path's parameters after `project_id`.
    pub path: super::PathParams,
    query: std::collections::HashMap<String, String>,
}

impl std::fmt::Debug for KmsCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsCall").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl FromRequest<Arc<AppState>> for KmsCall {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let (identity, path) =
            super::authorise(&mut parts, app).await.ok_or(ApiError::kms(KmsFault::ProjectMismatch))?;
        let axum::extract::Query(query) =
            axum::extract::Query::try_from_uri(&parts.uri).map_err(|_| reason(R::InvalidParameter))?;
        let headers = std::mem::take(&mut parts.headers);
        let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
            .await
            .map_err(|_| ApiError::kms(KmsFault::MalformedJson))?;
        let body = JsonBody::parse(&headers, &bytes).map_err(body_error)?;
        Ok(Self { app: app.clone(), identity, body, path, query })
    }
}

impl KmsCall {
    /// The kms-service client.
    pub fn kms(&self) -> KeyManagementServiceClient<Channel> {
        self.app.kms.clone()
    }

    /// `message` as a gRPC request carrying the caller's identity.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.identity.request(message)
    }

    /// An optional string field (numbers accepted).
    pub fn opt(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.body.string(name).map_err(body_error)
    }

    /// An optional string field, empty when absent.
    pub fn text(&self, name: &'static str) -> Result<String, ApiError> {
        Ok(self.opt(name)?.unwrap_or_default())
    }

    /// A required field: absent → `KMS.0204`.
    pub fn required(&self, name: &'static str) -> Result<String, ApiError> {
        self.opt(name)?.ok_or_else(|| reason(R::MissingParameter))
    }

    /// A required unsigned number sent as a string; unparsable → `bad`.
    pub fn number(&self, name: &'static str, bad: R) -> Result<u32, ApiError> {
        self.required(name)?.trim().parse::<u32>().map_err(|_| reason(bad))
    }

    /// `additional_authenticated_data`, as bytes (empty when absent). AAD
    /// that starts like opendew's own is refused: csms-service binds the
    /// data keys of secret versions and backups to `opendew/…` AAD, and a
    /// tenant who could mint a data key under it could forge a backup blob
    /// that skips create-time checks (issue #15, finding 9).
    pub fn aad(&self) -> Result<Vec<u8>, ApiError> {
        let aad = self.text("additional_authenticated_data")?.into_bytes();
        if aad.starts_with(RESERVED_AAD_PREFIX) {
            return Err(reason(R::InvalidParameter));
        }
        Ok(aad)
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The parsed body, for fields of nested shapes.
    pub fn body(&self) -> &JsonBody {
        &self.body
    }

    /// The body's error for a field of a nested object.
    pub fn field_error(&self, e: BodyError) -> ApiError {
        body_error(e)
    }

    /// An optional JSON integer (a numeric string accepted); unparsable →
    /// `bad`.
    pub fn int(&self, name: &'static str, bad: R) -> Result<Option<i64>, ApiError> {
        match self.body.int(name) {
            Ok(v) => Ok(v),
            Err(BodyError::WrongType(_)) => Err(reason(bad)),
            Err(e) => Err(body_error(e)),
        }
    }

    /// `sequence`, passed through to the service.
    pub fn sequence(&self) -> Result<String, ApiError> {
        self.text("sequence")
    }
}

fn body_error(e: BodyError) -> ApiError {
    ApiError::kms(match e {
        BodyError::ContentType => KmsFault::BadContentType,
        BodyError::Malformed | BodyError::WrongType(_) => KmsFault::MalformedJson,
    })
}

/// The error for a refusal the gateway decides from the wire alone.
pub fn reason(r: R) -> ApiError {
    ApiError::kms(KmsFault::Service(r))
}

/// The error for a kms-service status.
pub fn kms_status(s: tonic::Status) -> ApiError {
    ApiError::from_kms_status(s)
}

/// Binary fields go out as upper-case hex, as Huawei's do.
pub fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// The proto value Huawei spells `name` ([`proto::wire::WireName`]), or the
/// error `bad`.
pub fn wire_value<P: WireName>(name: &str, bad: R) -> Result<P, ApiError> {
    P::from_huawei_name(name).ok_or_else(|| reason(bad))
}

/// Huawei's spelling of a proto enum number; `default` for UNSPECIFIED.
pub fn wire_name<P: WireName + TryFrom<i32>>(value: i32, default: &'static str) -> &'static str {
    P::try_from(value).ok().and_then(P::huawei_name).unwrap_or(default)
}
