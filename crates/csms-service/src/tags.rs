//! Secret tags: set, delete and list a secret's tags, the project's tag
//! list, and the tag-filtered resource query. A tag is `(key, value)`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use common::identity::CallerIdentity;

use crate::{
    domain::{self, MAX_TAGS, Rejection, SecretRecord},
    error::CsmsError,
    secrets::{invalid, writable},
    service::CsmsService,
};

/// A tag: key and value.
pub type Tag = (String, String);

/// A tag key and the values a query accepts (empty: any value).
pub type TagFilter = (String, Vec<String>);

/// What the resource query asks.
#[derive(Debug, Default)]
pub struct ResourceQuery {
    /// `filter` (a page of secrets) or `count`.
    pub action: String,
    /// Page size, 1-1000 (0: 10).
    pub limit: u32,
    /// Secrets to skip.
    pub offset: u32,
    /// Every filter must match one of the secret's tags.
    pub tags: Vec<TagFilter>,
    /// Case-insensitive substring of the name (empty matches nothing).
    pub name_contains: Option<String>,
}

/// What the resource query answers.
#[derive(Debug, Default)]
pub struct Resources {
    /// The page (empty for `count`).
    pub resources: Vec<(SecretRecord, Vec<Tag>)>,
    /// How many secrets match in all.
    pub total_count: u64,
}

fn validate_tag(tag: Tag) -> Result<Tag, CsmsError> {
    domain::validate_tag_key(&tag.0)?;
    domain::validate_tag_value(&tag.1)?;
    Ok(tag)
}

impl CsmsService {
    /// Sets one tag on a secret (`None`: the request named no tag).
    pub async fn create_tag(
        &self,
        caller: &CallerIdentity,
        secret_id: &str,
        tag: Option<Tag>,
    ) -> Result<(), CsmsError> {
        self.secret_by_id(caller, secret_id).await?;
        let tag = validate_tag(tag.ok_or_else(|| invalid("tag is required"))?)?;
        self.store.put_tags(&caller.project_id, secret_id, &[tag], writable()).await?;
        Ok(())
    }

    /// Removes the tag `key`, which must exist.
    pub async fn delete_tag(&self, caller: &CallerIdentity, secret_id: &str, key: &str) -> Result<(), CsmsError> {
        self.secret_by_id(caller, secret_id).await?;
        if key.is_empty() || key.chars().count() > 255 {
            return Err(Rejection::ResourceNotFound("tag").into());
        }
        self.store.delete_tags(&caller.project_id, secret_id, &[key.to_owned()], true, writable()).await?;
        Ok(())
    }

    /// A secret's tags.
    pub async fn list_tags(&self, caller: &CallerIdentity, secret_id: &str) -> Result<Vec<Tag>, CsmsError> {
        let secret = self.secret_by_id(caller, secret_id).await?;
        Ok(self.store.list_tags(&secret.id).await?)
    }

    /// Every tag key in the project with the values it has, sorted.
    pub async fn project_tags(&self, caller: &CallerIdentity) -> Result<Vec<(String, Vec<String>)>, CsmsError> {
        let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (_, tags) in self.store.secrets_with_tags(&caller.project_id).await? {
            for (key, value) in tags {
                by_key.entry(key).or_default().insert(value);
            }
        }
        Ok(by_key.into_iter().map(|(key, values)| (key, values.into_iter().collect())).collect())
    }

    /// Sets (`create`) or removes (`delete`, absent keys ignored) 1-20 tags.
    pub async fn batch_tags(
        &self,
        caller: &CallerIdentity,
        secret_id: &str,
        action: &str,
        tags: Vec<Tag>,
    ) -> Result<(), CsmsError> {
        self.secret_by_id(caller, secret_id).await?;
        if tags.is_empty() || tags.len() > MAX_TAGS {
            return Err(invalid("tags takes 1-20 items").into());
        }
        match action {
            "create" => {
                let tags = tags.into_iter().map(validate_tag).collect::<Result<Vec<_>, _>>()?;
                self.store.put_tags(&caller.project_id, secret_id, &tags, writable()).await?;
            }
            "delete" => {
                let keys = tags
                    .into_iter()
                    .map(|(key, _)| domain::validate_tag_key(&key).map(|_| key))
                    .collect::<Result<Vec<_>, _>>()?;
                self.store.delete_tags(&caller.project_id, secret_id, &keys, false, writable()).await?;
            }
            _ => return Err(invalid("action must be create or delete").into()),
        }
        Ok(())
    }

    /// The secrets whose tags and name match the query.
    pub async fn resource_instances(
        &self,
        caller: &CallerIdentity,
        req: ResourceQuery,
    ) -> Result<Resources, CsmsError> {
        let count_only = match req.action.as_str() {
            "filter" => false,
            "count" => true,
            _ => return Err(invalid("action must be filter or count").into()),
        };
        let limit = match req.limit {
            0 => 10,
            1..=1000 => req.limit,
            _ => return Err(invalid("limit must be 1-1000").into()),
        };
        if req.tags.len() > 10 {
            return Err(invalid("at most 10 tag filters").into());
        }
        for (key, values) in &req.tags {
            domain::validate_tag_key(key)?;
            let distinct: HashSet<_> = values.iter().collect();
            if values.len() > 10 || distinct.len() != values.len() {
                return Err(invalid("a tag filter takes at most 10 distinct values").into());
            }
        }
        let name = req.name_contains.as_ref().map(|n| n.to_lowercase());
        if name.as_ref().is_some_and(|n| n.chars().count() > 255) {
            return Err(invalid("matches value is limited to 255 characters").into());
        }
        let matches = |secret: &SecretRecord, tags: &[Tag]| {
            let tags_match = req
                .tags
                .iter()
                .all(|(key, values)| tags.iter().any(|(k, v)| k == key && (values.is_empty() || values.contains(v))));
            // An empty name match returns nothing, as documented.
            let name_match =
                name.as_ref().is_none_or(|n| !n.is_empty() && secret.name.to_lowercase().contains(n.as_str()));
            tags_match && name_match
        };
        let all = self.store.secrets_with_tags(&caller.project_id).await?;
        let matching: Vec<_> = all.into_iter().filter(|(secret, tags)| matches(secret, tags)).collect();
        let total_count = matching.len() as u64;
        let resources = if count_only {
            Vec::new()
        } else {
            matching.into_iter().skip(req.offset as usize).take(limit as usize).collect()
        };
        Ok(Resources { resources, total_count })
    }
}
