//! The csms-service binary, for deployments that run each service apart.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::binary::run(
        "csms-service",
        "opendew csms-service: secrets and their versions over gRPC.",
        |csms: csms_service::CsmsConfig| async move {
            csms_service::open_store(&csms.database_url()?, 1).await.map(drop)
        },
        csms_service::start,
    )
    .await
}

#[cfg(test)]
mod tests {
    /// Every flag has a unique name across the flattened settings.
    #[test]
    fn command_line_is_consistent() {
        common::binary::ServiceCli::<csms_service::CsmsConfig>::command_for("csms-service", "").debug_assert();
    }
}
