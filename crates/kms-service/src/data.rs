//! encrypt-data and decrypt-data (format 2 of docs/ciphertext-format.md,
//! served from the key cache) and generate-random.

use common::identity::CallerIdentity;

use crate::{
    domain::{self, GrantOperation, KeyId, Rejection},
    error::KmsError,
    hierarchy::{SecretBytes, data},
    service::KmsService,
};

/// The algorithm a caller names for encrypt-data and decrypt-data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Absent, or `SYMMETRIC_DEFAULT`.
    SymmetricDefault,
    /// An asymmetric algorithm (refused for symmetric keys).
    Asymmetric,
}

/// encrypt-data.
#[derive(Debug)]
pub struct EncryptData {
    /// Master key.
    pub key_id: String,
    /// 1 to 4096 bytes; wiped when dropped.
    pub plaintext: SecretBytes,
    /// Asked algorithm.
    pub algorithm: Algorithm,
    /// Bound into the ciphertext.
    pub aad: Vec<u8>,
}

/// decrypt-data.
#[derive(Debug, Clone)]
pub struct DecryptData {
    /// A format-2 ciphertext (it names its key).
    pub ciphertext: Vec<u8>,
    /// When given, must be the key the ciphertext names.
    pub key_id: String,
    /// Asked algorithm.
    pub algorithm: Algorithm,
    /// Must match what was bound at encryption.
    pub aad: Vec<u8>,
}

impl KmsService {
    /// encrypt-data.
    pub async fn encrypt_data(&self, caller: &CallerIdentity, req: EncryptData) -> Result<(KeyId, Vec<u8>), KmsError> {
        domain::validate_aad(&req.aad)?;
        let plaintext = req.plaintext.expose();
        if plaintext.is_empty() || plaintext.len() > domain::MAX_DATA_LEN {
            return Err(Rejection::InvalidParameter("plain_text").into());
        }
        let (key, header) = self.encrypting_key(caller, &req.key_id, GrantOperation::EncryptData).await?;
        if req.algorithm != Algorithm::SymmetricDefault {
            return Err(Rejection::SymmetricAlgorithmMismatch.into());
        }
        let sealed = data::seal(&key.materials[&header.version], header, &key.record.project_id, &req.aad, plaintext);
        Ok((key.record.key_id, sealed))
    }

    /// decrypt-data.
    pub async fn decrypt_data(
        &self,
        caller: &CallerIdentity,
        req: DecryptData,
    ) -> Result<(KeyId, SecretBytes), KmsError> {
        domain::validate_aad(&req.aad)?;
        let header = data::parse_header(&req.ciphertext)?;
        if !req.key_id.is_empty() && self.resolve(caller, &req.key_id).await? != header.key_id {
            return Err(Rejection::InvalidCiphertext.into());
        }
        let key = self.cached_key(caller, &header.key_id.to_string(), GrantOperation::DecryptData).await?;
        key.record.check_symmetric_use()?;
        if req.algorithm != Algorithm::SymmetricDefault {
            return Err(Rejection::SymmetricAlgorithmMismatch.into());
        }
        let material = key.materials.get(&header.version).ok_or(Rejection::InvalidCiphertext)?;
        let plain = data::open(material, &req.ciphertext, &key.record.project_id, &req.aad)?;
        Ok((key.record.key_id, plain))
    }

    /// generate-random: `length_bits` random bits.
    pub fn generate_random(&self, length_bits: u32) -> Result<SecretBytes, KmsError> {
        if !length_bits.is_multiple_of(8) {
            return Err(Rejection::RandomLengthNotMultipleOf8.into());
        }
        if !domain::RANDOM_BITS_RANGE.contains(&length_bits) {
            return Err(Rejection::RandomLengthOutOfRange.into());
        }
        Ok(SecretBytes::random(length_bits as usize / 8))
    }
}
