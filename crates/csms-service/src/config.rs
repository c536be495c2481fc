//! csms-service's settings: flags and environment variables, with the
//! background work's on their own so that the modules that read them
//! import no more than [`CsmsJobs`].

use std::net::SocketAddr;

use common::db::DatabaseUrl;

/// Settings of csms-service.
#[derive(Debug, Clone, clap::Args)]
pub struct CsmsConfig {
    /// Database of csms-service: postgres://… (production) or sqlite://…?mode=rwc.
    #[arg(long = "csms-database-url", env = "OPENDEW_CSMS_DATABASE_URL")]
    pub database_url: DatabaseUrl,
    /// File whose first line is the database password (overrides one in the
    /// URL), e.g. a mounted Kubernetes Secret.
    #[arg(long = "csms-database-password-file", env = "OPENDEW_CSMS_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<std::path::PathBuf>,
    /// gRPC listen address.
    #[arg(long = "csms-listen", env = "OPENDEW_CSMS_LISTEN", default_value = "127.0.0.1:7102")]
    pub listen: SocketAddr,
    /// The probe port, break glass and mutual TLS (also for calls to
    /// kms-service).
    #[command(flatten)]
    pub serving: common::grpc::ServeFlags,
    /// gRPC endpoint of kms-service.
    #[arg(long = "kms-endpoint", env = "OPENDEW_KMS_ENDPOINT", default_value = "http://127.0.0.1:7101")]
    pub kms_endpoint: String,
    /// Maximum number of secrets per project.
    #[arg(long = "secret-quota", env = "OPENDEW_CSMS_SECRET_QUOTA", default_value_t = 200)]
    pub secret_quota: u64,
    /// Database connection pool size.
    #[arg(long = "csms-max-connections", env = "OPENDEW_CSMS_MAX_CONNECTIONS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Seconds between runs of the task that deletes secrets whose recovery
    /// window has ended.
    #[arg(long = "secret-purge-interval-seconds", env = "OPENDEW_CSMS_PURGE_INTERVAL_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub purge_interval: std::time::Duration,
    /// Rotation, expiry and notification tasks.
    #[command(flatten)]
    pub jobs: CsmsJobs,
}

impl CsmsConfig {
    /// The database URL with the password from --csms-database-password-file.
    pub fn database_url(&self) -> anyhow::Result<DatabaseUrl> {
        self.database_url
            .clone()
            .with_password_file(self.database_password_file.as_deref(), "--csms-database-password-file")
    }
}

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
    /// The key that opens registered database instances' administrator
    /// URLs (`opendew admin db-instance add` writes it). Without it, the
    /// rotation of a database secret fails with that reason.
    #[arg(long = "db-instance-key-file", env = "OPENDEW_DB_INSTANCE_KEY_FILE")]
    pub db_instance_key_file: Option<std::path::PathBuf>,
    /// Seconds after which a rotation that has not finished (its process
    /// died) may be taken over by the next attempt; longer than two calls
    /// to a database server (csms_service::databases::SERVER_TIMEOUT).
    #[arg(long = "secret-rotation-lease-seconds", env = "OPENDEW_CSMS_ROTATION_LEASE_SECONDS", default_value = "120",
          value_parser = common::positive_seconds)]
    pub rotation_lease: std::time::Duration,
    /// Rotations that may talk to one database instance at once (per
    /// replica); the scheduler runs up to four times this many in all.
    #[arg(long = "secret-rotations-per-instance", env = "OPENDEW_CSMS_ROTATIONS_PER_INSTANCE", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub rotations_per_instance: u32,
    /// Seconds between scans for versions whose expiry time has come
    /// (SECRET_VERSION_EXPIRED).
    #[arg(long = "secret-expiry-check-seconds", env = "OPENDEW_CSMS_EXPIRY_CHECK_SECONDS", default_value = "60",
          value_parser = common::positive_seconds)]
    pub expiry_check: std::time::Duration,
    /// Events per project (create_secret_event answers CSMS.0202 past it).
    #[arg(long = "event-quota", env = "OPENDEW_CSMS_EVENT_QUOTA", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub event_quota: u64,
    /// Where notification records are delivered besides the record itself.
    #[command(flatten)]
    pub webhook: WebhookConfig,
}

impl Default for CsmsJobs {
    fn default() -> Self {
        Self {
            rotation_check: std::time::Duration::from_secs(60),
            rotation_hour_ms: 3_600_000,
            db_instance_key_file: None,
            rotation_lease: std::time::Duration::from_secs(120),
            rotations_per_instance: 4,
            event_quota: 100,
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
    /// Address ranges outbound calls (the webhook) may reach although they
    /// are loopback, private, shared or link-local, comma-separated (e.g.
    /// `10.8.0.0/16`); everything else of those classes, and cloud metadata
    /// addresses, is refused (csms_service::outbound).
    #[arg(long = "outbound-allow-cidr", env = "OPENDEW_OUTBOUND_ALLOW_CIDRS", value_delimiter = ',')]
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Loopback allowed without a range: `opendew dev` only, so that local
    /// receivers work.
    #[arg(skip)]
    pub allow_loopback: bool,
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
            allow_cidrs: Vec::new(),
            allow_loopback: false,
            retry_base_ms: 1000,
        }
    }
}
