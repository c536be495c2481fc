//! Secret tags, the project's tag list and the tag-filtered resource query
//! (csms-api.md §2.6). These routes answer errors nested.

use axum::{
    Json,
    http::{Method, StatusCode},
    routing::{delete, get, post},
};
use proto::csms::v1::{self as pb, ErrorReason as R};
use serde::Serialize;

use super::{CsmsBare, CsmsCall, CsmsResult, Secret, route};
use crate::{
    error::{ApiError, CsmsFault, Shape},
    json::JsonBody,
    routes::{
        ApiRoute,
        tags::{ProjectTags, Resource, Resources, Tag},
    },
};

pub(super) fn routes() -> Vec<ApiRoute> {
    let tags = "/v1/{project_id}/csms/{secret_id}/tags";
    let shape = Shape::Nested;
    vec![
        route(Method::GET, "/v1/{project_id}/csms/tags", get(list_project_tags), shape),
        route(Method::POST, "/v1/{project_id}/csms/{secret_id}/action", post(resource_instances), shape),
        route(Method::POST, tags, post(create_secret_tag), shape),
        route(Method::GET, tags, get(list_secret_tags), shape),
        route(Method::POST, "/v1/{project_id}/csms/{secret_id}/tags/action", post(batch_tags), shape),
        route(Method::DELETE, "/v1/{project_id}/csms/{secret_id}/tags/{key}", delete(delete_secret_tag), shape),
    ]
}

impl From<pb::Tag> for Tag {
    fn from(t: pb::Tag) -> Self {
        Tag::new(t.key, t.value)
    }
}

fn tag_of(call: &CsmsCall, obj: &JsonBody) -> Result<pb::Tag, ApiError> {
    let key = obj.strict_string("key").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag key is required"))?;
    let value = obj.strict_string("value").map_err(|e| call.err(e))?.unwrap_or_default();
    Ok(pb::Tag { key, value })
}

/// `POST /v1/{project_id}/csms/{secret_id}/tags`: 204.
pub async fn create_secret_tag(call: CsmsCall) -> Result<StatusCode, ApiError> {
    let tag = call.body.object("tag").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag is required"))?;
    let request = pb::SecretTagRequest { secret_id: call.path.get("secret_id"), tag: Some(tag_of(&call, tag)?) };
    call.csms().create_secret_tag(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}

/// What list-secret-tags answers.
#[derive(Debug, Serialize)]
pub struct TagList {
    tags: Vec<Tag>,
    sys_tags: [Tag; 0],
}

/// `GET /v1/{project_id}/csms/{secret_id}/tags`.
pub async fn list_secret_tags(call: CsmsBare) -> CsmsResult<TagList> {
    let request = pb::SecretId { secret_id: call.path.get("secret_id") };
    let r = call.csms().list_secret_tags(call.request(request)).await.map_err(call.status())?.into_inner();
    Ok(Json(TagList { tags: r.tags.into_iter().map(Tag::from).collect(), sys_tags: [] }))
}

/// `DELETE /v1/{project_id}/csms/{secret_id}/tags/{key}`: 204.
pub async fn delete_secret_tag(call: CsmsBare) -> Result<StatusCode, ApiError> {
    let request = pb::DeleteSecretTagRequest { secret_id: call.path.get("secret_id"), key: call.path.get("key") };
    call.csms().delete_secret_tag(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/{project_id}/csms/{secret_id}/tags/action`: 204.
pub async fn batch_tags(call: CsmsCall) -> Result<StatusCode, ApiError> {
    let action = call.required("action", "action is required")?;
    let objects = call.objects("tags")?.ok_or_else(|| call.invalid("tags is required"))?;
    let tags = objects.iter().map(|o| tag_of(&call, o)).collect::<Result<Vec<_>, _>>()?;
    if call.string("sequence")?.is_some_and(|s| s.chars().count() > 36) {
        return Err(call.invalid("sequence is limited to 36 characters"));
    }
    let request = pb::BatchTagsRequest { secret_id: call.path.get("secret_id"), action, tags };
    call.csms().batch_create_or_delete_tags(call.request(request)).await.map_err(call.status())?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/{project_id}/csms/tags`.
pub async fn list_project_tags(call: CsmsBare) -> CsmsResult<ProjectTags> {
    let r = call.csms().list_project_secrets_tags(call.request(pb::Empty {})).await.map_err(call.status())?;
    Ok(Json(ProjectTags::new(r.into_inner().tags.into_iter().map(|t| (t.key, t.values)))))
}

/// `POST /v1/{project_id}/csms/resource_instances/action` (the SDK sends the
/// literal word as a path parameter; any other word is an invalid request).
pub async fn resource_instances(call: CsmsCall) -> CsmsResult<Resources<Secret>> {
    if call.path.get("secret_id") != "resource_instances" {
        return Err(ApiError::Csms {
            fault: CsmsFault::Service(R::InvalidRequest),
            detail: String::new(),
            shape: Shape::Nested,
        });
    }
    let action = call.required("action", "action is required")?;
    let number = |name: &'static str| -> Result<Option<u32>, ApiError> {
        call.body
            .string(name)
            .map_err(|e| call.err(e))?
            .map(|text| text.parse::<u32>().map_err(|_| call.invalid("limit and offset must be non-negative integers")))
            .transpose()
    };
    // An absent limit is the default page; "0" is refused (csms-service).
    let (limit, offset) = (number("limit")?, number("offset")?.unwrap_or(0));
    if action == "count" && call.body.has("offset") {
        return Err(call.invalid("offset is not allowed with action count"));
    }
    let mut tags = Vec::new();
    for filter in call.objects("tags")?.unwrap_or_default() {
        let key =
            filter.strict_string("key").map_err(|e| call.err(e))?.ok_or_else(|| call.invalid("tag key is required"))?;
        let values = filter.string_list("values").map_err(|e| call.err(e))?.unwrap_or_default();
        tags.push(pb::TagValues { key, values });
    }
    let mut name_contains = None;
    for m in call.objects("matches")?.unwrap_or_default() {
        if m.strict_string("key").map_err(|e| call.err(e))?.as_deref() != Some("resource_name") {
            return Err(call.invalid("matches key must be resource_name"));
        }
        name_contains = Some(m.strict_string("value").map_err(|e| call.err(e))?.unwrap_or_default());
    }
    let count_only = action == "count";
    let request = pb::ResourceInstancesRequest { action, limit, offset, tags, name_contains };
    let r = call.csms().list_resource_instances(call.request(request)).await.map_err(call.status())?.into_inner();
    let resources = (!count_only).then(|| {
        r.resources
            .into_iter()
            .map(|res| {
                let secret = res.secret.unwrap_or_default();
                let tags = res.tags.into_iter().map(Tag::from).collect();
                Resource::new(secret.id.clone(), secret.name.clone(), secret.into(), tags).with_sys_tags()
            })
            .collect()
    });
    Ok(Json(Resources::new(resources, r.total_count)))
}
