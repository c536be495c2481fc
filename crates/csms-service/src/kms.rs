//! csms-service's view of kms-service: data keys for sealing versions, and
//! the project's `csms/default` key. Every call is made as the caller, so
//! kms-service applies the same project boundary it applies to the gateway.

use common::identity::CallerIdentity;
use proto::kms::v1::{self as pb, ErrorReason, key_management_service_client::KeyManagementServiceClient};
use tonic::transport::Channel;
use zeroize::Zeroizing;

use crate::error::CsmsError;

/// A gRPC client of kms-service.
#[derive(Debug, Clone)]
pub struct KmsClient {
    inner: KeyManagementServiceClient<Channel>,
    /// `csms/default` key id per project. Safe to keep: a default key can
    /// be neither renamed nor deleted, so the id never changes.
    default_keys: std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, String>>>,
}

/// A fresh data key: the plaintext (wiped on drop) and its ciphertext.
pub struct DataKey {
    /// 32 bytes of AES-256 key.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// Self-describing ciphertext to store.
    pub ciphertext: Vec<u8>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl KmsClient {
    /// A client over `channel` (lazily connecting, so services may start
    /// in any order; see `common::grpc::channel`).
    pub fn new(channel: Channel) -> Self {
        Self { inner: KeyManagementServiceClient::new(channel), default_keys: Default::default() }
    }

    /// The id of the project's `csms/default` key, created on first use.
    pub async fn default_key_id(&self, caller: &CallerIdentity) -> Result<String, CsmsError> {
        if let Some(id) = self.default_keys.read().ok().and_then(|m| m.get(&caller.project_id).cloned()) {
            return Ok(id);
        }
        let response = self
            .inner
            .clone()
            .ensure_service_default_key(caller.request(pb::EnsureServiceDefaultKeyRequest { service: "csms".into() }))
            .await
            .map_err(map_status)?
            .into_inner();
        let id =
            response.key.map(|k| k.key_id).ok_or_else(|| CsmsError::Internal("kms-service returned no key".into()))?;
        if let Ok(mut map) = self.default_keys.write() {
            map.insert(caller.project_id.clone(), id.clone());
        }
        Ok(id)
    }

    /// A new 256-bit data key under `key_id`, bound to `aad`.
    pub async fn create_data_key(
        &self, caller: &CallerIdentity, key_id: &str, aad: &[u8],
    ) -> Result<DataKey, CsmsError> {
        let response = self
            .inner
            .clone()
            .create_datakey(caller.request(pb::CreateDatakeyRequest {
                key_id: key_id.to_owned(),
                datakey_length_bits: 256,
                additional_authenticated_data: aad.to_vec(),
                ..Default::default()
            }))
            .await
            .map_err(map_status)?
            .into_inner();
        Ok(DataKey { plaintext: Zeroizing::new(response.plaintext), ciphertext: response.ciphertext })
    }

    /// Unwraps a stored data key.
    pub async fn decrypt_data_key(
        &self, caller: &CallerIdentity, key_id: &str, ciphertext: &[u8], aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CsmsError> {
        let response = self
            .inner
            .clone()
            .decrypt_datakey(caller.request(pb::DecryptDatakeyRequest {
                key_id: key_id.to_owned(),
                ciphertext: ciphertext.to_vec(),
                additional_authenticated_data: aad.to_vec(),
                expected_length: 32,
                ..Default::default()
            }))
            .await
            .map_err(map_status)?
            .into_inner();
        let proto::kms::v1::DecryptDatakeyResponse { plaintext, digest } = response;
        drop(digest);
        Ok(Zeroizing::new(plaintext))
    }
}

/// kms-service refusals about the key become "the KMS key cannot be used";
/// anything else is an internal failure of this service.
fn map_status(status: tonic::Status) -> CsmsError {
    let reason = common::grpc::detail_of::<pb::ErrorDetail>(&status).map(|d| d.reason());
    match reason {
        Some(
            ErrorReason::KeyNotFound
            | ErrorReason::InvalidKeyId
            | ErrorReason::KeyDisabled
            | ErrorReason::KeyPendingDeletion
            | ErrorReason::KeyPendingImport
            | ErrorReason::AsymmetricUnsupported
            | ErrorReason::HmacUnsupported,
        ) => CsmsError::KmsKeyUnusable(status.message().to_owned()),
        _ => CsmsError::Internal(format!("kms-service call failed: {:?} {}", status.code(), status.message())),
    }
}
