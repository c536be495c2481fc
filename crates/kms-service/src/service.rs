//! The service's shared state and the two paths every operation takes to
//! a key: the hot path (the cache of unwrapped material) and the state
//! change (one locked transaction, then a cache invalidation).
//!
//! The operations themselves live in one module per resource (`keys`,
//! `datakeys`, `data`), each an `impl KmsService` block that takes and
//! returns domain types; `grpc` is the thin adapter in front of them.

use std::{collections::HashMap, sync::Arc};

use common::identity::CallerIdentity;

use crate::{
    cache::{CachedKey, KeyCache},
    domain::{KeyId, KeyName, KeyRecord, Rejection},
    error::KmsError,
    hierarchy::{RootKey, ciphertext},
    store::{KeyMutation, KeyStore, UpdateKeyError, WrapMaterial},
};

/// Shared state of the service.
#[derive(Debug)]
pub struct KmsService {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) root: RootKey,
    realm: String,
    pub(crate) key_quota: u64,
    cache: Arc<KeyCache>,
    aliases: moka::sync::Cache<(String, String), KeyId>,
}

/// How long an alias's target is remembered.
pub const ALIAS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl KmsService {
    /// A service over `store`, wrapping material with `root`, serving
    /// crypto from `cache`.
    pub fn new(store: Arc<dyn KeyStore>, root: RootKey, realm: String, key_quota: u64, cache: Arc<KeyCache>) -> Self {
        let aliases = moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ALIAS_TTL).build();
        Self { store, root, realm, key_quota, cache, aliases }
    }

    /// Database round trips so far (the hot-path test watches this).
    pub fn round_trips(&self) -> u64 {
        self.store.round_trips()
    }

    /// Key cache (hits, misses).
    pub fn cache_stats(&self) -> (u64, u64) {
        self.cache.stats()
    }

    /// The region reported as every key's realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The key a request names: by id, or by an alias of the caller's
    /// project (`alias/name` or its URN). An alias's target is remembered
    /// for at most a second ([`ALIAS_TTL`]), so the hot path by alias makes
    /// no round trip either, and a moved or deleted alias is seen on every
    /// replica within the same bound as a disable. An unknown alias is an
    /// unknown key.
    pub(crate) async fn resolve(&self, caller: &CallerIdentity, name: &str) -> Result<KeyId, KmsError> {
        let alias = match KeyName::parse(name)? {
            KeyName::Id(key_id) => return Ok(key_id),
            KeyName::Alias(alias) => alias,
        };
        let entry = (caller.project_id.clone(), alias);
        if let Some(key_id) = self.aliases.get(&entry) {
            return Ok(key_id);
        }
        let found = self.store.find_alias(&caller.project_id, &entry.1).await?.ok_or(KmsError::KeyNotFound)?;
        self.aliases.insert(entry, found.key_id);
        Ok(found.key_id)
    }

    /// Forgets where this replica's aliases of a project point (after an
    /// alias change here).
    pub(crate) fn forget_alias(&self, project_id: &str, alias: &str) {
        self.aliases.invalidate(&(project_id.to_owned(), alias.to_owned()));
    }

    /// A key of the caller's project, from the database (metadata reads
    /// always see the latest committed state).
    pub(crate) async fn load_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        self.store.get_key(&caller.project_id, key_id).await?.ok_or(KmsError::KeyNotFound)
    }

    /// A key with its unwrapped material: from the cache, or loaded (two
    /// round trips) and cached. Another project's key is "not found".
    pub(crate) async fn cached_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<Arc<CachedKey>, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        if let Some(entry) = self.cache.get(key_id) {
            return if entry.record.project_id == caller.project_id { Ok(entry) } else { Err(KmsError::KeyNotFound) };
        }
        let epoch = self.cache.epoch();
        let record = self.store.get_key(&caller.project_id, key_id).await?.ok_or(KmsError::KeyNotFound)?;
        let mut materials = HashMap::new();
        for (version, wrapped) in self.store.materials(key_id).await? {
            materials.insert(version, self.root.unwrap_material(&wrapped, key_id, version, &record.project_id)?);
        }
        let entry = Arc::new(CachedKey { record, materials });
        self.cache.insert(entry.clone(), epoch);
        Ok(entry)
    }

    /// A cached key that may encrypt now, with the header of its newest
    /// material.
    pub(crate) async fn encrypting_key(
        &self,
        caller: &CallerIdentity,
        key_id: &str,
    ) -> Result<(Arc<CachedKey>, ciphertext::Header), KmsError> {
        let entry = self.cached_key(caller, key_id).await?;
        entry.record.check_symmetric_use()?;
        let version = entry.record.material_version.ok_or(Rejection::KeyPendingImport)?;
        if !entry.materials.contains_key(&version) {
            return Err(KmsError::Internal(format!("material v{version} of key {} is missing", entry.record.key_id)));
        }
        let header = ciphertext::Header { key_id: entry.record.key_id, version };
        Ok((entry, header))
    }

    /// Runs a state change on the locked row and forgets the key's cache
    /// entry before answering, so the caller never sees its change ignored.
    pub(crate) async fn mutate(
        &self,
        caller: &CallerIdentity,
        key_id: KeyId,
        change: KeyMutation,
    ) -> Result<KeyRecord, KmsError> {
        self.mutate_in(&caller.project_id, key_id, change, None).await
    }

    /// [`KmsService::mutate`] in `project_id`; with `wrap`, a change that
    /// moves the key to a new material version inserts that version's
    /// material in the same transaction (a rotation).
    pub(crate) async fn mutate_in(
        &self,
        project_id: &str,
        key_id: KeyId,
        change: KeyMutation,
        wrap: Option<WrapMaterial>,
    ) -> Result<KeyRecord, KmsError> {
        let result = match wrap {
            None => self.store.update_key(project_id, key_id, change).await,
            Some(wrap) => self.store.rotate_key(project_id, key_id, change, wrap).await,
        };
        self.cache.invalidate(key_id);
        let key = result.map_err(|e| match e {
            UpdateKeyError::NotFound => KmsError::KeyNotFound,
            UpdateKeyError::Rejected(e) => e.into(),
            UpdateKeyError::AliasTaken => KmsError::DuplicateAlias,
            UpdateKeyError::Store(e) => e.into(),
        })?;
        tracing::info!(key_id = %key.key_id, state = ?key.state, "key changed");
        Ok(key)
    }
}
