//! The gateway binary, for deployments that run each service apart.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::binary::run(
        "gateway",
        "opendew gateway: the Huawei Cloud KMS and CSMS REST API.",
        // The gateway's database is the identity store.
        |gateway: gateway::GatewayConfig| async move { gateway::open_identity_store(&gateway).await.map(drop) },
        gateway::start,
    )
    .await
}

#[cfg(test)]
mod tests {
    /// Every flag has a unique name across the flattened settings.
    #[test]
    fn command_line_is_consistent() {
        common::binary::ServiceCli::<gateway::GatewayConfig>::command_for("gateway", "").debug_assert();
    }
}
