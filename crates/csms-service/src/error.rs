//! The one error type of csms-service and its one mapping to gRPC.
//!
//! `From<CsmsError> for Status` is the single exhaustive match; the typed
//! `csms.v1.ErrorDetail` it attaches lets the gateway answer with Huawei's
//! `CSMS.xxxx` code. Messages never contain a secret value or a data key.

use proto::csms::v1::{ErrorDetail, ErrorReason};
use tonic::{Code, Status};

use crate::store::StoreError;

/// Everything that can go wrong in a csms-service call.
#[derive(Debug, thiserror::Error)]
pub enum CsmsError {
    /// A field fails validation; the text names the field and the rule.
    #[error("{0}")]
    InvalidParameter(String),
    /// No secret with that name in the caller's project.
    #[error("the secret does not exist")]
    SecretNotFound,
    /// A version, stage or other sub-resource does not exist.
    #[error("the {0} does not exist")]
    ResourceNotFound(&'static str),
    /// The secret is scheduled for deletion.
    #[error("the secret is pending deletion")]
    SecretPendingDelete,
    /// The secret is disabled or frozen.
    #[error("the secret is not enabled")]
    SecretNotEnabled,
    /// The project's secret quota is used up.
    #[error("secret quota of {0} secrets reached")]
    SecretQuotaExceeded(u64),
    /// The master key cannot be used (missing, disabled, not symmetric…).
    #[error("the KMS key cannot be used: {0}")]
    KmsKeyUnusable(String),
    /// Another secret of the project has this name.
    #[error("a secret with this name already exists")]
    DuplicateName,
    /// A 13th distinct stage would be created.
    #[error("the secret already has the maximum number of stages")]
    StageLimit,
    /// More than 12 stages in one request.
    #[error("too many stages in the request")]
    TooManyStagesInRequest,
    /// SYSCURRENT and SYSPREVIOUS cannot be deleted.
    #[error("system stages cannot be deleted")]
    SystemStage,
    /// Deletion scheduled twice.
    #[error("the secret is already scheduled for deletion")]
    AlreadyPendingDelete,
    /// Restore of a secret that is not scheduled for deletion.
    #[error("the secret is not scheduled for deletion")]
    NotPendingDelete,
    /// The request itself is malformed (e.g. a wrong path word).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
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

impl CsmsError {
    fn code_and_reason(&self) -> (Code, ErrorReason) {
        use ErrorReason as R;
        match self {
            Self::InvalidParameter(_) => (Code::InvalidArgument, R::InvalidParameter),
            Self::SecretNotFound => (Code::NotFound, R::SecretNotFound),
            Self::ResourceNotFound(_) => (Code::NotFound, R::ResourceNotFound),
            Self::SecretPendingDelete => (Code::FailedPrecondition, R::SecretPendingDelete),
            Self::SecretNotEnabled => (Code::FailedPrecondition, R::SecretNotEnabled),
            Self::SecretQuotaExceeded(_) => (Code::ResourceExhausted, R::SecretQuotaExceeded),
            Self::KmsKeyUnusable(_) => (Code::FailedPrecondition, R::KmsKeyUnusable),
            Self::DuplicateName => (Code::AlreadyExists, R::DuplicateName),
            Self::StageLimit => (Code::ResourceExhausted, R::StageLimit),
            Self::TooManyStagesInRequest => (Code::InvalidArgument, R::TooManyStagesInRequest),
            Self::SystemStage => (Code::InvalidArgument, R::SystemStage),
            Self::AlreadyPendingDelete => (Code::FailedPrecondition, R::SecretAlreadyPendingDelete),
            Self::NotPendingDelete => (Code::FailedPrecondition, R::SecretNotPendingDelete),
            Self::InvalidRequest(_) => (Code::InvalidArgument, R::InvalidRequest),
            Self::Unauthenticated(_) => (Code::Unauthenticated, R::Unauthenticated),
            Self::Store(_) | Self::Internal(_) => (Code::Internal, R::Internal),
        }
    }

    /// The reason the gateway branches on.
    pub fn reason(&self) -> ErrorReason {
        self.code_and_reason().1
    }
}

impl From<CsmsError> for Status {
    fn from(err: CsmsError) -> Self {
        let (code, reason) = err.code_and_reason();
        let message = if code == Code::Internal {
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

    #[test]
    fn reason_round_trips_through_status() {
        for err in [CsmsError::DuplicateName, CsmsError::SecretNotFound, CsmsError::Internal("boom".into())] {
            let reason = err.reason();
            let status = Status::from(err);
            assert!(!status.message().contains("boom"));
            let detail: ErrorDetail = common::grpc::detail_of(&status).unwrap();
            assert_eq!(detail.reason(), reason);
        }
    }
}
