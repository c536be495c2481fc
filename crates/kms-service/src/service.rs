//! The service's shared state and the two paths every operation takes to
//! a key: the hot path (the cache of unwrapped material) and the state
//! change (one locked transaction, then a cache invalidation).
//!
//! The operations themselves live in one module per resource (`keys`,
//! `datakeys`, `data`), each an `impl KmsService` block that takes and
//! returns domain types; `grpc` is the thin adapter in front of them.

use std::{collections::HashMap, sync::Arc};

use common::identity::CallerIdentity;
use crypto::asymmetric::PrivateKey;

use crate::{
    cache::{CachedKey, KeyCache},
    domain::{GrantOperation, GrantRecord, KeyId, KeyName, KeyRecord, Principal, Rejection},
    envelope::{RootKey, datakey_blob},
    error::KmsError,
    store::{KeyMutation, KeyStore, WrapMaterial},
};

/// Shared state of the service.
#[derive(Debug)]
pub struct KmsService {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) root: RootKey,
    realm: String,
    pub(crate) key_quota: u64,
    pub(crate) cache: Arc<KeyCache>,
    aliases: moka::sync::Cache<(String, String), KeyId>,
    /// list-keys pages, trusted under the key cache's epoch (common::pages).
    pub(crate) pages: common::pages::PageCache<crate::domain::PageQuery, crate::domain::KeyPage>,
}

/// The caller's principal, as grants name it.
pub(crate) fn principal(caller: &CallerIdentity) -> Principal<'_> {
    Principal { user_id: &caller.user_id, domain_id: &caller.domain_id }
}

/// The caller may use `key`: it is the caller's project's, or (for an
/// operation) one of `grants` lets the caller do it. Otherwise the key "does
/// not exist", as for a key nobody has: no answer tells a stranger that it
/// does.
pub(crate) fn check_access(
    caller: &CallerIdentity, key: &KeyRecord, grants: &[GrantRecord], op: Option<GrantOperation>,
) -> Result<(), KmsError> {
    if key.project_id == caller.project_id {
        return Ok(());
    }
    match op {
        Some(op) if grants.iter().any(|g| g.allows(principal(caller), op)) => Ok(()),
        _ => Err(KmsError::KeyNotFound),
    }
}

/// How long an alias's target is remembered.
pub const ALIAS_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl KmsService {
    /// A service over `store`, wrapping material with `root`, serving
    /// crypto from `cache`.
    pub fn new(store: Arc<dyn KeyStore>, root: RootKey, realm: String, key_quota: u64, cache: Arc<KeyCache>) -> Self {
        let aliases = moka::sync::Cache::builder().max_capacity(100_000).time_to_live(ALIAS_TTL).build();
        let pages = common::pages::PageCache::new(
            common::pages::PAGE_ROWS,
            common::pages::PAGE_TTL,
            |page: &crate::domain::KeyPage| u32::try_from(page.keys.len()).unwrap_or(u32::MAX),
        );
        Self { store, root, realm, key_quota, cache, aliases, pages }
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

    /// A key of the caller's project, from the database: the management
    /// operations that change a key start from the committed row (the
    /// change itself runs on the locked row).
    pub(crate) async fn load_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        self.load_key_for(caller, key_id, None).await
    }

    /// As [`KmsService::load_key`]; with `op`, another project's key too
    /// when a grant lets the caller do `op` with it.
    pub(crate) async fn load_key_for(
        &self, caller: &CallerIdentity, key_id: &str, op: Option<GrantOperation>,
    ) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        if let Some(key) = self.store.get_key(&caller.project_id, key_id).await? {
            return Ok(key);
        }
        let Some(op) = op else { return Err(KmsError::KeyNotFound) };
        let key = self.store.get_key_any(key_id).await?.ok_or(KmsError::KeyNotFound)?;
        let grants = self.store.grants_of(key_id).await?;
        check_access(caller, &key, &grants, Some(op))?;
        Ok(key)
    }

    /// A key with its unwrapped material and grants, for operation `op`:
    /// from the cache, or loaded (three round trips) and cached. Another
    /// project's key is "not found" unless one of its grants lets the
    /// caller do `op`.
    pub(crate) async fn cached_key(
        &self, caller: &CallerIdentity, key_id: &str, op: GrantOperation,
    ) -> Result<Arc<CachedKey>, KmsError> {
        self.cached_key_for(caller, key_id, Some(op)).await
    }

    /// As [`KmsService::cached_key`]; without `op` (an operation no grant
    /// can allow: sign, verify, the MAC operations, get-publickey) only a
    /// key of the caller's own project is found.
    pub(crate) async fn cached_key_for(
        &self, caller: &CallerIdentity, key_id: &str, op: Option<GrantOperation>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let entry = self.cached_entry(caller, key_id, op).await?;
        entry.record.check_not_expired(common::now_ms())?;
        Ok(entry)
    }

    /// The cache entry of a key the caller may see (for `op`, if another
    /// project's), whatever its state: describe-key's path, which must show
    /// a key whose imported material expired as much as an enabled one.
    pub(crate) async fn cached_entry(
        &self, caller: &CallerIdentity, key_id: &str, op: Option<GrantOperation>,
    ) -> Result<Arc<CachedKey>, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let entry = match self.cache.get(key_id) {
            Some(entry) => entry,
            None => self.load_into_cache(key_id).await?,
        };
        check_access(caller, &entry.record, &entry.grants, op)?;
        Ok(entry)
    }

    async fn load_into_cache(&self, key_id: KeyId) -> Result<Arc<CachedKey>, KmsError> {
        let epoch = self.cache.epoch();
        let record = self.store.get_key_any(key_id).await?.ok_or(KmsError::KeyNotFound)?;
        let mut materials = HashMap::new();
        for (version, wrapped) in self.store.materials(key_id).await? {
            materials.insert(version, self.root.unwrap_material(&wrapped, key_id, version, &record.project_id)?);
        }
        let grants = self.store.grants_of(key_id).await?;
        let private = match (record.spec.asymmetric_kind(), record.material_version) {
            (Some(kind), Some(version)) => {
                let stored = materials
                    .get(&version)
                    .ok_or_else(|| KmsError::Internal(format!("material v{version} of key {key_id} is missing")))?;
                Some(
                    PrivateKey::from_stored(kind, stored.expose())
                        .map_err(|e| KmsError::Internal(format!("private key of {key_id}: {e}")))?,
                )
            }
            _ => None,
        };
        let entry = Arc::new(CachedKey { record, materials, grants, private });
        self.cache.insert(entry.clone(), epoch);
        Ok(entry)
    }

    /// A cached key that may encrypt now for `op`, with the header of its
    /// newest material.
    pub(crate) async fn encrypting_key(
        &self, caller: &CallerIdentity, key_id: &str, op: GrantOperation,
    ) -> Result<(Arc<CachedKey>, datakey_blob::Header), KmsError> {
        let entry = self.cached_key(caller, key_id, op).await?;
        entry.record.check_symmetric_use()?;
        let header = Self::sealing_header(&entry)?;
        Ok((entry, header))
    }

    /// The header a new ciphertext of a cached symmetric key gets: its
    /// newest material version, which must be loaded.
    pub(crate) fn sealing_header(entry: &CachedKey) -> Result<datakey_blob::Header, KmsError> {
        let version = entry.record.material_version.ok_or(Rejection::KeyPendingImport)?;
        if !entry.materials.contains_key(&version) {
            return Err(KmsError::Internal(format!("material v{version} of key {} is missing", entry.record.key_id)));
        }
        Ok(datakey_blob::Header { key_id: entry.record.key_id, version })
    }

    /// Forgets a key's cache entry (after a change to its grants).
    pub(crate) fn forget(&self, key_id: KeyId) {
        self.cache.invalidate(key_id);
    }

    /// Runs a state change on the locked row and forgets the key's cache
    /// entry before answering, so the caller never sees its change ignored.
    pub(crate) async fn mutate(
        &self, caller: &CallerIdentity, key_id: KeyId, change: KeyMutation,
    ) -> Result<KeyRecord, KmsError> {
        self.mutate_in(&caller.project_id, key_id, change, None).await
    }

    /// [`KmsService::mutate`] in `project_id`; with `wrap`, a change that
    /// moves the key to a new material version inserts that version's
    /// material in the same transaction (a rotation).
    pub(crate) async fn mutate_in(
        &self, project_id: &str, key_id: KeyId, change: KeyMutation, wrap: Option<WrapMaterial>,
    ) -> Result<KeyRecord, KmsError> {
        let result = match wrap {
            None => self.store.update_key(project_id, key_id, change).await,
            Some(wrap) => self.store.rotate_key(project_id, key_id, change, wrap).await,
        };
        self.cache.invalidate(key_id);
        let key = result?;
        tracing::info!(key_id = %key.key_id, state = ?key.state, "key changed");
        Ok(key)
    }
}
