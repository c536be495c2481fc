//! The one error type of kms-service and its one mapping to gRPC.
//!
//! Every failure a caller can branch on is a variant; `to_status` is the
//! single exhaustive match that turns it into a gRPC code plus a typed
//! `kms.v1.ErrorDetail`, from which the gateway derives Huawei's `KMS.xxxx`
//! code. Messages never contain key material, plaintext or AAD.

use proto::kms::v1::{ErrorDetail, ErrorReason};
use tonic::{Code, Status};

use crate::store::StoreError;

/// Everything that can go wrong in a kms-service call.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// A required request field is absent.
    #[error("missing required parameter `{0}`")]
    MissingParameter(&'static str),
    /// A field has a value outside its documented domain.
    #[error("invalid parameter `{0}`")]
    InvalidParameter(&'static str),
    /// `key_id` is not a lower-case UUID.
    #[error("invalid key id")]
    InvalidKeyId,
    /// `sequence` is not 36 characters.
    #[error("invalid sequence number")]
    InvalidSequence,
    /// No such key in the caller's project.
    #[error("the key does not exist")]
    KeyNotFound,
    /// The key is disabled.
    #[error("the key is disabled")]
    KeyDisabled,
    /// The key is scheduled for deletion.
    #[error("the key is pending deletion")]
    KeyPendingDeletion,
    /// The key has no material yet (external origin).
    #[error("the key is pending import of its material")]
    KeyPendingImport,
    /// Operation forbidden on a service default key.
    #[error("operation not allowed on a default master key")]
    DefaultKeyForbidden,
    /// Alias empty, too long, with bad characters, or ending in `/default`.
    #[error("invalid key alias")]
    InvalidAlias,
    /// Description longer than 255 characters.
    #[error("invalid key description")]
    InvalidDescription,
    /// Another key of the project has this alias.
    #[error("duplicate key alias")]
    DuplicateAlias,
    /// The project's key quota is used up.
    #[error("key quota of {0} keys reached")]
    KeyQuotaExceeded(u64),
    /// Unknown or unsupported key spec.
    #[error("invalid or unsupported key spec")]
    InvalidKeySpec,
    /// EC keys cannot encrypt.
    #[error("EC keys cannot encrypt or decrypt")]
    EcCannotEncrypt,
    /// Symmetric keys cannot sign.
    #[error("symmetric keys cannot sign or verify")]
    SymmetricCannotSign,
    /// Page size out of range.
    #[error("invalid limit")]
    InvalidLimit,
    /// Page marker invalid.
    #[error("invalid marker")]
    InvalidMarker,
    /// Data-key length outside 8..=8192 bits.
    #[error("data key length must be 8 to 8192 bits")]
    DatakeyLengthOutOfRange,
    /// Data-key length not a whole number of bytes.
    #[error("data key length must be a multiple of 8 bits")]
    DatakeyLengthNotByteAligned,
    /// Operation needs a symmetric key.
    #[error("asymmetric keys do not support this operation")]
    AsymmetricUnsupported,
    /// Operation not available for HMAC keys.
    #[error("HMAC keys do not support this operation")]
    HmacUnsupported,
    /// Ciphertext malformed, tampered, for another key, or AAD mismatch.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// Decrypted data key length differs from the expected length.
    #[error("decrypted data key length does not match")]
    CiphertextLengthMismatch,
    /// enable-key on a key that is not disabled.
    #[error("the key is not disabled")]
    KeyNotDisabled,
    /// disable-key on a key that is not enabled.
    #[error("the key is not enabled")]
    KeyNotEnabled,
    /// pending_days outside 7..=1096.
    #[error("pending_days must be between 7 and 1096")]
    InvalidPendingDays,
    /// schedule-key-deletion on a key already pending deletion.
    #[error("the key is already pending deletion")]
    KeyAlreadyPendingDeletion,
    /// cancel-key-deletion on a key that is not pending deletion.
    #[error("the key is not pending deletion")]
    KeyNotPendingDeletion,
    /// encrypt-datakey plaintext is not hex or is empty.
    #[error("invalid data key plaintext")]
    InvalidDatakeyPlaintext,
    /// Data-key plaintext length outside 1..=1024 bytes.
    #[error("data key plaintext length must be 1 to 1024 bytes")]
    InvalidDatakeyPlainLength,
    /// The digest appended to a data key does not match it.
    #[error("the data key digest does not match")]
    DatakeyDigestMismatch,
    /// plaintext length differs from data key length + 32.
    #[error("plaintext length does not match the data key length")]
    DatakeyPlaintextLengthMismatch,
    /// datakey_cipher_length outside 1..=1024 bytes.
    #[error("data key cipher length must be 1 to 1024 bytes")]
    InvalidDatakeyCipherLength,
    /// An asymmetric algorithm asked of a symmetric key.
    #[error("the symmetric key does not support this encryption algorithm")]
    SymmetricAlgorithmMismatch,
    /// Encryption asked of a SIGN_VERIFY key.
    #[error("the key is for signing and verifying")]
    SignOnlyKey,
    /// random_data_length outside 8..=8192 bits.
    #[error("random data length must be 8 to 8192 bits")]
    RandomLengthOutOfRange,
    /// random_data_length not a whole number of bytes.
    #[error("random data length must be a multiple of 8 bits")]
    RandomLengthNotMultipleOf8,
    /// The call carries no usable caller identity.
    #[error(transparent)]
    Unauthenticated(#[from] common::identity::MissingIdentity),
    /// Storage failed.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// A bug or an environment fault (e.g. the CSPRNG failed).
    #[error("internal error: {0}")]
    Internal(String),
}

impl KmsError {
    /// The reason the gateway branches on.
    pub fn reason(&self) -> ErrorReason {
        self.code_and_reason().1
    }

    fn code_and_reason(&self) -> (Code, ErrorReason) {
        use ErrorReason as R;
        match self {
            Self::MissingParameter(_) => (Code::InvalidArgument, R::MissingParameter),
            Self::InvalidParameter(_) => (Code::InvalidArgument, R::InvalidParameter),
            Self::InvalidKeyId => (Code::InvalidArgument, R::InvalidKeyId),
            Self::InvalidSequence => (Code::InvalidArgument, R::InvalidSequence),
            Self::KeyNotFound => (Code::NotFound, R::KeyNotFound),
            Self::KeyDisabled => (Code::FailedPrecondition, R::KeyDisabled),
            Self::KeyPendingDeletion => (Code::FailedPrecondition, R::KeyPendingDeletion),
            Self::KeyPendingImport => (Code::FailedPrecondition, R::KeyPendingImport),
            Self::DefaultKeyForbidden => (Code::PermissionDenied, R::DefaultKeyForbidden),
            Self::InvalidAlias => (Code::InvalidArgument, R::InvalidAlias),
            Self::InvalidDescription => (Code::InvalidArgument, R::InvalidDescription),
            Self::DuplicateAlias => (Code::AlreadyExists, R::DuplicateAlias),
            Self::KeyQuotaExceeded(_) => (Code::ResourceExhausted, R::KeyQuotaExceeded),
            Self::InvalidKeySpec => (Code::InvalidArgument, R::InvalidKeySpec),
            Self::EcCannotEncrypt => (Code::InvalidArgument, R::EcCannotEncrypt),
            Self::SymmetricCannotSign => (Code::InvalidArgument, R::SymmetricCannotSign),
            Self::InvalidLimit => (Code::InvalidArgument, R::InvalidLimit),
            Self::InvalidMarker => (Code::InvalidArgument, R::InvalidMarker),
            Self::DatakeyLengthOutOfRange => (Code::InvalidArgument, R::DatakeyLengthOutOfRange),
            Self::DatakeyLengthNotByteAligned => (Code::InvalidArgument, R::DatakeyLengthNotMultipleOf8),
            Self::AsymmetricUnsupported => (Code::FailedPrecondition, R::AsymmetricUnsupported),
            Self::HmacUnsupported => (Code::FailedPrecondition, R::HmacUnsupported),
            Self::InvalidCiphertext => (Code::InvalidArgument, R::InvalidCiphertext),
            Self::CiphertextLengthMismatch => (Code::InvalidArgument, R::CiphertextLengthMismatch),
            Self::KeyNotDisabled => (Code::FailedPrecondition, R::KeyNotDisabled),
            Self::KeyNotEnabled => (Code::FailedPrecondition, R::KeyNotEnabled),
            Self::InvalidPendingDays => (Code::InvalidArgument, R::InvalidPendingDays),
            Self::KeyAlreadyPendingDeletion => (Code::FailedPrecondition, R::KeyAlreadyPendingDeletion),
            Self::KeyNotPendingDeletion => (Code::FailedPrecondition, R::KeyNotPendingDeletion),
            Self::InvalidDatakeyPlaintext => (Code::InvalidArgument, R::InvalidDatakeyPlaintext),
            Self::InvalidDatakeyPlainLength => (Code::InvalidArgument, R::InvalidDatakeyPlainLength),
            Self::DatakeyDigestMismatch => (Code::InvalidArgument, R::DatakeyDigestMismatch),
            Self::DatakeyPlaintextLengthMismatch => (Code::InvalidArgument, R::DatakeyPlaintextLengthMismatch),
            Self::InvalidDatakeyCipherLength => (Code::InvalidArgument, R::InvalidDatakeyCipherLength),
            Self::SymmetricAlgorithmMismatch => (Code::InvalidArgument, R::SymmetricAlgorithmMismatch),
            Self::SignOnlyKey => (Code::FailedPrecondition, R::SignOnlyKey),
            Self::RandomLengthOutOfRange => (Code::InvalidArgument, R::RandomLengthOutOfRange),
            Self::RandomLengthNotMultipleOf8 => (Code::InvalidArgument, R::RandomLengthNotMultipleOf8),
            Self::Unauthenticated(_) => (Code::Unauthenticated, R::Unauthenticated),
            Self::Store(_) | Self::Internal(_) => (Code::Internal, R::Internal),
        }
    }
}

impl From<KmsError> for Status {
    fn from(err: KmsError) -> Self {
        let (code, reason) = err.code_and_reason();
        let message = if code == Code::Internal {
            // Log the cause here, once; callers get an opaque message.
            tracing::error!(error = %err, "internal error");
            "internal error".to_owned()
        } else {
            err.to_string()
        };
        common::grpc::status_with_detail(code, message, &ErrorDetail { reason: reason as i32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway reads the reason back from the status details.
    #[test]
    fn reason_round_trips_through_status() {
        for err in [KmsError::DuplicateAlias, KmsError::KeyNotFound, KmsError::Internal("x".into())] {
            let reason = err.reason();
            let status = Status::from(err);
            let detail: ErrorDetail = common::grpc::detail_of(&status).unwrap();
            assert_eq!(detail.reason(), reason);
        }
    }
}
