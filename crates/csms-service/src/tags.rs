//! Secret tags: set, delete and list a secret's tags, the project's tag
//! list, and the tag-filtered resource query. A tag is `(key, value)`. The
//! rules and the query are `common::tags`, shared with kms-service;
//! csms-service supplies its limits ([`TAG_RULES`]) and its messages.

use common::identity::CallerIdentity;

use crate::{
    domain::{Rejection, SecretRecord, TAG_RULES, tag_rejection},
    error::CsmsError,
    secrets::{invalid, writable},
    service::CsmsService,
};

/// A tag: key and value.
pub type Tag = common::tags::Tag;

/// What the resource query asks.
pub type ResourceQuery = common::tags::ResourceQuery;

/// What the resource query answers.
pub type Resources = common::tags::QueryAnswer<SecretRecord>;

fn fault(f: common::tags::TagFault) -> CsmsError {
    tag_rejection(f).into()
}

impl CsmsService {
    /// Sets one tag on a secret (`None`: the request named no tag).
    pub async fn create_tag(
        &self, caller: &CallerIdentity, secret_id: &str, tag: Option<Tag>,
    ) -> Result<(), CsmsError> {
        self.secret_by_id(caller, secret_id).await?;
        let tag = tag.ok_or_else(|| invalid("tag is required"))?;
        TAG_RULES.check(&tag).map_err(fault)?;
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
        let secrets = self.store.secrets_with_tags(&caller.project_id).await?;
        Ok(common::tags::project_tags(secrets.into_iter().flat_map(|(_, tags)| tags)))
    }

    /// Sets (`create`) or removes (`delete`, absent keys ignored) 1-20 tags.
    pub async fn batch_tags(
        &self, caller: &CallerIdentity, secret_id: &str, action: &str, tags: Vec<Tag>,
    ) -> Result<(), CsmsError> {
        self.secret_by_id(caller, secret_id).await?;
        match TAG_RULES.batch(action, tags).map_err(fault)? {
            common::tags::Batch::Put(tags) => {
                self.store.put_tags(&caller.project_id, secret_id, &tags, writable()).await?
            }
            common::tags::Batch::Remove(keys) => {
                self.store.delete_tags(&caller.project_id, secret_id, &keys, false, writable()).await?
            }
        }
        Ok(())
    }

    /// The secrets whose tags and name match the query.
    pub async fn resource_instances(
        &self, caller: &CallerIdentity, req: ResourceQuery,
    ) -> Result<Resources, CsmsError> {
        let all = self.store.secrets_with_tags(&caller.project_id).await?;
        req.run(&TAG_RULES, all, |secret: &SecretRecord| secret.name.as_str()).map_err(fault)
    }
}
