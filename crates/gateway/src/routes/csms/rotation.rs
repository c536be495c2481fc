//! Rotation (csms-api.md §3.2): rotate-secret (nested errors) and the
//! rotation task list (flat errors).

use axum::{
    Json,
    http::Method,
    routing::{get, post},
};
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsResult, Query, route};
use crate::{
    error::{CsmsFault, Shape, csms_error},
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        route(Method::POST, "/v1/{project_id}/secrets/{secret_name}/rotate", post(rotate_secret), Shape::Nested)
            .acts_each_time(),
        route(Method::GET, "/v1/{project_id}/csms/tasks", get(list_secret_task), Shape::Flat),
    ]
}

/// What rotate-secret answers; `version_id` only when the rotation made
/// one (a failed attempt is a FAILED task, listed by list-secret-task).
#[derive(Debug, Serialize)]
pub struct Rotated {
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<String>,
    secret_name: String,
    rotation_task_id: String,
}

/// `POST /v1/{project_id}/secrets/{secret_name}/rotate` (no body).
pub async fn rotate_secret(call: CsmsBare) -> CsmsResult<Rotated> {
    let request = pb::SecretName { name: call.path.get("secret_name") };
    let r = call.csms().rotate_secret(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Rotated { version_id: r.version_id, secret_name: r.secret_name, rotation_task_id: r.rotation_task_id }))
}

/// The `SecretTask` object.
#[derive(Debug, Serialize)]
pub struct SecretTask {
    task_id: String,
    secret_name: String,
    rotation_func_urn: String,
    task_status: String,
    operate_type: String,
    task_time: i64,
    attempt_nums: i32,
    task_error_code: String,
    task_error_msg: String,
}

/// What list-secret-task answers: `next_marker` is the last task of the
/// page, and absent on an empty page.
#[derive(Debug, Serialize)]
pub struct TaskList {
    total: u64,
    tasks: Vec<SecretTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// `GET /v1/{project_id}/csms/tasks?secret_name=&status=&task_id=&limit=&marker=`.
pub async fn list_secret_task(query: Query, call: CsmsBare) -> CsmsResult<TaskList> {
    let request = pb::ListSecretTasksRequest {
        secret_name: query.get("secret_name").cloned(),
        status: query.get("status").cloned(),
        task_id: query.get("task_id").cloned(),
        limit: call.limit(&query)?,
        marker: query.get("marker").cloned(),
    };
    let r = call.csms().list_secret_tasks(call.request(request)).await.map_err(call.status())?.into_inner();
    let next_marker = r.tasks.last().map(|t| t.task_id.clone());
    let tasks = r
        .tasks
        .into_iter()
        .map(|t| (t.task_error_reason(), t))
        .map(|(reason, t)| SecretTask {
            task_id: t.task_id,
            secret_name: t.secret_name,
            rotation_func_urn: t.rotation_func_urn,
            task_status: t.task_status,
            operate_type: t.operate_type,
            task_time: t.task_time_ms,
            attempt_nums: t.attempt_nums,
            task_error_code: match reason {
                pb::ErrorReason::Unspecified => String::new(),
                reason => csms_error(CsmsFault::Service(reason)).1.to_owned(),
            },
            task_error_msg: t.task_error_msg,
        })
        .collect();
    Ok(Json(TaskList { total: r.total, tasks, next_marker }))
}
