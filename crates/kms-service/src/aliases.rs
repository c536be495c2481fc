//! The alias API (kms-api.md §3.8): names of the form `alias/…` that point
//! at one key of the project and can be moved; wherever a key id is read,
//! an alias (or its URN) may stand in its place (`KmsService::resolve`).

use common::identity::CallerIdentity;

use crate::{
    domain::{self, KeyId, Rejection},
    error::KmsError,
    service::KmsService,
    store::AliasRecord,
};

/// One page of aliases.
#[derive(Debug)]
pub struct AliasPage {
    /// By name.
    pub aliases: Vec<AliasRecord>,
    /// The marker of the next page, when there is one.
    pub next_marker: Option<String>,
}

/// A key id field of the alias API: an id, never an alias.
fn key_id_of(text: &str) -> Result<KeyId, KmsError> {
    Ok(domain::parse_key_id(text)?)
}

impl KmsService {
    /// create alias.
    pub async fn create_alias(
        &self, caller: &CallerIdentity, key_id: &str, alias: &str,
    ) -> Result<AliasRecord, KmsError> {
        let key_id = key_id_of(key_id)?;
        if alias.is_empty() {
            return Err(Rejection::MissingParameter("alias").into());
        }
        domain::validate_alias_name(alias)?;
        let record = self
            .store
            .create_alias(&caller.project_id, alias, key_id, common::now_ms(), domain::MAX_ALIASES_PER_KEY)
            .await
            .map_err(KmsError::from)?;
        self.forget_alias(&caller.project_id, alias);
        tracing::info!(%key_id, alias, "alias created");
        Ok(record)
    }

    /// associate alias: the alias names `target` from now on.
    pub async fn associate_alias(
        &self, caller: &CallerIdentity, alias: &str, target: &str,
    ) -> Result<AliasRecord, KmsError> {
        if alias.is_empty() {
            return Err(Rejection::MissingParameter("alias").into());
        }
        let target = key_id_of(target)?;
        domain::validate_alias_name(alias)?;
        let record = self
            .store
            .associate_alias(&caller.project_id, alias, target, common::now_ms(), domain::MAX_ALIASES_PER_KEY)
            .await
            .map_err(KmsError::from);
        self.forget_alias(&caller.project_id, alias);
        let record = record?;
        tracing::info!(key_id = %target, alias, "alias moved");
        Ok(record)
    }

    /// delete alias: every alias must name `key_id`, or none is deleted.
    pub async fn delete_aliases(
        &self, caller: &CallerIdentity, key_id: &str, aliases: &[String],
    ) -> Result<(), KmsError> {
        let key_id = key_id_of(key_id)?;
        if aliases.is_empty() {
            return Err(Rejection::MissingParameter("aliases").into());
        }
        if aliases.len() > domain::MAX_ALIASES_PER_KEY {
            return Err(Rejection::InvalidParameter("aliases").into());
        }
        for alias in aliases {
            domain::validate_alias_name(alias)?;
        }
        let result = self.store.delete_aliases(&caller.project_id, key_id, aliases).await.map_err(KmsError::from);
        for alias in aliases {
            self.forget_alias(&caller.project_id, alias);
        }
        result
    }

    /// list aliases, of one key when `key_id` is not empty.
    pub async fn list_aliases(
        &self, caller: &CallerIdentity, key_id: &str, limit: Option<u32>, marker: &str,
    ) -> Result<AliasPage, KmsError> {
        let key_id = if key_id.is_empty() { None } else { Some(key_id_of(key_id)?) };
        let limit = match limit {
            None => domain::MAX_ALIAS_PAGE,
            Some(n @ 1..) if n <= domain::MAX_ALIAS_PAGE => n,
            Some(_) => return Err(Rejection::InvalidLimit.into()),
        };
        if !marker.is_empty() && domain::validate_alias_name(marker).is_err() {
            return Err(Rejection::InvalidMarker.into());
        }
        // One more than the page tells whether another page follows.
        let mut aliases = self.store.list_aliases(&caller.project_id, key_id, marker, limit + 1).await?;
        let next_marker = if aliases.len() > limit as usize {
            aliases.truncate(limit as usize);
            aliases.last().map(|a| a.alias.clone())
        } else {
            None
        };
        Ok(AliasPage { aliases, next_marker })
    }
}
