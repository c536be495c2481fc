//! Grants of a secret to a user (csms-api.md §3.4), flat errors. The
//! answers' `GrantData` is camelCase, as the SDK's model reads it. The
//! gateway checks that the grantee is a user; csms-service records the
//! grant and checks it on every read the grantee makes.

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get, post, put},
};
use proto::csms::v1 as pb;
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, Query, route};
use crate::{
    error::{ApiError, Shape},
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let (grants, shape) = ("/v1/{project_id}/csms/grants", Shape::Flat);
    vec![
        route(Method::POST, grants, post(create_grants), shape),
        route(Method::GET, grants, get(list_grants), shape),
        route(Method::PUT, grants, put(update_grant), shape),
        route(Method::DELETE, grants, delete(delete_grant), shape),
    ]
}

/// `GrantData`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantData {
    uuid: String,
    resource_id: String,
    r#type: &'static str,
    grantee_user: String,
    create_time: i64,
    update_time: i64,
    validity_time: Option<i64>,
    state: i32,
    signature: String,
}

impl From<pb::Grant> for GrantData {
    fn from(g: pb::Grant) -> Self {
        Self {
            uuid: g.id,
            resource_id: g.resource_id,
            r#type: "SECRET",
            grantee_user: g.grantee_id,
            create_time: g.create_time_ms,
            update_time: g.update_time_ms,
            validity_time: g.validity_time_ms,
            state: 0,
            signature: String::new(),
        }
    }
}

/// `{"data": …}`.
#[derive(Debug, Serialize)]
pub struct Data<T> {
    data: T,
}

/// A GrantSecretReqBody, with the grantee checked against the identity
/// store (an unknown or disabled user cannot be granted anything).
fn grant_request(call: &CsmsCall) -> Result<pb::GrantRequest, ApiError> {
    let request = pb::GrantRequest {
        resource_id: call.required("resource_id", "resource_id is required")?,
        r#type: call.required("type", "type is required")?,
        grantee_type: call.required("grantee_type", "grantee_type is required")?,
        grantee_target_id: call.required("grantee_target_id", "grantee_target_id is required")?,
        validity_date: call.string("validity_time")?,
    };
    if request.grantee_type == "0" && call.app().directory.snapshot().active_user(&request.grantee_target_id).is_none()
    {
        return Err(call.invalid("grantee_target_id is not a user"));
    }
    Ok(request)
}

fn resource_id<const B: bool>(call: &CsmsCall<B>, query: &Query) -> Result<String, ApiError> {
    let id = query.get("resource_id").cloned().unwrap_or_default();
    if id.is_empty() || id.len() > 64 {
        return Err(call.invalid("resource_id is required (1-64 characters)"));
    }
    Ok(id)
}

/// `POST /v1/{project_id}/csms/grants`.
pub async fn create_grants(call: CsmsCall) -> CsmsResult<Data<GrantData>> {
    let request = grant_request(&call)?;
    let r = call.csms().create_grant(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Data { data: r.grant.unwrap_or_default().into() }))
}

/// One grantee in `GrantDTO`.
#[derive(Debug, Serialize)]
pub struct GrantUserInfo {
    user_id: String,
    user_name: String,
    create_time: i64,
    validity_time: Option<i64>,
}

/// `GrantDTO`: the secret and every user it is granted to.
#[derive(Debug, Serialize)]
pub struct GrantDto {
    id: String,
    name: String,
    r#type: &'static str,
    grantee_user: Vec<GrantUserInfo>,
    create_time: i64,
    update_time: i64,
}

/// `GET /v1/{project_id}/csms/grants?resource_id=`.
pub async fn list_grants(query: Query, call: CsmsBare) -> CsmsResult<Data<GrantDto>> {
    let request = pb::GrantsOf { resource_id: resource_id(&call, &query)? };
    let r = call.csms().list_grants(call.request(request)).await.map_err(call.status())?.into_inner();
    let secret = r.secret.unwrap_or_default();
    let directory = call.app().directory.snapshot();
    let users = r
        .grants
        .iter()
        .map(|g| GrantUserInfo {
            user_id: g.grantee_id.clone(),
            user_name: directory.user(&g.grantee_id).map(|u| u.name.clone()).unwrap_or_default(),
            create_time: g.create_time_ms,
            validity_time: g.validity_time_ms,
        })
        .collect();
    let create_time = r.grants.iter().map(|g| g.create_time_ms).min().unwrap_or(secret.create_time_ms);
    let update_time = r.grants.iter().map(|g| g.update_time_ms).max().unwrap_or(secret.update_time_ms);
    Ok(Json(Data {
        data: GrantDto {
            id: secret.id,
            name: secret.name,
            r#type: "SECRET",
            grantee_user: users,
            create_time,
            update_time,
        },
    }))
}

/// `PUT /v1/{project_id}/csms/grants?resource_id=`: the validity of the
/// grant to the body's grantee.
pub async fn update_grant(query: Query, call: CsmsCall) -> CsmsResult<Data<GrantData>> {
    let id = resource_id(&call, &query)?;
    let request = grant_request(&call)?;
    if request.resource_id != id {
        return Err(call.invalid("resource_id in the body must be the query's"));
    }
    let r = call.csms().update_grant(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(Data { data: r.grant.unwrap_or_default().into() }))
}

/// `DELETE /v1/{project_id}/csms/grants?resource_id=&grantee_user=`: 204.
pub async fn delete_grant(query: Query, call: CsmsBare) -> Result<StatusCode, ApiError> {
    let request = pb::DeleteGrantRequest {
        resource_id: resource_id(&call, &query)?,
        grantee_id: query.get("grantee_user").cloned(),
    };
    call.csms().delete_grant(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}
