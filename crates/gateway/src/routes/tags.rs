//! The JSON shapes of the tag operations, which KMS (kms-api.md §3.2) and
//! CSMS (csms-api.md §2.6) spell alike: a tag, the project's tag list and
//! the resource query's answer. Each wing reads its requests and maps its
//! errors; what goes out is written here once.

use serde::Serialize;

/// One tag.
#[derive(Debug, Serialize)]
pub struct Tag {
    key: String,
    value: String,
}

impl Tag {
    /// A tag of `key` and `value`.
    pub fn new(key: String, value: String) -> Self {
        Self { key, value }
    }
}

/// A tag key with every value it has in the project.
#[derive(Debug, Serialize)]
pub struct ProjectTag {
    key: String,
    values: Vec<String>,
}

/// What list-project-tags answers.
#[derive(Debug, Serialize)]
pub struct ProjectTags {
    tags: Vec<ProjectTag>,
}

impl ProjectTags {
    /// The list of `(key, values)` pairs.
    pub fn new(tags: impl IntoIterator<Item = (String, Vec<String>)>) -> Self {
        Self { tags: tags.into_iter().map(|(key, values)| ProjectTag { key, values }).collect() }
    }
}

/// A resource that matched the query, with its tags.
#[derive(Debug, Serialize)]
pub struct Resource<D> {
    resource_id: String,
    resource_name: String,
    resource_detail: D,
    tags: Vec<Tag>,
    /// CSMS lists system tags (none here); KMS's answer has no such field.
    #[serde(skip_serializing_if = "Option::is_none")]
    sys_tags: Option<[Tag; 0]>,
}

impl<D> Resource<D> {
    /// A matched resource (`detail` is its view in its own API).
    pub fn new(resource_id: String, resource_name: String, resource_detail: D, tags: Vec<Tag>) -> Self {
        Self { resource_id, resource_name, resource_detail, tags, sys_tags: None }
    }

    /// With CSMS's empty `sys_tags`.
    pub fn with_sys_tags(self) -> Self {
        Self { sys_tags: Some([]), ..self }
    }
}

/// What the resource query answers (`resources` left out for `count`).
#[derive(Debug, Serialize)]
pub struct Resources<D> {
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Vec<Resource<D>>>,
    total_count: u64,
}

impl<D> Resources<D> {
    /// The answer: the page (`None` for `count`) and how many match.
    pub fn new(resources: Option<Vec<Resource<D>>>, total_count: u64) -> Self {
        Self { resources, total_count }
    }
}
