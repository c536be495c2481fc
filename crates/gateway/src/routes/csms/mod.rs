//! CSMS routes (`/v1/{project_id}/secrets...`, `/v1/{project_id}/csms/...`):
//! Huawei's JSON (real numbers and booleans, millisecond timestamps) in,
//! csms.v1 gRPC calls out. [`CsmsCall`] does the authorisation and parsing
//! in the route's error shape; [`secrets`] (with batch import), [`versions`]
//! (with stages), [`tags`], [`events`] (with notification records) and
//! [`rotation`] (with tasks), [`grants`], [`checker`] and [`account`] (the
//! account-level paths) hold the handlers, each with its route entries.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::Method,
    routing::MethodRouter,
};
use common::identity::CallerIdentity;
use proto::csms::v1::{
    self as pb, ErrorReason as R, secret_value::Value as PbValue,
    secrets_manager_service_client::SecretsManagerServiceClient,
};
use serde::Serialize;
use tonic::transport::Channel;

use super::{ApiRoute, PathParams};
use crate::{
    error::{ApiError, CsmsFault, Shape},
    json::{BodyError, JsonBody},
    state::AppState,
};

pub mod account;
pub mod checker;
pub mod events;
pub mod grants;
pub mod rotation;
pub mod secrets;
pub mod tags;
pub mod versions;

/// The CSMS family's routes.
pub(crate) fn routes() -> Vec<ApiRoute> {
    [
        secrets::routes(),
        versions::routes(),
        tags::routes(),
        events::routes(),
        rotation::routes(),
        grants::routes(),
        checker::routes(),
        account::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// A route whose errors take `shape` (the secret APIs answer flat errors,
/// the tag APIs nested ones): the extractor reads it from the request.
fn route(method: Method, path: &'static str, handler: MethodRouter<Arc<AppState>>, shape: Shape) -> ApiRoute {
    ApiRoute::new(method, path, handler.layer(axum::Extension(shape)))
}

/// A handler's answer: a typed body, or the error in the route's shape.
pub type CsmsResult<T> = Result<axum::Json<T>, ApiError>;

/// One CSMS request, authorised for the path's project, with the path's
/// other parameters and (when `BODY`) its JSON body parsed; every accessor
/// answers with CSMS's error, in the route's shape, for what it finds.
/// Handlers of operations without a body take [`CsmsBare`], which never
/// reads one.
pub struct CsmsCall<const BODY: bool = true> {
    app: Arc<AppState>,
    identity: CallerIdentity,
    /// The path's parameters after the project.
    pub path: PathParams,
    /// The parsed body (`{}` without one).
    pub body: JsonBody,
    shape: Shape,
    /// The client's address (behind a trusted proxy, the one it names).
    client: Option<std::net::IpAddr>,
}

/// A CSMS request whose body is not read.
pub type CsmsBare = CsmsCall<false>;

impl<const BODY: bool> std::fmt::Debug for CsmsCall<BODY> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsmsCall").field("identity", &self.identity).field("path", &self.path).finish_non_exhaustive()
    }
}

impl<const BODY: bool> FromRequest<Arc<AppState>> for CsmsCall<BODY> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let shape = parts.extensions.get::<Shape>().copied().unwrap_or(Shape::Flat);
        let refuse = |fault| ApiError::Csms { fault, detail: String::new(), shape };
        let (identity, path) =
            super::authorise(&mut parts, app).await.ok_or_else(|| refuse(CsmsFault::ProjectMismatch))?;
        let client = crate::connections::peer(&parts).map(|peer| app.trusted_proxies.client(peer, &parts.headers));
        let mut call = Self { app: app.clone(), identity, path, body: JsonBody::default(), shape, client };
        if BODY {
            let headers = std::mem::take(&mut parts.headers);
            let bytes = Bytes::from_request(Request::from_parts(parts, body), app)
                .await
                .map_err(|_| refuse(CsmsFault::MalformedJson))?;
            call.body = JsonBody::parse(&headers, &bytes).map_err(|e| call.err(e))?;
        }
        Ok(call)
    }
}

impl<const BODY: bool> CsmsCall<BODY> {
    /// The gateway's shared state (the identity directory).
    pub fn app(&self) -> &Arc<AppState> {
        &self.app
    }

    /// Who calls, in which project.
    pub fn identity(&self) -> &CallerIdentity {
        &self.identity
    }

    /// The client's address, when the request came over a socket.
    pub fn client(&self) -> Option<std::net::IpAddr> {
        self.client
    }

    /// A `CSMS.0005` (resource not found) in this route's shape.
    pub fn not_found(&self) -> ApiError {
        ApiError::Csms { fault: CsmsFault::Service(R::ResourceNotFound), detail: String::new(), shape: self.shape }
    }

    /// The csms-service client.
    pub fn csms(&self) -> SecretsManagerServiceClient<Channel> {
        self.app.csms.clone()
    }

    /// `message` as a gRPC request carrying the caller's identity.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        self.identity.request(message)
    }

    /// A body problem as this route's error.
    pub fn err(&self, e: BodyError) -> ApiError {
        match e {
            BodyError::ContentType => self.fault(CsmsFault::BadContentType),
            BodyError::Malformed => self.fault(CsmsFault::MalformedJson),
            BodyError::WrongType(field) => self.invalid(&format!("{field} has the wrong JSON type")),
        }
    }

    fn fault(&self, fault: CsmsFault) -> ApiError {
        ApiError::Csms { fault, detail: String::new(), shape: self.shape }
    }

    /// A csms-service status as this route's error.
    pub fn status(&self) -> impl Fn(tonic::Status) -> ApiError + '_ {
        move |s| ApiError::from_csms_status(s, self.shape)
    }

    /// An optional field that must be a JSON string.
    pub fn string(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.body.strict_string(name).map_err(|e| self.err(e))
    }

    /// A required JSON string: absent → `CSMS.0001` with `what`.
    pub fn required(&self, name: &'static str, what: &str) -> Result<String, ApiError> {
        self.string(name)?.ok_or_else(|| self.invalid(what))
    }

    /// An optional boolean.
    pub fn bool(&self, name: &'static str) -> Result<Option<bool>, ApiError> {
        self.body.bool(name).map_err(|e| self.err(e))
    }

    /// An optional integer.
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        self.body.int(name).map_err(|e| self.err(e))
    }

    /// An optional list of strings.
    pub fn string_list(&self, name: &'static str) -> Result<Option<Vec<String>>, ApiError> {
        self.body.string_list(name).map_err(|e| self.err(e))
    }

    /// An optional list of objects.
    pub fn objects(&self, name: &'static str) -> Result<Option<Vec<&JsonBody>>, ApiError> {
        self.body.objects(name).map_err(|e| self.err(e))
    }

    /// `CSMS.0001` (invalid parameter) with `detail`.
    pub fn invalid(&self, detail: &str) -> ApiError {
        ApiError::Csms { fault: CsmsFault::Service(R::InvalidParameter), detail: detail.to_owned(), shape: self.shape }
    }

    /// A `limit` query parameter: a number (its range is csms-service's
    /// to check), absent for the default page.
    pub fn limit(&self, query: &Query) -> Result<Option<u32>, ApiError> {
        query.get("limit").map(|l| l.parse::<u32>().map_err(|_| self.invalid("limit must be 1-1000"))).transpose()
    }

    /// `secret_string` or `secret_binary`, at most one of them.
    pub fn value(&self) -> Result<Option<pb::SecretValue>, ApiError> {
        self.value_in(&self.body)
    }

    /// [`CsmsCall::value`] of an object inside the body (a batch element).
    pub fn value_in(&self, body: &JsonBody) -> Result<Option<pb::SecretValue>, ApiError> {
        let text = |name| body.strict_string(name).map_err(|e| self.err(e));
        Ok(match (text("secret_string")?, text("secret_binary")?) {
            (Some(text), None) => Some(pb::SecretValue { value: Some(PbValue::Text(text)) }),
            (None, Some(b64)) => Some(pb::SecretValue { value: Some(PbValue::Binary(b64.into_bytes())) }),
            (Some(_), Some(_)) => return Err(self.invalid("give exactly one of secret_string and secret_binary")),
            (None, None) => None,
        })
    }
}

/// The query string of the list operations.
pub type Query = axum::extract::Query<std::collections::HashMap<String, String>>;

/// The `Secret` object (csms-api.md §1.13); empty rotation fields and
/// absent rotation times are left out, as Huawei leaves them out.
#[derive(Debug, Serialize)]
pub struct Secret {
    id: String,
    name: String,
    state: &'static str,
    kms_key_id: String,
    description: String,
    create_time: i64,
    update_time: i64,
    scheduled_delete_time: Option<i64>,
    secret_type: String,
    auto_rotation: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    rotation_period: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    rotation_config: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    rotation_func_urn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_rotation_time: Option<i64>,
    event_subscriptions: Vec<String>,
    enterprise_project_id: String,
}

impl From<pb::Secret> for Secret {
    fn from(s: pb::Secret) -> Self {
        Self {
            state: match s.state() {
                pb::SecretState::Unspecified | pb::SecretState::Enabled => "ENABLED",
                pb::SecretState::Disabled => "DISABLED",
                pb::SecretState::PendingDelete => "PENDING_DELETE",
                pb::SecretState::Frozen => "FROZEN",
            },
            id: s.id,
            name: s.name,
            kms_key_id: s.kms_key_id,
            description: s.description,
            create_time: s.create_time_ms,
            update_time: s.update_time_ms,
            scheduled_delete_time: s.scheduled_delete_time_ms,
            secret_type: s.secret_type,
            auto_rotation: s.auto_rotation,
            rotation_period: s.rotation_period,
            rotation_config: s.rotation_config,
            rotation_func_urn: s.rotation_func_urn,
            rotation_time: s.rotation_time_ms,
            next_rotation_time: s.next_rotation_time_ms,
            event_subscriptions: s.event_subscriptions,
            enterprise_project_id: s.enterprise_project_id,
        }
    }
}

/// `{"secret": …}`.
#[derive(Debug, Serialize)]
pub struct SecretAnswer {
    secret: Secret,
}

impl From<Option<pb::Secret>> for SecretAnswer {
    fn from(secret: Option<pb::Secret>) -> Self {
        Self { secret: secret.unwrap_or_default().into() }
    }
}

/// The `page_info` of the list operations: markers are the first and last
/// item of the page, `next_marker` only when more follow.
#[derive(Debug, Serialize)]
pub struct PageInfo {
    next_marker: Option<String>,
    previous_marker: Option<String>,
    current_count: usize,
}

impl PageInfo {
    /// The page of `ids`, with `more` after it.
    pub fn of<'a>(mut ids: impl DoubleEndedIterator<Item = &'a str> + ExactSizeIterator, more: bool) -> Self {
        let current_count = ids.len();
        let first = ids.next().map(str::to_owned);
        let last = ids.next_back().map(str::to_owned).or_else(|| first.clone());
        Self { next_marker: if more { last } else { None }, previous_marker: first, current_count }
    }
}
