//! The one HTTP error type of the gateway and its exhaustive maps from
//! service error reasons to Huawei's status codes and bodies.
//!
//! KMS errors are nested (`{"error": {"error_code", "error_msg"}}`), CSMS
//! errors are flat or nested per operation (csms-api.md §1.5), and failures
//! in front of the services (authentication, routing, body size) use the
//! API-gateway style flat body with a `request_id`. 5xx bodies are opaque;
//! the cause is logged.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use http::StatusCode;
use proto::{csms::v1 as csms, kms::v1 as kms};
use serde_json::json;

tokio::task_local! {
    /// The id of the request being handled, for error bodies and logs.
    pub static REQUEST_ID: String;
}

/// The current request id, or an empty string outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// A KMS failure: a service reason or one the gateway detects itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsFault {
    /// Reported by kms-service.
    Service(kms::ErrorReason),
    /// Body is not a JSON object of the documented types.
    MalformedJson,
    /// Content type is not JSON.
    BadContentType,
    /// Path project is not the caller's.
    ProjectMismatch,
    /// Wrong HTTP method for the path.
    MethodNotAllowed,
    /// create-datakey `key_spec` not a data-key spec.
    DatakeySpec,
    /// `GET /{version}` for a version that does not exist.
    UnknownVersion,
    /// A path under `/v1.0/{project_id}/kms/` that names no operation.
    UnknownOperation,
}

/// A CSMS failure: a service reason or one the gateway detects itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsmsFault {
    /// Reported by csms-service.
    Service(csms::ErrorReason),
    /// Body is not a JSON object of the documented types.
    MalformedJson,
    /// Content type is not JSON.
    BadContentType,
    /// Path project is not the caller's.
    ProjectMismatch,
    /// Wrong HTTP method for the path.
    MethodNotAllowed,
}

/// Body shape of a CSMS error (per operation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `{"error_code", "error_msg"}`.
    Flat,
    /// `{"error": {"error_code", "error_msg"}}`.
    Nested,
}

/// Every error the gateway answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Credentials missing or invalid: 401, gateway style.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// Too many failed authentications from this key or address: 429,
    /// gateway style, with the seconds to wait.
    #[error("throttled after failed authentications")]
    Throttled(std::time::Duration),
    /// The gateway is receiving or holding as many request bodies as it
    /// allows (from this connection, this address, or in all): 429,
    /// gateway style, retry after a second; the connection is closed, as
    /// the body was not read.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// No such route: 404, gateway style.
    #[error("no such route")]
    RouteNotFound,
    /// Body over the limit: 413, gateway style.
    #[error("request body too large")]
    TooLarge,
    /// The body did not arrive within the body timeout: 408, gateway style.
    #[error("request body not received in time")]
    SlowBody,
    /// A signed one-shot request arrived a second time: 401, gateway
    /// style (the replay guard).
    #[error("request replayed")]
    Replayed,
    /// The gateway's own store is unreachable: 503, gateway style.
    #[error("identity store unavailable")]
    StoreUnavailable,
    /// A KMS operation failed.
    #[error("KMS error {fault:?}: {detail}")]
    Kms {
        /// Why.
        fault: KmsFault,
        /// Log-only detail (never key material).
        detail: String,
    },
    /// A CSMS operation failed.
    #[error("CSMS error {fault:?}: {detail}")]
    Csms {
        /// Why.
        fault: CsmsFault,
        /// Appended to the message for parameter errors.
        detail: String,
        /// Body shape of the operation.
        shape: Shape,
    },
    /// IAM (`/v3`) failure, Keystone style.
    #[error("IAM error {0}: {1}")]
    Iam(StatusCode, &'static str),
}

impl ApiError {
    /// A KMS error without detail.
    pub fn kms(fault: KmsFault) -> Self {
        Self::Kms { fault, detail: String::new() }
    }

    /// The `error_msg` this error answers with, were it a CSMS error.
    pub fn csms_error_msg(&self) -> String {
        match self {
            Self::Csms { fault, detail, .. } => csms_error_msg(*fault, detail),
            other => other.to_string(),
        }
    }

    /// A CSMS error in the flat shape.
    pub fn csms(fault: CsmsFault) -> Self {
        Self::Csms { fault, detail: String::new(), shape: Shape::Flat }
    }

    /// Translates a kms-service status.
    pub fn from_kms_status(status: tonic::Status) -> Self {
        let reason = common::grpc::detail_of::<kms::ErrorDetail>(&status)
            .map(|d| d.reason())
            .unwrap_or(kms::ErrorReason::Internal);
        Self::Kms { fault: KmsFault::Service(reason), detail: status.message().to_owned() }
    }

    /// Translates a csms-service status into the operation's body shape.
    pub fn from_csms_status(status: tonic::Status, shape: Shape) -> Self {
        let reason = common::grpc::detail_of::<csms::ErrorDetail>(&status)
            .map(|d| d.reason())
            .unwrap_or(csms::ErrorReason::Internal);
        Self::Csms { fault: CsmsFault::Service(reason), detail: status.message().to_owned(), shape }
    }
}

/// Status, code and documented message of a KMS failure (kms-api.md §5).
pub fn kms_error(fault: KmsFault) -> (StatusCode, &'static str, &'static str) {
    use kms::ErrorReason as R;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    match fault {
        KmsFault::MalformedJson => (BAD, "KMS.0202", "Invalid JSON format of the request message."),
        KmsFault::BadContentType => (BAD, "KMS.0214", "The request format is invalid."),
        KmsFault::ProjectMismatch => (StatusCode::FORBIDDEN, "KMS.0305", "Invalid X-Auth-Token project name."),
        KmsFault::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "KMS.0215", "Request method not supported."),
        KmsFault::DatakeySpec => (BAD, "KMS.1902", "key_spec can only be AES_128 or AES_256."),
        KmsFault::UnknownVersion => (StatusCode::NOT_FOUND, "KMS.0201", "Invalid request URL."),
        KmsFault::UnknownOperation => (BAD, "KMS.0201", "Invalid request URL."),
        KmsFault::Service(reason) => match reason {
            R::Unspecified | R::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "KMS.0103",
                "A system exception occurred. Contact technical support.",
            ),
            R::Unauthenticated => (StatusCode::UNAUTHORIZED, "APIGW.0301", "Incorrect IAM authentication information"),
            R::MissingParameter => (BAD, "KMS.0204", "Parameters missing in the request message."),
            R::InvalidParameter => (BAD, "KMS.0308", "Invalid parameter."),
            R::InvalidKeyId => (BAD, "KMS.0205", "Invalid key ID."),
            R::InvalidSequence => (BAD, "KMS.0206", "Invalid sequence number."),
            R::KeyNotFound => (StatusCode::NOT_FOUND, "KMS.0207", "The key does not exist."),
            R::KeyDisabled | R::KeyPendingImport => (BAD, "KMS.0209", "The key has been disabled."),
            R::KeyPendingDeletion => (BAD, "KMS.0210", "The key is in Scheduled deletion state and cannot be used."),
            R::DefaultKeyForbidden => (BAD, "KMS.0211", "Cannot perform this operation on Default Master Keys."),
            R::InvalidAlias => (BAD, "KMS.1101", "Invalid key_alias."),
            R::InvalidDescription => (BAD, "KMS.1103", "Invalid key_description."),
            R::DuplicateAlias => (BAD, "KMS.1104", "Duplicate key aliases."),
            R::KeyQuotaExceeded => (BAD, "KMS.1105", "Too many keys."),
            R::InvalidKeySpec => (BAD, "KMS.1110", "Invalid alg_type."),
            R::EcCannotEncrypt => (BAD, "KMS.1114", "EC keys do not support to encrypt/decrypt."),
            R::SymmetricCannotSign => (BAD, "KMS.1115", "Symmetric keys do not support to sign/verify."),
            R::InvalidLimit => (BAD, "KMS.1601", "Invalid limit."),
            R::InvalidMarker => (BAD, "KMS.1602", "marker must be greater than or equals 0."),
            R::DatakeyLengthOutOfRange => {
                (BAD, "KMS.1901", "datakey_length must be in the range 8 bits to 8,192 bits.")
            }
            R::DatakeyLengthNotMultipleOf8 => (BAD, "KMS.1903", "datakey_length must be a multiple of 8."),
            R::AsymmetricUnsupported => (BAD, "KMS.0325", "The asymmetric key is not support this operation."),
            R::HmacUnsupported => (BAD, "KMS.0341", "The hmac key do not support this operation."),
            R::InvalidCiphertext => (BAD, "KMS.2201", "Invalid cipher_text."),
            R::KeyNotDisabled => (BAD, "KMS.1201", "The key is not disabled."),
            R::KeyNotEnabled => (BAD, "KMS.1301", "The key is not enabled."),
            R::InvalidPendingDays => (BAD, "KMS.1401", "Set the pending deletion period between 7 to 1096 days."),
            R::KeyAlreadyPendingDeletion => (BAD, "KMS.1402", "The key is already in Pending deletion state."),
            R::KeyNotPendingDeletion => (BAD, "KMS.1501", "The key is not in Pending deletion state."),
            R::InvalidDatakeyPlaintext => (BAD, "KMS.2101", "Invalid plain_text."),
            R::InvalidDatakeyPlainLength => (BAD, "KMS.2102", "datakey_plain_length must be 64 bytes."),
            R::DatakeyDigestMismatch => (BAD, "KMS.2103", "Failed to verify the DEK hash."),
            R::DatakeyPlaintextLengthMismatch => {
                (BAD, "KMS.2104", "The length of plain_text does not match datakey_plain_length.")
            }
            R::InvalidDatakeyCipherLength => (BAD, "KMS.2202", "datakey_cipher_length must be 64 bytes."),
            R::SymmetricAlgorithmMismatch => {
                (BAD, "KMS.2105", "The symmetric key not support this encryption algorithm.")
            }
            R::SignOnlyKey => (BAD, "KMS.0335", "The cmk is used to sign and verify."),
            R::SymmetricUnsupported => (BAD, "KMS.0331", "The symmetric key is not support this operation."),
            R::EncryptOnlyKey => (BAD, "KMS.0334", "The cmk is used to encrypt and decrypt."),
            R::SigningAlgorithmMismatch => (BAD, "KMS.0332", "This key is not support the signing algorithm."),
            R::DigestLengthMismatch => (BAD, "KMS.0329", "Hash algorithm does not match the digest length."),
            R::AsymmetricAlgorithmMismatch => (BAD, "KMS.2106", "The rsa key not support this encryption algorithm."),
            R::PlaintextTooLong => (BAD, "KMS.2108", "The rsa encryption plain_text is over length."),
            R::PrivateKeyDecryptFailed => (BAD, "KMS.0311", "Failed to decrypt data using the RSA private key."),
            R::RandomLengthOutOfRange => (BAD, "KMS.1801", "random_data_length must be 512 bits."),
            R::RandomLengthNotMultipleOf8 => (BAD, "KMS.1802", "random_data_length must be a multiple of 8."),
            R::CiphertextLengthMismatch => {
                (BAD, "KMS.2204", "The length of cipher_text does not match datakey_cipher_length.")
            }
            R::ExternalCannotRotate => (BAD, "KMS.0312", "External keys cannot be rotated."),
            R::RsaCannotRotate => (BAD, "KMS.0324", "RSA keys cannot be rotated."),
            R::RotationNotDisabled => (BAD, "KMS.2901", "Key rotation is not disabled."),
            R::RotationNotEnabled => (BAD, "KMS.0313", "Key rotation is not enabled."),
            R::InvalidRotationInterval => (BAD, "KMS.3001", "Invalid rotation_interval."),
            R::TagListEmpty => (BAD, "KMS.0401", "Tag list cannot be empty."),
            R::InvalidMatchValue => (BAD, "KMS.0402", "Invalid match value."),
            R::InvalidMatchKey => (BAD, "KMS.0403", "Invalid match key."),
            R::InvalidAction => (BAD, "KMS.0404", "Invalid action."),
            R::InvalidTagValue => (BAD, "KMS.0405", "Invalid tag value."),
            R::InvalidTagKey => (BAD, "KMS.0406", "Invalid tag key."),
            R::InvalidTagListSize => (BAD, "KMS.0407", "Invalid tag list size."),
            R::TooManyTags => (BAD, "KMS.0409", "Too many tags."),
            R::TooManyTagValues => (BAD, "KMS.0413", "Too many tag values."),
            R::TagNotFound => (StatusCode::NOT_FOUND, "KMS.0416", "Invalid tag ID."),
            R::InvalidOffset => (BAD, "KMS.0417", "Invalid offset."),
            R::OffsetNotAllowed => (BAD, "KMS.0418", "Offset is not required."),
            R::GrantOnlyCreateGrant => (BAD, "KMS.2401", "Specify an operation in addition to create-grant."),
            R::InvalidPrincipal => (BAD, "KMS.2402", "Invalid user ID."),
            R::GrantQuota => (BAD, "KMS.2404", "Too many CMK grants."),
            R::GrantProjectQuota => (BAD, "KMS.2405", "Too many grants."),
            R::InvalidGrantId => (BAD, "KMS.2501", "Invalid grant ID."),
            R::GrantKeyMismatch => (BAD, "KMS.2502", "grant_id and key_id do not match."),
            R::NoPermission => (StatusCode::FORBIDDEN, "KMS.0306", "No access permissions."),
            R::ExternalKeyRequired => (BAD, "KMS.0309", "External keys required."),
            R::KeyNotPendingImport => (BAD, "KMS.0310", "The key is not in Pending import state."),
            R::ImportTokenExpired => (BAD, "KMS.2601", "Token expired."),
            R::ExpirationNotFuture => (BAD, "KMS.2602", "Key expiration time must be later than the current time."),
            R::ImportTokenKeyMismatch => (BAD, "KMS.2603", "Key IDs in the imported key and token do not match."),
            R::ImportMaterialLength => (BAD, "KMS.2604", "The external key plaintext length must be 32 bits."),
            R::ImportTokenInvalid => (BAD, "KMS.2605", "Token verification failed."),
            R::DifferentMaterial => (
                BAD,
                "KMS.2606",
                "You are importing a deleted key again. The imported plaintext must be the same as the deleted key \
                 plaintext.",
            ),
            R::MaterialNotDeletable => {
                (BAD, "KMS.2701", "Key material is not in Enabled or Disabled state and cannot be deleted.")
            }
            R::UnwrapFailed => (BAD, "KMS.0311", "Failed to decrypt data using the RSA private key."),
            // Undocumented: the closest documented code is the generic one.
            R::AliasNotFound | R::AliasLimit => (BAD, "KMS.0308", "Invalid parameter."),
        },
    }
}

/// HTTP status of "does not exist" errors. The official table says 400; the
/// live service may send 404 (csms-api.md §4.2) — one place to change it.
pub const CSMS_NOT_FOUND_STATUS: StatusCode = StatusCode::BAD_REQUEST;

/// Status, code and documented message of a CSMS failure (csms-api.md §4).
pub fn csms_error(fault: CsmsFault) -> (StatusCode, &'static str, &'static str) {
    use csms::ErrorReason as R;
    const BAD: StatusCode = StatusCode::BAD_REQUEST;
    match fault {
        CsmsFault::MalformedJson | CsmsFault::BadContentType => {
            (BAD, "CSMS.0004", "The requested body format is wrong.")
        }
        CsmsFault::ProjectMismatch => {
            (StatusCode::FORBIDDEN, "CSMS.0302", "The user role has no permission to access the project.")
        }
        CsmsFault::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "CSMS.0003", "The request is invalid."),
        CsmsFault::Service(reason) => match reason {
            R::Unspecified | R::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "CSMS.0001", "Internal error."),
            R::Unauthenticated => (StatusCode::UNAUTHORIZED, "APIGW.0301", "Incorrect IAM authentication information"),
            R::InvalidParameter | R::DuplicateName => (BAD, "CSMS.0002", "The value of parameter is invalid."),
            R::SecretNotFound => (CSMS_NOT_FOUND_STATUS, "CSMS.0106", "The secret name not found int the db."),
            R::ResourceNotFound => (CSMS_NOT_FOUND_STATUS, "CSMS.0005", "The resource does not exist."),
            R::SecretPendingDelete => (BAD, "CSMS.0103", "The secret is in the scheduled deletion state."),
            R::SecretNotEnabled => (StatusCode::FORBIDDEN, "CSMS.0109", "The secret state is not enabled."),
            R::SecretQuotaExceeded => (BAD, "CSMS.0202", "The number of secret has reached the upper limit."),
            R::EventQuotaExceeded => (BAD, "CSMS.0202", "The number of event has reached the upper limit."),
            R::StageLimit => (BAD, "CSMS.0203", "The number of stage has reached the upper limit."),
            R::TooManyStagesInRequest => (BAD, "CSMS.0204", "The number of stage is greater than the quota limit."),
            R::SystemStage => (BAD, "CSMS.0105", "Can not delete the system internal stage."),
            R::SecretAlreadyPendingDelete => (BAD, "CSMS.0107", "The secret is in schedule delete state."),
            R::SecretNotPendingDelete => (BAD, "CSMS.0108", "The secret is not in schedule delete state."),
            R::InvalidRequest => (BAD, "CSMS.0003", "The request is invalid."),
            R::KmsKeyUnusable => {
                (BAD, "CSMS.0401", "Can not get the protected secret value using the provided KMS key.")
            }
        },
    }
}

/// A CSMS error's message: parameter errors say which rule failed; other
/// messages are the documented text alone.
fn csms_message(fault: CsmsFault, documented: &str, detail: &str) -> String {
    let says_rule =
        matches!(fault, CsmsFault::Service(csms::ErrorReason::InvalidParameter | csms::ErrorReason::DuplicateName));
    if says_rule && !detail.is_empty() { format!("{documented} {detail}") } else { documented.to_owned() }
}

/// The `error_msg` a CSMS failure answers with (batch import lists one per
/// refused element).
pub fn csms_error_msg(fault: CsmsFault, detail: &str) -> String {
    csms_message(fault, csms_error(fault).2, detail)
}

fn gateway_body(status: StatusCode, code: &str, msg: String) -> Response {
    (status, Json(json!({"error_code": code, "error_msg": msg, "request_id": current_request_id()}))).into_response()
}

/// `response` with `Connection: close` (HTTP/1.1; hyper drops the header on
/// HTTP/2, where it is not allowed).
pub(crate) fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(why) => {
                tracing::info!(reason = %why, "authentication failed");
                metrics::counter!("opendew_auth_failures_total").increment(1);
                gateway_body(
                    StatusCode::UNAUTHORIZED,
                    "APIGW.0301",
                    format!("Incorrect IAM authentication information: {why}"),
                )
            }
            Self::Throttled(wait) => {
                metrics::counter!("opendew_auth_throttled_total").increment(1);
                let mut response = gateway_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "APIGW.0308",
                    "The throttling threshold has been reached: too many failed authentications".into(),
                );
                let seconds = wait.as_secs().max(1).to_string();
                response.headers_mut().insert(http::header::RETRY_AFTER, seconds.parse().expect("digits"));
                response
            }
            Self::Busy(why) => {
                metrics::counter!("opendew_http_busy_total").increment(1);
                let mut response = closing(gateway_body(
                    StatusCode::TOO_MANY_REQUESTS,
                    "APIGW.0308",
                    format!("The throttling threshold has been reached: {why}; retry later"),
                ));
                response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
                response
            }
            Self::RouteNotFound => gateway_body(
                StatusCode::NOT_FOUND,
                "APIGW.0101",
                "The API does not exist or has not been published in the environment".into(),
            ),
            // Both are answered before the body has been read, so the
            // connection cannot carry another request: saying so keeps a
            // pooling client from sending its next request on a connection
            // the server is closing (it saw IncompleteMessage).
            Self::TooLarge => {
                closing(gateway_body(StatusCode::PAYLOAD_TOO_LARGE, "APIGW.0201", "Request entity too large.".into()))
            }
            Self::SlowBody => closing(gateway_body(
                StatusCode::REQUEST_TIMEOUT,
                "APIGW.0201",
                "Request body not received in time.".into(),
            )),
            Self::Replayed => {
                metrics::counter!("opendew_replays_refused_total").increment(1);
                gateway_body(
                    StatusCode::UNAUTHORIZED,
                    "APIGW.0301",
                    "Incorrect IAM authentication information: this signed request was already served; sign it again"
                        .into(),
                )
            }
            Self::StoreUnavailable => gateway_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "APIGW.0503",
                "The service is temporarily unavailable; retry later".into(),
            ),
            Self::Kms { fault, detail } => {
                let (status, code, msg) = kms_error(fault);
                if status.is_server_error() {
                    tracing::error!(%detail, "kms request failed");
                } else if status == StatusCode::UNAUTHORIZED {
                    return gateway_body(status, code, format!("{msg}: {detail}"));
                }
                (status, Json(json!({"error": {"error_code": code, "error_msg": msg}}))).into_response()
            }
            Self::Csms { fault, detail, shape } => {
                let (status, code, msg) = csms_error(fault);
                if status.is_server_error() {
                    tracing::error!(%detail, "csms request failed");
                } else if status == StatusCode::UNAUTHORIZED {
                    return gateway_body(status, code, format!("{msg}: {detail}"));
                }
                let msg = csms_message(fault, msg, &detail);
                let body = json!({"error_code": code, "error_msg": msg});
                let body = match shape {
                    Shape::Flat => body,
                    Shape::Nested => json!({ "error": body }),
                };
                (status, Json(body)).into_response()
            }
            Self::Iam(status, message) => {
                let title = status.canonical_reason().unwrap_or("Error");
                (status, Json(json!({"error": {"code": status.as_u16(), "message": message, "title": title}})))
                    .into_response()
            }
        }
    }
}
