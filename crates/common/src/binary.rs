//! What every service binary does around its own settings: the shared flags
//! (logs, metrics, shutdown grace, `--migrate-only`), then either migrate
//! and exit or serve until SIGTERM and drain.

use std::future::Future;

use clap::{CommandFactory, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::{ShutdownConfig, grpc::Running, metrics::MetricsConfig, telemetry::LogConfig};

/// The command line of a service binary: its own settings `T` and the
/// shared ones.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct ServiceCli<T: clap::Args> {
    /// The service's own settings.
    #[command(flatten)]
    pub service: T,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
    /// The Prometheus endpoint.
    #[command(flatten)]
    pub metrics: MetricsConfig,
    /// The shutdown grace period.
    #[command(flatten)]
    pub shutdown: ShutdownConfig,
    /// Apply the database migrations, then exit (run it as a Kubernetes
    /// init container or Job before a rollout).
    #[arg(long = "migrate-only", env = "OPENDEW_MIGRATE_ONLY")]
    pub migrate_only: bool,
}

impl<T: clap::Args> ServiceCli<T> {
    /// The command, named and described for one binary.
    pub fn command_for(name: &'static str, about: &'static str) -> clap::Command {
        Self::command().name(name).bin_name(name).about(about)
    }
}

/// Runs a service binary: parses [`ServiceCli`], starts logging, then
/// `migrate`s and exits under `--migrate-only`, or `start`s the service with
/// its metrics endpoint and serves until SIGTERM, draining within the grace.
pub async fn run<T, M, S>(
    name: &'static str,
    about: &'static str,
    migrate: impl FnOnce(T) -> M,
    start: impl FnOnce(T, CancellationToken) -> S,
) -> anyhow::Result<()>
where
    T: clap::Args + FromArgMatches,
    M: Future<Output = anyhow::Result<()>>,
    S: Future<Output = anyhow::Result<Running>>,
{
    let matches = ServiceCli::<T>::command_for(name, about).get_matches();
    let cli = ServiceCli::<T>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    crate::telemetry::init(&cli.log);
    if cli.migrate_only {
        migrate(cli.service).await?;
        tracing::info!(binary = name, "migrations applied");
        return Ok(());
    }
    let shutdown = crate::shutdown_on_signal();
    crate::metrics::start(&cli.metrics, shutdown.clone()).await?;
    let running = start(cli.service, shutdown.clone()).await?;
    crate::run_until_stopped(running.task, shutdown, &cli.shutdown).await
}
