//! The `kms.v1.KeyManagementService` implementation.

use std::sync::Arc;

use proto::kms::v1::{self as pb, key_management_service_server::KeyManagementService};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    cache::{CachedKey, KeyCache},
    convert,
    crypto::{RootKey, SecretBytes, ciphertext, data},
    domain::{self, KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, KeyUsage, SpecFamily},
    error::KmsError,
    store::{CreateKeyError, KeyFilter, KeyMutation, KeyStore, NewKey, UpdateKeyError},
};
use common::identity::CallerIdentity;

/// Largest page of list-keys.
pub const MAX_LIST_LIMIT: u32 = 2000;
/// Largest additional authenticated data, in bytes.
pub const MAX_AAD_LEN: usize = 128;
/// Largest encrypt-data plaintext, in bytes.
pub const MAX_DATA_LEN: usize = 4096;
/// Data-key lengths accepted by encrypt-datakey and decrypt-datakey, in bytes.
pub const DATAKEY_LEN_RANGE: std::ops::RangeInclusive<u32> = 1..=1024;
const DAY_MS: i64 = 86_400_000;

/// What a new key is made of, before it has an id and material.
#[derive(Debug)]
struct KeyParams {
    alias: String,
    spec: KeySpec,
    usage: domain::KeyUsage,
    origin: KeyOrigin,
    description: String,
    enterprise_project_id: String,
    default_key: bool,
}

/// Shared state of the service.
#[derive(Debug)]
pub struct KmsService {
    store: Arc<dyn KeyStore>,
    root: RootKey,
    realm: String,
    key_quota: u64,
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

    /// A key with its unwrapped material: from the cache, or loaded (two
    /// round trips) and cached. Another project's key is "not found".
    async fn cached_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<Arc<CachedKey>, KmsError> {
        if key_id.is_empty() {
            return Err(KmsError::MissingParameter("key_id"));
        }
        let key_id: KeyId = key_id.parse()?;
        if let Some(entry) = self.cache.get(key_id) {
            return if entry.record.project_id == caller.project_id { Ok(entry) } else { Err(KmsError::KeyNotFound) };
        }
        let epoch = self.cache.epoch();
        let record = self.store.get_key(&caller.project_id, key_id).await?.ok_or(KmsError::KeyNotFound)?;
        let mut materials = std::collections::HashMap::new();
        for (version, wrapped) in self.store.materials(key_id).await? {
            materials.insert(version, self.root.unwrap_material(&wrapped, key_id, version, &record.project_id)?);
        }
        let entry = Arc::new(CachedKey { record, materials });
        self.cache.insert(entry.clone(), epoch);
        Ok(entry)
    }

    /// A cached key that may encrypt now, with its newest material.
    async fn encrypting_key(
        &self,
        caller: &CallerIdentity,
        key_id: &str,
    ) -> Result<(Arc<CachedKey>, ciphertext::Header), KmsError> {
        let entry = self.cached_key(caller, key_id).await?;
        check_symmetric_use(&entry.record)?;
        let version = entry.record.material_version.ok_or(KmsError::KeyPendingImport)?;
        if !entry.materials.contains_key(&version) {
            return Err(KmsError::Internal(format!("material v{version} of key {} is missing", entry.record.key_id)));
        }
        let header = ciphertext::Header { key_id: entry.record.key_id, version };
        Ok((entry, header))
    }

    /// Runs a state change and forgets the key's cache entry.
    async fn mutate(&self, caller: &CallerIdentity, key_id: &str, change: KeyMutation) -> Result<pb::Key, KmsError> {
        if key_id.is_empty() {
            return Err(KmsError::MissingParameter("key_id"));
        }
        let key_id: KeyId = key_id.parse()?;
        let result = self.store.update_key(&caller.project_id, key_id, change).await;
        self.cache.invalidate(key_id);
        let key = result.map_err(|e| match e {
            UpdateKeyError::NotFound => KmsError::KeyNotFound,
            UpdateKeyError::Rejected(e) => e,
            UpdateKeyError::AliasTaken => KmsError::DuplicateAlias,
            UpdateKeyError::Store(e) => e.into(),
        })?;
        tracing::info!(key_id = %key.key_id, state = ?key.state, "key changed");
        Ok(self.key_proto(&key))
    }

    fn key_proto(&self, key: &KeyRecord) -> pb::Key {
        convert::key_to_proto(key, &self.realm)
    }

    /// Builds a key record and its material (for origin `kms`).
    fn new_key(&self, caller: &CallerIdentity, p: KeyParams) -> Result<NewKey, KmsError> {
        let KeyParams { alias, spec, usage, origin, description, enterprise_project_id, default_key } = p;
        let key_id = KeyId::new();
        let (state, material_version, wrapped_material) = match origin {
            KeyOrigin::External => (KeyState::PendingImport, None, None),
            KeyOrigin::Kms => {
                let len = spec.material_len().ok_or(KmsError::InvalidKeySpec)?;
                let material = SecretBytes::random(len);
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
                creation_ms: common::now_ms(),
                scheduled_deletion_ms: None,
                expiration_ms: None,
                material_version,
            },
            wrapped_material,
        })
    }

    async fn create_key(&self, caller: &CallerIdentity, req: pb::CreateKeyRequest) -> Result<pb::Key, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        if req.key_alias.is_empty() {
            return Err(KmsError::MissingParameter("key_alias"));
        }
        domain::validate_user_alias(&req.key_alias)?;
        if req.key_description.chars().count() > domain::MAX_DESCRIPTION_LEN {
            return Err(KmsError::InvalidDescription);
        }
        let spec = convert::spec_from_proto(req.key_spec)?.unwrap_or(KeySpec::Aes256);
        let usage = convert::usage_from_proto(req.key_usage)?.unwrap_or_else(|| spec.default_usage());
        spec.check_usage(usage)?;
        let origin = convert::origin_from_proto(req.origin)?;
        if origin == KeyOrigin::External && spec.family() == SpecFamily::Hmac {
            return Err(KmsError::InvalidParameter("origin"));
        }
        // Asymmetric and SM specs are valid Huawei specs this build cannot
        // generate yet; refuse them before anything is written.
        if spec.material_len().is_none() {
            return Err(KmsError::InvalidKeySpec);
        }
        let enterprise_project_id =
            if req.enterprise_project_id.is_empty() { "0".to_owned() } else { req.enterprise_project_id };
        let key = self.new_key(
            caller,
            KeyParams {
                alias: req.key_alias,
                spec,
                usage,
                origin,
                description: req.key_description,
                enterprise_project_id,
                default_key: false,
            },
        )?;
        let key = self.store.create_key(key, Some(self.key_quota)).await.map_err(|e| match e {
            CreateKeyError::AliasTaken => KmsError::DuplicateAlias,
            CreateKeyError::QuotaExceeded => KmsError::KeyQuotaExceeded(self.key_quota),
            CreateKeyError::Store(e) => e.into(),
        })?;
        tracing::info!(key_id = %key.key_id, project_id = %key.project_id, "key created");
        Ok(self.key_proto(&key))
    }

    async fn load_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        if key_id.is_empty() {
            return Err(KmsError::MissingParameter("key_id"));
        }
        let key_id: KeyId = key_id.parse()?;
        self.store.get_key(&caller.project_id, key_id).await?.ok_or(KmsError::KeyNotFound)
    }

    async fn create_datakey(
        &self,
        caller: &CallerIdentity,
        req: pb::CreateDatakeyRequest,
    ) -> Result<pb::CreateDatakeyResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        check_aad(&req.additional_authenticated_data)?;
        let bits = if req.datakey_length_bits == 0 { 256 } else { req.datakey_length_bits };
        if !(8..=8192).contains(&bits) {
            return Err(KmsError::DatakeyLengthOutOfRange);
        }
        if bits % 8 != 0 {
            return Err(KmsError::DatakeyLengthNotByteAligned);
        }
        let (key, header) = self.encrypting_key(caller, &req.key_id).await?;
        let data_key = SecretBytes::random(bits as usize / 8);
        let sealed = ciphertext::seal(
            &key.materials[&header.version],
            header,
            &key.record.project_id,
            &req.additional_authenticated_data,
            data_key.expose(),
        );
        Ok(pb::CreateDatakeyResponse {
            key_id: key.record.key_id.to_string(),
            // The response owns a copy; `data_key` is wiped when dropped here.
            plaintext: if req.without_plaintext { Vec::new() } else { data_key.expose().to_vec() },
            ciphertext: sealed,
        })
    }

    async fn encrypt_datakey(
        &self,
        caller: &CallerIdentity,
        req: pb::EncryptDatakeyRequest,
    ) -> Result<pb::EncryptDatakeyResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        check_aad(&req.additional_authenticated_data)?;
        let input = zeroize::Zeroizing::new(req.plaintext_with_digest);
        if input.is_empty() {
            return Err(KmsError::InvalidDatakeyPlaintext);
        }
        if !DATAKEY_LEN_RANGE.contains(&req.datakey_length) {
            return Err(KmsError::InvalidDatakeyPlainLength);
        }
        let len = req.datakey_length as usize;
        if input.len() != len + 32 {
            return Err(KmsError::DatakeyPlaintextLengthMismatch);
        }
        let (data_key, digest) = input.split_at(len);
        if Sha256::digest(data_key).as_slice() != digest {
            return Err(KmsError::DatakeyDigestMismatch);
        }
        let (key, header) = self.encrypting_key(caller, &req.key_id).await?;
        let sealed = ciphertext::seal(
            &key.materials[&header.version],
            header,
            &key.record.project_id,
            &req.additional_authenticated_data,
            data_key,
        );
        Ok(pb::EncryptDatakeyResponse {
            key_id: key.record.key_id.to_string(),
            ciphertext: sealed,
            datakey_length: req.datakey_length,
        })
    }

    async fn decrypt_datakey(
        &self,
        caller: &CallerIdentity,
        req: pb::DecryptDatakeyRequest,
    ) -> Result<pb::DecryptDatakeyResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        check_aad(&req.additional_authenticated_data)?;
        // 0 means "do not check" (internal callers that know the length).
        if req.expected_length != 0 && !DATAKEY_LEN_RANGE.contains(&req.expected_length) {
            return Err(KmsError::InvalidDatakeyCipherLength);
        }
        let key = self.cached_key(caller, &req.key_id).await?;
        let header = ciphertext::parse_header(&req.ciphertext)?;
        if header.key_id != key.record.key_id {
            return Err(KmsError::InvalidCiphertext);
        }
        check_symmetric_use(&key.record)?;
        let material = key.materials.get(&header.version).ok_or(KmsError::InvalidCiphertext)?;
        let plain =
            ciphertext::open(material, &req.ciphertext, &key.record.project_id, &req.additional_authenticated_data)?;
        if req.expected_length != 0 && plain.expose().len() != req.expected_length as usize {
            return Err(KmsError::CiphertextLengthMismatch);
        }
        Ok(pb::DecryptDatakeyResponse {
            digest: Sha256::digest(plain.expose()).to_vec(),
            plaintext: plain.expose().to_vec(),
        })
    }

    async fn encrypt_data(
        &self,
        caller: &CallerIdentity,
        req: pb::EncryptDataRequest,
    ) -> Result<pb::EncryptDataResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        check_aad(&req.additional_authenticated_data)?;
        let plaintext = zeroize::Zeroizing::new(req.plaintext);
        if plaintext.is_empty() || plaintext.len() > MAX_DATA_LEN {
            return Err(KmsError::InvalidParameter("plain_text"));
        }
        let algorithm = pb::EncryptionAlgorithm::try_from(req.encryption_algorithm)
            .map_err(|_| KmsError::InvalidParameter("encryption_algorithm"))?;
        let (key, header) = self.encrypting_key(caller, &req.key_id).await?;
        if !matches!(algorithm, pb::EncryptionAlgorithm::Unspecified | pb::EncryptionAlgorithm::SymmetricDefault) {
            return Err(KmsError::SymmetricAlgorithmMismatch);
        }
        let sealed = data::seal(
            &key.materials[&header.version],
            header,
            &key.record.project_id,
            &req.additional_authenticated_data,
            &plaintext,
        );
        Ok(pb::EncryptDataResponse { key_id: key.record.key_id.to_string(), ciphertext: sealed })
    }

    async fn decrypt_data(
        &self,
        caller: &CallerIdentity,
        req: pb::DecryptDataRequest,
    ) -> Result<pb::DecryptDataResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        check_aad(&req.additional_authenticated_data)?;
        let algorithm = pb::EncryptionAlgorithm::try_from(req.encryption_algorithm)
            .map_err(|_| KmsError::InvalidParameter("encryption_algorithm"))?;
        let header = data::parse_header(&req.ciphertext)?;
        if !req.key_id.is_empty() && req.key_id.parse::<KeyId>()? != header.key_id {
            return Err(KmsError::InvalidCiphertext);
        }
        let key = self.cached_key(caller, &header.key_id.to_string()).await?;
        check_symmetric_use(&key.record)?;
        if !matches!(algorithm, pb::EncryptionAlgorithm::Unspecified | pb::EncryptionAlgorithm::SymmetricDefault) {
            return Err(KmsError::SymmetricAlgorithmMismatch);
        }
        let material = key.materials.get(&header.version).ok_or(KmsError::InvalidCiphertext)?;
        let plain = data::open(material, &req.ciphertext, &key.record.project_id, &req.additional_authenticated_data)?;
        Ok(pb::DecryptDataResponse { key_id: key.record.key_id.to_string(), plaintext: plain.expose().to_vec() })
    }

    async fn ensure_default_key(
        &self,
        caller: &CallerIdentity,
        service: &str,
    ) -> Result<pb::EnsureServiceDefaultKeyResponse, KmsError> {
        if service.is_empty() || service.len() > 32 || !service.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(KmsError::InvalidParameter("service"));
        }
        let alias = format!("{service}/default");
        if let Some(key) = self.store.find_by_alias(&caller.project_id, &alias).await? {
            return Ok(pb::EnsureServiceDefaultKeyResponse { key: Some(self.key_proto(&key)), created: false });
        }
        let key = self.new_key(
            caller,
            KeyParams {
                alias: alias.clone(),
                spec: KeySpec::Aes256,
                usage: domain::KeyUsage::EncryptDecrypt,
                origin: KeyOrigin::Kms,
                description: format!("Default master key of {service}"),
                enterprise_project_id: "0".to_owned(),
                default_key: true,
            },
        )?;
        // Default keys are outside the quota. Concurrent first calls race
        // on the alias constraint; the losers read the winner's key.
        match self.store.create_key(key, None).await {
            Ok(key) => {
                tracing::info!(key_id = %key.key_id, project_id = %key.project_id, %alias, "default key created");
                Ok(pb::EnsureServiceDefaultKeyResponse { key: Some(self.key_proto(&key)), created: true })
            }
            Err(CreateKeyError::AliasTaken) => {
                let key = self
                    .store
                    .find_by_alias(&caller.project_id, &alias)
                    .await?
                    .ok_or_else(|| KmsError::Internal(format!("{alias} vanished after a conflict")))?;
                Ok(pb::EnsureServiceDefaultKeyResponse { key: Some(self.key_proto(&key)), created: false })
            }
            Err(CreateKeyError::QuotaExceeded) => Err(KmsError::Internal("quota applied to a default key".into())),
            Err(CreateKeyError::Store(e)) => Err(e.into()),
        }
    }
}

/// Symmetric encryption is allowed: right family and usage, usable state.
fn check_symmetric_use(key: &KeyRecord) -> Result<(), KmsError> {
    match key.spec.family() {
        SpecFamily::Symmetric => {}
        SpecFamily::Hmac => return Err(KmsError::HmacUnsupported),
        SpecFamily::AsymmetricSignOnly => return Err(KmsError::EcCannotEncrypt),
        SpecFamily::AsymmetricEncryptOrSign if key.usage == KeyUsage::SignVerify => return Err(KmsError::SignOnlyKey),
        SpecFamily::AsymmetricEncryptOrSign => return Err(KmsError::AsymmetricUnsupported),
    }
    key.state.check_usable()
}

fn check_aad(aad: &[u8]) -> Result<(), KmsError> {
    if aad.len() > MAX_AAD_LEN {
        return Err(KmsError::InvalidParameter("additional_authenticated_data"));
    }
    Ok(())
}

/// Refuses changes to service default keys.
fn not_default(key: &KeyRecord) -> Result<(), KmsError> {
    if key.default_key { Err(KmsError::DefaultKeyForbidden) } else { Ok(()) }
}

fn enable(key: &mut KeyRecord) -> Result<(), KmsError> {
    not_default(key)?;
    if key.state != KeyState::Disabled {
        return Err(KmsError::KeyNotDisabled);
    }
    key.state = KeyState::Enabled;
    Ok(())
}

fn disable(key: &mut KeyRecord) -> Result<(), KmsError> {
    not_default(key)?;
    if key.state != KeyState::Enabled {
        return Err(KmsError::KeyNotEnabled);
    }
    key.state = KeyState::Disabled;
    Ok(())
}

fn schedule_deletion(key: &mut KeyRecord, at_ms: i64) -> Result<(), KmsError> {
    not_default(key)?;
    if key.state == KeyState::PendingDeletion {
        return Err(KmsError::KeyAlreadyPendingDeletion);
    }
    key.state = KeyState::PendingDeletion;
    key.scheduled_deletion_ms = Some(at_ms);
    Ok(())
}

fn cancel_deletion(key: &mut KeyRecord) -> Result<(), KmsError> {
    if key.state != KeyState::PendingDeletion {
        return Err(KmsError::KeyNotPendingDeletion);
    }
    key.state = KeyState::Disabled;
    key.scheduled_deletion_ms = None;
    Ok(())
}

/// Alias and description changes: not on default keys, not while pending deletion.
fn check_renamable(key: &KeyRecord) -> Result<(), KmsError> {
    not_default(key)?;
    if key.state == KeyState::PendingDeletion {
        return Err(KmsError::KeyPendingDeletion);
    }
    Ok(())
}

fn caller<T>(request: &Request<T>) -> Result<CallerIdentity, KmsError> {
    Ok(CallerIdentity::read_from(request.metadata())?)
}

/// The caller (recorded on the span) and the message.
fn parts<T>(request: Request<T>) -> Result<(CallerIdentity, T), KmsError> {
    let caller = caller(&request)?;
    tracing::Span::current().record("request_id", caller.request_id.as_str());
    Ok((caller, request.into_inner()))
}

#[tonic::async_trait]
impl KeyManagementService for KmsService {
    #[tracing::instrument(skip_all, fields(request_id))]
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        let key = KmsService::create_key(self, &caller, request.into_inner()).await?;
        Ok(Response::new(pb::CreateKeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn describe_key(
        &self,
        request: Request<pb::DescribeKeyRequest>,
    ) -> Result<Response<pb::DescribeKeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        let req = request.into_inner();
        domain::validate_sequence(&req.sequence)?;
        let key = self.load_key(&caller, &req.key_id).await?;
        Ok(Response::new(pb::DescribeKeyResponse { key: Some(self.key_proto(&key)) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        let req = request.into_inner();
        domain::validate_sequence(&req.sequence)?;
        let limit = match req.limit {
            0 => MAX_LIST_LIMIT,
            n if n <= MAX_LIST_LIMIT => n,
            _ => return Err(KmsError::InvalidLimit.into()),
        };
        let filter = KeyFilter {
            state: convert::state_from_proto(req.key_state)?,
            spec: if req.all_specs {
                None
            } else {
                Some(convert::spec_from_proto(req.key_spec)?.unwrap_or(KeySpec::Aes256))
            },
        };
        let (keys, total) =
            self.store.list_keys(&caller.project_id, &filter, req.offset, limit).await.map_err(KmsError::from)?;
        let end = req.offset + keys.len() as u64;
        Ok(Response::new(pb::ListKeysResponse {
            keys: keys.iter().map(|k| self.key_proto(k)).collect(),
            total,
            next_offset: (end < total).then_some(end),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn create_datakey(
        &self,
        request: Request<pb::CreateDatakeyRequest>,
    ) -> Result<Response<pb::CreateDatakeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        Ok(Response::new(KmsService::create_datakey(self, &caller, request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn decrypt_datakey(
        &self,
        request: Request<pb::DecryptDatakeyRequest>,
    ) -> Result<Response<pb::DecryptDatakeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        Ok(Response::new(KmsService::decrypt_datakey(self, &caller, request.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn enable_key(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        let key = self.mutate(&caller, &req.key_id, Box::new(enable)).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn disable_key(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        let key = self.mutate(&caller, &req.key_id, Box::new(disable)).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        if !(7..=1096).contains(&req.pending_days) {
            return Err(KmsError::InvalidPendingDays.into());
        }
        let at = common::now_ms() + i64::from(req.pending_days) * DAY_MS;
        let key = self.mutate(&caller, &req.key_id, Box::new(move |k| schedule_deletion(k, at))).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn cancel_key_deletion(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        let key = self.mutate(&caller, &req.key_id, Box::new(cancel_deletion)).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn update_key_alias(
        &self,
        request: Request<pb::UpdateKeyAliasRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        if req.key_alias.is_empty() {
            return Err(KmsError::MissingParameter("key_alias").into());
        }
        domain::validate_user_alias(&req.key_alias)?;
        let alias = req.key_alias;
        let change: KeyMutation = Box::new(move |k| {
            check_renamable(k)?;
            k.alias = alias;
            Ok(())
        });
        let key = self.mutate(&caller, &req.key_id, change).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        if req.key_description.chars().count() > domain::MAX_DESCRIPTION_LEN {
            return Err(KmsError::InvalidDescription.into());
        }
        let description = req.key_description;
        let change: KeyMutation = Box::new(move |k| {
            check_renamable(k)?;
            k.description = description;
            Ok(())
        });
        let key = self.mutate(&caller, &req.key_id, change).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(key) }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn encrypt_datakey(
        &self,
        request: Request<pb::EncryptDatakeyRequest>,
    ) -> Result<Response<pb::EncryptDatakeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(Response::new(KmsService::encrypt_datakey(self, &caller, req).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn encrypt_data(
        &self,
        request: Request<pb::EncryptDataRequest>,
    ) -> Result<Response<pb::EncryptDataResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(Response::new(KmsService::encrypt_data(self, &caller, req).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn decrypt_data(
        &self,
        request: Request<pb::DecryptDataRequest>,
    ) -> Result<Response<pb::DecryptDataResponse>, Status> {
        let (caller, req) = parts(request)?;
        Ok(Response::new(KmsService::decrypt_data(self, &caller, req).await?))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn generate_random(
        &self,
        request: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let (_caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence)?;
        if req.length_bits % 8 != 0 {
            return Err(KmsError::RandomLengthNotMultipleOf8.into());
        }
        if !(8..=8192).contains(&req.length_bits) {
            return Err(KmsError::RandomLengthOutOfRange.into());
        }
        let bytes = SecretBytes::random(req.length_bits as usize / 8);
        Ok(Response::new(pb::GenerateRandomResponse { random: bytes.expose().to_vec() }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn get_quotas(
        &self,
        request: Request<pb::GetQuotasRequest>,
    ) -> Result<Response<pb::GetQuotasResponse>, Status> {
        let (caller, _) = parts(request)?;
        let used = self.store.count_user_keys(&caller.project_id).await.map_err(KmsError::from)?;
        Ok(Response::new(pb::GetQuotasResponse { keys_used: used, keys_quota: self.key_quota }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn ensure_service_default_key(
        &self,
        request: Request<pb::EnsureServiceDefaultKeyRequest>,
    ) -> Result<Response<pb::EnsureServiceDefaultKeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        Ok(Response::new(self.ensure_default_key(&caller, &request.get_ref().service).await?))
    }
}
