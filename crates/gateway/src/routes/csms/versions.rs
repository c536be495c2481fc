//! Secret versions and their stages (csms-api.md §2.2, §2.3).

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get, post, put},
};
use crypto::SecretString;
use proto::csms::v1::{self as pb, secret_value::Value as PbValue};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{CsmsBare, CsmsCall, CsmsResult, PageInfo, Query, route};
use crate::{
    error::{ApiError, Shape},
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let versions = "/v1/{project_id}/secrets/{secret_name}/versions";
    let version = "/v1/{project_id}/secrets/{secret_name}/versions/{version_id}";
    let stage = "/v1/{project_id}/secrets/{secret_name}/stages/{stage_name}";
    let shape = Shape::Flat;
    vec![
        route(Method::POST, versions, post(create_secret_version), shape).acts_each_time(),
        route(Method::GET, versions, get(list_secret_versions), shape),
        route(Method::GET, version, get(show_secret_version), shape),
        route(Method::PUT, version, put(update_version), shape),
        route(Method::GET, stage, get(show_secret_stage), shape),
        route(Method::PUT, stage, put(update_secret_stage), shape),
        route(Method::DELETE, stage, delete(delete_secret_stage), shape),
    ]
}

/// The `VersionMetadata` object.
#[derive(Debug, Serialize)]
pub struct VersionMetadata {
    id: String,
    create_time: i64,
    expire_time: Option<i64>,
    kms_key_id: String,
    secret_name: String,
    version_stages: Vec<String>,
}

impl From<Option<pb::VersionMetadata>> for VersionMetadata {
    fn from(v: Option<pb::VersionMetadata>) -> Self {
        let v = v.unwrap_or_default();
        Self {
            id: v.id,
            create_time: v.create_time_ms,
            expire_time: v.expire_time_ms,
            kms_key_id: v.kms_key_id,
            secret_name: v.secret_name,
            version_stages: v.version_stages,
        }
    }
}

/// `{"version_metadata": …}`.
#[derive(Debug, Serialize)]
pub struct MetadataAnswer {
    version_metadata: VersionMetadata,
}

/// `POST /v1/{project_id}/secrets/{secret_name}/versions`.
pub async fn create_secret_version(call: CsmsCall) -> CsmsResult<MetadataAnswer> {
    let stages = call.string_list("version_stages")?;
    if stages.as_ref().is_some_and(|s| s.is_empty()) {
        return Err(call.invalid("version_stages takes 1-12 stage names"));
    }
    let request = pb::CreateSecretVersionRequest {
        name: call.path.get("secret_name"),
        value: call.value()?,
        version_stages: stages.unwrap_or_default(),
        expire_time_ms: call.int("expire_time")?,
    };
    let r = call.csms().create_secret_version(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(MetadataAnswer { version_metadata: r.metadata.into() }))
}

/// What list-secret-versions answers.
#[derive(Debug, Serialize)]
pub struct VersionList {
    version_metadatas: Vec<VersionMetadata>,
    page_info: PageInfo,
}

/// `GET /v1/{project_id}/secrets/{secret_name}/versions`.
pub async fn list_secret_versions(query: Query, call: CsmsBare) -> CsmsResult<VersionList> {
    let request = pb::ListSecretVersionsRequest {
        name: call.path.get("secret_name"),
        marker: query.get("marker").cloned().unwrap_or_default(),
        limit: call.limit(&query)?,
    };
    let r = call.csms().list_secret_versions(call.request(request)).await.map_err(call.status())?.into_inner();
    let page_info = PageInfo::of(r.versions.iter().map(|v| v.id.as_str()), r.more);
    let version_metadatas = r.versions.into_iter().map(|v| Some(v).into()).collect();
    Ok(Json(VersionList { version_metadatas, page_info }))
}

/// A version with its value: `secret_string` for text, `secret_binary` for
/// binary values (kept zeroizing until written out).
#[derive(Debug, Serialize)]
pub struct Version {
    version_metadata: VersionMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_string: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_binary: Option<SecretString>,
}

/// `{"version": …}`.
#[derive(Debug, Serialize)]
pub struct VersionAnswer {
    version: Version,
}

/// `GET /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`.
pub async fn show_secret_version(call: CsmsBare) -> CsmsResult<VersionAnswer> {
    let request =
        pb::ShowSecretVersionRequest { name: call.path.get("secret_name"), version_id: call.path.get("version_id") };
    let r = call.csms().show_secret_version(call.request(request)).await.map_err(call.status())?.into_inner();
    let (mut secret_string, mut secret_binary) = (None, None);
    match r.value.and_then(|v| v.value) {
        Some(PbValue::Text(text)) => secret_string = Some(SecretString::new(text)),
        Some(PbValue::Binary(bytes)) => {
            let bytes = Zeroizing::new(bytes);
            secret_binary = Some(SecretString::new(String::from_utf8_lossy(&bytes).into_owned()));
        }
        None => {}
    }
    Ok(Json(VersionAnswer { version: Version { version_metadata: r.metadata.into(), secret_string, secret_binary } }))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`.
pub async fn update_version(call: CsmsCall) -> CsmsResult<MetadataAnswer> {
    let expire_time_ms = call.int("expire_time")?;
    let request = pb::UpdateVersionRequest {
        name: call.path.get("secret_name"),
        version_id: call.path.get("version_id"),
        expire_time_ms,
    };
    let r = call.csms().update_version(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(MetadataAnswer { version_metadata: r.metadata.into() }))
}

/// The `Stage` object.
#[derive(Debug, Serialize)]
pub struct Stage {
    name: String,
    update_time: i64,
    secret_name: String,
    version_id: String,
}

/// `{"stage": …}`.
#[derive(Debug, Serialize)]
pub struct StageAnswer {
    stage: Stage,
}

impl From<Option<pb::Stage>> for StageAnswer {
    fn from(stage: Option<pb::Stage>) -> Self {
        let s = stage.unwrap_or_default();
        Self {
            stage: Stage {
                name: s.name,
                update_time: s.update_time_ms,
                secret_name: s.secret_name,
                version_id: s.version_id,
            },
        }
    }
}

fn stage_ref<const BODY: bool>(call: &CsmsCall<BODY>) -> pb::StageRef {
    pb::StageRef { name: call.path.get("secret_name"), stage: call.path.get("stage_name") }
}

/// `GET /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`.
pub async fn show_secret_stage(call: CsmsBare) -> CsmsResult<StageAnswer> {
    let r = call.csms().show_secret_stage(call.request(stage_ref(&call))).await.map_err(call.status())?;
    Ok(Json(r.into_inner().stage.into()))
}

/// `PUT /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`.
pub async fn update_secret_stage(call: CsmsCall) -> CsmsResult<StageAnswer> {
    let version_id = call.required("version_id", "version_id is required")?;
    let pb::StageRef { name, stage } = stage_ref(&call);
    let request = pb::UpdateSecretStageRequest { name, stage, version_id };
    let r = call.csms().update_secret_stage(call.request(request)).await.map_err(call.status())?;
    Ok(Json(r.into_inner().stage.into()))
}

/// `DELETE /v1/{project_id}/secrets/{secret_name}/stages/{stage_name}`: 204.
pub async fn delete_secret_stage(call: CsmsBare) -> Result<StatusCode, ApiError> {
    call.csms().delete_secret_stage(call.request(stage_ref(&call))).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}
