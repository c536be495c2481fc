//! What every service binary does around its own settings: the shared flags
//! (logs, metrics, shutdown grace, `--migrate-only`), then either migrate
//! and exit or serve until SIGTERM and drain.

use std::future::Future;

use clap::{CommandFactory, FromArgMatches};
use tokio_util::sync::CancellationToken;

use crate::{grpc::Running, metrics::MetricsConfig, telemetry::LogConfig};

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
    name: &'static str, about: &'static str, migrate: impl FnOnce(T) -> M,
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
    let shutdown = shutdown_on_signal();
    crate::metrics::start(&cli.metrics, shutdown.clone()).await?;
    let running = start(cli.service, shutdown.clone()).await?;
    run_until_stopped(running.task, shutdown, &cli.shutdown).await
}

/// The command line of a node agent (the KMS v2 plugin, the CSI
/// provider): its own settings `T` and logging. Agents have no database
/// and no metrics port; they serve a socket until SIGTERM.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct AgentCli<T: clap::Args> {
    /// The agent's own settings.
    #[command(flatten)]
    pub agent: T,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// Runs a node agent binary: parses [`AgentCli`], starts logging, and
/// `serve`s until SIGINT or SIGTERM.
pub async fn run_agent<T, S>(
    name: &'static str, about: &'static str, serve: impl FnOnce(T, CancellationToken) -> S,
) -> anyhow::Result<()>
where
    T: clap::Args + FromArgMatches,
    S: Future<Output = anyhow::Result<()>>,
{
    let command = AgentCli::<T>::command().name(name).bin_name(name).about(about);
    let cli = AgentCli::<T>::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    crate::telemetry::init(&cli.log);
    serve(cli.agent, shutdown_on_signal()).await
}

/// A token cancelled on SIGINT or SIGTERM: the one shutdown signal every
/// binary passes to its servers.
pub fn shutdown_on_signal() -> tokio_util::sync::CancellationToken {
    let token = tokio_util::sync::CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("install SIGTERM handler");
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        trigger.cancel();
    });
    token
}

/// How long a stopping process waits for in-flight requests.
#[derive(Debug, Clone, clap::Args)]
pub struct ShutdownConfig {
    /// Seconds to let in-flight requests finish after SIGTERM before exiting anyway.
    #[arg(long = "shutdown-grace-seconds", env = "OPENDEW_SHUTDOWN_GRACE_SECONDS", default_value_t = 30)]
    pub shutdown_grace_seconds: u64,
}

/// Waits for a server task; once `shutdown` fires, waits at most the grace
/// period for it to drain. A drain that runs out of time is logged, and the
/// process still exits cleanly: in-flight work past the grace is abandoned,
/// which is what the orchestrator's own kill would do a moment later.
pub async fn run_until_stopped(
    task: tokio::task::JoinHandle<anyhow::Result<()>>, shutdown: tokio_util::sync::CancellationToken,
    config: &ShutdownConfig,
) -> anyhow::Result<()> {
    let grace = std::time::Duration::from_secs(config.shutdown_grace_seconds);
    tokio::select! {
        result = task => result?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_seconds = config.shutdown_grace_seconds, "in-flight requests did not finish in time; exiting");
            Ok(())
        }
    }
}

/// The allocator of every opendew server binary, declared in the binary
/// crate (a library that set it would also set it for every test).
#[cfg(not(opendew_system_allocator))]
pub use mimalloc::MiMalloc as ServerAllocator;

/// A heap-profiling build (`RUSTFLAGS="--cfg opendew_system_allocator"`)
/// keeps the system allocator, whose calls valgrind's massif and DHAT
/// intercept; mimalloc's arenas would show only as mmap'd pages.
#[cfg(opendew_system_allocator)]
pub use std::alloc::System as ServerAllocator;

/// Declares [`ServerAllocator`] the global allocator; once per server binary.
#[macro_export]
macro_rules! allocator {
    () => {
        /// mimalloc rather than glibc's malloc (see the workspace manifest).
        #[global_allocator]
        static ALLOCATOR: $crate::binary::ServerAllocator = $crate::binary::ServerAllocator;
    };
}

/// The `main` of a service binary: [`run`] with the library's `migrate` and
/// start functions, and a test that the flags of `$config` and the shared
/// ones do not collide.
#[macro_export]
macro_rules! service_main {
    ($name:literal, $about:literal, $config:ty, $migrate:path, $start:path) => {
        $crate::allocator!();

        #[tokio::main]
        async fn main() -> anyhow::Result<()> {
            $crate::binary::run($name, $about, $migrate, $start).await
        }

        #[test]
        fn command_line_is_consistent() {
            $crate::binary::ServiceCli::<$config>::command_for($name, $about).debug_assert();
        }
    };
}
