//! The settings of csms-service's background work, on their own so that
//! the modules that read them import no more than this.

/// The background work of csms-service: scheduled rotation, the expiry
/// watcher and notification delivery. Every replica runs all three; they
/// coordinate through the database (see [`crate::delivery`] and
/// [`crate::rotation`]).
#[derive(Debug, Clone, clap::Args)]
pub struct CsmsJobs {
    /// Seconds between scans for secrets whose automatic rotation is due.
    #[arg(long = "secret-rotation-check-seconds", env = "OPENDEW_CSMS_ROTATION_CHECK_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub rotation_check: std::time::Duration,
    /// The length of an hour in rotation periods, in ms; only tests shorten
    /// it, to watch scheduled rotations happen.
    #[arg(long = "secret-rotation-hour-ms", env = "OPENDEW_CSMS_ROTATION_HOUR_MS", default_value_t = 3_600_000,
          value_parser = clap::value_parser!(i64).range(1..), hide = true)]
    pub rotation_hour_ms: i64,
    /// Seconds between scans for versions whose expiry time has come
    /// (SECRET_VERSION_EXPIRED).
    #[arg(long = "secret-expiry-check-seconds", env = "OPENDEW_CSMS_EXPIRY_CHECK_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub expiry_check: std::time::Duration,
    /// Where notification records are delivered besides the record itself.
    #[command(flatten)]
    pub webhook: WebhookConfig,
}

impl Default for CsmsJobs {
    fn default() -> Self {
        Self {
            rotation_check: std::time::Duration::from_secs(60),
            rotation_hour_ms: 3_600_000,
            expiry_check: std::time::Duration::from_secs(60),
            webhook: WebhookConfig::default(),
        }
    }
}

/// An optional webhook that receives every notification record.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfig {
    /// POST each notification record, signed, to this http(s) URL (no
    /// credentials or query in it). Unset: records are only stored.
    #[arg(long = "notification-webhook-url", env = "OPENDEW_NOTIFICATION_WEBHOOK_URL")]
    pub url: Option<String>,
    /// File holding the HMAC-SHA256 key (at least 16 bytes) that signs
    /// webhook requests; required with the URL.
    #[arg(long = "notification-webhook-secret-file", env = "OPENDEW_NOTIFICATION_WEBHOOK_SECRET_FILE")]
    pub secret_file: Option<std::path::PathBuf>,
    /// PEM CA bundle to trust for an https webhook besides the public roots.
    #[arg(
        id = "notification_webhook_ca_file",
        long = "notification-webhook-ca-file",
        env = "OPENDEW_NOTIFICATION_WEBHOOK_CA_FILE"
    )]
    pub ca_file: Option<std::path::PathBuf>,
    /// Seconds a webhook has to answer.
    #[arg(long = "notification-webhook-timeout-seconds", env = "OPENDEW_NOTIFICATION_WEBHOOK_TIMEOUT_SECONDS",
          default_value = "5", value_parser = common::positive_seconds)]
    pub timeout: std::time::Duration,
    /// Attempts per record before it is marked FAIL.
    #[arg(long = "notification-max-attempts", env = "OPENDEW_NOTIFICATION_MAX_ATTEMPTS", default_value_t = 8,
          value_parser = clap::value_parser!(i32).range(1..=100))]
    pub max_attempts: i32,
    /// Milliseconds before the second attempt; doubling after each, at most
    /// five minutes.
    #[arg(long = "notification-retry-base-ms", env = "OPENDEW_NOTIFICATION_RETRY_BASE_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub retry_base_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret_file: None,
            ca_file: None,
            timeout: std::time::Duration::from_secs(5),
            max_attempts: 8,
            retry_base_ms: 1000,
        }
    }
}
