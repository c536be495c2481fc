//! The `kms.v1.KeyManagementService` implementation.

use std::sync::Arc;

use proto::kms::v1::{self as pb, key_management_service_server::KeyManagementService};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::{
    convert,
    crypto::{RootKey, SecretBytes, ciphertext},
    domain::{self, KeyId, KeyOrigin, KeyRecord, KeySpec, KeyState, SpecFamily},
    error::KmsError,
    store::{CreateKeyError, KeyFilter, KeyStore, NewKey},
};
use common::identity::CallerIdentity;

/// Largest page of list-keys.
pub const MAX_LIST_LIMIT: u32 = 2000;

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
}

impl KmsService {
    /// A service over `store`, wrapping material with `root`.
    pub fn new(store: Arc<dyn KeyStore>, root: RootKey, realm: String, key_quota: u64) -> Self {
        Self {
            store,
            root,
            realm,
            key_quota,
        }
    }

    fn key_proto(&self, key: &KeyRecord) -> pb::Key {
        convert::key_to_proto(key, &self.realm)
    }

    /// Builds a key record and its material (for origin `kms`).
    fn new_key(&self, caller: &CallerIdentity, p: KeyParams) -> Result<NewKey, KmsError> {
        let KeyParams {
            alias,
            spec,
            usage,
            origin,
            description,
            enterprise_project_id,
            default_key,
        } = p;
        let key_id = KeyId::new();
        let (state, material_version, wrapped_material) = match origin {
            KeyOrigin::External => (KeyState::PendingImport, None, None),
            KeyOrigin::Kms => {
                let len = spec.material_len().ok_or(KmsError::InvalidKeySpec)?;
                let material = SecretBytes::random(len);
                let wrapped = self
                    .root
                    .wrap_material(&material, key_id, 1, &caller.project_id);
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

    async fn create_key(
        &self,
        caller: &CallerIdentity,
        req: pb::CreateKeyRequest,
    ) -> Result<pb::Key, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        if req.key_alias.is_empty() {
            return Err(KmsError::MissingParameter("key_alias"));
        }
        domain::validate_user_alias(&req.key_alias)?;
        if req.key_description.chars().count() > domain::MAX_DESCRIPTION_LEN {
            return Err(KmsError::InvalidDescription);
        }
        let spec = convert::spec_from_proto(req.key_spec)?.unwrap_or(KeySpec::Aes256);
        let usage =
            convert::usage_from_proto(req.key_usage)?.unwrap_or_else(|| spec.default_usage());
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
        let enterprise_project_id = if req.enterprise_project_id.is_empty() {
            "0".to_owned()
        } else {
            req.enterprise_project_id
        };
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
        let key = self
            .store
            .create_key(key, Some(self.key_quota))
            .await
            .map_err(|e| match e {
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
        self.store
            .get_key(&caller.project_id, key_id)
            .await?
            .ok_or(KmsError::KeyNotFound)
    }

    /// A key usable for symmetric encryption, with its newest material.
    async fn encryption_key(
        &self,
        caller: &CallerIdentity,
        key_id: &str,
    ) -> Result<(KeyRecord, SecretBytes), KmsError> {
        let key = self.load_key(caller, key_id).await?;
        match key.spec.family() {
            SpecFamily::Symmetric => {}
            SpecFamily::Hmac => return Err(KmsError::HmacUnsupported),
            SpecFamily::AsymmetricEncryptOrSign | SpecFamily::AsymmetricSignOnly => {
                return Err(KmsError::AsymmetricUnsupported);
            }
        }
        key.state.check_usable()?;
        let version = key.material_version.ok_or(KmsError::KeyPendingImport)?;
        let material = self.material(&key, version).await?;
        Ok((key, material))
    }

    async fn material(&self, key: &KeyRecord, version: i32) -> Result<SecretBytes, KmsError> {
        let wrapped = self
            .store
            .material(key.key_id, version)
            .await?
            .ok_or_else(|| {
                KmsError::Internal(format!(
                    "material v{version} of key {} is missing",
                    key.key_id
                ))
            })?;
        self.root
            .unwrap_material(&wrapped, key.key_id, version, &key.project_id)
    }

    async fn create_datakey(
        &self,
        caller: &CallerIdentity,
        req: pb::CreateDatakeyRequest,
    ) -> Result<pb::CreateDatakeyResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        let bits = if req.datakey_length_bits == 0 {
            256
        } else {
            req.datakey_length_bits
        };
        if !(8..=8192).contains(&bits) {
            return Err(KmsError::DatakeyLengthOutOfRange);
        }
        if bits % 8 != 0 {
            return Err(KmsError::DatakeyLengthNotByteAligned);
        }
        let (key, material) = self.encryption_key(caller, &req.key_id).await?;
        let data_key = SecretBytes::random(bits as usize / 8);
        let header = ciphertext::Header {
            key_id: key.key_id,
            version: key.material_version.unwrap_or(1),
        };
        let sealed = ciphertext::seal(
            &material,
            header,
            &key.project_id,
            &req.additional_authenticated_data,
            data_key.expose(),
        );
        Ok(pb::CreateDatakeyResponse {
            key_id: key.key_id.to_string(),
            // The response owns a copy; `data_key` is wiped when dropped here.
            plaintext: if req.without_plaintext {
                Vec::new()
            } else {
                data_key.expose().to_vec()
            },
            ciphertext: sealed,
        })
    }

    async fn decrypt_datakey(
        &self,
        caller: &CallerIdentity,
        req: pb::DecryptDatakeyRequest,
    ) -> Result<pb::DecryptDatakeyResponse, KmsError> {
        domain::validate_sequence(&req.sequence)?;
        let key = self.load_key(caller, &req.key_id).await?;
        let header = ciphertext::parse_header(&req.ciphertext)?;
        if header.key_id != key.key_id {
            return Err(KmsError::InvalidCiphertext);
        }
        key.state.check_usable()?;
        match key.spec.family() {
            SpecFamily::Symmetric => {}
            SpecFamily::Hmac => return Err(KmsError::HmacUnsupported),
            _ => return Err(KmsError::AsymmetricUnsupported),
        }
        if key
            .material_version
            .is_none_or(|newest| header.version < 1 || header.version > newest)
        {
            return Err(KmsError::InvalidCiphertext);
        }
        let material = self.material(&key, header.version).await?;
        let plain = ciphertext::open(
            &material,
            &req.ciphertext,
            &key.project_id,
            &req.additional_authenticated_data,
        )?;
        if req.expected_length != 0 && plain.expose().len() != req.expected_length as usize {
            return Err(KmsError::CiphertextLengthMismatch);
        }
        Ok(pb::DecryptDatakeyResponse {
            digest: Sha256::digest(plain.expose()).to_vec(),
            plaintext: plain.expose().to_vec(),
        })
    }

    async fn ensure_default_key(
        &self,
        caller: &CallerIdentity,
        service: &str,
    ) -> Result<pb::EnsureServiceDefaultKeyResponse, KmsError> {
        if service.is_empty()
            || service.len() > 32
            || !service.bytes().all(|b| b.is_ascii_lowercase())
        {
            return Err(KmsError::InvalidParameter("service"));
        }
        let alias = format!("{service}/default");
        if let Some(key) = self.store.find_by_alias(&caller.project_id, &alias).await? {
            return Ok(pb::EnsureServiceDefaultKeyResponse {
                key: Some(self.key_proto(&key)),
                created: false,
            });
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
                Ok(pb::EnsureServiceDefaultKeyResponse {
                    key: Some(self.key_proto(&key)),
                    created: true,
                })
            }
            Err(CreateKeyError::AliasTaken) => {
                let key = self
                    .store
                    .find_by_alias(&caller.project_id, &alias)
                    .await?
                    .ok_or_else(|| {
                        KmsError::Internal(format!("{alias} vanished after a conflict"))
                    })?;
                Ok(pb::EnsureServiceDefaultKeyResponse {
                    key: Some(self.key_proto(&key)),
                    created: false,
                })
            }
            Err(CreateKeyError::QuotaExceeded) => {
                Err(KmsError::Internal("quota applied to a default key".into()))
            }
            Err(CreateKeyError::Store(e)) => Err(e.into()),
        }
    }
}

fn caller<T>(request: &Request<T>) -> Result<CallerIdentity, KmsError> {
    Ok(CallerIdentity::read_from(request.metadata())?)
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
        Ok(Response::new(pb::DescribeKeyResponse {
            key: Some(self.key_proto(&key)),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
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
        let (keys, total) = self
            .store
            .list_keys(&caller.project_id, &filter, req.offset, limit)
            .await
            .map_err(KmsError::from)?;
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
        Ok(Response::new(
            KmsService::create_datakey(self, &caller, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn decrypt_datakey(
        &self,
        request: Request<pb::DecryptDatakeyRequest>,
    ) -> Result<Response<pb::DecryptDatakeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        Ok(Response::new(
            KmsService::decrypt_datakey(self, &caller, request.into_inner()).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(request_id))]
    async fn ensure_service_default_key(
        &self,
        request: Request<pb::EnsureServiceDefaultKeyRequest>,
    ) -> Result<Response<pb::EnsureServiceDefaultKeyResponse>, Status> {
        let caller = caller(&request)?;
        tracing::Span::current().record("request_id", caller.request_id.as_str());
        Ok(Response::new(
            self.ensure_default_key(&caller, &request.get_ref().service)
                .await?,
        ))
    }
}
