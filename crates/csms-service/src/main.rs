//! The csms-service binary, for deployments that run each service apart.

common::service_main!(
    "csms-service",
    "opendew csms-service: secrets and their versions over gRPC.",
    csms_service::CsmsConfig,
    csms_service::migrate,
    csms_service::start
);
