//! Key tags (kms-api.md §3.2): set, delete and list a key's tags, the
//! project's tag list, the batch action and the tag-filtered key query.
//! The rules and the query are `common::tags`, shared with csms-service;
//! kms-service supplies its limits (`domain::TAG_RULES`) and its codes.

use common::{identity::CallerIdentity, tags::ResourceQuery};

use crate::{
    domain::{KeyRecord, Rejection, TAG_RULES},
    error::KmsError,
    service::KmsService,
    store::Tag,
};

fn fault(f: common::tags::TagFault) -> KmsError {
    Rejection::Tag(f).into()
}

/// What the key query answers.
#[derive(Debug)]
pub struct TaggedKeys {
    /// The page (empty for `count`).
    pub keys: Vec<(KeyRecord, Vec<Tag>)>,
    /// How many keys match in all.
    pub total_count: u64,
}

impl KmsService {
    /// create tag: sets one tag (a key set again gets the new value).
    pub async fn create_tag(&self, caller: &CallerIdentity, key_id: &str, tag: Option<Tag>) -> Result<(), KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let tag = tag.ok_or(Rejection::MissingParameter("tag"))?;
        TAG_RULES.check(&tag).map_err(fault)?;
        self.store.put_tags(&caller.project_id, key_id, &[tag], TAG_RULES.max_tags).await.map_err(KmsError::from)
    }

    /// delete tag: the tag key must exist.
    pub async fn delete_tag(&self, caller: &CallerIdentity, key_id: &str, tag_key: &str) -> Result<(), KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        if TAG_RULES.check_key(tag_key).is_err() {
            return Err(fault(common::tags::TagFault::NotFound));
        }
        self.store.delete_tags(&caller.project_id, key_id, &[tag_key.to_owned()], true).await.map_err(KmsError::from)
    }

    /// show key tags.
    pub async fn key_tags(&self, caller: &CallerIdentity, key_id: &str) -> Result<Vec<Tag>, KmsError> {
        let key = self.load_key(caller, key_id).await?;
        Ok(self.store.tags(key.key_id).await?)
    }

    /// list project tags: every tag key of the project's keys with its values.
    pub async fn project_tags(&self, caller: &CallerIdentity) -> Result<Vec<(String, Vec<String>)>, KmsError> {
        let keys = self.store.keys_with_tags(&caller.project_id).await?;
        Ok(common::tags::project_tags(keys.into_iter().flat_map(|(_, tags)| tags)))
    }

    /// batch tag action: `create` sets, `delete` removes (absent keys
    /// skipped), all or nothing.
    pub async fn batch_tags(
        &self, caller: &CallerIdentity, key_id: &str, action: &str, tags: Vec<Tag>,
    ) -> Result<(), KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let result = match TAG_RULES.batch(action, tags).map_err(fault)? {
            common::tags::Batch::Put(tags) => {
                self.store.put_tags(&caller.project_id, key_id, &tags, TAG_RULES.max_tags).await
            }
            common::tags::Batch::Remove(keys) => self.store.delete_tags(&caller.project_id, key_id, &keys, false).await,
        };
        result.map_err(KmsError::from)
    }

    /// resource_instances: the keys whose tags (and alias) match, a page
    /// of them or how many.
    pub async fn keys_by_tags(&self, caller: &CallerIdentity, query: ResourceQuery) -> Result<TaggedKeys, KmsError> {
        let all = self.store.keys_with_tags(&caller.project_id).await?;
        let answer = query.run(&TAG_RULES, all, |key: &KeyRecord| key.alias.as_str()).map_err(fault)?;
        Ok(TaggedKeys { keys: answer.resources, total_count: answer.total_count })
    }
}
