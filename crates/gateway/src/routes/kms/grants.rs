//! Grants (kms-api.md §3.3). A grantee uses a granted key from its own
//! project's paths, naming the key by id; kms-service enforces the grant.

use axum::Json;
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason, rotation::Empty};
use crate::{error::ApiError, routes::ApiRoute};

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        // Repeats within the grace make more grants: the official SDK
        // suite sends one create-grant a hundred times in a loop (identical
        // requests in one second) and expects a hundred grants.
        ApiRoute::post("/v1.0/{project_id}/kms/create-grant", create_grant),
        ApiRoute::post("/v1.0/{project_id}/kms/list-grants", list_grants).replayable(),
        ApiRoute::post("/v1.0/{project_id}/kms/revoke-grant", revoke_grant),
        ApiRoute::post("/v1.0/{project_id}/kms/retire-grant", retire_grant),
        ApiRoute::post("/v1.0/{project_id}/kms/list-retirable-grants", list_retirable_grants).replayable(),
    ]
}

/// What create-grant answers.
#[derive(Debug, Serialize)]
pub struct GrantId {
    grant_id: String,
}

/// `POST /v1.0/{project_id}/kms/create-grant`.
pub async fn create_grant(call: KmsCall) -> KmsResult<GrantId> {
    let operations = call.body().string_list("operations").map_err(|_| reason(R::InvalidParameter))?;
    let request = pb::CreateGrantRequest {
        key_id: call.required("key_id")?,
        grantee_principal: call.required("grantee_principal")?,
        grantee_principal_type: call.text("grantee_principal_type")?,
        operations: operations.ok_or_else(|| reason(R::MissingParameter))?,
        name: call.text("name")?,
        retiring_principal: call.text("retiring_principal")?,
        sequence: call.sequence()?,
    };
    let r = call.kms().create_grant(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(GrantId { grant_id: r.grant_id }))
}

/// The `Grants` object.
#[derive(Debug, Serialize)]
pub struct Grant {
    key_id: String,
    grant_id: String,
    grantee_principal: String,
    grantee_principal_type: String,
    operations: Vec<String>,
    issuing_principal: String,
    creation_date: String,
    name: String,
    retiring_principal: String,
}

impl From<pb::Grant> for Grant {
    fn from(g: pb::Grant) -> Self {
        Self {
            key_id: g.key_id,
            grant_id: g.grant_id,
            grantee_principal: g.grantee_principal,
            grantee_principal_type: g.grantee_principal_type,
            operations: g.operations,
            issuing_principal: g.issuing_principal,
            creation_date: g.creation_date_ms.to_string(),
            name: g.name,
            retiring_principal: g.retiring_principal,
        }
    }
}

/// What list-grants and list-retirable-grants answer (§1.10 paging).
#[derive(Debug, Serialize)]
pub struct GrantList {
    grants: Vec<Grant>,
    next_marker: String,
    truncated: String,
    total: u64,
}

impl From<pb::ListGrantsResponse> for GrantList {
    fn from(page: pb::ListGrantsResponse) -> Self {
        Self {
            next_marker: page.next_offset.map(|o| o.to_string()).unwrap_or_default(),
            truncated: page.next_offset.is_some().to_string(),
            total: page.total,
            grants: page.grants.into_iter().map(Grant::from).collect(),
        }
    }
}

/// `limit` and `marker` as string-typed numbers (the ranges are
/// kms-service's).
fn paging(call: &KmsCall) -> Result<(Option<u32>, u64), ApiError> {
    let limit = call.opt("limit")?.map(|l| l.trim().parse::<u32>().map_err(|_| reason(R::InvalidLimit))).transpose()?;
    let offset = match call.opt("marker")? {
        None => 0,
        Some(text) if text.is_empty() => 0,
        Some(text) => text.trim().parse::<u64>().map_err(|_| reason(R::InvalidMarker))?,
    };
    Ok((limit, offset))
}

/// `POST /v1.0/{project_id}/kms/list-grants`.
pub async fn list_grants(call: KmsCall) -> KmsResult<GrantList> {
    let (limit, offset) = paging(&call)?;
    let request = pb::ListGrantsRequest { key_id: call.required("key_id")?, limit, offset, sequence: call.sequence()? };
    let page = call.kms().list_grants(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(page.into()))
}

fn grant_ref(call: &KmsCall) -> Result<tonic::Request<pb::GrantRef>, ApiError> {
    let request = pb::GrantRef {
        key_id: call.required("key_id")?,
        grant_id: call.required("grant_id")?,
        sequence: call.sequence()?,
    };
    Ok(call.request(request))
}

/// `POST /v1.0/{project_id}/kms/revoke-grant`: `{}`.
pub async fn revoke_grant(call: KmsCall) -> KmsResult<Empty> {
    call.kms().revoke_grant(grant_ref(&call)?).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// `POST /v1.0/{project_id}/kms/retire-grant`: `{}`.
pub async fn retire_grant(call: KmsCall) -> KmsResult<Empty> {
    call.kms().retire_grant(grant_ref(&call)?).await.map_err(kms_status)?;
    Ok(Json(Empty {}))
}

/// `POST /v1.0/{project_id}/kms/list-retirable-grants`.
pub async fn list_retirable_grants(call: KmsCall) -> KmsResult<GrantList> {
    let (limit, offset) = paging(&call)?;
    let request = pb::ListRetirableGrantsRequest { limit, offset, sequence: call.sequence()? };
    let page = call.kms().list_retirable_grants(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(page.into()))
}
