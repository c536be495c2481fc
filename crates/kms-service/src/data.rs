//! encrypt-data and decrypt-data (formats 4 and 6 of
//! docs/ciphertext-format.md for symmetric keys; RSAES-OAEP or SM2
//! encryption for ENCRYPT_DECRYPT RSA and SM2 keys), re-encrypt, and
//! generate-random. Everything is served from the key cache.

use common::identity::CallerIdentity;

use crate::{
    datakeys::DecryptDatakey,
    domain::{self, EncryptionAlgorithm, GrantOperation, KeyId, Rejection},
    envelope::{SecretBytes, data_blob, datakey_blob},
    error::KmsError,
    service::KmsService,
    signing::{asymmetric_rejection, private_key},
};

/// encrypt-data.
#[derive(Debug)]
pub struct EncryptData {
    /// Master key.
    pub key_id: String,
    /// 1 to 4096 bytes; wiped when dropped.
    pub plaintext: SecretBytes,
    /// Asked algorithm.
    pub algorithm: EncryptionAlgorithm,
    /// Bound into the ciphertext (symmetric keys only).
    pub aad: Vec<u8>,
}

/// decrypt-data.
#[derive(Debug, Clone)]
pub struct DecryptData {
    /// A symmetric blob (it names its key) or an asymmetric ciphertext.
    pub ciphertext: Vec<u8>,
    /// Required for asymmetric ciphertexts; otherwise, when given, must be
    /// the key the blob names.
    pub key_id: String,
    /// Asked algorithm.
    pub algorithm: EncryptionAlgorithm,
    /// Must match what was bound at encryption.
    pub aad: Vec<u8>,
}

/// What a re-encrypted ciphertext is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiphertextKind {
    /// A data-key blob: re-encrypted into a data-key blob.
    Datakey,
    /// An encrypt-data ciphertext: re-encrypted into one.
    Data,
}

/// re-encrypt, as the domain sees it.
#[derive(Debug, Clone)]
pub struct ReEncrypt {
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
    /// What it is.
    pub kind: CiphertextKind,
    /// Its key: required for asymmetric ciphertexts.
    pub source_key_id: String,
    /// Its AAD.
    pub source_aad: Vec<u8>,
    /// Its algorithm.
    pub source_algorithm: EncryptionAlgorithm,
    /// The key to encrypt under; required.
    pub destination_key_id: String,
    /// AAD for the new ciphertext.
    pub destination_aad: Vec<u8>,
    /// Algorithm for the new ciphertext.
    pub destination_algorithm: EncryptionAlgorithm,
    /// A data key's expected length in bytes, when the caller checks it.
    pub datakey_length: Option<u32>,
}

/// What re-encrypt made.
#[derive(Debug)]
pub struct ReEncrypted {
    /// The key that decrypted.
    pub source_key_id: KeyId,
    /// The key that encrypted.
    pub key_id: KeyId,
    /// The new ciphertext, of the input's kind.
    pub ciphertext: Vec<u8>,
}

impl KmsService {
    /// encrypt-data.
    pub async fn encrypt_data(&self, caller: &CallerIdentity, req: EncryptData) -> Result<(KeyId, Vec<u8>), KmsError> {
        domain::validate_aad(&req.aad)?;
        let plaintext = req.plaintext.expose();
        if plaintext.is_empty() || plaintext.len() > domain::MAX_DATA_LEN {
            return Err(Rejection::InvalidParameter("plain_text").into());
        }
        let key = self.cached_key(caller, &req.key_id, GrantOperation::EncryptData).await?;
        let sealed = match key.record.data_scheme(req.algorithm)? {
            None => {
                let header = Self::sealing_header(&key)?;
                data_blob::seal(&key.materials[&header.version], header, &key.record.project_id, &req.aad, plaintext)
            }
            Some(scheme) => {
                // Public-key ciphertexts carry no AAD (kms-api.md §2.14).
                if !req.aad.is_empty() {
                    return Err(Rejection::InvalidParameter("additional_authenticated_data").into());
                }
                private_key(&key)?.encrypt(scheme, plaintext).map_err(asymmetric_rejection)?
            }
        };
        Ok((key.record.key_id, sealed))
    }

    /// decrypt-data.
    pub async fn decrypt_data(
        &self, caller: &CallerIdentity, req: DecryptData,
    ) -> Result<(KeyId, SecretBytes), KmsError> {
        domain::validate_aad(&req.aad)?;
        let named = if req.key_id.is_empty() {
            if req.algorithm != EncryptionAlgorithm::SymmetricDefault {
                return Err(Rejection::MissingParameter("key_id").into());
            }
            None
        } else {
            Some(self.resolve(caller, &req.key_id).await?)
        };
        // An asymmetric key named by the caller decrypts its own scheme.
        if let Some(key_id) = named {
            let key = self.cached_key(caller, &key_id.to_string(), GrantOperation::DecryptData).await?;
            if let Some(scheme) = key.record.data_scheme(req.algorithm)? {
                if !req.aad.is_empty() {
                    return Err(Rejection::InvalidParameter("additional_authenticated_data").into());
                }
                let plain = private_key(&key)?.decrypt(scheme, &req.ciphertext).map_err(asymmetric_rejection)?;
                return Ok((key.record.key_id, plain));
            }
        }
        let header = data_blob::parse_header(&req.ciphertext)?;
        if named.is_some_and(|id| id != header.key_id) {
            return Err(Rejection::InvalidCiphertext.into());
        }
        let key = self.cached_key(caller, &header.key_id.to_string(), GrantOperation::DecryptData).await?;
        if key.record.data_scheme(req.algorithm)?.is_some() {
            return Err(Rejection::InvalidCiphertext.into());
        }
        let material = key.materials.get(&header.version).ok_or(Rejection::InvalidCiphertext)?;
        let plain = data_blob::open(material, &req.ciphertext, &key.record.project_id, &req.aad)?;
        Ok((key.record.key_id, plain))
    }

    /// re-encrypt: opens the ciphertext as decrypt-datakey or decrypt-data
    /// would (with their grant operations), and seals the plaintext as
    /// encrypt-datakey or encrypt-data would under the destination key.
    /// The plaintext is a zeroizing buffer that never leaves this call.
    pub async fn re_encrypt(&self, caller: &CallerIdentity, req: ReEncrypt) -> Result<ReEncrypted, KmsError> {
        domain::validate_aad(&req.source_aad)?;
        domain::validate_aad(&req.destination_aad)?;
        if req.destination_key_id.is_empty() {
            return Err(Rejection::MissingParameter("destination_key_id").into());
        }
        match req.kind {
            CiphertextKind::Datakey => {
                for algorithm in [req.source_algorithm, req.destination_algorithm] {
                    if algorithm != EncryptionAlgorithm::SymmetricDefault {
                        return Err(Rejection::SymmetricAlgorithmMismatch.into());
                    }
                }
                let source_key_id = if req.source_key_id.is_empty() {
                    datakey_blob::parse_header(&req.ciphertext)?.key_id.to_string()
                } else {
                    req.source_key_id
                };
                let opened = self
                    .decrypt_datakey(
                        caller,
                        DecryptDatakey {
                            key_id: source_key_id.clone(),
                            ciphertext: req.ciphertext,
                            aad: req.source_aad,
                            expected_length: req.datakey_length.unwrap_or(0),
                        },
                    )
                    .await?;
                let source_key_id = self.resolve(caller, &source_key_id).await?;
                let (key, header) =
                    self.encrypting_key(caller, &req.destination_key_id, GrantOperation::EncryptDatakey).await?;
                let sealed = datakey_blob::seal(
                    &key.materials[&header.version],
                    header,
                    &key.record.project_id,
                    &req.destination_aad,
                    opened.plaintext.expose(),
                );
                Ok(ReEncrypted { source_key_id, key_id: key.record.key_id, ciphertext: sealed })
            }
            CiphertextKind::Data => {
                let (source_key_id, plaintext) = self
                    .decrypt_data(
                        caller,
                        DecryptData {
                            ciphertext: req.ciphertext,
                            key_id: req.source_key_id,
                            algorithm: req.source_algorithm,
                            aad: req.source_aad,
                        },
                    )
                    .await?;
                let (key_id, ciphertext) = self
                    .encrypt_data(
                        caller,
                        EncryptData {
                            key_id: req.destination_key_id,
                            plaintext,
                            algorithm: req.destination_algorithm,
                            aad: req.destination_aad,
                        },
                    )
                    .await?;
                Ok(ReEncrypted { source_key_id, key_id, ciphertext })
            }
        }
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
