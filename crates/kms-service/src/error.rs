//! The one error type of kms-service and its one mapping to gRPC.
//!
//! A call fails because a rule refused it ([`Rejection`], from the
//! domain), because the key is not there for this caller, because of a
//! uniqueness or quota limit the store enforces, or because something broke.
//! `code_and_reason` is the single exhaustive match that turns each into a
//! gRPC code plus a typed `kms.v1.ErrorDetail`, from which the gateway
//! derives Huawei's `KMS.xxxx` code. Messages never contain key material,
//! plaintext or AAD.

use common::grpc::errors::ServiceError;
use proto::kms::v1::ErrorReason;
use tonic::{Code, Status};

use crate::{
    domain::Rejection,
    store::{StoreError, UpdateKeyError},
};

/// Everything that can go wrong in a kms-service call.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// A rule of the domain refused the request.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// No such key in the caller's project.
    #[error("the key does not exist")]
    KeyNotFound,
    /// Another key of the project has this alias.
    #[error("duplicate key alias")]
    DuplicateAlias,
    /// The project's key quota is used up.
    #[error("key quota of {0} keys reached")]
    KeyQuotaExceeded(u64),
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

impl ServiceError for KmsError {
    type Reason = ErrorReason;

    fn code_and_reason(&self) -> (Code, ErrorReason) {
        match self {
            Self::Rejected(rejection) => rejection_code(rejection),
            Self::KeyNotFound => (Code::NotFound, ErrorReason::KeyNotFound),
            Self::DuplicateAlias => (Code::AlreadyExists, ErrorReason::DuplicateAlias),
            Self::KeyQuotaExceeded(_) => (Code::ResourceExhausted, ErrorReason::KeyQuotaExceeded),
            Self::Unauthenticated(_) => (Code::Unauthenticated, ErrorReason::Unauthenticated),
            Self::Store(_) | Self::Internal(_) => (Code::Internal, ErrorReason::Internal),
        }
    }
}

fn rejection_code(rejection: &Rejection) -> (Code, ErrorReason) {
    use Rejection as J;
    use {Code as C, ErrorReason as R};
    match rejection {
        J::MissingParameter(_) => (C::InvalidArgument, R::MissingParameter),
        J::InvalidParameter(_) => (C::InvalidArgument, R::InvalidParameter),
        J::InvalidKeyId => (C::InvalidArgument, R::InvalidKeyId),
        J::InvalidSequence => (C::InvalidArgument, R::InvalidSequence),
        J::KeyDisabled => (C::FailedPrecondition, R::KeyDisabled),
        J::KeyPendingDeletion => (C::FailedPrecondition, R::KeyPendingDeletion),
        J::KeyPendingImport => (C::FailedPrecondition, R::KeyPendingImport),
        J::DefaultKeyForbidden => (C::PermissionDenied, R::DefaultKeyForbidden),
        J::InvalidAlias => (C::InvalidArgument, R::InvalidAlias),
        J::InvalidDescription => (C::InvalidArgument, R::InvalidDescription),
        J::InvalidKeySpec => (C::InvalidArgument, R::InvalidKeySpec),
        J::EcCannotEncrypt => (C::InvalidArgument, R::EcCannotEncrypt),
        J::SymmetricCannotSign => (C::InvalidArgument, R::SymmetricCannotSign),
        J::InvalidLimit => (C::InvalidArgument, R::InvalidLimit),
        J::InvalidMarker => (C::InvalidArgument, R::InvalidMarker),
        J::DatakeyLengthOutOfRange => (C::InvalidArgument, R::DatakeyLengthOutOfRange),
        J::DatakeyLengthNotByteAligned => (C::InvalidArgument, R::DatakeyLengthNotMultipleOf8),
        J::AsymmetricUnsupported => (C::FailedPrecondition, R::AsymmetricUnsupported),
        J::HmacUnsupported => (C::FailedPrecondition, R::HmacUnsupported),
        J::InvalidCiphertext => (C::InvalidArgument, R::InvalidCiphertext),
        J::CiphertextLengthMismatch => (C::InvalidArgument, R::CiphertextLengthMismatch),
        J::KeyNotDisabled => (C::FailedPrecondition, R::KeyNotDisabled),
        J::KeyNotEnabled => (C::FailedPrecondition, R::KeyNotEnabled),
        J::InvalidPendingDays => (C::InvalidArgument, R::InvalidPendingDays),
        J::KeyAlreadyPendingDeletion => (C::FailedPrecondition, R::KeyAlreadyPendingDeletion),
        J::KeyNotPendingDeletion => (C::FailedPrecondition, R::KeyNotPendingDeletion),
        J::InvalidDatakeyPlaintext => (C::InvalidArgument, R::InvalidDatakeyPlaintext),
        J::InvalidDatakeyPlainLength => (C::InvalidArgument, R::InvalidDatakeyPlainLength),
        J::DatakeyDigestMismatch => (C::InvalidArgument, R::DatakeyDigestMismatch),
        J::DatakeyPlaintextLengthMismatch => (C::InvalidArgument, R::DatakeyPlaintextLengthMismatch),
        J::InvalidDatakeyCipherLength => (C::InvalidArgument, R::InvalidDatakeyCipherLength),
        J::SymmetricAlgorithmMismatch => (C::InvalidArgument, R::SymmetricAlgorithmMismatch),
        J::SignOnlyKey => (C::FailedPrecondition, R::SignOnlyKey),
        J::RandomLengthOutOfRange => (C::InvalidArgument, R::RandomLengthOutOfRange),
        J::RandomLengthNotMultipleOf8 => (C::InvalidArgument, R::RandomLengthNotMultipleOf8),
        J::ExternalCannotRotate => (C::FailedPrecondition, R::ExternalCannotRotate),
        J::RsaCannotRotate => (C::FailedPrecondition, R::RsaCannotRotate),
        J::RotationNotDisabled => (C::FailedPrecondition, R::RotationNotDisabled),
        J::RotationNotEnabled | J::RotationNotDue => (C::FailedPrecondition, R::RotationNotEnabled),
        J::InvalidRotationInterval => (C::InvalidArgument, R::InvalidRotationInterval),
        J::Tag(fault) => tag_code(*fault),
        J::ExternalKeyRequired => (C::FailedPrecondition, R::ExternalKeyRequired),
        J::KeyNotPendingImport => (C::FailedPrecondition, R::KeyNotPendingImport),
        J::ImportTokenExpired => (C::InvalidArgument, R::ImportTokenExpired),
        J::ExpirationNotFuture => (C::InvalidArgument, R::ExpirationNotFuture),
        J::ImportTokenKeyMismatch => (C::InvalidArgument, R::ImportTokenKeyMismatch),
        J::ImportMaterialLength => (C::InvalidArgument, R::ImportMaterialLength),
        J::ImportTokenInvalid => (C::InvalidArgument, R::ImportTokenInvalid),
        J::DifferentMaterial => (C::FailedPrecondition, R::DifferentMaterial),
        J::MaterialNotDeletable => (C::FailedPrecondition, R::MaterialNotDeletable),
        J::UnwrapFailed => (C::InvalidArgument, R::UnwrapFailed),
        J::GrantOnlyCreateGrant => (C::InvalidArgument, R::GrantOnlyCreateGrant),
        J::InvalidPrincipal => (C::InvalidArgument, R::InvalidPrincipal),
        J::GrantQuota => (C::ResourceExhausted, R::GrantQuota),
        J::GrantProjectQuota => (C::ResourceExhausted, R::GrantProjectQuota),
        J::InvalidGrantId => (C::InvalidArgument, R::InvalidGrantId),
        J::GrantKeyMismatch => (C::InvalidArgument, R::GrantKeyMismatch),
        J::NoPermission => (C::PermissionDenied, R::NoPermission),
        J::InvalidMatchKey => (C::InvalidArgument, R::InvalidMatchKey),
        J::AliasNotFound => (C::NotFound, R::AliasNotFound),
        J::AliasLimit => (C::ResourceExhausted, R::AliasLimit),
        J::SymmetricUnsupported => (C::FailedPrecondition, R::SymmetricUnsupported),
        J::EncryptOnlyKey => (C::FailedPrecondition, R::EncryptOnlyKey),
        J::SigningAlgorithmMismatch => (C::InvalidArgument, R::SigningAlgorithmMismatch),
        J::DigestLengthMismatch => (C::InvalidArgument, R::DigestLengthMismatch),
        J::AsymmetricAlgorithmMismatch => (C::InvalidArgument, R::AsymmetricAlgorithmMismatch),
        J::PlaintextTooLong => (C::InvalidArgument, R::PlaintextTooLong),
        J::PrivateKeyDecryptFailed => (C::InvalidArgument, R::PrivateKeyDecryptFailed),
    }
}

fn tag_code(fault: common::tags::TagFault) -> (Code, ErrorReason) {
    use common::tags::TagFault as F;
    use {Code as C, ErrorReason as R};
    match fault {
        F::EmptyList => (C::InvalidArgument, R::TagListEmpty),
        F::ListTooLong | F::TooManyFilters => (C::InvalidArgument, R::InvalidTagListSize),
        F::InvalidKey => (C::InvalidArgument, R::InvalidTagKey),
        F::InvalidValue => (C::InvalidArgument, R::InvalidTagValue),
        F::InvalidAction => (C::InvalidArgument, R::InvalidAction),
        F::TooManyTags => (C::ResourceExhausted, R::TooManyTags),
        F::NotFound => (C::NotFound, R::TagNotFound),
        F::InvalidLimit => (C::InvalidArgument, R::InvalidLimit),
        F::OffsetNotAllowed => (C::InvalidArgument, R::OffsetNotAllowed),
        F::TooManyValues => (C::InvalidArgument, R::TooManyTagValues),
        F::InvalidMatchValue => (C::InvalidArgument, R::InvalidMatchValue),
    }
}

/// A store refusal of a change to a key, as the service reports it (one
/// mapping for every module that changes keys, aliases, tags or grants).
impl From<UpdateKeyError> for KmsError {
    fn from(e: UpdateKeyError) -> Self {
        match e {
            UpdateKeyError::NotFound => KmsError::KeyNotFound,
            UpdateKeyError::Rejected(e) => e.into(),
            UpdateKeyError::AliasTaken => KmsError::DuplicateAlias,
            UpdateKeyError::Store(e) => e.into(),
        }
    }
}

impl From<KmsError> for Status {
    fn from(err: KmsError) -> Self {
        err.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_round_trips_through_status() {
        common::grpc::errors::assert_round_trip(
            [
                KmsError::DuplicateAlias,
                KmsError::KeyNotFound,
                KmsError::Rejected(Rejection::KeyNotEnabled),
                KmsError::Rejected(Rejection::Tag(common::tags::TagFault::NotFound)),
                KmsError::Internal("x".into()),
            ],
            proto::kms::v1::ErrorDetail::reason,
        );
    }
}
