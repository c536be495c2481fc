//! Master keys: create, describe, list, the lifecycle (enable, disable,
//! scheduled deletion), alias and description, service default keys and
//! quotas. Every change is one [`KeyRecord`] transition run by the store on
//! the locked row (see `KmsService::mutate`).

use std::sync::Arc;

use common::identity::CallerIdentity;
use crypto::asymmetric::PrivateKey;

use crate::{
    domain::{
        self, KeyId, KeyOrigin, KeyPage, KeyRecord, KeySpec, KeyState, KeyUsage, PageQuery, Rejection, SpecFamily,
    },
    envelope::SecretBytes,
    error::KmsError,
    service::KmsService,
    store::{CreateKeyError, KeyFilter, NewKey},
};

/// create-key, as the domain sees it.
#[derive(Debug, Clone)]
pub struct CreateKey {
    /// Alias; required.
    pub alias: String,
    /// Spec; AES-256 when absent.
    pub spec: Option<KeySpec>,
    /// Usage; the spec's default when absent.
    pub usage: Option<KeyUsage>,
    /// Where the material comes from.
    pub origin: KeyOrigin,
    /// Description.
    pub description: String,
    /// Enterprise project; "0" when empty.
    pub enterprise_project_id: String,
}

/// list-keys, as the domain sees it.
#[derive(Debug, Clone, Default)]
pub struct ListKeys {
    /// Page size, 1 to [`domain::MAX_LIST_LIMIT`] (the default).
    pub limit: Option<u32>,
    /// Keys to skip.
    pub offset: u64,
    /// Only keys in this state.
    pub state: StateFilter,
    /// Only this spec (AES-256 when absent), unless `all_specs`.
    pub spec: Option<KeySpec>,
    /// Every spec.
    pub all_specs: bool,
}

/// list-keys' `key_state` filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StateFilter {
    /// Every state.
    #[default]
    Any,
    /// Keys in this state.
    Only(KeyState),
    /// A state no key of this service is ever in ("1", pending
    /// activation): the filter matches nothing.
    Nothing,
}

/// A state change asked of one key.
#[derive(Debug, Clone)]
pub enum KeyChange {
    /// enable-key.
    Enable,
    /// disable-key.
    Disable,
    /// schedule-key-deletion after this many days.
    ScheduleDeletion {
        /// 7 to 1096.
        pending_days: u32,
    },
    /// cancel-key-deletion.
    CancelDeletion,
    /// update-key-alias.
    Alias(String),
    /// update-key-description.
    Description(String),
}

/// What a new key is made of, before it has an id and material.
struct KeyParams {
    alias: String,
    spec: KeySpec,
    usage: KeyUsage,
    origin: KeyOrigin,
    description: String,
    enterprise_project_id: String,
    default_key: bool,
}

impl KmsService {
    /// create-key.
    pub async fn create_key(&self, caller: &CallerIdentity, req: CreateKey) -> Result<KeyRecord, KmsError> {
        // An absent alias is the gateway's KMS.0204; an empty one is an
        // invalid alias (KMS.1101), as the error table says.
        domain::validate_user_alias(&req.alias)?;
        domain::validate_description(&req.description)?;
        let spec = req.spec.unwrap_or(KeySpec::Aes256);
        let usage = req.usage.unwrap_or_else(|| spec.default_usage());
        spec.check_usage(usage)?;
        // HMAC keys cannot take imported material (kms-api.md §2.1);
        // importing asymmetric key pairs (`encrypted_privatekey`) is not
        // served, so their keys are made here only.
        if req.origin == KeyOrigin::External && spec.material_len().is_none() {
            return Err(Rejection::InvalidParameter("origin").into());
        }
        if req.origin == KeyOrigin::External && spec.family() == SpecFamily::Hmac {
            return Err(Rejection::InvalidParameter("origin").into());
        }
        let enterprise_project_id =
            if req.enterprise_project_id.is_empty() { "0".to_owned() } else { req.enterprise_project_id };
        let key = self
            .new_key(
                caller,
                KeyParams {
                    alias: req.alias,
                    spec,
                    usage,
                    origin: req.origin,
                    description: req.description,
                    enterprise_project_id,
                    default_key: false,
                },
            )
            .await?;
        let created = self.store.create_key(key, Some(self.key_quota)).await;
        // This replica's lists show the new key at once (common::pages).
        self.cache.touch();
        let key = created.map_err(|e| match e {
            CreateKeyError::AliasTaken => KmsError::DuplicateAlias,
            CreateKeyError::QuotaExceeded => KmsError::KeyQuotaExceeded(self.key_quota),
            CreateKeyError::Store(e) => e.into(),
        })?;
        tracing::info!(key_id = %key.key_id, project_id = %key.project_id, "key created");
        Ok(key)
    }

    /// describe-key, from the key cache like a crypto call: every change
    /// reaches every replica's cache within a second (docs/design/key-cache.md), and the replica that made it forgets its entry before it
    /// answers, so a caller always describes its own change.
    pub async fn describe_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let entry = self.cached_entry(caller, key_id, Some(domain::GrantOperation::DescribeKey)).await?;
        Ok(entry.record.clone())
    }

    /// list-keys.
    pub async fn list_keys(&self, caller: &CallerIdentity, req: ListKeys) -> Result<Arc<KeyPage>, KmsError> {
        let limit = match req.limit {
            None => domain::MAX_LIST_LIMIT,
            Some(n @ 1..=domain::MAX_LIST_LIMIT) => n,
            Some(_) => return Err(Rejection::InvalidLimit.into()),
        };
        // The store pages with a signed 64-bit OFFSET.
        if i64::try_from(req.offset).is_err() {
            return Err(Rejection::InvalidMarker.into());
        }
        let state = match req.state {
            StateFilter::Any => None,
            StateFilter::Only(state) => Some(state),
            StateFilter::Nothing => return Ok(Arc::new(KeyPage { keys: Vec::new(), total: 0, next_offset: None })),
        };
        let filter = KeyFilter { state, spec: (!req.all_specs).then(|| req.spec.unwrap_or(KeySpec::Aes256)) };
        let query = PageQuery {
            project_id: caller.project_id.clone(),
            state: filter.state.map(|s| s as i32),
            spec: filter.spec.map(KeySpec::as_str),
            offset: req.offset,
            limit,
        };
        // Read before the load: a change committed during it leaves the
        // page unkept (common::pages).
        let epoch = self.cache.epoch();
        if self.cache.usable()
            && let Some(page) = self.pages.get(&query, epoch)
        {
            return Ok(page);
        }
        let (keys, total) = self.store.list_keys(&caller.project_id, &filter, req.offset, limit).await?;
        let end = req.offset.saturating_add(keys.len() as u64);
        let page = Arc::new(KeyPage { keys, total, next_offset: (end < total).then_some(end) });
        if self.cache.usable() {
            self.pages.insert(query, page.clone(), epoch, || self.cache.epoch());
        }
        Ok(page)
    }

    /// enable-key, disable-key, schedule-key-deletion, cancel-key-deletion,
    /// update-key-alias and update-key-description: validate the request,
    /// then run the transition on the locked row.
    pub async fn change_key(
        &self, caller: &CallerIdentity, key_id: &str, change: KeyChange,
    ) -> Result<KeyRecord, KmsError> {
        match &change {
            KeyChange::ScheduleDeletion { pending_days } if !domain::PENDING_DAYS_RANGE.contains(pending_days) => {
                return Err(Rejection::InvalidPendingDays.into());
            }
            KeyChange::Alias(alias) => domain::validate_user_alias(alias)?,
            KeyChange::Description(description) => domain::validate_description(description)?,
            _ => {}
        }
        let key_id = self.resolve(caller, key_id).await?;
        let now = common::now_ms();
        self.mutate(
            caller,
            key_id,
            Box::new(move |key: &mut KeyRecord| match change {
                KeyChange::Enable => key.enable(),
                KeyChange::Disable => key.disable(),
                KeyChange::ScheduleDeletion { pending_days } => key.schedule_deletion(now, pending_days),
                KeyChange::CancelDeletion => key.cancel_deletion(),
                KeyChange::Alias(alias) => key.rename(alias),
                KeyChange::Description(description) => key.describe(description),
            }),
        )
        .await
    }

    /// get-quotas: (keys used, quota).
    pub async fn quotas(&self, caller: &CallerIdentity) -> Result<(u64, u64), KmsError> {
        Ok((self.store.count_user_keys(&caller.project_id).await?, self.key_quota))
    }

    /// The project's `<service>/default` key, created on first use; true
    /// when this call created it.
    pub async fn ensure_default_key(
        &self, caller: &CallerIdentity, service: &str,
    ) -> Result<(KeyRecord, bool), KmsError> {
        if service.is_empty() || service.len() > 32 || !service.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Rejection::InvalidParameter("service").into());
        }
        let alias = format!("{service}/default");
        if let Some(key) = self.store.find_by_alias(&caller.project_id, &alias).await? {
            return Ok((key, false));
        }
        let key = self
            .new_key(
                caller,
                KeyParams {
                    alias: alias.clone(),
                    spec: KeySpec::Aes256,
                    usage: KeyUsage::EncryptDecrypt,
                    origin: KeyOrigin::Kms,
                    description: format!("Default master key of {service}"),
                    enterprise_project_id: "0".to_owned(),
                    default_key: true,
                },
            )
            .await?;
        // Default keys are outside the quota. Concurrent first calls race
        // on the alias constraint; the losers read the winner's key.
        let created = self.store.create_key(key, None).await;
        self.cache.touch();
        match created {
            Ok(key) => {
                tracing::info!(key_id = %key.key_id, project_id = %key.project_id, %alias, "default key created");
                Ok((key, true))
            }
            Err(CreateKeyError::AliasTaken) => {
                let key = self
                    .store
                    .find_by_alias(&caller.project_id, &alias)
                    .await?
                    .ok_or_else(|| KmsError::Internal(format!("{alias} vanished after a conflict")))?;
                Ok((key, false))
            }
            Err(CreateKeyError::QuotaExceeded) => Err(KmsError::Internal("quota applied to a default key".into())),
            Err(CreateKeyError::Store(e)) => Err(e.into()),
        }
    }

    /// Builds a key record and its material (for origin `kms`): random
    /// bytes for symmetric and HMAC specs, a key pair for asymmetric ones
    /// (on the blocking pool: an RSA-4096 pair takes about a second).
    /// What would refuse a key anyway, checked before a key pair is made
    /// for it (issue #40: a create-key with a taken alias or past the quota
    /// spent seconds generating RSA 4096 first). The insert still decides
    /// races; this only spares the work when the answer is already known.
    async fn before_key_pair(&self, caller: &CallerIdentity, alias: &str, default_key: bool) -> Result<(), KmsError> {
        if self.store.find_by_alias(&caller.project_id, alias).await.map_err(KmsError::from)?.is_some() {
            return Err(KmsError::DuplicateAlias);
        }
        if !default_key
            && self.store.count_user_keys(&caller.project_id).await.map_err(KmsError::from)? >= self.key_quota
        {
            return Err(KmsError::KeyQuotaExceeded(self.key_quota));
        }
        Ok(())
    }

    async fn new_key(&self, caller: &CallerIdentity, p: KeyParams) -> Result<NewKey, KmsError> {
        let KeyParams { alias, spec, usage, origin, description, enterprise_project_id, default_key } = p;
        let key_id = KeyId::new();
        let (state, material_version, wrapped_material) = match origin {
            KeyOrigin::External => (KeyState::PendingImport, None, None),
            KeyOrigin::Kms => {
                let material = match (spec.material_len(), spec.asymmetric_kind()) {
                    (Some(len), _) => SecretBytes::random(len),
                    (None, Some(kind)) => {
                        self.before_key_pair(caller, &alias, default_key).await?;
                        // A key pair takes up to seconds of a core (RSA 4096):
                        // at most one per core at a time on this replica.
                        let _turn = key_pair_turns().acquire().await.expect("the semaphore is never closed");
                        tokio::task::spawn_blocking(move || PrivateKey::generate(kind))
                            .await
                            .map_err(|e| KmsError::Internal(format!("key generation task: {e}")))?
                            .map_err(|e| KmsError::Internal(format!("{kind:?} key generation: {e}")))?
                    }
                    (None, None) => return Err(Rejection::InvalidKeySpec.into()),
                };
                let wrapped = self.root.wrap_material(&material, key_id, 1, &caller.project_id);
                (KeyState::Enabled, Some(1), Some(wrapped))
            }
        };
        Ok(NewKey {
            record: KeyRecord {
                key_id,
                project_id: caller.project_id.clone(),
                domain_id: caller.domain_id.clone(),
                alias,
                description,
                spec,
                usage,
                origin,
                state,
                default_key,
                enterprise_project_id,
                rotation_enabled: false,
                rotation_interval_days: domain::DEFAULT_ROTATION_INTERVAL_DAYS,
                rotation_anchor_ms: None,
                last_rotation_ms: None,
                rotations: 0,
                import_digest: None,
                creation_ms: common::now_ms(),
                scheduled_deletion_ms: None,
                expiration_ms: None,
                material_version,
            },
            wrapped_material,
        })
    }
}

/// Key pairs generated at once on this replica: one per core.
fn key_pair_turns() -> &'static tokio::sync::Semaphore {
    static TURNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    TURNS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, usize::from)))
}
