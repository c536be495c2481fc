//! The gateway binary, for deployments that run each service apart.

common::service_main!(
    "gateway",
    "opendew gateway: the Huawei Cloud KMS and CSMS REST API.",
    gateway::GatewayConfig,
    gateway::migrate,
    gateway::start
);
