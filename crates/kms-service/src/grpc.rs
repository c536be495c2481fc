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
        &self, caller: &CallerIdentity, key_id: &str, sequence: &str, change: KeyChange,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        domain::validate_sequence(sequence).map_err(KmsError::from)?;
        let key = self.change_key(caller, key_id, change).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }
}

#[tonic::async_trait]
impl KeyManagementService for KmsService {
    async fn create_key(
        &self, request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let key = KmsService::create_key(self, &caller, convert::create_key(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::CreateKeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn describe_key(
        &self, request: Request<pb::DescribeKeyRequest>,
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
        &self, request: Request<pb::CreateDatakeyRequest>,
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
        &self, request: Request<pb::DecryptDatakeyRequest>,
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
        &self, request: Request<pb::ScheduleKeyDeletionRequest>,
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
        &self, request: Request<pb::UpdateKeyAliasRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Alias(req.key_alias)).await
    }

    async fn update_key_description(
        &self, request: Request<pb::UpdateKeyDescriptionRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        self.key_change(&caller, &req.key_id, &req.sequence, KeyChange::Description(req.key_description)).await
    }

    async fn encrypt_datakey(
        &self, request: Request<pb::EncryptDatakeyRequest>,
    ) -> Result<Response<pb::EncryptDatakeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        let datakey_length = req.datakey_length;
        let (key_id, ciphertext) =
            KmsService::encrypt_datakey(self, &caller, convert::encrypt_datakey(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::EncryptDatakeyResponse { key_id: key_id.to_string(), ciphertext, datakey_length }))
    }

    async fn encrypt_data(
        &self, request: Request<pb::EncryptDataRequest>,
    ) -> Result<Response<pb::EncryptDataResponse>, Status> {
        let (caller, req) = parts(request)?;
        let (key_id, ciphertext) =
            KmsService::encrypt_data(self, &caller, convert::encrypt_data(req).map_err(KmsError::from)?).await?;
        Ok(Response::new(pb::EncryptDataResponse { key_id: key_id.to_string(), ciphertext }))
    }

    async fn decrypt_data(
        &self, request: Request<pb::DecryptDataRequest>,
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
        &self, request: Request<pb::GenerateRandomRequest>,
    ) -> Result<Response<pb::GenerateRandomResponse>, Status> {
        let (_caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let random = KmsService::generate_random(self, req.length_bits)?;
        Ok(Response::new(pb::GenerateRandomResponse { random: random.expose().to_vec() }))
    }

    async fn get_quotas(
        &self, request: Request<pb::GetQuotasRequest>,
    ) -> Result<Response<pb::GetQuotasResponse>, Status> {
        let (caller, _) = parts(request)?;
        let (keys_used, keys_quota) = self.quotas(&caller).await?;
        Ok(Response::new(pb::GetQuotasResponse { keys_used, keys_quota }))
    }

    async fn ensure_service_default_key(
        &self, request: Request<pb::EnsureServiceDefaultKeyRequest>,
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
        &self, request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.disable_rotation(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn get_key_rotation_status(
        &self, request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyRotationStatus>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let status = self.rotation_status(&caller, &req.key_id).await?;
        Ok(Response::new(convert::rotation_to_proto(&status)))
    }

    async fn update_key_rotation_interval(
        &self, request: Request<pb::UpdateKeyRotationIntervalRequest>,
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
        &self, request: Request<pb::ListAliasesRequest>,
    ) -> Result<Response<pb::ListAliasesResponse>, Status> {
        let (caller, req) = parts(request)?;
        let page = KmsService::list_aliases(self, &caller, &req.key_id, req.limit, &req.marker).await?;
        Ok(Response::new(pb::ListAliasesResponse {
            aliases: page.aliases.iter().map(|a| convert::alias_to_proto(a, &caller, self.realm())).collect(),
            next_marker: page.next_marker,
        }))
    }

    async fn delete_aliases(
        &self, request: Request<pb::DeleteAliasesRequest>,
    ) -> Result<Response<pb::DeleteAliasesResponse>, Status> {
        let (caller, req) = parts(request)?;
        KmsService::delete_aliases(self, &caller, &req.key_id, &req.aliases).await?;
        Ok(Response::new(pb::DeleteAliasesResponse {}))
    }

    async fn associate_alias(
        &self, request: Request<pb::AssociateAliasRequest>,
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
        &self, request: Request<pb::Empty>,
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
        &self, request: Request<pb::KeysByTagsRequest>,
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
        &self, request: Request<pb::CreateGrantRequest>,
    ) -> Result<Response<pb::CreateGrantResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let grant_id = KmsService::create_grant(self, &caller, convert::create_grant(req)).await?;
        Ok(Response::new(pb::CreateGrantResponse { grant_id }))
    }

    async fn list_grants(
        &self, request: Request<pb::ListGrantsRequest>,
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
        &self, request: Request<pb::ListRetirableGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let page = KmsService::list_retirable_grants(self, &caller, req.limit, req.offset).await?;
        Ok(Response::new(convert::grant_page_to_proto(page)))
    }

    async fn get_parameters_for_import(
        &self, request: Request<pb::GetParametersForImportRequest>,
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
        &self, request: Request<pb::ImportKeyMaterialRequest>,
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
        &self, request: Request<pb::KeyRequest>,
    ) -> Result<Response<pb::KeyResponse>, Status> {
        let (caller, req) = parts(request)?;
        domain::validate_sequence(&req.sequence).map_err(KmsError::from)?;
        let key = self.delete_imported_material(&caller, &req.key_id).await?;
        Ok(Response::new(pb::KeyResponse { key: Some(self.key_proto(&key)) }))
    }

    async fn get_public_key(
        &self, request: Request<pb::KeyRequest>,
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
        &self, request: Request<pb::VerifyMacRequest>,
    ) -> Result<Response<pb::VerifyMacResponse>, Status> {
        let (caller, req) = parts(request)?;
        let mac_algorithm = req.mac_algorithm;
        let mac_request = convert::mac(req.key_id, req.mac_algorithm, req.message).map_err(KmsError::from)?;
        let (key_id, mac_valid) = KmsService::verify_mac(self, &caller, mac_request, &req.mac).await?;
        Ok(Response::new(pb::VerifyMacResponse { key_id: key_id.to_string(), mac_algorithm, mac_valid }))
    }

    async fn re_encrypt(
        &self, request: Request<pb::ReEncryptRequest>,
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

pub mod convert;
