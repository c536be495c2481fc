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
    domain::{self, KeyId, KeyRecord, Rejection},
    error::KmsError,
    hierarchy::{RootKey, ciphertext},
    store::{KeyMutation, KeyStore, UpdateKeyError},
};

/// Shared state of the service.
#[derive(Debug)]
pub struct KmsService {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) root: RootKey,
    realm: String,
    pub(crate) key_quota: u64,
    cache: Arc<KeyCache>,
}

impl KmsService {
    /// A service over `store`, wrapping material with `root`, serving
    /// crypto from `cache`.
    pub fn new(store: Arc<dyn KeyStore>, root: RootKey, realm: String, key_quota: u64, cache: Arc<KeyCache>) -> Self {
        Self { store, root, realm, key_quota, cache }
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

    /// A key of the caller's project, from the database (metadata reads
    /// always see the latest committed state).
    pub(crate) async fn load_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let key_id = domain::parse_key_id(key_id)?;
        self.store.get_key(&caller.project_id, key_id).await?.ok_or(KmsError::KeyNotFound)
    }

    /// A key with its unwrapped material: from the cache, or loaded (two
    /// round trips) and cached. Another project's key is "not found".
    pub(crate) async fn cached_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<Arc<CachedKey>, KmsError> {
        let key_id = domain::parse_key_id(key_id)?;
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
        let result = self.store.update_key(&caller.project_id, key_id, change).await;
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
