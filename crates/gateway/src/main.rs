//! The gateway binary, for deployments that run each service apart.

use clap::Parser;

/// opendew gateway: the Huawei Cloud KMS and CSMS REST API.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    gateway: gateway::GatewayConfig,
    #[command(flatten)]
    log: common::telemetry::LogConfig,
    #[command(flatten)]
    metrics: common::metrics::MetricsConfig,
    #[command(flatten)]
    shutdown: common::ShutdownConfig,
    /// Apply the identity store's migrations, then exit (run it as a
    /// Kubernetes init container or Job before a rollout).
    #[arg(long = "migrate-only", env = "OPENDEW_MIGRATE_ONLY")]
    migrate_only: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    common::telemetry::init(&cli.log);
    if cli.migrate_only {
        gateway::open_identity_store(&cli.gateway).await?;
        tracing::info!("identity store migrations applied");
        return Ok(());
    }
    let shutdown = common::shutdown_on_signal();
    common::metrics::start(&cli.metrics, shutdown.clone()).await?;
    let running = gateway::start(cli.gateway, shutdown.clone()).await?;
    common::run_until_stopped(running.task, shutdown, &cli.shutdown).await
}

#[cfg(test)]
mod tests {
    /// Every flag has a unique name across the flattened settings.
    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
