//! The kms-service binary, for deployments that run each service apart.

common::service_main!(
    "kms-service",
    "opendew kms-service: master keys and data keys over gRPC.",
    kms_service::KmsConfig,
    kms_service::migrate,
    kms_service::serve
);
