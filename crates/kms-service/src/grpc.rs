//! The `kms.v1.KeyManagementService` gRPC adapter: each RPC reads the
//! caller, converts the request (`convert`), calls the resource module, and
//! converts the answer back. No rule lives here. The access layer
//! (`common::grpc::access`) has already opened the call's span with the
//! gateway's request id.

use proto::kms::v1::{self as pb, key_management_service_server::KeyManagementService};
use tonic::{Request, Response, Status};

use crate::{domain, error::KmsError, keys::KeyChange, service::KmsService};
use common::identity::CallerIdentity;

/// The caller and the message.
fn parts<T>(request: Request<T>) -> Result<(CallerIdentity, T), KmsError> {
    let caller = CallerIdentity::read_from(request.metadata())?;
    Ok((caller, request.into_inner()))
}

/// The AAD prefix of every data key csms-service asks for (its sealed
/// versions, backups and key checks: `csms-service::seal`, `backup`).
const CSMS_AAD_PREFIX: &[u8] = b"opendew/csms/";

/// csms-service's certificate may speak for tenants only to make and open
/// its own data keys (issue #40): a data-key call from it must carry CSMS's
/// AAD, so a compromised csms-service cannot mint or open data keys of a
/// tenant's own (whose AAD the gateway never lets start with `opendew/`).
fn csms_keeps_to_its_own<T>(request: &Request<T>, aad: impl FnOnce(&T) -> &[u8]) -> Result<(), Status> {
    let from_csms = common::grpc::callers::CallerName::of(request.extensions())
        .is_some_and(|name| name == common::grpc::callers::CSMS_SERVICE);
    if from_csms && !aad(request.get_ref()).starts_with(CSMS_AAD_PREFIX) {
        tracing::warn!("csms-service's certificate asked for a data key outside CSMS's AAD");
        return Err(Status::permission_denied("csms-service may use only its own data keys"));
    }
    Ok(())
}

impl KmsService {
    fn key_proto(&self, key: &domain::KeyRecord) -> pb::Key {
        convert::key_to_proto(key, self.realm())
    }

    /// The six single-key changes share one shape.
    async fn key_change(
        &self,
        caller: &CallerIdentity,
        key_id: &str,
        sequence: &str,
        change: KeyChange,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        domain::validate_sequence(sequence).map_err(KmsError::from)?;
        let key = self.change_key(caller, key_id, change).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }
}

#[tonic::async_trait]
impl KeyManagementService for KmsService {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let key = KmsService::create_key(self, &caller, convert::create_key(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::CreateKeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn describe_key(
        &self,
        request: Request<pb::DescribeKeyRequest>,
    ) -> Result<Response<pb::DescribeKeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.describe_key(&caller, &req.key_id).await?;
        Ok(Response::new(pb::DescribeKeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        let (caller, req) = parts(request)?;
        let page = KmsService::list_keys(self, &caller, convert::list_keys(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(convert::key_page_to_proto(&page, self.realm())))
    }

    async fn create_datakey(
        &self,
        request: Request<pb::CreateDatakeyRequest>,
    ) -> Result<Response<pb::CreateDatakeyResponse>, Status> {
        csms_keeps_to_its_own(&request, |r| &r.additional_authenticated_data)?;
        let (caller, req) = parts(request)?;
        let key =
            KmsService::create_datakey(self, &caller, convert::create_datakey(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::CreateDatakeyResponse {
            key_id: key.key_id.to_string(),
            // The response owns a copy; the data key is wiped when dropped here.
            plaintext: key.plaintext.map(|p| p.expose().to_vec()).unwrap_or_default(),
            ciphertext: key.ciphertext,
        }))
    }

    async fn decrypt_datakey(
        &self,
        request: Request<pb::DecryptDatakeyRequest>,
    ) -> Result<Response<pb::DecryptDatakeyResponse>, Status> {
        csms_keeps_to_its_own(&request, |r| &r.additional_authenticated_data)?;
        let (caller, req) = parts(request)?;
        let opened =
            KmsService::decrypt_datakey(self, &caller, convert::decrypt_datakey(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::DecryptDatakeyResponse {
            plaintext: opened.plaintext.expose().to_vec(),
            digest: opened.digest,
        }))
    }

    async fn enable_key(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Enable).await
    }

    async fn disable_key(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Disable).await
    }

    async fn schedule_key_deletion(
        &self,
        request: Request<pb::ScheduleKeyDeletionRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let change = KeyChange::ScheduleDeletion { pending_days: req.pending_days };
        self.key_change(&caller, &req.key_id, &req.sequence, change).await
    }

    async fn cancel_key_deletion(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::CancelDeletion).await
    }

    async fn update_key_alias(
        &self,
        request: Request<pb::UpdateKeyAliasRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Alias(req.key_alias)).await
    }

    async fn update_key_description(
        &self,
        request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Description(req.key_description)).await
    }

    async fn encrypt_datakey(
        &self,
        request: Request<pb::EncryptDatakeyRequest>,
    ) -> Result<Response<pb::EncryptDatakeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let datakey_length = req.datakey_length;
        let (key_id, ciphertext) =
            KmsService::encrypt_datakey(self, &caller, convert::encrypt_datakey(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::EncryptDatakeyResponse { key_id: key_id.to_string(), ciphertext, datakey_length }))
    }

    async fn encrypt_data(
        &self,
        request: Request<pb::EncryptDataRequest>,
    ) -> Result<Response<pb::EncryptDataResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (key_id, ciphertext) =
            KmsService::encrypt_data(self, &caller, convert::encrypt_data(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::EncryptDataResponse { key_id: key_id.to_string(), ciphertext }))
    }

    async fn decrypt_data(
        &self,
        request: Request<pb::DecryptDataRequest>,
    ) -> Result<Response<pb::DecryptDataResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (key_id, plaintext) =
            KmsService::decrypt_data(self, &caller, convert::decrypt_data(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::DecryptDataResponse {
            key_id: key_id.to_string(),
            plaintext: plaintext.expose().to_vec(),
        }))
    }

    async fn generate_random(
        &self,
        request: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let (_caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let random = KmsService::generate_random(self, req.length_bits)?;
        Ok(Response::new(pb::GenerateRandomResponse { random: random.expose().to_vec() }))
    }

    async fn get_quotas(
        &self,
        request: Request<pb::GetQuotasRequest>,
    ) -> Result<Response<pb::GetQuotasResponse>, Status> {
        let (caller, _) = parts(request)?;
        let (keys_used, keys_quota) = self.quotas(&caller).await?;
        Ok(Response::new(pb::GetQuotasResponse { keys_used, keys_quota }))
    }

    async fn ensure_service_default_key(
        &self,
        request: Request<pb::EnsureServiceDefaultKeyRequest>,
    ) -> Result<Response<pb::EnsureServiceDefaultKeyResponse>, Status> {
        // csms-service's certificate: its own default key only.
        let from_csms = common::grpc::callers::CallerName::of(request.extensions())
            .is_some_and(|name| name == common::grpc::callers::CSMS_SERVICE);
        if from_csms && request.get_ref().service != "csms" {
            return Err(Status::permission_denied("csms-service may use only its own default key"));
        }
        let (caller, req) = parts(request)?;
        let (key, created) = self.ensure_default_key(&caller, &req.service).await?;
        Ok(Response::new(pb::EnsureServiceDefaultKeyResponse { key: Some(self.key_proto(&key)), created }))
    }

    async fn enable_key_rotation(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.enable_rotation(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn disable_key_rotation(
        &self,
        request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.disable_rotation(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn get_key_rotation_status(
        &self,
        request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyRotationStatus>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let status = self.rotation_status(&caller, &req.key_id).await?;
        Ok(Response::new(convert::rotation_to_proto(&status)))
    }

    async fn update_key_rotation_interval(
        &self,
        request: Request<pb::UpdateKeyRotationIntervalRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.update_rotation_interval(&caller, &req.key_id, req.rotation_interval_days).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn rotate_key(&self, request: Request<pb::KeyRequest>) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.rotate_on_demand(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn create_alias(&self, request: Request<pb::CreateAliasRequest>) -> Result<Response<pb::Alias>, Status> {
        let (caller, req) = parts(request)?;
        let alias = KmsService::create_alias(self, &caller, &req.key_id, &req.alias).await?;
        Ok(Response::new(convert::alias_to_proto(&alias, &caller, self.realm())))
    }

    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let (caller, req) = parts(request)?;
        let page = KmsService::list_aliases(self, &caller, &req.key_id, req.limit, &req.marker).await?;
        Ok(Response::new(pb::ListAliasesResponse {
            aliases: page.aliases.iter().map(|a| convert::alias_to_proto(a, &caller, self.realm())).collect(),
            next_marker: page.next_marker,
        }))
    }

    async fn delete_aliases(
        &self,
        request: Request<pb::DeleteAliasesRequest>,
    ) -> Result<Response<pb::DeleteAliasesResponse>, Status> {
        let (caller, req) = parts(request)?;
        KmsService::delete_aliases(self, &caller, &req.key_id, &req.aliases).await?;
        Ok(Response::new(pb::DeleteAliasesResponse {}))
    }

    async fn associate_alias(
        &self,
        request: Request<pb::AssociateAliasRequest>,
    ) -> Result<Response<pb::Alias>, Status> {
        let (caller, req) = parts(request)?;
        let alias = KmsService::associate_alias(self, &caller, &req.alias, &req.target_key_id).await?;
        Ok(Response::new(convert::alias_to_proto(&alias, &caller, self.realm())))
    }

    async fn create_key_tag(&self, request: Request<pb::KeyTagRequest>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        self.create_tag(&caller, &req.key_id, req.tag.map(convert::tag_from_proto)).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn delete_key_tag(&self, request: Request<pb::DeleteKeyTagRequest>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        self.delete_tag(&caller, &req.key_id, &req.tag_key).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_key_tags(&self, request: Request<pb::KeyRef>) -> Result<Response<pb::KeyTagsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let tags = self.key_tags(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyTagsResponse { tags: convert::tags_to_proto(tags) }))
    }

    async fn list_project_key_tags(
        &self,
        request: Request<pb::Empty>,
    ) -> Result<Response<pb::ProjectKeyTagsResponse>, Status> {
        let (caller, _) = parts(request)?;
        let tags = self.project_tags(&caller).await?;
        Ok(Response::new(pb::ProjectKeyTagsResponse {
            tags: tags.into_iter().map(|(key, values)| pb::KeyTagValues { key, values }).collect(),
        }))
    }

    async fn batch_key_tags(&self, request: Request<pb::BatchKeyTagsRequest>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        let tags = req.tags.into_iter().map(convert::tag_from_proto).collect();
        self.batch_tags(&caller, &req.key_id, &req.action, tags).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_keys_by_tags(
        &self,
        request: Request<pb::KeysByTagsRequest>,
    ) -> Result<Response<pb::KeysByTagsResponse>, Status> {
        let (caller, req) = parts(request)?;
        let found = self.keys_by_tags(&caller, convert::keys_by_tags(req)).await?;
        Ok(Response::new(pb::KeysByTagsResponse {
            resources: found
                .keys
                .into_iter()
                .map(|(key, tags)| pb::TaggedKey {
                    key: Some(self.key_proto(&key)),
                    tags: convert::tags_to_proto(tags),
                })
                .collect(),
            total_count: found.total_count,
        }))
    }

    async fn create_grant(
        &self,
        request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let grant_id = KmsService::create_grant(self, &caller, convert::create_grant(req)).await?;
        Ok(Response::new(pb::CreateGrantResponse { grant_id }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let page = KmsService::list_grants(self, &caller, &req.key_id, req.limit, req.offset).await?;
        Ok(Response::new(convert::grant_page_to_proto(page)))
    }

    async fn revoke_grant(&self, request: Request<pb::GrantRef>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        KmsService::revoke_grant(self, &caller, &req.key_id, &req.grant_id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn retire_grant(&self, request: Request<pb::GrantRef>) -> Result<Response<pb::Empty>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        KmsService::retire_grant(self, &caller, &req.key_id, &req.grant_id).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_retirable_grants(
        &self,
        request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let page = KmsService::list_retirable_grants(self, &caller, req.limit, req.offset).await?;
        Ok(Response::new(convert::grant_page_to_proto(page)))
    }

    async fn get_parameters_for_import(
        &self,
        request: Request<pb::GetParametersForImportRequest>,
    ) -> Result<Response<pb::ImportParameters>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let p = self.import_parameters(&caller, &req.key_id, &req.wrapping_algorithm).await?;
        Ok(Response::new(pb::ImportParameters {
            key_id: p.key_id.to_string(),
            import_token: p.token,
            expiration_time_s: p.expires_s,
            public_key: p.public_key,
        }))
    }

    async fn import_key_material(
        &self,
        request: Request<pb::ImportKeyMaterialRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self
            .import_material(
                &caller,
                &req.key_id,
                &req.import_token,
                &req.encrypted_key_material,
                req.expiration_time_s,
            )
            .await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn delete_imported_key_material(
        &self,
        request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.delete_imported_material(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn get_public_key(
        &self,
        request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::PublicKeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let (key_id, public_key) = self.public_key(&caller, &req.key_id).await?;
        Ok(Response::new(pb::PublicKeyResponse { key_id: key_id.to_string(), public_key }))
    }

    async fn sign(&self, request: Request<pb::SignRequest>) -> Result<Response<pb::SignResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (key_id, signature) = KmsService::sign(self, &caller, convert::sign(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::SignResponse { key_id: key_id.to_string(), signature }))
    }

    async fn verify(&self, request: Request<pb::VerifyRequest>) -> Result<Response<pb::VerifyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (sign, signature) = convert::verify(req).map_err(KmsError::from)?;
        let (key_id, signature_valid) = KmsService::verify(self, &caller, sign, &signature).await?;
        Ok(Response::new(pb::VerifyResponse { key_id: key_id.to_string(), signature_valid }))
    }

    async fn generate_mac(&self, request: Request<pb::MacRequest>) -> Result<Response<pb::MacResponse>, Status> {
        let (caller, req) = parts(request)?;
        let mac_algorithm = req.mac_algorithm;
        let mac_request = convert::mac(req.key_id, req.mac_algorithm, req.message).map_err(KmsError::from)?;
        let (key_id, mac) = KmsService::generate_mac(self, &caller, mac_request).await?;
        Ok(Response::new(pb::MacResponse { key_id: key_id.to_string(), mac_algorithm, mac }))
    }

    async fn verify_mac(
        &self,
        request: Request<pb::VerifyMacRequest>,
    ) -> Result<Response<pb::VerifyMacResponse>, Status> {
        let (caller, req) = parts(request)?;
        let mac_algorithm = req.mac_algorithm;
        let mac_request = convert::mac(req.key_id, req.mac_algorithm, req.message).map_err(KmsError::from)?;
        let (key_id, mac_valid) = KmsService::verify_mac(self, &caller, mac_request, &req.mac).await?;
        Ok(Response::new(pb::VerifyMacResponse { key_id: key_id.to_string(), mac_algorithm, mac_valid }))
    }

    async fn re_encrypt(
        &self,
        request: Request<pb::ReEncryptRequest>,
    ) -> Result<Response<pb::ReEncryptResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (kind, source_algorithm, destination_algorithm) =
            (req.kind, req.source_encryption_algorithm, req.destination_encryption_algorithm);
        let done = KmsService::re_encrypt(self, &caller, convert::re_encrypt(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::ReEncryptResponse {
            key_id: done.key_id.to_string(),
            source_key_id: done.source_key_id.to_string(),
            source_encryption_algorithm: source_algorithm.max(pb::EncryptionAlgorithm::SymmetricDefault as i32),
            destination_encryption_algorithm: destination_algorithm
                .max(pb::EncryptionAlgorithm::SymmetricDefault as i32),
            ciphertext: done.ciphertext,
            kind,
        }))
    }
}

pub mod convert {
    //! Conversions between kms.v1 protobuf messages and the domain model.
    //! Prost types go no further into the service than this module and its
    //! parent. Request conversions check what only the wire can get wrong
    //! (enum numbers, the echoed `sequence`); the resource modules check the
    //! rest.

    use common::{identity::CallerIdentity, tags::ResourceQuery};
    use proto::kms::v1 as pb;

    use crate::{
        data::{CiphertextKind, DecryptData, EncryptData, ReEncrypt},
        datakeys::{CreateDatakey, DecryptDatakey, EncryptDatakey},
        domain::{
            self, EncryptionAlgorithm, GrantRecord, KeyId, KeyOrigin, KeyPage, KeyRecord, KeySpec, KeyState, KeyUsage,
            MacAlgorithm, MessageType, Rejection, SigningAlgorithm,
        },
        grants::{CreateGrant, GrantPage},
        hierarchy::SecretBytes,
        keys::{CreateKey, ListKeys, StateFilter},
        mac::MacRequest,
        rotation::RotationStatus,
        signing::Sign,
        store::{AliasRecord, Tag},
    };

    /// Domain spec of a proto spec; `None` for UNSPECIFIED.
    pub fn spec_from_proto(value: i32) -> Result<Option<KeySpec>, Rejection> {
        use pb::KeySpec as P;
        let p = P::try_from(value).map_err(|_| Rejection::InvalidKeySpec)?;
        Ok(Some(match p {
            P::Unspecified => return Ok(None),
            P::Aes256 => KeySpec::Aes256,
            P::Sm4 => KeySpec::Sm4,
            P::Rsa2048 => KeySpec::Rsa2048,
            P::Rsa3072 => KeySpec::Rsa3072,
            P::Rsa4096 => KeySpec::Rsa4096,
            P::EcP256 => KeySpec::EcP256,
            P::EcP384 => KeySpec::EcP384,
            P::Secp256k1 => KeySpec::Secp256k1,
            P::Sm2 => KeySpec::Sm2,
            P::Ed25519 => KeySpec::Ed25519,
            P::Hmac256 => KeySpec::Hmac256,
            P::Hmac384 => KeySpec::Hmac384,
            P::Hmac512 => KeySpec::Hmac512,
            P::HmacSm3 => KeySpec::HmacSm3,
        }))
    }

    fn spec_to_proto(spec: KeySpec) -> pb::KeySpec {
        use pb::KeySpec as P;
        match spec {
            KeySpec::Aes256 => P::Aes256,
            KeySpec::Sm4 => P::Sm4,
            KeySpec::Rsa2048 => P::Rsa2048,
            KeySpec::Rsa3072 => P::Rsa3072,
            KeySpec::Rsa4096 => P::Rsa4096,
            KeySpec::EcP256 => P::EcP256,
            KeySpec::EcP384 => P::EcP384,
            KeySpec::Secp256k1 => P::Secp256k1,
            KeySpec::Sm2 => P::Sm2,
            KeySpec::Ed25519 => P::Ed25519,
            KeySpec::Hmac256 => P::Hmac256,
            KeySpec::Hmac384 => P::Hmac384,
            KeySpec::Hmac512 => P::Hmac512,
            KeySpec::HmacSm3 => P::HmacSm3,
        }
    }

    /// Domain usage of a proto usage; `None` for UNSPECIFIED.
    pub fn usage_from_proto(value: i32) -> Result<Option<KeyUsage>, Rejection> {
        use pb::KeyUsage as P;
        match P::try_from(value).map_err(|_| Rejection::InvalidParameter("key_usage"))? {
            P::Unspecified => Ok(None),
            P::EncryptDecrypt => Ok(Some(KeyUsage::EncryptDecrypt)),
            P::SignVerify => Ok(Some(KeyUsage::SignVerify)),
            P::GenerateVerifyMac => Ok(Some(KeyUsage::GenerateVerifyMac)),
        }
    }

    fn usage_to_proto(usage: KeyUsage) -> pb::KeyUsage {
        match usage {
            KeyUsage::EncryptDecrypt => pb::KeyUsage::EncryptDecrypt,
            KeyUsage::SignVerify => pb::KeyUsage::SignVerify,
            KeyUsage::GenerateVerifyMac => pb::KeyUsage::GenerateVerifyMac,
        }
    }

    /// Domain origin of a proto origin; UNSPECIFIED means `kms`.
    pub fn origin_from_proto(value: i32) -> Result<KeyOrigin, Rejection> {
        match pb::KeyOrigin::try_from(value).map_err(|_| Rejection::InvalidParameter("origin"))? {
            pb::KeyOrigin::Unspecified | pb::KeyOrigin::Kms => Ok(KeyOrigin::Kms),
            pb::KeyOrigin::External => Ok(KeyOrigin::External),
        }
    }

    /// The list filter of a proto state; UNSPECIFIED is every state.
    pub fn state_from_proto(value: i32) -> Result<StateFilter, Rejection> {
        use pb::KeyState as P;
        match P::try_from(value).map_err(|_| Rejection::InvalidParameter("key_state"))? {
            P::Unspecified => Ok(StateFilter::Any),
            P::Enabled => Ok(StateFilter::Only(KeyState::Enabled)),
            P::Disabled => Ok(StateFilter::Only(KeyState::Disabled)),
            P::PendingDeletion => Ok(StateFilter::Only(KeyState::PendingDeletion)),
            P::PendingImport => Ok(StateFilter::Only(KeyState::PendingImport)),
            // Never produced by this service: such a filter matches nothing.
            P::PendingActivation => Ok(StateFilter::Nothing),
        }
    }

    fn state_to_proto(state: KeyState) -> pb::KeyState {
        match state {
            KeyState::Enabled => pb::KeyState::Enabled,
            KeyState::Disabled => pb::KeyState::Disabled,
            KeyState::PendingDeletion => pb::KeyState::PendingDeletion,
            KeyState::PendingImport => pb::KeyState::PendingImport,
        }
    }

    /// The proto view of a key.
    pub fn key_to_proto(key: &KeyRecord, realm: &str) -> pb::Key {
        pb::Key {
            key_id: key.key_id.to_string(),
            domain_id: key.domain_id.clone(),
            project_id: key.project_id.clone(),
            key_alias: key.alias.clone(),
            realm: realm.to_owned(),
            key_spec: spec_to_proto(key.spec) as i32,
            key_usage: usage_to_proto(key.usage) as i32,
            key_description: key.description.clone(),
            creation_date_ms: key.creation_ms,
            scheduled_deletion_date_ms: key.scheduled_deletion_ms,
            key_state: state_to_proto(key.state) as i32,
            default_key: key.default_key,
            origin: match key.origin {
                KeyOrigin::Kms => pb::KeyOrigin::Kms,
                KeyOrigin::External => pb::KeyOrigin::External,
            } as i32,
            key_rotation_enabled: key.rotation_enabled,
            enterprise_project_id: key.enterprise_project_id.clone(),
            expiration_time_ms: key.expiration_ms,
            material_version: key.material_version,
        }
    }

    /// A material version's id: a UUID derived from the key id and the
    /// version, so that it is stable without being stored.
    fn material_id(key_id: KeyId, version: i32) -> String {
        use sha2::Digest;
        let digest =
            sha2::Sha256::new().chain_update(key_id.0.as_bytes()).chain_update(version.to_be_bytes()).finalize();
        let bytes: [u8; 16] = digest[..16].try_into().expect("16 of 32 bytes");
        uuid::Builder::from_random_bytes(bytes).into_uuid().hyphenated().to_string()
    }

    pub fn rotation_to_proto(status: &RotationStatus) -> pb::KeyRotationStatus {
        let key = &status.key;
        pb::KeyRotationStatus {
            key_rotation_enabled: key.rotation_enabled,
            rotation_interval_days: key.rotation_interval_days,
            last_rotation_time_ms: key.last_rotation_ms,
            number_of_rotations: key.rotations,
            key_materials: status
                .materials
                .iter()
                .map(|&(version, create_time_ms)| pb::KeyMaterial {
                    material_id: material_id(key.key_id, version),
                    version,
                    create_time_ms,
                    current: key.material_version == Some(version),
                })
                .collect(),
        }
    }

    pub fn alias_to_proto(alias: &AliasRecord, caller: &CallerIdentity, realm: &str) -> pb::Alias {
        pb::Alias {
            alias: alias.alias.clone(),
            key_id: alias.key_id.to_string(),
            domain_id: caller.domain_id.clone(),
            alias_urn: format!("kms:{realm}:{}:alias:{}", caller.domain_id, alias.alias),
            create_time_ms: alias.create_ms,
            update_time_ms: alias.update_ms,
        }
    }

    pub fn tag_from_proto(tag: pb::KeyTag) -> Tag {
        (tag.key, tag.value)
    }

    pub fn tags_to_proto(tags: Vec<Tag>) -> Vec<pb::KeyTag> {
        tags.into_iter().map(|(key, value)| pb::KeyTag { key, value }).collect()
    }

    pub fn create_grant(req: pb::CreateGrantRequest) -> CreateGrant {
        CreateGrant {
            key_id: req.key_id,
            grantee: req.grantee_principal,
            grantee_type: req.grantee_principal_type,
            operations: req.operations,
            name: req.name,
            retiring_principal: req.retiring_principal,
        }
    }

    pub fn grant_to_proto(g: GrantRecord) -> pb::Grant {
        pb::Grant {
            grant_id: g.grant_id,
            key_id: g.key_id.to_string(),
            grantee_principal: g.grantee,
            grantee_principal_type: g.grantee_type.as_str().to_owned(),
            operations: g.operations.iter().map(|op| op.as_str().to_owned()).collect(),
            issuing_principal: g.issuing_principal,
            retiring_principal: g.retiring_principal.unwrap_or_default(),
            name: g.name,
            creation_date_ms: g.creation_ms,
        }
    }

    pub fn grant_page_to_proto(page: GrantPage) -> pb::ListGrantsResponse {
        pb::ListGrantsResponse {
            grants: page.grants.into_iter().map(grant_to_proto).collect(),
            total: page.total,
            next_offset: page.next_offset,
        }
    }

    pub fn keys_by_tags(req: pb::KeysByTagsRequest) -> ResourceQuery {
        ResourceQuery {
            action: req.action,
            limit: req.limit,
            offset: req.offset,
            tags: req.tags.into_iter().map(|t| (t.key, t.values)).collect(),
            name_contains: req.name_contains,
        }
    }

    /// The proto view of a page of keys.
    pub fn key_page_to_proto(page: &KeyPage, realm: &str) -> pb::ListKeysResponse {
        pb::ListKeysResponse {
            keys: page.keys.iter().map(|k| key_to_proto(k, realm)).collect(),
            total: page.total,
            next_offset: page.next_offset,
        }
    }

    fn algorithm_from_proto(value: i32) -> Result<EncryptionAlgorithm, Rejection> {
        use pb::EncryptionAlgorithm as P;
        Ok(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("encryption_algorithm"))? {
            P::Unspecified | P::SymmetricDefault => EncryptionAlgorithm::SymmetricDefault,
            P::RsaesOaepSha256 => EncryptionAlgorithm::RsaesOaepSha256,
            P::RsaesOaepSha1 => EncryptionAlgorithm::RsaesOaepSha1,
            P::Sm2Encrypt => EncryptionAlgorithm::Sm2Encrypt,
        })
    }

    fn signing_algorithm_from_proto(value: i32) -> Result<Option<SigningAlgorithm>, Rejection> {
        use SigningAlgorithm as A;
        use pb::SigningAlgorithm as P;
        Ok(Some(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("signing_algorithm"))? {
            P::Unspecified => return Ok(None),
            P::RsassaPssSha256 => A::RsaPssSha256,
            P::RsassaPssSha384 => A::RsaPssSha384,
            P::RsassaPssSha512 => A::RsaPssSha512,
            P::RsassaPkcs1V15Sha256 => A::RsaPkcs1Sha256,
            P::RsassaPkcs1V15Sha384 => A::RsaPkcs1Sha384,
            P::RsassaPkcs1V15Sha512 => A::RsaPkcs1Sha512,
            P::EcdsaSha256 => A::EcdsaSha256,
            P::EcdsaSha384 => A::EcdsaSha384,
            P::EcdsaSha512 => A::EcdsaSha512,
            P::Sm2dsaSm3 => A::Sm2dsaSm3,
            P::Ed25519Sha512 => A::Ed25519Sha512,
            P::Ed25519PhSha512 => A::Ed25519PhSha512,
        }))
    }

    fn message_type_from_proto(value: i32) -> Result<MessageType, Rejection> {
        use pb::MessageType as P;
        Ok(match P::try_from(value).map_err(|_| Rejection::InvalidParameter("message_type"))? {
            P::Unspecified | P::Digest => MessageType::Digest,
            P::Raw => MessageType::Raw,
        })
    }

    /// sign.
    pub fn sign(req: pb::SignRequest) -> Result<Sign, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(Sign {
            key_id: req.key_id,
            message: req.message,
            algorithm: signing_algorithm_from_proto(req.signing_algorithm)?,
            message_type: message_type_from_proto(req.message_type)?,
        })
    }

    /// verify: the request as a sign request, and the signature.
    pub fn verify(req: pb::VerifyRequest) -> Result<(Sign, Vec<u8>), Rejection> {
        domain::validate_sequence(&req.sequence)?;
        let sign = Sign {
            key_id: req.key_id,
            message: req.message,
            algorithm: signing_algorithm_from_proto(req.signing_algorithm)?,
            message_type: message_type_from_proto(req.message_type)?,
        };
        Ok((sign, req.signature))
    }

    /// generate-mac and verify-mac.
    pub fn mac(key_id: String, algorithm: i32, message: Vec<u8>) -> Result<MacRequest, Rejection> {
        use pb::MacAlgorithm as P;
        let algorithm = match P::try_from(algorithm).map_err(|_| Rejection::InvalidParameter("mac_algorithm"))? {
            P::Unspecified => None,
            P::HmacSha256 => Some(MacAlgorithm::HmacSha256),
            P::HmacSha384 => Some(MacAlgorithm::HmacSha384),
            P::HmacSha512 => Some(MacAlgorithm::HmacSha512),
            P::HmacSm3 => Some(MacAlgorithm::HmacSm3),
        };
        Ok(MacRequest { key_id, algorithm, message })
    }

    /// re-encrypt.
    pub fn re_encrypt(req: pb::ReEncryptRequest) -> Result<ReEncrypt, Rejection> {
        use pb::CiphertextKind as P;
        let kind = match P::try_from(req.kind).map_err(|_| Rejection::InvalidCiphertext)? {
            P::Datakey => CiphertextKind::Datakey,
            P::Data => CiphertextKind::Data,
            P::Unspecified => return Err(Rejection::MissingParameter("cipher_text")),
        };
        Ok(ReEncrypt {
            ciphertext: req.ciphertext,
            kind,
            source_key_id: req.source_key_id,
            source_aad: req.source_additional_authenticated_data,
            source_algorithm: algorithm_from_proto(req.source_encryption_algorithm)?,
            destination_key_id: req.destination_key_id,
            destination_aad: req.destination_additional_authenticated_data,
            destination_algorithm: algorithm_from_proto(req.destination_encryption_algorithm)?,
            datakey_length: req.datakey_length,
        })
    }

    /// create-key.
    pub fn create_key(req: pb::CreateKeyRequest) -> Result<CreateKey, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(CreateKey {
            spec: spec_from_proto(req.key_spec)?,
            usage: usage_from_proto(req.key_usage)?,
            origin: origin_from_proto(req.origin)?,
            alias: req.key_alias,
            description: req.key_description,
            enterprise_project_id: req.enterprise_project_id,
        })
    }

    /// list-keys.
    pub fn list_keys(req: pb::ListKeysRequest) -> Result<ListKeys, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(ListKeys {
            limit: req.limit,
            offset: req.offset,
            state: state_from_proto(req.key_state)?,
            spec: if req.all_specs { None } else { spec_from_proto(req.key_spec)? },
            all_specs: req.all_specs,
        })
    }

    /// create-datakey.
    pub fn create_datakey(req: pb::CreateDatakeyRequest) -> Result<CreateDatakey, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(CreateDatakey {
            key_id: req.key_id,
            length_bits: req.datakey_length_bits,
            aad: req.additional_authenticated_data,
            without_plaintext: req.without_plaintext,
        })
    }

    /// encrypt-datakey.
    pub fn encrypt_datakey(req: pb::EncryptDatakeyRequest) -> Result<EncryptDatakey, Rejection> {
        let plaintext_with_digest = SecretBytes::new(req.plaintext_with_digest);
        domain::validate_sequence(&req.sequence)?;
        Ok(EncryptDatakey {
            key_id: req.key_id,
            plaintext_with_digest,
            datakey_length: req.datakey_length,
            aad: req.additional_authenticated_data,
        })
    }

    /// decrypt-datakey.
    pub fn decrypt_datakey(req: pb::DecryptDatakeyRequest) -> Result<DecryptDatakey, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(DecryptDatakey {
            key_id: req.key_id,
            ciphertext: req.ciphertext,
            aad: req.additional_authenticated_data,
            expected_length: req.expected_length,
        })
    }

    /// encrypt-data.
    pub fn encrypt_data(req: pb::EncryptDataRequest) -> Result<EncryptData, Rejection> {
        let plaintext = SecretBytes::new(req.plaintext);
        domain::validate_sequence(&req.sequence)?;
        Ok(EncryptData {
            key_id: req.key_id,
            plaintext,
            algorithm: algorithm_from_proto(req.encryption_algorithm)?,
            aad: req.additional_authenticated_data,
        })
    }

    /// decrypt-data.
    pub fn decrypt_data(req: pb::DecryptDataRequest) -> Result<DecryptData, Rejection> {
        domain::validate_sequence(&req.sequence)?;
        Ok(DecryptData {
            ciphertext: req.ciphertext,
            key_id: req.key_id,
            algorithm: algorithm_from_proto(req.encryption_algorithm)?,
            aad: req.additional_authenticated_data,
        })
    }
}
