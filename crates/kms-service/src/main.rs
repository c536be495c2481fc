//! The kms-service binary, for deployments that run each service apart.

use clap::Parser;

/// opendew kms-service: master keys and data keys over gRPC.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    kms: kms_service::KmsConfig,
    #[command(flatten)]
    log: common::telemetry::LogConfig,
    #[command(flatten)]
    metrics: common::metrics::MetricsConfig,
    #[command(flatten)]
    shutdown: common::ShutdownConfig,
    /// Apply the database migrations, then exit (run it as a Kubernetes
    /// init container or Job before a rollout).
    #[arg(long = "migrate-only", env = "OPENDEW_MIGRATE_ONLY")]
    migrate_only: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    common::telemetry::init(&cli.log);
    if cli.migrate_only {
        kms_service::open_store(&cli.kms.database_url()?, 1).await?;
        tracing::info!("kms-service migrations applied");
        return Ok(());
    }
    let shutdown = common::shutdown_on_signal();
    common::metrics::start(&cli.metrics, shutdown.clone()).await?;
    let started = kms_service::start(cli.kms, shutdown.clone()).await?;
    common::run_until_stopped(started.running.task, shutdown, &cli.shutdown).await
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
