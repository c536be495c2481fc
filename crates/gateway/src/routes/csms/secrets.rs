//! Secrets: create, list, show, update, delete, scheduled deletion and its
//! cancellation, backup and restore, and password generation (csms-api.md
//! §2.1, §2.4, §2.5).

use std::sync::Arc;

use axum::{
    Json,
    extract::{FromRequest, Request, State},
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, PageInfo, Query, Secret, SecretAnswer, route};
use crate::{
    error::{ApiError, CsmsFault, Shape, csms_error_msg},
    json::JsonBody,
    routes::ApiRoute,
    state::AppState,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let (secret, shape) = ("/v1/{project_id}/secrets/{secret_name}", Shape::Flat);
    vec![
        route(Method::POST, "/v1/{project_id}/secrets", post(create_secret), shape),
        route(Method::GET, "/v1/{project_id}/secrets", get(list_secrets), shape),
        route(Method::POST, "/v1/{project_id}/secrets/restore", post(upload_secret_blob), shape)
            .body_limit(super::super::RESTORE_BODY),
        route(Method::GET, "/v1/{project_id}/secrets/restore", get(secret_named_restore), shape),
        route(Method::PUT, "/v1/{project_id}/secrets/restore", put(secret_named_restore), shape),
        route(Method::DELETE, "/v1/{project_id}/secrets/restore", delete(secret_named_restore), shape),
        route(Method::POST, "/v1/{project_id}/secrets/batch-import", post(batch_import_secrets), shape),
        route(Method::GET, "/v1/{project_id}/secrets/batch-import", get(secret_named_batch_import), shape),
        route(Method::PUT, "/v1/{project_id}/secrets/batch-import", put(secret_named_batch_import), shape),
        route(Method::DELETE, "/v1/{project_id}/secrets/batch-import", delete(secret_named_batch_import), shape),
        route(Method::GET, secret, get(show_secret), shape),
        route(Method::PUT, secret, put(update_secret), shape),
        route(Method::DELETE, secret, delete(delete_secret), shape),
        route(
            Method::POST,
            "/v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/create",
            post(schedule_deletion),
            shape,
        ),
        route(
            Method::POST,
            "/v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/cancel",
            post(restore_secret),
            shape,
        ),
        route(Method::POST, "/v1/{project_id}/secrets/{secret_name}/backup", post(download_secret_blob), shape),
        route(Method::POST, "/v1/{project_id}/csms/generate-password", post(generate_password), shape),
    ]
}

/// `POST /v1/{project_id}/secrets`.
pub async fn create_secret(call: CsmsCall) -> CsmsResult<SecretAnswer> {
    let request = create_request(&call, &call.body)?;
    let r = call.csms().create_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(r.secret.into()))
}

/// A create-secret body (the request's, or one element of a batch).
fn create_request(call: &CsmsCall, body: &JsonBody) -> Result<pb::CreateSecretRequest, ApiError> {
    let value = call.value_in(body)?;
    let string = |field| body.strict_string(field).map_err(|e| call.err(e));
    let name = string("name")?.ok_or_else(|| call.invalid("name is required"))?;
    let text = |field| Ok::<_, ApiError>(string(field)?.unwrap_or_default());
    Ok(pb::CreateSecretRequest {
        name,
        kms_key_id: text("kms_key_id")?,
        description: text("description")?,
        value,
        secret_type: text("secret_type")?,
        auto_rotation: body.bool("auto_rotation").map_err(|e| call.err(e))?.unwrap_or(false),
        rotation_period: text("rotation_period")?,
        rotation_config: text("rotation_config")?,
        event_subscriptions: body.string_list("event_subscriptions").map_err(|e| call.err(e))?.unwrap_or_default(),
        enterprise_project_id: text("enterprise_project_id")?,
        rotation_func_urn: text("rotation_func_urn")?,
    })
}

/// One refused element of a batch.
#[derive(Debug, Serialize)]
pub struct ImportError {
    name: String,
    error_msg: String,
}

/// What batch-import answers: every count, and one entry per refusal.
#[derive(Debug, Serialize)]
pub struct BatchImport {
    total: usize,
    success: usize,
    failed: usize,
    error_list: Vec<ImportError>,
}

/// `POST /v1/{project_id}/secrets/batch-import`: each element as
/// create-secret; an element the gateway cannot even read is refused
/// alone, with the rest created.
pub async fn batch_import_secrets(call: CsmsCall) -> CsmsResult<BatchImport> {
    let elements = call.objects("secrets")?.ok_or_else(|| call.invalid("secrets is required"))?;
    if elements.is_empty() || elements.len() > proto::limits::MAX_BATCH_IMPORT {
        return Err(call.invalid(&format!("secrets takes 1-{} elements", proto::limits::MAX_BATCH_IMPORT)));
    }
    let total = elements.len();
    // Element by element: parsed here, or refused with its error.
    let mut outcomes: Vec<Option<ImportError>> = Vec::with_capacity(total);
    let mut requests = Vec::new();
    let mut sent = Vec::new();
    for (i, element) in elements.iter().enumerate() {
        match create_request(&call, element) {
            Ok(request) => {
                sent.push(i);
                requests.push(request);
                outcomes.push(None);
            }
            Err(e) => {
                let name = element.strict_string("name").ok().flatten().unwrap_or_default();
                outcomes.push(Some(ImportError { name, error_msg: e.csms_error_msg() }));
            }
        }
    }
    if !requests.is_empty() {
        let request = pb::BatchImportSecretsRequest { secrets: requests };
        let r = call.csms().batch_import_secrets(call.request(request)).await.map_err(call.status())?.into_inner();
        for (i, result) in sent.into_iter().zip(r.results) {
            if !result.created {
                let fault = CsmsFault::Service(result.reason());
                outcomes[i] =
                    Some(ImportError { name: result.name, error_msg: csms_error_msg(fault, &result.message) });
            }
        }
    }
    let error_list: Vec<ImportError> = outcomes.into_iter().flatten().collect();
    Ok(Json(BatchImport { total, success: total - error_list.len(), failed: error_list.len(), error_list }))
}

/// `GET /v1/{project_id}/secrets/{secret_name}`.
pub async fn show_secret(call: CsmsBare) -> CsmsResult<SecretAnswer> {
    let request = pb::ShowSecretRequest { name: call.path.get("secret_name") };
    let r = call.csms().show_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(r.secret.into()))
}

/// What list-secrets answers.
#[derive(Debug, Serialize)]
pub struct SecretList {
    secrets: Vec<Secret>,
    page_info: PageInfo,
}

/// `GET /v1/{project_id}/secrets`.
pub async fn list_secrets(query: Query, call: CsmsBare) -> CsmsResult<SecretList> {
    let request = pb::ListSecretsRequest {
        limit: call.limit(&query)?,
        marker: query.get("marker").cloned().unwrap_or_default(),
        event_name: query.get("event_name").cloned().unwrap_or_default(),
    };
    let r = call.csms().list_secrets(call.request(request)).await.map_err(call.status())?.into_inner();
    let page_info = PageInfo::of(r.secrets.iter().map(|s| s.name.as_str()), r.more);
    Ok(Json(SecretList { secrets: r.secrets.into_iter().map(Secret::from).collect(), page_info }))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}`.
pub async fn update_secret(call: CsmsCall) -> CsmsResult<SecretAnswer> {
    let subscriptions = call.string_list("event_subscriptions")?;
    let request = pb::UpdateSecretRequest {
        name: call.path.get("secret_name"),
        kms_key_id: call.string("kms_key_id")?,
        description: call.string("description")?,
        auto_rotation: call.bool("auto_rotation")?,
        rotation_period: call.string("rotation_period")?,
        set_event_subscriptions: subscriptions.is_some(),
        event_subscriptions: subscriptions.unwrap_or_default(),
        rotation_func_urn: call.string("rotation_func_urn")?,
    };
    let r = call.csms().update_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(r.secret.into()))
}

/// `DELETE /v1/{project_id}/secrets/{secret_name}`: 200 with an empty body.
pub async fn delete_secret(call: CsmsBare) -> Result<StatusCode, ApiError> {
    let request = pb::SecretName { name: call.path.get("secret_name") };
    call.csms().delete_secret(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::OK)
}

/// `POST /v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/create`.
pub async fn schedule_deletion(call: CsmsCall) -> CsmsResult<SecretAnswer> {
    let days = call.int("recovery_window_in_days")?;
    let request =
        pb::ScheduleSecretDeletionRequest { name: call.path.get("secret_name"), recovery_window_in_days: days };
    let r = call.csms().schedule_secret_deletion(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(r.secret.into()))
}

/// `POST /v1/{project_id}/secrets/{secret_name}/scheduled-deleted-tasks/cancel`.
pub async fn restore_secret(call: CsmsBare) -> CsmsResult<SecretAnswer> {
    let request = pb::SecretName { name: call.path.get("secret_name") };
    let r = call.csms().restore_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(r.secret.into()))
}

/// What backup answers.
#[derive(Debug, Serialize)]
pub struct Backup {
    secret_blob: String,
}

/// `POST /v1/{project_id}/secrets/{secret_name}/backup`.
pub async fn download_secret_blob(call: CsmsBare) -> CsmsResult<Backup> {
    let request = pb::SecretName { name: call.path.get("secret_name") };
    let r = call.csms().download_secret_blob(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Backup { secret_blob: r.blob }))
}

/// `POST /v1/{project_id}/secrets/restore`.
pub async fn upload_secret_blob(call: CsmsCall) -> CsmsResult<SecretAnswer> {
    let blob = call.required("secret_blob", "secret_blob is required")?;
    let r = call.csms().upload_secret_blob(call.request(pb::SecretBlob { blob })).await.map_err(call.status())?;
    Ok(Json(r.into_inner().secret.into()))
}

/// `GET|PUT|DELETE /v1/{project_id}/secrets/restore`: the static `restore`
/// route wins the path, so a secret named `restore` is served here (only
/// the PUT reads a body, as the routes it stands for).
pub async fn secret_named_restore(
    State(app): State<Arc<AppState>>, method: Method, req: Request,
) -> Result<Response, ApiError> {
    secret_named("restore", &app, method, req).await
}

/// `GET|PUT|DELETE /v1/{project_id}/secrets/batch-import`: as
/// [`secret_named_restore`], for a secret named `batch-import`.
pub async fn secret_named_batch_import(
    State(app): State<Arc<AppState>>, method: Method, req: Request,
) -> Result<Response, ApiError> {
    secret_named("batch-import", &app, method, req).await
}

async fn secret_named(name: &str, app: &Arc<AppState>, method: Method, req: Request) -> Result<Response, ApiError> {
    if method == Method::PUT {
        let mut call = CsmsCall::from_request(req, app).await?;
        call.path.set("secret_name", name);
        return Ok(update_secret(call).await?.into_response());
    }
    let mut call = CsmsBare::from_request(req, app).await?;
    call.path.set("secret_name", name);
    Ok(match method {
        Method::GET => show_secret(call).await?.into_response(),
        _ => delete_secret(call).await?.into_response(),
    })
}

/// What generate-password answers.
#[derive(Debug, Serialize)]
pub struct Password {
    password: crypto::SecretString,
}

/// `POST /v1/{project_id}/csms/generate-password`.
pub async fn generate_password(call: CsmsCall) -> CsmsResult<Password> {
    let flag = |name: &'static str| -> Result<bool, ApiError> { Ok(call.bool(name)?.unwrap_or(false)) };
    call.string("password_policy_name")?;
    let request = pb::GeneratePasswordRequest {
        length: call.int("length")?,
        exclude_characters: call.string("exclude_characters")?.unwrap_or_default(),
        exclude_lowercase: flag("exclude_lowercase")?,
        exclude_uppercase: flag("exclude_uppercase")?,
        exclude_numbers: flag("exclude_numbers")?,
        exclude_punctuation: flag("exclude_punctuation")?,
        include_space: flag("include_space")?,
        require_each_included_type: flag("require_each_included_type")?,
    };
    let r = call.csms().generate_random_password(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Password { password: crypto::SecretString::new(r.password) }))
}
