//! Plumbing shared by opendew's services: the glue every service needs in
//! the same shape (caller identity on gRPC metadata, database URLs and
//! dialects, serving gRPC with health and reflection, the background
//! loops, telemetry and the metrics endpoint). No rule of keys or secrets
//! lives here: where both services do the same thing to their own
//! resources (tags, purges, error statuses), this holds the machinery and
//! each service supplies its rules, names and codes.

pub mod binary;
#[cfg(feature = "sql")]
pub mod db;
pub mod group;
pub mod grpc;
pub mod identity;
pub mod metrics;
pub mod pages;
#[cfg(feature = "sql")]
pub mod purge;
pub mod socket;
pub mod tags;
pub mod telemetry;

pub use binary::{ShutdownConfig, run_until_stopped, shutdown_on_signal};
#[cfg(feature = "sql")]
pub use purge::Ticker;

/// A command-line duration: a whole number of seconds, at least one.
pub fn positive_seconds(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(std::time::Duration::from_secs(n)),
        _ => Err(format!("{text:?} is not a whole number of seconds of at least 1")),
    }
}

/// Milliseconds since the Unix epoch, the unit every opendew timestamp uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
