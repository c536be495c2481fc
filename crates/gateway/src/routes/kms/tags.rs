//! Key tags (kms-api.md §3.2): one key's tags, the project's tag list, the
//! batch action and the tag-filtered key query. Writes answer 204.

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get, post},
};
use proto::kms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{KmsCall, KmsResult, kms_status, reason};
use crate::{
    error::ApiError,
    json::JsonBody,
    routes::{
        ApiRoute,
        tags::{ProjectTags, Resource, Resources, Tag},
    },
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let tags = "/v1.0/{project_id}/kms/{key_id}/tags";
    vec![
        ApiRoute::new(Method::GET, "/v1.0/{project_id}/kms/tags", get(list_project_tags)),
        ApiRoute::new(Method::POST, tags, post(create_tag)),
        ApiRoute::new(Method::GET, tags, get(show_tags)),
        ApiRoute::new(Method::DELETE, "/v1.0/{project_id}/kms/{key_id}/tags/{key}", delete(delete_tag)),
        ApiRoute::post("/v1.0/{project_id}/kms/{key_id}/tags/action", batch_tags),
        ApiRoute::post("/v1.0/{project_id}/kms/resource_instances/action", resource_instances).replayable(),
    ]
}

impl From<pb::KeyTag> for Tag {
    fn from(t: pb::KeyTag) -> Self {
        Tag::new(t.key, t.value)
    }
}

/// `{key, value}`: `key` required (`KMS.0406` when absent), `value` may be
/// absent (empty).
fn tag_of(call: &KmsCall, obj: &JsonBody) -> Result<pb::KeyTag, ApiError> {
    let key =
        obj.strict_string("key").map_err(|_| reason(R::InvalidTagKey))?.ok_or_else(|| reason(R::InvalidTagKey))?;
    let value = obj.strict_string("value").map_err(|e| call.field_error(e))?.unwrap_or_default();
    Ok(pb::KeyTag { key, value })
}

/// `POST /v1.0/{project_id}/kms/{key_id}/tags`: 204.
pub async fn create_tag(call: KmsCall) -> Result<StatusCode, ApiError> {
    let tag = call.body().object("tag").map_err(|e| call.field_error(e))?.ok_or_else(|| reason(R::MissingParameter))?;
    let request = pb::KeyTagRequest { key_id: call.path.get("key_id"), tag: Some(tag_of(&call, tag)?) };
    call.sequence()?;
    call.kms().create_key_tag(call.request(request)).await.map_err(kms_status)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1.0/{project_id}/kms/{key_id}/tags/{key}` (the tag key
/// percent-encoded): 204.
pub async fn delete_tag(call: KmsCall) -> Result<StatusCode, ApiError> {
    let request = pb::DeleteKeyTagRequest { key_id: call.path.get("key_id"), tag_key: call.path.get("key") };
    call.kms().delete_key_tag(call.request(request)).await.map_err(kms_status)?;
    Ok(StatusCode::NO_CONTENT)
}

/// What show-key-tags answers (`existTagsNum` spelt as documented).
#[derive(Debug, Serialize)]
pub struct KeyTags {
    tags: Vec<Tag>,
    #[serde(rename = "existTagsNum")]
    exist_tags_num: usize,
    sys_tags: [Tag; 0],
}

/// `GET /v1.0/{project_id}/kms/{key_id}/tags`.
pub async fn show_tags(call: KmsCall) -> KmsResult<KeyTags> {
    let request = pb::KeyRef { key_id: call.path.get("key_id") };
    let tags = call.kms().list_key_tags(call.request(request)).await.map_err(kms_status)?.into_inner().tags;
    Ok(Json(KeyTags { exist_tags_num: tags.len(), tags: tags.into_iter().map(Tag::from).collect(), sys_tags: [] }))
}

/// `GET /v1.0/{project_id}/kms/tags`.
pub async fn list_project_tags(call: KmsCall) -> KmsResult<ProjectTags> {
    let r = call.kms().list_project_key_tags(call.request(pb::Empty {})).await.map_err(kms_status)?.into_inner();
    Ok(Json(ProjectTags::new(r.tags.into_iter().map(|t| (t.key, t.values)))))
}

/// `POST /v1.0/{project_id}/kms/{key_id}/tags/action`: 204.
pub async fn batch_tags(call: KmsCall) -> Result<StatusCode, ApiError> {
    let action = call.required("action")?;
    let objects = call.body().objects("tags").map_err(|_| reason(R::InvalidTagListSize))?;
    let objects = objects.ok_or_else(|| reason(R::TagListEmpty))?;
    let tags = objects.iter().map(|o| tag_of(&call, o)).collect::<Result<Vec<_>, _>>()?;
    call.sequence()?;
    let request = pb::BatchKeyTagsRequest { key_id: call.path.get("key_id"), action, tags };
    call.kms().batch_key_tags(call.request(request)).await.map_err(kms_status)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/{project_id}/kms/resource_instances/action`.
pub async fn resource_instances(call: KmsCall) -> KmsResult<Resources<super::keys::KeyDetails>> {
    let action = call.required("action")?;
    let number = |name: &'static str, bad: R| -> Result<Option<u32>, ApiError> {
        match call.opt(name)? {
            None => Ok(None),
            Some(text) => text.trim().parse::<u32>().map(Some).map_err(|_| reason(bad)),
        }
    };
    let limit = number("limit", R::InvalidLimit)?;
    let offset = number("offset", R::InvalidOffset)?;
    let mut tags = Vec::new();
    for filter in call.body().objects("tags").map_err(|_| reason(R::InvalidTagListSize))?.unwrap_or_default() {
        let key = filter
            .strict_string("key")
            .map_err(|_| reason(R::InvalidTagKey))?
            .ok_or_else(|| reason(R::InvalidTagKey))?;
        let values = filter.string_list("values").map_err(|_| reason(R::InvalidTagValue))?.unwrap_or_default();
        tags.push(pb::KeyTagValues { key, values });
    }
    let mut name_contains = None;
    for m in call.body().objects("matches").map_err(|_| reason(R::InvalidMatchKey))?.unwrap_or_default() {
        if m.strict_string("key").map_err(|_| reason(R::InvalidMatchKey))?.as_deref() != Some("resource_name") {
            return Err(reason(R::InvalidMatchKey));
        }
        name_contains = Some(m.strict_string("value").map_err(|_| reason(R::InvalidMatchValue))?.unwrap_or_default());
    }
    call.sequence()?;
    let count_only = action == "count";
    let request = pb::KeysByTagsRequest { action, limit, offset, tags, name_contains };
    let r = call.kms().list_keys_by_tags(call.request(request)).await.map_err(kms_status)?.into_inner();
    let resources = (!count_only).then(|| {
        r.resources
            .into_iter()
            .map(|found| {
                let key = found.key.unwrap_or_default();
                let tags = found.tags.into_iter().map(Tag::from).collect();
                Resource::new(key.key_id.clone(), key.key_alias.clone(), key.into(), tags)
            })
            .collect()
    });
    Ok(Json(Resources::new(resources, r.total_count)))
}
