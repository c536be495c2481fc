//! Asymmetric keys' public key, sign and verify (kms-api.md §3.5), served
//! from the key cache: the private key is parsed once when the key is
//! loaded and never leaves this process.
//!
//! No grant operation covers these (kms-api.md §3.3 lists none), so only
//! keys of the caller's own project sign and verify.

use common::identity::CallerIdentity;
use crypto::asymmetric::{AsymmetricError, Message, PrivateKey};

use crate::{
    cache::CachedKey,
    domain::{self, KeyId, MessageType, Rejection, SigningAlgorithm},
    error::KmsError,
    service::KmsService,
};

/// sign, as the domain sees it.
#[derive(Debug, Clone)]
pub struct Sign {
    /// The key (id or alias).
    pub key_id: String,
    /// The message or its digest.
    pub message: Vec<u8>,
    /// The algorithm; required.
    pub algorithm: Option<SigningAlgorithm>,
    /// What `message` is; DIGEST when absent.
    pub message_type: MessageType,
}

/// Why the crypto crate refused, as a domain refusal.
pub(crate) fn asymmetric_rejection(e: AsymmetricError) -> KmsError {
    match e {
        AsymmetricError::WrongScheme => Rejection::SigningAlgorithmMismatch.into(),
        AsymmetricError::DigestLength => Rejection::DigestLengthMismatch.into(),
        AsymmetricError::DigestNotAllowed => Rejection::InvalidParameter("message_type").into(),
        AsymmetricError::PlaintextTooLong => Rejection::PlaintextTooLong.into(),
        AsymmetricError::DecryptFailed => Rejection::PrivateKeyDecryptFailed.into(),
        AsymmetricError::MalformedKey | AsymmetricError::Generation => {
            KmsError::Internal(format!("asymmetric operation failed: {e}"))
        }
    }
}

/// The private key of a cached asymmetric key (loaded with it).
pub(crate) fn private_key(key: &CachedKey) -> Result<&PrivateKey, KmsError> {
    key.private.as_ref().ok_or_else(|| KmsError::Internal(format!("key {} has no private key", key.record.key_id)))
}

impl KmsService {
    /// get-publickey: PEM SubjectPublicKeyInfo.
    pub async fn public_key(&self, caller: &CallerIdentity, key_id: &str) -> Result<(KeyId, String), KmsError> {
        let key = self.cached_key_for(caller, key_id, None).await?;
        key.record.check_public_key()?;
        Ok((key.record.key_id, private_key(&key)?.public_key_pem()))
    }

    /// The key, scheme and message of a sign or verify request, checked.
    async fn signing(
        &self, caller: &CallerIdentity, req: &Sign,
    ) -> Result<(std::sync::Arc<CachedKey>, crypto::asymmetric::SigningScheme), KmsError> {
        if req.message.is_empty() {
            return Err(Rejection::MissingParameter("message").into());
        }
        if req.message.len() > domain::MAX_SIGN_MESSAGE_LEN {
            return Err(Rejection::InvalidParameter("message").into());
        }
        let algorithm = req.algorithm.ok_or(Rejection::MissingParameter("signing_algorithm"))?;
        let key = self.cached_key_for(caller, &req.key_id, None).await?;
        key.record.check_signing_use()?;
        let scheme = algorithm.scheme_for(key.record.spec)?;
        Ok((key, scheme))
    }

    /// sign: a signature by the key (DER for ECDSA and SM2).
    pub async fn sign(&self, caller: &CallerIdentity, req: Sign) -> Result<(KeyId, Vec<u8>), KmsError> {
        let (key, scheme) = self.signing(caller, &req).await?;
        let signature = private_key(&key)?.sign(scheme, message(&req)).map_err(asymmetric_rejection)?;
        Ok((key.record.key_id, signature))
    }

    /// verify: whether `signature` is the key's; a wrong or malformed
    /// signature is `false`, not an error.
    pub async fn verify(
        &self, caller: &CallerIdentity, req: Sign, signature: &[u8],
    ) -> Result<(KeyId, bool), KmsError> {
        let (key, scheme) = self.signing(caller, &req).await?;
        if signature.is_empty() {
            return Err(Rejection::MissingParameter("signature").into());
        }
        let valid = private_key(&key)?.verify(scheme, message(&req), signature).map_err(asymmetric_rejection)?;
        Ok((key.record.key_id, valid))
    }
}

fn message(req: &Sign) -> Message<'_> {
    match req.message_type {
        MessageType::Digest => Message::Digest(&req.message),
        MessageType::Raw => Message::Raw(&req.message),
    }
}
