//! Data keys: create-datakey, encrypt-datakey and decrypt-datakey, served
//! from the key cache (no database round trip in the steady state).
//! Ciphertexts are format 1 of docs/ciphertext-format.md.

use common::identity::CallerIdentity;
use sha2::{Digest, Sha256};

use crate::{
    domain::{self, GrantOperation, KeyId, Rejection},
    envelope::{SecretBytes, datakey_blob},
    error::KmsError,
    service::KmsService,
};

/// create-datakey, as the domain sees it.
#[derive(Debug, Clone)]
pub struct CreateDatakey {
    /// Master key.
    pub key_id: String,
    /// Length in bits; 256 when 0.
    pub length_bits: u32,
    /// Bound into the ciphertext.
    pub aad: Vec<u8>,
    /// Return only the ciphertext.
    pub without_plaintext: bool,
}

/// A fresh data key.
#[derive(Debug)]
pub struct NewDatakey {
    /// The master key that sealed it.
    pub key_id: KeyId,
    /// The data key, unless `without_plaintext` was asked.
    pub plaintext: Option<SecretBytes>,
    /// The data key sealed under the master key.
    pub ciphertext: Vec<u8>,
}

/// encrypt-datakey: the caller's data key followed by its SHA-256.
#[derive(Debug)]
pub struct EncryptDatakey {
    /// Master key.
    pub key_id: String,
    /// Data key ‖ SHA-256(data key); wiped when dropped.
    pub plaintext_with_digest: SecretBytes,
    /// Length of the data key alone, in bytes.
    pub datakey_length: u32,
    /// Bound into the ciphertext.
    pub aad: Vec<u8>,
}

/// decrypt-datakey.
#[derive(Debug, Clone)]
pub struct DecryptDatakey {
    /// Master key the ciphertext must name.
    pub key_id: String,
    /// A format-1 ciphertext.
    pub ciphertext: Vec<u8>,
    /// Must match what was bound at encryption.
    pub aad: Vec<u8>,
    /// Expected plaintext length in bytes; 0 does not check (internal
    /// callers that know the length).
    pub expected_length: u32,
}

/// An opened data key.
#[derive(Debug)]
pub struct OpenedDatakey {
    /// The data key.
    pub plaintext: SecretBytes,
    /// Its SHA-256.
    pub digest: Vec<u8>,
}

impl KmsService {
    /// create-datakey.
    pub async fn create_datakey(&self, caller: &CallerIdentity, req: CreateDatakey) -> Result<NewDatakey, KmsError> {
        domain::validate_aad(&req.aad)?;
        let bits = if req.length_bits == 0 { 256 } else { req.length_bits };
        if !domain::RANDOM_BITS_RANGE.contains(&bits) {
            return Err(Rejection::DatakeyLengthOutOfRange.into());
        }
        if bits % 8 != 0 {
            return Err(Rejection::DatakeyLengthNotByteAligned.into());
        }
        let op = if req.without_plaintext {
            GrantOperation::CreateDatakeyWithoutPlaintext
        } else {
            GrantOperation::CreateDatakey
        };
        let (key, header) = self.encrypting_key(caller, &req.key_id, op).await?;
        let data_key = SecretBytes::random(bits as usize / 8);
        let sealed = datakey_blob::seal(
            &key.materials[&header.version],
            header,
            &key.record.project_id,
            &req.aad,
            data_key.expose(),
        );
        Ok(NewDatakey {
            key_id: key.record.key_id,
            plaintext: (!req.without_plaintext).then_some(data_key),
            ciphertext: sealed,
        })
    }

    /// encrypt-datakey: checks the digest, then seals the data key.
    pub async fn encrypt_datakey(
        &self, caller: &CallerIdentity, req: EncryptDatakey,
    ) -> Result<(KeyId, Vec<u8>), KmsError> {
        domain::validate_aad(&req.aad)?;
        let input = req.plaintext_with_digest.expose();
        if input.is_empty() {
            return Err(Rejection::InvalidDatakeyPlaintext.into());
        }
        if !domain::DATAKEY_LEN_RANGE.contains(&req.datakey_length) {
            return Err(Rejection::InvalidDatakeyPlainLength.into());
        }
        let len = req.datakey_length as usize;
        if input.len() != len + 32 {
            return Err(Rejection::DatakeyPlaintextLengthMismatch.into());
        }
        let (data_key, digest) = input.split_at(len);
        if Sha256::digest(data_key).as_slice() != digest {
            return Err(Rejection::DatakeyDigestMismatch.into());
        }
        let (key, header) = self.encrypting_key(caller, &req.key_id, GrantOperation::EncryptDatakey).await?;
        let sealed =
            datakey_blob::seal(&key.materials[&header.version], header, &key.record.project_id, &req.aad, data_key);
        Ok((key.record.key_id, sealed))
    }

    /// decrypt-datakey.
    pub async fn decrypt_datakey(
        &self, caller: &CallerIdentity, req: DecryptDatakey,
    ) -> Result<OpenedDatakey, KmsError> {
        domain::validate_aad(&req.aad)?;
        if req.expected_length != 0 && !domain::DATAKEY_LEN_RANGE.contains(&req.expected_length) {
            return Err(Rejection::InvalidDatakeyCipherLength.into());
        }
        let key = self.cached_key(caller, &req.key_id, GrantOperation::DecryptDatakey).await?;
        let header = datakey_blob::parse_header(&req.ciphertext)?;
        if header.key_id != key.record.key_id {
            return Err(Rejection::InvalidCiphertext.into());
        }
        key.record.check_symmetric_use()?;
        let material = key.materials.get(&header.version).ok_or(Rejection::InvalidCiphertext)?;
        let plaintext = datakey_blob::open(material, &req.ciphertext, &key.record.project_id, &req.aad)?;
        if req.expected_length != 0 && plaintext.expose().len() != req.expected_length as usize {
            return Err(Rejection::CiphertextLengthMismatch.into());
        }
        let digest = Sha256::digest(plaintext.expose()).to_vec();
        Ok(OpenedDatakey { plaintext, digest })
    }
}
