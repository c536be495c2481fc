//! The alias API (kms-api.md §3.8). Times are ISO-8601 UTC strings here.
//!
//! list-aliases answers one bare object `{aliases, page_info}`. The SDK's
//! model types the body as an array of such objects, but Huawei's own
//! example shows the object, and the Terraform provider (written against
//! the real service) reads `aliases` and `page_info.next_marker` from the
//! top of the body — an array would make it lose every alias. The Python
//! SDK accepts the object (it wraps it into a one-element list).

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get},
};
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason};
use crate::{error::ApiError, routes::ApiRoute};

pub(super) fn routes() -> Vec<ApiRoute> {
    let aliases = "/v1.0/{project_id}/kms/aliases";
    vec![
        ApiRoute::post(aliases, create_alias),
        ApiRoute::new(Method::GET, aliases, get(list_aliases)),
        ApiRoute::new(Method::DELETE, aliases, delete(delete_aliases)),
        ApiRoute::post("/v1.0/{project_id}/kms/alias/associate", associate_alias),
    ]
}

/// The `AliasEntity` object.
#[derive(Debug, Serialize)]
pub struct Alias {
    domain_id: String,
    key_id: String,
    alias: String,
    alias_urn: String,
    create_time: String,
    update_time: String,
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl From<pb::Alias> for Alias {
    fn from(a: pb::Alias) -> Self {
        Self {
            domain_id: a.domain_id,
            key_id: a.key_id,
            alias: a.alias,
            alias_urn: a.alias_urn,
            create_time: iso(a.create_time_ms),
            update_time: iso(a.update_time_ms),
        }
    }
}

/// `POST /v1.0/{project_id}/kms/aliases`: 201 and the alias.
pub async fn create_alias(call: KmsCall) -> Result<(StatusCode, Json<Alias>), ApiError> {
    let request = pb::CreateAliasRequest { key_id: call.required("key_id")?, alias: call.required("alias")? };
    let alias = call.kms().create_alias(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok((StatusCode::CREATED, Json(alias.into())))
}

/// `page_info` of list-aliases.
#[derive(Debug, Serialize)]
pub struct PageInfo {
    next_marker: String,
    current_count: usize,
}

/// What list-aliases answers.
#[derive(Debug, Serialize)]
pub struct AliasList {
    aliases: Vec<Alias>,
    page_info: PageInfo,
}

/// `GET /v1.0/{project_id}/kms/aliases?key_id=&limit=&marker=`.
pub async fn list_aliases(call: KmsCall) -> KmsResult<AliasList> {
    let limit =
        call.query("limit").map(|l| l.trim().parse::<u32>().map_err(|_| reason(R::InvalidLimit))).transpose()?;
    let request = pb::ListAliasesRequest {
        key_id: call.query("key_id").unwrap_or_default().to_owned(),
        limit,
        marker: call.query("marker").unwrap_or_default().to_owned(),
    };
    let page = call.kms().list_aliases(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(AliasList {
        page_info: PageInfo { next_marker: page.next_marker.unwrap_or_default(), current_count: page.aliases.len() },
        aliases: page.aliases.into_iter().map(Alias::from).collect(),
    }))
}

/// `DELETE /v1.0/{project_id}/kms/aliases` with a JSON body: 204.
pub async fn delete_aliases(call: KmsCall) -> Result<StatusCode, ApiError> {
    let aliases = call.body().string_list("aliases").map_err(|e| call.field_error(e))?;
    let request = pb::DeleteAliasesRequest {
        key_id: call.required("key_id")?,
        aliases: aliases.ok_or_else(|| reason(R::MissingParameter))?,
    };
    call.kms().delete_aliases(call.request(request)).await.map_err(kms_status)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/{project_id}/kms/alias/associate`: the alias, moved.
pub async fn associate_alias(call: KmsCall) -> KmsResult<Alias> {
    let request =
        pb::AssociateAliasRequest { alias: call.required("alias")?, target_key_id: call.required("target_key_id")? };
    let alias = call.kms().associate_alias(call.request(request)).await.map_err(kms_status)?.into_inner();
    Ok(Json(alias.into()))
}
