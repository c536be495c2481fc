//! CSMS routes (`/v1/{project_id}/secrets...`): Huawei's JSON (real numbers
//! and booleans, millisecond timestamps) in, csms.v1 gRPC calls out.

use std::sync::Arc;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
};
use http::HeaderMap;
use proto::csms::v1::{self as pb, ErrorReason as R, secret_value::Value as PbValue};
use serde_json::{Map, Value, json};

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, CsmsFault, Shape},
    json::{BodyError, JsonBody},
};
use common::identity::CallerIdentity;

type CsmsResult = Result<Json<Value>, ApiError>;

fn body_error(e: BodyError) -> ApiError {
    match e {
        BodyError::ContentType => ApiError::csms(CsmsFault::BadContentType),
        BodyError::Malformed => ApiError::csms(CsmsFault::MalformedJson),
        BodyError::WrongType(field) => invalid(format!("{field} has the wrong JSON type")),
    }
}

fn invalid(detail: String) -> ApiError {
    ApiError::Csms { fault: CsmsFault::Service(R::InvalidParameter), detail, shape: Shape::Flat }
}

fn authorize(app: &AppState, caller: &Caller, project_id: &str) -> Result<CallerIdentity, ApiError> {
    caller.for_project(app, project_id).ok_or(ApiError::csms(CsmsFault::ProjectMismatch))
}

fn status(s: tonic::Status) -> ApiError {
    ApiError::from_csms_status(s, Shape::Flat)
}

/// The `Secret` object (csms-api.md §1.13).
pub fn secret_json(s: &pb::Secret) -> Value {
    let state = match s.state() {
        pb::SecretState::Unspecified | pb::SecretState::Enabled => "ENABLED",
        pb::SecretState::Disabled => "DISABLED",
        pb::SecretState::PendingDelete => "PENDING_DELETE",
        pb::SecretState::Frozen => "FROZEN",
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(s.id));
    out.insert("name".into(), json!(s.name));
    out.insert("state".into(), json!(state));
    out.insert("kms_key_id".into(), json!(s.kms_key_id));
    out.insert("description".into(), json!(s.description));
    out.insert("create_time".into(), json!(s.create_time_ms));
    out.insert("update_time".into(), json!(s.update_time_ms));
    out.insert("scheduled_delete_time".into(), json!(s.scheduled_delete_time_ms));
    out.insert("secret_type".into(), json!(s.secret_type));
    out.insert("auto_rotation".into(), json!(s.auto_rotation));
    for (name, value) in [
        ("rotation_period", &s.rotation_period),
        ("rotation_config", &s.rotation_config),
        ("rotation_func_urn", &s.rotation_func_urn),
    ] {
        if !value.is_empty() {
            out.insert(name.into(), json!(value));
        }
    }
    if let Some(ms) = s.rotation_time_ms {
        out.insert("rotation_time".into(), json!(ms));
    }
    if let Some(ms) = s.next_rotation_time_ms {
        out.insert("next_rotation_time".into(), json!(ms));
    }
    out.insert("event_subscriptions".into(), json!(s.event_subscriptions));
    out.insert("enterprise_project_id".into(), json!(s.enterprise_project_id));
    Value::Object(out)
}

/// The `VersionMetadata` object.
pub fn version_metadata_json(v: &pb::VersionMetadata) -> Value {
    json!({
        "id": v.id,
        "create_time": v.create_time_ms,
        "expire_time": v.expire_time_ms,
        "kms_key_id": v.kms_key_id,
        "secret_name": v.secret_name,
        "version_stages": v.version_stages,
    })
}

/// `POST /v1/{project_id}/secrets`.
pub async fn create_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let identity = authorize(&app, &caller, &project_id)?;
    let body = JsonBody::parse(&headers, &body).map_err(body_error)?;
    let s = |name| body.strict_string(name).map_err(body_error);
    let value = match (s("secret_string")?, s("secret_binary")?) {
        (Some(text), None) => Some(PbValue::Text(text)),
        // The Base64 text travels as bytes and comes back byte for byte.
        (None, Some(b64)) => Some(PbValue::Binary(b64.into_bytes())),
        (Some(_), Some(_)) => {
            return Err(invalid("give exactly one of secret_string and secret_binary".into()));
        }
        (None, None) => None,
    };
    let name = s("name")?.ok_or_else(|| invalid("name is required".into()))?;
    let request = pb::CreateSecretRequest {
        name,
        kms_key_id: s("kms_key_id")?.unwrap_or_default(),
        description: s("description")?.unwrap_or_default(),
        value: value.map(|v| pb::SecretValue { value: Some(v) }),
        secret_type: s("secret_type")?.unwrap_or_default(),
        auto_rotation: body.bool("auto_rotation").map_err(body_error)?.unwrap_or(false),
        rotation_period: s("rotation_period")?.unwrap_or_default(),
        rotation_config: s("rotation_config")?.unwrap_or_default(),
        event_subscriptions: body.string_list("event_subscriptions").map_err(body_error)?.unwrap_or_default(),
        enterprise_project_id: s("enterprise_project_id")?.unwrap_or_default(),
        rotation_func_urn: s("rotation_func_urn")?.unwrap_or_default(),
    };
    let secret = app.csms.clone().create_secret(identity.request(request)).await.map_err(status)?.into_inner();
    Ok(Json(json!({"secret": secret_json(&secret.secret.unwrap_or_default())})))
}

/// `GET /v1/{project_id}/secrets/{secret_name}`.
pub async fn show_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
) -> CsmsResult {
    let identity = authorize(&app, &caller, &project_id)?;
    let secret = app
        .csms
        .clone()
        .show_secret(identity.request(pb::ShowSecretRequest { name }))
        .await
        .map_err(status)?
        .into_inner();
    Ok(Json(json!({"secret": secret_json(&secret.secret.unwrap_or_default())})))
}

/// `GET /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`.
pub async fn show_secret_version(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, version_id)): Path<(String, String, String)>,
) -> CsmsResult {
    let identity = authorize(&app, &caller, &project_id)?;
    let response = app
        .csms
        .clone()
        .show_secret_version(identity.request(pb::ShowSecretVersionRequest { name, version_id }))
        .await
        .map_err(status)?
        .into_inner();
    let mut version = Map::new();
    version.insert("version_metadata".into(), version_metadata_json(&response.metadata.unwrap_or_default()));
    match response.value.and_then(|v| v.value) {
        Some(PbValue::Text(text)) => {
            version.insert("secret_string".into(), json!(text));
        }
        Some(PbValue::Binary(bytes)) => {
            version.insert("secret_binary".into(), json!(String::from_utf8_lossy(&bytes)));
        }
        None => {}
    }
    Ok(Json(json!({ "version": version })))
}
