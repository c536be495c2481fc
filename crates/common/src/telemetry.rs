//! One place that sets up logging for every binary.
//!
//! Fields that could carry key material, secret values, SKs or tokens are
//! never recorded; services log ids and outcomes only.

use clap::ValueEnum;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging settings shared by every binary.
#[derive(Debug, Clone, clap::Args)]
pub struct LogConfig {
    /// Log filter in `tracing` EnvFilter syntax, e.g. `info,kms_service=debug`.
    #[arg(long = "log-filter", env = "OPENDEW_LOG", default_value = "info")]
    pub filter: String,
    /// Log line format.
    #[arg(long = "log-format", env = "OPENDEW_LOG_FORMAT", value_enum, default_value_t)]
    pub format: LogFormat,
}

/// Installs the global subscriber. Safe to call more than once (later calls
/// do nothing), which tests rely on.
pub fn init(config: &LogConfig) {
    let filter = EnvFilter::try_new(&config.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match config.format {
        // Colours only on a terminal, so redirected logs stay parseable.
        LogFormat::Text => registry
            .with(fmt::layer().with_target(true).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())))
            .try_init(),
        LogFormat::Json => registry.with(fmt::layer().json().flatten_event(true)).try_init(),
    };
}

/// For tests: logs to the test writer only when `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::registry()
            .with(EnvFilter::from_default_env())
            .with(fmt::layer().with_test_writer())
            .try_init();
    }
}
