//! The one error type of csms-service and its one mapping to gRPC.
//!
//! `From<CsmsError> for Status` is the single exhaustive match; the typed
//! `csms.v1.ErrorDetail` it attaches lets the gateway answer with Huawei's
//! `CSMS.xxxx` code. Messages never contain a secret value or a data key.

use common::grpc::errors::ServiceError;
use proto::csms::v1::ErrorReason;
use tonic::{Code, Status};

use crate::{
    domain::Rejection,
    store::{StoreError, WriteError},
};

/// Everything that can go wrong in a csms-service call.
#[derive(Debug, thiserror::Error)]
pub enum CsmsError {
    /// A rule of the domain refused the request.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The project's secret quota is used up.
    #[error("secret quota of {0} secrets reached")]
    SecretQuotaExceeded(u64),
    /// The project's event quota is used up.
    #[error("event quota of {0} events reached")]
    EventQuotaExceeded(u64),
    /// The master key cannot be used (missing, disabled, not symmetric…).
    #[error("the KMS key cannot be used: {0}")]
    KmsKeyUnusable(String),
    /// Another secret of the project has this name.
    #[error("a secret with this name already exists")]
    DuplicateName,
    /// The call carries no usable caller identity.
    #[error(transparent)]
    Unauthenticated(#[from] common::identity::MissingIdentity),
    /// Storage failed.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// kms-service failed or a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<WriteError> for CsmsError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Rejected(rejection) => Self::Rejected(rejection),
            WriteError::Store(e) => Self::Store(e),
        }
    }
}

impl ServiceError for CsmsError {
    type Reason = ErrorReason;

    fn code_and_reason(&self) -> (Code, ErrorReason) {
        use ErrorReason as R;
        match self {
            Self::Rejected(rejection) => rejection_code(rejection),
            Self::SecretQuotaExceeded(_) => (Code::ResourceExhausted, R::SecretQuotaExceeded),
            Self::EventQuotaExceeded(_) => (Code::ResourceExhausted, R::EventQuotaExceeded),
            Self::KmsKeyUnusable(_) => (Code::FailedPrecondition, R::KmsKeyUnusable),
            Self::DuplicateName => (Code::AlreadyExists, R::DuplicateName),
            Self::Unauthenticated(_) => (Code::Unauthenticated, R::Unauthenticated),
            Self::Store(_) | Self::Internal(_) => (Code::Internal, R::Internal),
        }
    }
}

fn rejection_code(rejection: &Rejection) -> (Code, ErrorReason) {
    use ErrorReason as R;
    match rejection {
        Rejection::InvalidParameter(_) => (Code::InvalidArgument, R::InvalidParameter),
        Rejection::SecretNotFound => (Code::NotFound, R::SecretNotFound),
        Rejection::ResourceNotFound(_) => (Code::NotFound, R::ResourceNotFound),
        Rejection::SecretPendingDelete => (Code::FailedPrecondition, R::SecretPendingDelete),
        Rejection::SecretNotEnabled => (Code::FailedPrecondition, R::SecretNotEnabled),
        Rejection::StageLimit => (Code::ResourceExhausted, R::StageLimit),
        Rejection::TooManyStagesInRequest => (Code::InvalidArgument, R::TooManyStagesInRequest),
        Rejection::SystemStage => (Code::InvalidArgument, R::SystemStage),
        Rejection::AlreadyPendingDelete => (Code::FailedPrecondition, R::SecretAlreadyPendingDelete),
        Rejection::NotPendingDelete => (Code::FailedPrecondition, R::SecretNotPendingDelete),
        Rejection::InvalidRequest(_) => (Code::InvalidArgument, R::InvalidRequest),
        Rejection::RotationInProgress => (Code::FailedPrecondition, R::InvalidRequest),
    }
}

impl From<CsmsError> for Status {
    fn from(err: CsmsError) -> Self {
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
                CsmsError::DuplicateName,
                Rejection::SecretNotFound.into(),
                CsmsError::SecretQuotaExceeded(200),
                CsmsError::EventQuotaExceeded(100),
                CsmsError::Internal("boom".into()),
            ],
            proto::csms::v1::ErrorDetail::reason,
        );
    }

    /// A task's failure travels as a proto reason of the same name.
    #[test]
    fn task_failures_are_reasons() {
        use crate::domain::events::TaskFailure as F;
        for failure in [F::InvalidParameter, F::KmsKeyUnusable, F::Internal] {
            let reason = <ErrorReason as proto::wire::WireName>::from_huawei_name(failure.as_str());
            assert!(reason.is_some_and(|r| r != ErrorReason::Unspecified), "{failure:?}");
        }
    }
}
