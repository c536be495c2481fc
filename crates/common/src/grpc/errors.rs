//! The scaffolding of a service's error enum: one exhaustive match to a
//! gRPC code and the service's typed reason, and the status built from it.
//! Each service writes only that match ([`ServiceError::code_and_reason`]);
//! the status, the hiding of internal detail and the round-trip test are
//! here, once.

use tonic::{Code, Status};

/// The status detail every service attaches: its `ErrorDetail` message,
/// which is `ErrorReason reason = 1` in each service's proto, so this one
/// encoding serves both (the gateway decodes it with the service's type).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReasonDetail {
    /// The service's `ErrorReason` number.
    #[prost(int32, tag = "1")]
    pub reason: i32,
}

/// A service's error enum (kms-service's `KmsError`, csms-service's
/// `CsmsError`).
pub trait ServiceError: std::fmt::Display + Sized {
    /// The service's `ErrorReason` proto enum.
    type Reason: Copy + PartialEq + std::fmt::Debug + Into<i32>;

    /// The gRPC code and the reason: the one exhaustive match.
    fn code_and_reason(&self) -> (Code, Self::Reason);

    /// The reason the gateway branches on.
    fn reason(&self) -> Self::Reason {
        self.code_and_reason().1
    }

    /// The message a caller may see: the error's sentence, except that an
    /// internal error is logged here, once, and reads "internal error" (its
    /// cause may name internals).
    fn public_message(&self) -> String {
        match self.code_and_reason().0 {
            Code::Internal => {
                tracing::error!(error = %self, "internal error");
                "internal error".to_owned()
            }
            _ => self.to_string(),
        }
    }

    /// The status a service answers: the public message and the typed
    /// detail.
    fn into_status(self) -> Status {
        let (code, reason) = self.code_and_reason();
        super::status_with_detail(code, self.public_message(), &ReasonDetail { reason: reason.into() })
    }
}

/// Asserts, for a service's tests, that each error's reason survives the
/// trip through a status, read back as the gateway reads it (with the
/// service's own `ErrorDetail` type `D` and its accessor `reason_of`), and
/// that internal errors leave their cause out of the message.
pub fn assert_round_trip<E: ServiceError, D: prost::Message + Default>(
    errors: impl IntoIterator<Item = E>, reason_of: fn(&D) -> E::Reason,
) {
    for err in errors {
        let (code, reason) = err.code_and_reason();
        let cause = err.to_string();
        let status = err.into_status();
        assert_eq!(status.code(), code);
        let detail: D = super::detail_of(&status).expect("a status of ours carries a detail");
        assert_eq!(reason_of(&detail), reason);
        if code == Code::Internal {
            assert_eq!(status.message(), "internal error", "{cause} leaked");
        }
    }
}
