//! generate-mac and verify-mac (kms-api.md §3.6) with HMAC keys, served from
//! the key cache. The key's spec fixes its hash (an HMAC_384 key computes
//! HMAC-SHA-384 only); verification compares in constant time.
//!
//! No grant operation covers these, so only the caller's own keys MAC.

use common::identity::CallerIdentity;

use crate::{
    domain::{self, KeyId, MacAlgorithm, Rejection},
    error::KmsError,
    service::KmsService,
};

/// generate-mac and verify-mac, as the domain sees them.
#[derive(Debug, Clone)]
pub struct MacRequest {
    /// The key (id or alias).
    pub key_id: String,
    /// The algorithm; required.
    pub algorithm: Option<MacAlgorithm>,
    /// 1 to 4096 bytes.
    pub message: Vec<u8>,
}

impl KmsService {
    async fn mac_key(
        &self, caller: &CallerIdentity, req: &MacRequest,
    ) -> Result<(std::sync::Arc<crate::cache::CachedKey>, crypto::asymmetric::Hash), KmsError> {
        let algorithm = req.algorithm.ok_or(Rejection::MissingParameter("mac_algorithm"))?;
        if req.message.is_empty() {
            return Err(Rejection::MissingParameter("message").into());
        }
        if req.message.len() > domain::MAX_MAC_MESSAGE_LEN {
            return Err(Rejection::InvalidParameter("message").into());
        }
        let key = self.cached_key_for(caller, &req.key_id, None).await?;
        key.record.check_mac_use()?;
        let hash = algorithm.hash_for(key.record.spec)?;
        Ok((key, hash))
    }

    /// generate-mac.
    pub async fn generate_mac(&self, caller: &CallerIdentity, req: MacRequest) -> Result<(KeyId, Vec<u8>), KmsError> {
        let (key, hash) = self.mac_key(caller, &req).await?;
        let material = current_material(&key)?;
        Ok((key.record.key_id, crypto::mac::compute(hash, material.expose(), &req.message)))
    }

    /// verify-mac: whether `mac` is the key's MAC of the message.
    pub async fn verify_mac(
        &self, caller: &CallerIdentity, req: MacRequest, mac: &[u8],
    ) -> Result<(KeyId, bool), KmsError> {
        if mac.is_empty() {
            return Err(Rejection::MissingParameter("mac").into());
        }
        let (key, hash) = self.mac_key(caller, &req).await?;
        let material = current_material(&key)?;
        Ok((key.record.key_id, crypto::mac::verify(hash, material.expose(), &req.message, mac)))
    }
}

fn current_material(key: &crate::cache::CachedKey) -> Result<&crypto::SecretBytes, KmsError> {
    let version = key.record.material_version.ok_or(Rejection::KeyPendingImport)?;
    key.materials
        .get(&version)
        .ok_or_else(|| KmsError::Internal(format!("material v{version} of key {} is missing", key.record.key_id)))
}
