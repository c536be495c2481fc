//! Imported key material (kms-api.md §3.4): parameters (an RSA-2048
//! wrapping key and an import token), the import, its deletion, and the
//! expiry the background task enforces.
//!
//! The import token is stateless: it carries the wrapping private key, the
//! key id, the algorithm and the expiry, sealed under a key derived from
//! the root key and bound to the project (`RootKey::seal_token`). RSA is
//! `crypto::asymmetric::rsa`'s (aws-lc-rs).
//! Imported material is version 1 of the key; a keyed digest of it is kept
//! after deletion, so that only the same material is accepted again and
//! the key's earlier ciphertexts open once more.

use common::identity::CallerIdentity;
use crypto::asymmetric::{EncryptionScheme, rsa};

use crate::{
    domain::{IMPORT_TOKEN_LIFETIME_S, KeyId, KeyRecord, Rejection, WrappingAlgorithm},
    envelope::SecretBytes,
    error::KmsError,
    service::KmsService,
    store::WrapMaterial,
};

/// What get-parameters-for-import answers.
#[derive(Debug)]
pub struct ImportParameters {
    /// The key.
    pub key_id: KeyId,
    /// The sealed token.
    pub token: Vec<u8>,
    /// When token and public key expire, seconds.
    pub expires_s: i64,
    /// DER SubjectPublicKeyInfo.
    pub public_key: Vec<u8>,
}

/// Lengths of imported symmetric material: AES-256 and SM4.
const MATERIAL_LENS: [usize; 2] = [32, 16];

/// Keys whose expired material one run of the background task deletes.
pub const EXPIRIES_PER_RUN: u32 = 100;

/// The token's payload: expiry (8 bytes, big-endian seconds), algorithm
/// (1 byte), key id (16 bytes), then the wrapping key's PKCS#8 DER.
struct TokenPayload {
    expires_s: i64,
    algorithm: WrappingAlgorithm,
    key_id: KeyId,
    private_key: SecretBytes,
}

impl TokenPayload {
    fn encode(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(25 + self.private_key.expose().len());
        out.extend_from_slice(&self.expires_s.to_be_bytes());
        out.push(match self.algorithm {
            WrappingAlgorithm::RsaesOaepSha256 => 1,
            WrappingAlgorithm::RsaesOaepSha1 => 2,
        });
        out.extend_from_slice(self.key_id.0.as_bytes());
        out.extend_from_slice(self.private_key.expose());
        SecretBytes::new(out)
    }

    /// The token is for `key_id` and still valid at `now_ms`.
    fn check(&self, key_id: KeyId, now_ms: i64) -> Result<(), Rejection> {
        if self.expires_s.saturating_mul(1000) <= now_ms {
            return Err(Rejection::ImportTokenExpired);
        }
        if self.key_id != key_id {
            return Err(Rejection::ImportTokenKeyMismatch);
        }
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() < 25 {
            return Err(Rejection::ImportTokenInvalid);
        }
        let expires_s = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let algorithm = match bytes[8] {
            1 => WrappingAlgorithm::RsaesOaepSha256,
            2 => WrappingAlgorithm::RsaesOaepSha1,
            _ => return Err(Rejection::ImportTokenInvalid),
        };
        let key_id = KeyId(uuid::Uuid::from_slice(&bytes[9..25]).map_err(|_| Rejection::ImportTokenInvalid)?);
        Ok(Self { expires_s, algorithm, key_id, private_key: SecretBytes::new(bytes[25..].to_vec()) })
    }
}

impl KmsService {
    /// get-parameters-for-import: a fresh RSA-2048 wrapping key for an
    /// external key waiting for its material.
    pub async fn import_parameters(
        &self, caller: &CallerIdentity, key_id: &str, algorithm: &str,
    ) -> Result<ImportParameters, KmsError> {
        let algorithm = match algorithm {
            "" => return Err(Rejection::MissingParameter("wrapping_algorithm").into()),
            name => WrappingAlgorithm::parse(name).ok_or(Rejection::InvalidParameter("wrapping_algorithm"))?,
        };
        let key = self.load_key(caller, key_id).await?;
        key.check_importable()?;
        // Key generation takes tens of milliseconds: off the async workers.
        let (private_key, public_key) = tokio::task::spawn_blocking(rsa::wrapping_key)
            .await
            .map_err(|e| KmsError::Internal(format!("key generation task: {e}")))?
            .map_err(|e| KmsError::Internal(format!("wrapping key: {e}")))?;
        let expires_s = common::now_ms() / 1000 + IMPORT_TOKEN_LIFETIME_S;
        let payload = TokenPayload { expires_s, algorithm, key_id: key.key_id, private_key };
        let token = self.root.seal_token(payload.encode().expose(), &caller.project_id);
        tracing::info!(key_id = %key.key_id, "import parameters issued");
        Ok(ImportParameters { key_id: key.key_id, token, expires_s, public_key })
    }

    /// import-key-material: unwraps the material with the token's private
    /// key and makes it the key's version 1.
    pub async fn import_material(
        &self, caller: &CallerIdentity, key_id: &str, token: &[u8], wrapped: &[u8], expiration_s: Option<i64>,
    ) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let now_ms = common::now_ms();
        let expiration_ms = match expiration_s {
            None => None,
            Some(s) if s.saturating_mul(1000) > now_ms => Some(s.saturating_mul(1000)),
            Some(_) => return Err(Rejection::ExpirationNotFuture.into()),
        };
        let payload = TokenPayload::decode(self.root.open_token(token, &caller.project_id)?.expose())?;
        payload.check(key_id, now_ms)?;
        let material = unwrap(&payload, wrapped)?;
        let material_len = material.expose().len();
        let digest = self.root.import_digest(key_id, material.expose());
        let root = self.root.clone();
        let wrap: WrapMaterial = Box::new(move |key| {
            let version = key.material_version.ok_or(Rejection::KeyPendingImport)?;
            Ok(root.wrap_material(&material, key.key_id, version, &key.project_id))
        });
        let key = self
            .mutate_in(
                &caller.project_id,
                key_id,
                Box::new(move |k| k.import_material(digest, expiration_ms, material_len)),
                Some(wrap),
            )
            .await?;
        tracing::info!(%key_id, "key material imported");
        Ok(key)
    }

    /// delete-imported-key-material.
    pub async fn delete_imported_material(&self, caller: &CallerIdentity, key_id: &str) -> Result<KeyRecord, KmsError> {
        let key_id = self.resolve(caller, key_id).await?;
        let key = self.mutate(caller, key_id, Box::new(|k| k.delete_imported_material())).await?;
        tracing::info!(%key_id, "imported key material deleted");
        Ok(key)
    }

    /// One run of the background task: deletes imported material past its
    /// expiry; returns the keys it changed.
    pub async fn expire_imports(&self, now_ms: i64) -> Result<Vec<KeyId>, KmsError> {
        let mut expired = Vec::new();
        for (project_id, key_id) in self.store.expired_imports(now_ms, EXPIRIES_PER_RUN).await? {
            match self.mutate_in(&project_id, key_id, Box::new(move |k| k.expire_material(now_ms)), None).await {
                Ok(_) => {
                    tracing::info!(%key_id, "imported key material expired and was deleted");
                    expired.push(key_id);
                }
                Err(KmsError::Rejected(_) | KmsError::KeyNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }
}

/// RSA-OAEP decryption of the wrapped material; every failure is the same
/// refusal, and the material must be 32 (AES-256) or 16 (SM4) bytes (the
/// key's transition checks which).
fn unwrap(payload: &TokenPayload, wrapped: &[u8]) -> Result<SecretBytes, Rejection> {
    let scheme = match payload.algorithm {
        WrappingAlgorithm::RsaesOaepSha256 => EncryptionScheme::RsaOaepSha256,
        WrappingAlgorithm::RsaesOaepSha1 => EncryptionScheme::RsaOaepSha1,
    };
    let material = rsa::oaep_decrypt_with(payload.private_key.expose(), scheme, wrapped).map_err(|e| match e {
        crypto::asymmetric::AsymmetricError::MalformedKey => Rejection::ImportTokenInvalid,
        _ => Rejection::UnwrapFailed,
    })?;
    if !MATERIAL_LENS.contains(&material.expose().len()) {
        return Err(Rejection::ImportMaterialLength);
    }
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::RootKey;

    /// A token opens only for its project, names its key and expires.
    #[test]
    fn tokens_are_sealed_bound_and_expire() {
        let root = RootKey::from_hex(&"42".repeat(32), "test").unwrap();
        let key_id = KeyId::new();
        let payload = TokenPayload {
            expires_s: 1_000,
            algorithm: WrappingAlgorithm::RsaesOaepSha1,
            key_id,
            private_key: SecretBytes::new(vec![9; 40]),
        };
        let token = root.seal_token(payload.encode().expose(), "project-a");
        assert_eq!(root.open_token(&token, "project-b").unwrap_err(), Rejection::ImportTokenInvalid);
        let mut tampered = token.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(root.open_token(&tampered, "project-a").unwrap_err(), Rejection::ImportTokenInvalid);
        let opened = TokenPayload::decode(root.open_token(&token, "project-a").unwrap().expose()).unwrap();
        assert_eq!(
            (opened.key_id, opened.algorithm, opened.private_key.expose()),
            (key_id, payload.algorithm, &[9; 40][..])
        );
        opened.check(key_id, 999_999).unwrap();
        assert_eq!(opened.check(key_id, 1_000_000), Err(Rejection::ImportTokenExpired));
        assert_eq!(opened.check(KeyId::new(), 0), Err(Rejection::ImportTokenKeyMismatch));
        assert_eq!(TokenPayload::decode(&[1; 10]).err(), Some(Rejection::ImportTokenInvalid));
    }
}
