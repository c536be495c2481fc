//! The kms-service binary, for deployments that run each service apart.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::binary::run(
        "kms-service",
        "opendew kms-service: master keys and data keys over gRPC.",
        |kms: kms_service::KmsConfig| async move { kms_service::open_store(&kms.database_url()?, 1).await.map(drop) },
        |kms, shutdown| async move { Ok(kms_service::start(kms, shutdown).await?.running) },
    )
    .await
}

#[cfg(test)]
mod tests {
    /// Every flag has a unique name across the flattened settings.
    #[test]
    fn command_line_is_consistent() {
        common::binary::ServiceCli::<kms_service::KmsConfig>::command_for("kms-service", "").debug_assert();
    }
}
