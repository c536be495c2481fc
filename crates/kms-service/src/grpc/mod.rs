//! The `kms.v1.KeyManagementService` gRPC adapter: each RPC reads the
//! caller, converts the request (`convert`), calls the resource module, and
//! converts the answer back. No rule lives here. The access layer
//! (`common::grpc::access`) has already opened the call's span with the
//! gateway's request id.

use proto::kms::v1::{self as pb, key_management_service_server::KeyManagementService};
use tonic::{Request, Response, Status};

use crate::{domain, error::KmsError, keys::KeyChange, service::KmsService};
use common::identity::CallerIdentity;

pub mod convert;

/// The caller and the message.
fn parts<T>(request: Request<T>) -> Result<(CallerIdentity, T), KmsError> {
    let caller = CallerIdentity::read_from(request.metadata())?;
    Ok((caller, request.into_inner()))
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
        Ok(Response::new(convert::key_page_to_proto(page, self.realm())))
    }

    async fn create_datakey(
        &self,
        request: Request<pb::CreateDatakeyRequest>,
    ) -> Result<Response<pb::CreateDatakeyResponse>, Status> {
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
        let (caller, req) = parts(request)?;
        let (key, created) = self.ensure_default_key(&caller, &req.service).await?;
        Ok(Response::new(pb::EnsureServiceDefaultKeyResponse { key: Some(self.key_proto(&key)), created }))
    }
}
