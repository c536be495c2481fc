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
    caller::Caller,
    error::{ApiError, CsmsFault, Shape},
    json::{BodyError, JsonBody},
    state::AppState,
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
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let value = value_of(&call)?;
    let name = call.string("name")?.ok_or_else(|| call.invalid("name is required"))?;
    let text = |field| Ok::<_, ApiError>(call.string(field)?.unwrap_or_default());
    let request = pb::CreateSecretRequest {
        name,
        kms_key_id: text("kms_key_id")?,
        description: text("description")?,
        value,
        secret_type: text("secret_type")?,
        auto_rotation: call.body.bool("auto_rotation").map_err(|e| call.err(e))?.unwrap_or(false),
        rotation_period: text("rotation_period")?,
        rotation_config: text("rotation_config")?,
        event_subscriptions: call.body.string_list("event_subscriptions").map_err(|e| call.err(e))?.unwrap_or_default(),
        enterprise_project_id: text("enterprise_project_id")?,
        rotation_func_urn: text("rotation_func_urn")?,
    };
    let secret =
        app.csms.clone().create_secret(call.identity.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(json!({"secret": secret_json(&secret.secret.unwrap_or_default())})))
}

/// `GET /v1/{project_id}/secrets/{secret_name}`.
pub async fn show_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let secret = app
        .csms
        .clone()
        .show_secret(call.identity.request(pb::ShowSecretRequest { name }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"secret": secret_json(&secret.secret.unwrap_or_default())})))
}

/// `GET /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`.
pub async fn show_secret_version(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, version_id)): Path<(String, String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let response = app
        .csms
        .clone()
        .show_secret_version(call.identity.request(pb::ShowSecretVersionRequest { name, version_id }))
        .await
        .map_err(call.status())?
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

/// The parts every CSMS handler needs: identity, parsed body, error shape.
struct CsmsCall {
    identity: CallerIdentity,
    body: JsonBody,
    shape: Shape,
}

impl CsmsCall {
    fn new(
        app: &AppState,
        caller: &Caller,
        project_id: &str,
        headers: &HeaderMap,
        body: &Bytes,
        shape: Shape,
    ) -> Result<Self, ApiError> {
        let identity = caller.for_project(app, project_id).ok_or(ApiError::Csms {
            fault: CsmsFault::ProjectMismatch,
            detail: String::new(),
            shape,
        })?;
        let body = JsonBody::parse(headers, body).map_err(|e| shaped(body_error(e), shape))?;
        Ok(Self { identity, body, shape })
    }

    /// For calls without a body (GET, DELETE, body-less POST).
    fn bodiless(app: &AppState, caller: &Caller, project_id: &str, shape: Shape) -> Result<Self, ApiError> {
        Self::new(app, caller, project_id, &HeaderMap::new(), &Bytes::new(), shape)
    }

    fn err(&self, e: BodyError) -> ApiError {
        shaped(body_error(e), self.shape)
    }

    fn status(&self) -> impl Fn(tonic::Status) -> ApiError + '_ {
        move |s| ApiError::from_csms_status(s, self.shape)
    }

    fn string(&self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.body.strict_string(name).map_err(|e| self.err(e))
    }

    fn invalid(&self, detail: &str) -> ApiError {
        ApiError::Csms { fault: CsmsFault::Service(R::InvalidParameter), detail: detail.to_owned(), shape: self.shape }
    }
}

fn shaped(e: ApiError, shape: Shape) -> ApiError {
    match e {
        ApiError::Csms { fault, detail, .. } => ApiError::Csms { fault, detail, shape },
        other => other,
    }
}

fn page_info(first: Option<&str>, last: Option<&str>, more: bool, count: usize) -> Value {
    json!({
        "next_marker": if more { last } else { None },
        "previous_marker": first,
        "current_count": count,
    })
}

fn value_of(call: &CsmsCall) -> Result<Option<pb::SecretValue>, ApiError> {
    Ok(match (call.string("secret_string")?, call.string("secret_binary")?) {
        (Some(text), None) => Some(pb::SecretValue { value: Some(PbValue::Text(text)) }),
        (None, Some(b64)) => Some(pb::SecretValue { value: Some(PbValue::Binary(b64.into_bytes())) }),
        (Some(_), Some(_)) => return Err(call.invalid("give exactly one of secret_string and secret_binary")),
        (None, None) => None,
    })
}

type Q = axum::extract::Query<std::collections::HashMap<String, String>>;

/// `GET /v1/{project_id}/secrets`.
pub async fn list_secrets(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    query: Q,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let limit = match query.get("limit") {
        None => 0,
        Some(l) => match l.parse::<u32>() {
            Ok(n @ 1..=1000) if l.len() <= 4 => n,
            _ => return Err(call.invalid("limit must be 1-1000")),
        },
    };
    let request = pb::ListSecretsRequest {
        limit,
        marker: query.get("marker").cloned().unwrap_or_default(),
        event_name: query.get("event_name").cloned().unwrap_or_default(),
    };
    let r = app.csms.clone().list_secrets(call.identity.request(request)).await.map_err(call.status())?.into_inner();
    let names: Vec<&str> = r.secrets.iter().map(|s| s.name.as_str()).collect();
    Ok(Json(json!({
        "secrets": r.secrets.iter().map(secret_json).collect::<Vec<_>>(),
        "page_info": page_info(names.first().copied(), names.last().copied(), r.more, names.len()),
    })))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}`.
pub async fn update_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let subscriptions = call.body.string_list("event_subscriptions").map_err(|e| call.err(e))?;
    let request = pb::UpdateSecretRequest {
        name,
        kms_key_id: call.string("kms_key_id")?,
        description: call.string("description")?,
        auto_rotation: call.body.bool("auto_rotation").map_err(|e| call.err(e))?,
        rotation_period: call.string("rotation_period")?,
        set_event_subscriptions: subscriptions.is_some(),
        event_subscriptions: subscriptions.unwrap_or_default(),
        rotation_func_urn: call.string("rotation_func_urn")?,
    };
    let r = app.csms.clone().update_secret(call.identity.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(json!({"secret": secret_json(&r.secret.unwrap_or_default())})))
}

/// `DELETE /v1/{project_id}/secrets/{secret_name}`: 200 with an empty body.
pub async fn delete_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
) -> Result<http::StatusCode, ApiError> {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    app.csms.clone().delete_secret(call.identity.request(pb::SecretName { name })).await.map_err(call.status())?;
    Ok(http::StatusCode::OK)
}

/// `POST /v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/create`.
pub async fn schedule_deletion(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let days = call.body.int("recovery_window_in_days").map_err(|e| call.err(e))?.unwrap_or(30);
    let days = u32::try_from(days)
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| call.invalid("recovery_window_in_days must be 7-30"))?;
    let request = pb::ScheduleSecretDeletionRequest { name, recovery_window_in_days: days };
    let r = app
        .csms
        .clone()
        .schedule_secret_deletion(call.identity.request(request))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"secret": secret_json(&r.secret.unwrap_or_default())})))
}

/// `POST /v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/cancel`.
pub async fn restore_secret(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let r = app
        .csms
        .clone()
        .restore_secret(call.identity.request(pb::SecretName { name }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"secret": secret_json(&r.secret.unwrap_or_default())})))
}

/// `POST /v1/{project_id}/secrets/{secret_name}/versions`.
pub async fn create_secret_version(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let stages = call.body.string_list("version_stages").map_err(|e| call.err(e))?;
    if stages.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(call.invalid("version_stages takes 1-12 stage names"));
    }
    let request = pb::CreateSecretVersionRequest {
        name,
        value: value_of(&call)?,
        version_stages: stages.unwrap_or_default(),
        expire_time_ms: call.body.int("expire_time").map_err(|e| call.err(e))?,
    };
    let r = app
        .csms
        .clone()
        .create_secret_version(call.identity.request(request))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"version_metadata": version_metadata_json(&r.metadata.unwrap_or_default())})))
}

/// `GET /v1/{project_id}/secrets/{secret_name}/versions`.
pub async fn list_secret_versions(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
    query: Q,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let limit = match query.get("limit") {
        None => 0,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| call.invalid("limit must be 1-1000"))?,
    };
    let request =
        pb::ListSecretVersionsRequest { name, marker: query.get("marker").cloned().unwrap_or_default(), limit };
    let r = app
        .csms
        .clone()
        .list_secret_versions(call.identity.request(request))
        .await
        .map_err(call.status())?
        .into_inner();
    let ids: Vec<&str> = r.versions.iter().map(|v| v.id.as_str()).collect();
    Ok(Json(json!({
        "version_metadatas": r.versions.iter().map(version_metadata_json).collect::<Vec<_>>(),
        "page_info": page_info(ids.first().copied(), ids.last().copied(), r.more, ids.len()),
    })))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`.
pub async fn update_version(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, version_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let expire = call.body.int("expire_time").map_err(|e| call.err(e))?;
    let request = pb::UpdateVersionRequest { name, version_id, expire_time_ms: expire };
    let r = app.csms.clone().update_version(call.identity.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(json!({"version_metadata": version_metadata_json(&r.metadata.unwrap_or_default())})))
}

fn stage_json(stage: &pb::Stage) -> Value {
    json!({"name": stage.name, "update_time": stage.update_time_ms, "secret_name": stage.secret_name, "version_id": stage.version_id})
}

/// `GET /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`.
pub async fn show_secret_stage(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, stage)): Path<(String, String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let r = app
        .csms
        .clone()
        .show_secret_stage(call.identity.request(pb::StageRef { name, stage }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"stage": stage_json(&r.stage.unwrap_or_default())})))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`.
pub async fn update_secret_stage(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, stage)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let version_id = call.string("version_id")?.ok_or_else(|| call.invalid("version_id is required"))?;
    let request = pb::UpdateSecretStageRequest { name, stage, version_id };
    let r =
        app.csms.clone().update_secret_stage(call.identity.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(json!({"stage": stage_json(&r.stage.unwrap_or_default())})))
}

/// `DELETE /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`: 204.
pub async fn delete_secret_stage(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name, stage)): Path<(String, String, String)>,
) -> Result<http::StatusCode, ApiError> {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    app.csms
        .clone()
        .delete_secret_stage(call.identity.request(pb::StageRef { name, stage }))
        .await
        .map_err(call.status())?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// `POST /v1/{project_id}/secrets/{secret_name}/backup`.
pub async fn download_secret_blob(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, name)): Path<(String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Flat)?;
    let r = app
        .csms
        .clone()
        .download_secret_blob(call.identity.request(pb::SecretName { name }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"secret_blob": r.blob})))
}

/// `POST /v1/{project_id}/secrets/restore`.
pub async fn upload_secret_blob(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let blob = call.string("secret_blob")?.ok_or_else(|| call.invalid("secret_blob is required"))?;
    let r = app
        .csms
        .clone()
        .upload_secret_blob(call.identity.request(pb::SecretBlob { blob }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"secret": secret_json(&r.secret.unwrap_or_default())})))
}

/// `GET|PUT|DELETE /v1/{project_id}/secrets/restore`: the static `restore`
/// route wins the path, so a secret named `restore` is served here.
pub async fn secret_named_restore(
    app: State<Arc<AppState>>,
    caller: Extension<Caller>,
    Path(project_id): Path<String>,
    method: http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let path = Path((project_id, "restore".to_owned()));
    Ok(match method {
        http::Method::GET => show_secret(app, caller, path).await?.into_response(),
        http::Method::PUT => update_secret(app, caller, path, headers, body).await?.into_response(),
        _ => delete_secret(app, caller, path).await?.into_response(),
    })
}

fn tag_json(tag: &pb::Tag) -> Value {
    json!({"key": tag.key, "value": tag.value})
}

fn tag_of(call: &CsmsCall, obj: &JsonBody) -> Result<pb::Tag, ApiError> {
    let key = obj.strict_string("key").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag key is required"))?;
    let value = obj.strict_string("value").map_err(|e| call.err(e))?.unwrap_or_default();
    Ok(pb::Tag { key, value })
}

/// `POST /v1/{project_id}/csms/{secret_id}/tags`: 204.
pub async fn create_secret_tag(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, secret_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<http::StatusCode, ApiError> {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Nested)?;
    let tag = call.body.object("tag").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag is required"))?;
    let tag = tag_of(&call, &tag)?;
    app.csms
        .clone()
        .create_secret_tag(call.identity.request(pb::SecretTagRequest { secret_id, tag: Some(tag) }))
        .await
        .map_err(call.status())?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// `GET /v1/{project_id}/csms/{secret_id}/tags`.
pub async fn list_secret_tags(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, secret_id)): Path<(String, String)>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Nested)?;
    let r = app
        .csms
        .clone()
        .list_secret_tags(call.identity.request(pb::SecretId { secret_id }))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"tags": r.tags.iter().map(tag_json).collect::<Vec<_>>(), "sys_tags": []})))
}

/// `DELETE /v1/{project_id}/csms/{secret_id}/tags/{key}`: 204.
pub async fn delete_secret_tag(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, secret_id, key)): Path<(String, String, String)>,
) -> Result<http::StatusCode, ApiError> {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Nested)?;
    app.csms
        .clone()
        .delete_secret_tag(call.identity.request(pb::DeleteSecretTagRequest { secret_id, key }))
        .await
        .map_err(call.status())?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// `POST /v1/{project_id}/csms/{secret_id}/tags/action`: 204.
pub async fn batch_tags(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, secret_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<http::StatusCode, ApiError> {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Nested)?;
    let action = call.string("action")?.ok_or_else(|| call.invalid("action is required"))?;
    let objects =
        call.body.objects("tags").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tags is required"))?;
    let tags = objects.iter().map(|o| tag_of(&call, o)).collect::<Result<Vec<_>, _>>()?;
    if call.string("sequence")?.is_some_and(|s| s.chars().count() > 36) {
        return Err(call.invalid("sequence is limited to 36 characters"));
    }
    app.csms
        .clone()
        .batch_create_or_delete_tags(call.identity.request(pb::BatchTagsRequest { secret_id, action, tags }))
        .await
        .map_err(call.status())?;
    Ok(http::StatusCode::NO_CONTENT)
}

/// `GET /v1/{project_id}/csms/tags`.
pub async fn list_project_tags(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
) -> CsmsResult {
    let call = CsmsCall::bodiless(&app, &caller, &project_id, Shape::Nested)?;
    let r = app
        .csms
        .clone()
        .list_project_secrets_tags(call.identity.request(pb::Empty {}))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"tags": r.tags.iter().map(|t| json!({"key": t.key, "values": t.values})).collect::<Vec<_>>()})))
}

/// `POST /v1/{project_id}/csms/resource_instances/action` (the SDK sends the
/// literal word as a path parameter; any other word is an invalid request).
pub async fn resource_instances(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path((project_id, word)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Nested)?;
    if word != "resource_instances" {
        return Err(ApiError::Csms {
            fault: CsmsFault::Service(R::InvalidRequest),
            detail: String::new(),
            shape: Shape::Nested,
        });
    }
    let action = call.string("action")?.ok_or_else(|| call.invalid("action is required"))?;
    let number = |name: &'static str| -> Result<u32, ApiError> {
        match call.body.string(name).map_err(|e| call.err(e))? {
            None => Ok(0),
            Some(text) => {
                text.parse::<u32>().map_err(|_| call.invalid("limit and offset must be non-negative integers"))
            }
        }
    };
    let (limit, offset) = (number("limit")?, number("offset")?);
    if action == "count" && call.body.has("offset") {
        return Err(call.invalid("offset is not allowed with action count"));
    }
    let mut tags = Vec::new();
    for filter in call.body.objects("tags").map_err(|e| call.err(e))?.unwrap_or_default() {
        let key =
            filter.strict_string("key").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag key is required"))?;
        let values = filter.string_list("values").map_err(|e| call.err(e))?.unwrap_or_default();
        tags.push(pb::TagValues { key, values });
    }
    let mut name_contains = None;
    for m in call.body.objects("matches").map_err(|e| call.err(e))?.unwrap_or_default() {
        if m.strict_string("key").map_err(|e| call.err(e))?.as_deref() != Some("resource_name") {
            return Err(call.invalid("matches key must be resource_name"));
        }
        name_contains = Some(m.strict_string("value").map_err(|e| call.err(e))?.unwrap_or_default());
    }
    let request = pb::ResourceInstancesRequest { action: action.clone(), limit, offset, tags, name_contains };
    let r = app
        .csms
        .clone()
        .list_resource_instances(call.identity.request(request))
        .await
        .map_err(call.status())?
        .into_inner();
    let resources: Vec<Value> = r
        .resources
        .iter()
        .map(|res| {
            let secret = res.secret.clone().unwrap_or_default();
            json!({
                "resource_id": secret.id,
                "resource_name": secret.name,
                "resource_detail": secret_json(&secret),
                "tags": res.tags.iter().map(tag_json).collect::<Vec<_>>(),
                "sys_tags": [],
            })
        })
        .collect();
    Ok(Json(if action == "count" {
        json!({"total_count": r.total_count})
    } else {
        json!({"resources": resources, "total_count": r.total_count})
    }))
}

/// `POST /v1/{project_id}/csms/generate-password`.
pub async fn generate_password(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> CsmsResult {
    let call = CsmsCall::new(&app, &caller, &project_id, &headers, &body, Shape::Flat)?;
    let flag = |name: &'static str| -> Result<bool, ApiError> {
        Ok(call.body.bool(name).map_err(|e| call.err(e))?.unwrap_or(false))
    };
    call.string("password_policy_name")?;
    let length = match call.body.int("length").map_err(|e| call.err(e))? {
        None => 0,
        Some(n @ 1..=255) => n as u32,
        Some(_) => return Err(call.invalid("length must be 1-255")),
    };
    let request = pb::GeneratePasswordRequest {
        length,
        exclude_characters: call.string("exclude_characters")?.unwrap_or_default(),
        exclude_lowercase: flag("exclude_lowercase")?,
        exclude_uppercase: flag("exclude_uppercase")?,
        exclude_numbers: flag("exclude_numbers")?,
        exclude_punctuation: flag("exclude_punctuation")?,
        include_space: flag("include_space")?,
        require_each_included_type: flag("require_each_included_type")?,
    };
    let r = app
        .csms
        .clone()
        .generate_random_password(call.identity.request(request))
        .await
        .map_err(call.status())?
        .into_inner();
    Ok(Json(json!({"password": r.password})))
}
