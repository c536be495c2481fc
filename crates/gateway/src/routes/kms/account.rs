//! What a project has (quotas, instance count) and the unauthenticated API
//! version documents.

use axum::{
    Json,
    extract::Path,
    http::{HeaderMap, Method},
    routing::get,
};
use proto::kms::v1 as pb;
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status};
use crate::{
    error::{ApiError, KmsFault},
    routes::ApiRoute,
};

pub(super) fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::new(Method::GET, "/v1.0/{project_id}/kms/user-quotas", get(user_quotas)),
        ApiRoute::new(Method::GET, "/v1.0/{project_id}/kms/user-instances", get(user_instances)),
    ]
}

async fn quotas(call: &KmsCall) -> Result<pb::GetQuotasResponse, ApiError> {
    Ok(call.kms().get_quotas(call.request(pb::GetQuotasRequest {})).await.map_err(kms_status)?.into_inner())
}

/// Grants are not implemented yet; their quota is reported as documented.
const GRANTS_PER_KEY_QUOTA: u64 = 100;

/// What user-quotas answers.
#[derive(Debug, Serialize)]
pub struct Quotas {
    quotas: Resources,
}

/// The quota list.
#[derive(Debug, Serialize)]
pub struct Resources {
    resources: [Quota; 2],
}

/// One quota.
#[derive(Debug, Serialize)]
pub struct Quota {
    #[serde(rename = "type")]
    kind: &'static str,
    used: u64,
    quota: u64,
}

/// `GET /v1.0/{project_id}/kms/user-quotas`.
pub async fn user_quotas(call: KmsCall) -> KmsResult<Quotas> {
    let q = quotas(&call).await?;
    Ok(Json(Quotas {
        quotas: Resources {
            resources: [
                Quota { kind: "CMK", used: q.keys_used, quota: q.keys_quota },
                Quota { kind: "grant_per_CMK", used: 0, quota: GRANTS_PER_KEY_QUOTA },
            ],
        },
    }))
}

/// What user-instances answers.
#[derive(Debug, Serialize)]
pub struct Instances {
    instance_num: u64,
}

/// `GET /v1.0/{project_id}/kms/user-instances`.
pub async fn user_instances(call: KmsCall) -> KmsResult<Instances> {
    let q = quotas(&call).await?;
    Ok(Json(Instances { instance_num: q.keys_used }))
}

/// The one API version, as `GET /` and `GET /v1.0` describe it.
#[derive(Debug, Serialize)]
pub struct Version {
    id: &'static str,
    links: [Link; 1],
    version: &'static str,
    status: &'static str,
    updated: &'static str,
    min_version: &'static str,
}

/// A link to the version.
#[derive(Debug, Serialize)]
pub struct Link {
    href: String,
    rel: &'static str,
}

impl Version {
    fn new(headers: &HeaderMap) -> Self {
        let header = |name, default| headers.get(name).and_then(|h| h.to_str().ok()).unwrap_or(default);
        let (host, scheme) = (header(http::header::HOST.as_str(), "localhost"), header("x-forwarded-proto", "http"));
        Self {
            id: "v1.0",
            links: [Link { href: format!("{scheme}://{host}/v1.0/"), rel: "self" }],
            version: "",
            status: "CURRENT",
            updated: "2016-10-29T02:00:00Z",
            min_version: "",
        }
    }
}

/// What `GET /` answers.
#[derive(Debug, Serialize)]
pub struct Versions {
    versions: [Version; 1],
}

/// `GET /`: the API versions (no authentication needed).
pub async fn versions(headers: HeaderMap) -> Json<Versions> {
    Json(Versions { versions: [Version::new(&headers)] })
}

/// What `GET /v1.0` answers.
#[derive(Debug, Serialize)]
pub struct OneVersion {
    version: Version,
}

/// `GET /{version_id}`: one API version.
pub async fn version(Path(version_id): Path<String>, headers: HeaderMap) -> KmsResult<OneVersion> {
    if version_id != "v1.0" {
        return Err(ApiError::kms(KmsFault::UnknownVersion));
    }
    Ok(Json(OneVersion { version: Version::new(&headers) }))
}
