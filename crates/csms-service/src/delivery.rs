//! Delivery of notification records to a sink, in the background.
//!
//! A firing is written as a `PENDING` record in the transaction of the
//! change that caused it (the outbox; see the store). Every replica runs
//! [`spawn`]: it claims due records with a lease (two replicas never take
//! one record at once; a replica that dies mid-delivery leaves a lease
//! that runs out, and the record is tried again), hands each to the
//! [`NotificationSink`], and settles it: `SUCCESS`, a retry with
//! exponential backoff, or `FAIL` after the last attempt. The API call that
//! fired the event only wakes the task; it never waits for a sink.
//!
//! The default sink is the record itself (there is no SMN here). With
//! `--notification-webhook-url` each record is also POSTed, as JSON, to an
//! operator's endpoint, signed with HMAC-SHA256 under the key in
//! `--notification-webhook-secret-file` (see [`WebhookSink`] for the
//! headers). Delivery is at least once: receivers deduplicate by the
//! `X-Opendew-Delivery` id.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use hmac::{Hmac, Mac};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    config::WebhookConfig,
    domain::events::NotificationRecord,
    store::{Delivery, SecretStore},
};

/// Where notification records go once written.
#[async_trait::async_trait]
pub trait NotificationSink: Send + Sync + std::fmt::Debug + 'static {
    /// Delivers one record; an error is retried with backoff.
    async fn deliver(&self, record: &NotificationRecord) -> Result<(), String>;
}

/// The default sink: the stored record is the notification.
#[derive(Debug)]
pub struct RecordSink;

#[async_trait::async_trait]
impl NotificationSink for RecordSink {
    async fn deliver(&self, _: &NotificationRecord) -> Result<(), String> {
        Ok(())
    }
}

/// POSTs each record as JSON to one URL. Headers:
/// `X-Opendew-Delivery` (the record id), `X-Opendew-Event` (the type),
/// `X-Opendew-Timestamp` (ms) and `X-Opendew-Signature: v1=<hex>`, the
/// HMAC-SHA256 of `<timestamp>.<body>` under the webhook key. Any 2xx is
/// success; anything else, or no answer within the timeout, is retried.
pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    key: zeroize::Zeroizing<Vec<u8>>,
    /// Deliveries in flight to the endpoint at once.
    slots: tokio::sync::Semaphore,
}

/// Deliveries to one endpoint at once.
const PER_ENDPOINT: usize = 8;

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink").field("url", &redacted(&self.url)).finish_non_exhaustive()
    }
}

/// Scheme, host and port only: a URL's path may still carry a token
/// someone put there against advice.
fn redacted(url: &reqwest::Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

/// The JSON a webhook receives.
#[derive(Debug, Serialize)]
struct WebhookBody<'a> {
    id: &'a str,
    project_id: &'a str,
    event_name: &'a str,
    trigger_event_type: &'a str,
    secret_name: &'a str,
    secret_type: &'a str,
    notification_target_id: &'a str,
    notification_target_name: &'a str,
    create_time: i64,
    attempt: i32,
    notification_content: serde_json::Value,
}

/// The signature header's value for `body` sent at `timestamp_ms`.
pub fn signature(key: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookSink {
    /// A sink for the configured URL, key and CA.
    pub fn new(config: &WebhookConfig, url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url).context("--notification-webhook-url is not a URL")?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "--notification-webhook-url must be http:// or https://"
        );
        anyhow::ensure!(
            url.username().is_empty() && url.password().is_none() && url.query().is_none(),
            "--notification-webhook-url must not carry credentials or a query (the requests are signed instead)"
        );
        let key_file = config
            .secret_file
            .as_deref()
            .context("--notification-webhook-url needs --notification-webhook-secret-file (the signing key)")?;
        let key = zeroize::Zeroizing::new(
            std::fs::read(key_file).with_context(|| format!("reading {}", key_file.display()))?,
        );
        let key = zeroize::Zeroizing::new(key.trim_ascii().to_vec());
        anyhow::ensure!(key.len() >= 16, "the webhook signing key must be at least 16 bytes");
        // Resolved once per connection, through the outbound policy: the
        // address checked is the address connected to.
        let policy = crate::outbound::OutboundPolicy {
            allowed: config.allow_cidrs.clone(),
            allow_loopback: config.allow_loopback,
        };
        if let Err(class) = policy.check_url(&url) {
            anyhow::bail!("--notification-webhook-url names {class}; allow its range with --outbound-allow-cidr");
        }
        let mut client = reqwest::Client::builder()
            .dns_resolver(Arc::new(crate::outbound::PolicyResolver(Arc::new(policy))))
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("opendew-csms/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            client =
                client.add_root_certificate(reqwest::Certificate::from_pem(&pem).context("parsing the webhook CA")?);
        }
        let client = client.build().context("building the webhook client")?;
        Ok(Self { client, url, key, slots: tokio::sync::Semaphore::new(PER_ENDPOINT) })
    }
}

#[async_trait::async_trait]
impl NotificationSink for WebhookSink {
    async fn deliver(&self, r: &NotificationRecord) -> Result<(), String> {
        let body = serde_json::to_vec(&WebhookBody {
            id: &r.id,
            project_id: &r.project_id,
            event_name: &r.event_name,
            trigger_event_type: &r.event_type,
            secret_name: &r.secret_name,
            secret_type: &r.secret_type,
            notification_target_id: &r.target_id,
            notification_target_name: &r.target_name,
            create_time: r.create_ms,
            attempt: r.attempts,
            notification_content: serde_json::from_str(&r.content).unwrap_or(serde_json::Value::Null),
        })
        .expect("the body serialises");
        let _slot = self.slots.acquire().await.map_err(|_| "the sink is closed".to_owned())?;
        let timestamp = common::now_ms();
        let answer = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("x-opendew-delivery", &r.id)
            .header("x-opendew-event", &r.event_type)
            .header("x-opendew-timestamp", timestamp.to_string())
            .header("x-opendew-signature", signature(&self.key, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else if let Some(refused) = refusal(&e) {
                    refused
                } else {
                    "connection failed".to_owned()
                }
            })?;
        let status = answer.status();
        if status.is_success() { Ok(()) } else { Err(format!("answered HTTP {}", status.as_u16())) }
    }
}

/// The outbound policy's refusal inside a connection error, if that is why
/// it failed (the message names the address class, never the URL).
fn refusal(e: &reqwest::Error) -> Option<String> {
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let text = inner.to_string();
        if text.contains("(refused)") {
            return Some(
                text.rsplit_once(" resolves to ").map_or(text.clone(), |(_, why)| format!("resolves to {why}")),
            );
        }
        source = inner.source();
    }
    None
}

/// How the delivery task runs.
#[derive(Debug, Clone)]
pub struct DeliverySchedule {
    /// Between scans when nothing wakes the task.
    pub interval: Duration,
    /// Attempts before a record is `FAIL`.
    pub max_attempts: i32,
    /// Wait before the second attempt; doubles after each, up to 5 min.
    pub retry_base: Duration,
    /// How long a claim lasts (a delivery's longest run, with margin).
    pub lease: Duration,
}

impl DeliverySchedule {
    /// When the next attempt is due after `attempts` failed ones.
    fn retry_at(&self, now_ms: i64, attempts: i32) -> i64 {
        let base = self.retry_base.as_millis() as i64;
        let exp = base.saturating_mul(1_i64 << (attempts - 1).clamp(0, 20));
        let capped = exp.min(300_000);
        // Up to 10% jitter, so that replicas' retries do not align.
        now_ms + capped + rand::random::<u64>().checked_rem((capped / 10).max(1) as u64).unwrap_or(0) as i64
    }
}

/// The sink the settings name: the record itself, or a webhook too.
pub fn sink(config: &WebhookConfig) -> anyhow::Result<Arc<dyn NotificationSink>> {
    Ok(match &config.url {
        None => Arc::new(RecordSink),
        Some(url) => Arc::new(WebhookSink::new(config, url)?),
    })
}

/// The delivery task's schedule for the settings.
pub fn schedule(config: &WebhookConfig) -> DeliverySchedule {
    DeliverySchedule {
        interval: Duration::from_secs(1),
        max_attempts: config.max_attempts,
        retry_base: Duration::from_millis(config.retry_base_ms),
        lease: config.timeout * 2 + Duration::from_secs(10),
    }
}

/// Records claimed per scan.
const BATCH: u32 = 32;

/// Records of one project claimed per scan: a project creating versions in
/// a loop on a subscribed secret delays another's notifications by no more
/// than one batch.
const BATCH_PER_PROJECT: u32 = 8;

/// Runs the delivery task until `shutdown`.
pub fn spawn(
    store: Arc<dyn SecretStore>, sink: Arc<dyn NotificationSink>, schedule: DeliverySchedule,
    wake: Arc<tokio::sync::Notify>, shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(schedule.interval) => {}
            }
            // Drain what is due, a batch at a time (claimed records are
            // leased, so each batch takes new ones).
            loop {
                match deliver_batch(&*store, &*sink, &schedule).await {
                    Ok(0) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification delivery failed; retrying next interval");
                        break;
                    }
                }
            }
        }
    });
}

/// Claims, delivers (concurrently) and settles one batch; returns its size.
async fn deliver_batch(
    store: &dyn SecretStore, sink: &dyn NotificationSink, schedule: &DeliverySchedule,
) -> Result<usize, crate::store::StoreError> {
    let now = store.clock_ms().await?;
    let claimed = store.claim_deliveries(now, schedule.lease.as_millis() as i64, BATCH, BATCH_PER_PROJECT).await?;
    let n = claimed.len();
    let attempts = claimed.iter().map(|record| async move { (record, sink.deliver(record).await) });
    // At most BATCH deliveries at once, each bounded by the sink's timeout.
    for (record, result) in futures::future::join_all(attempts).await {
        let outcome = match result {
            Ok(()) => Delivery::Delivered,
            Err(error) if record.attempts >= schedule.max_attempts => Delivery::Failed { error },
            Err(error) => Delivery::Retry { at_ms: schedule.retry_at(common::now_ms(), record.attempts), error },
        };
        let label = match &outcome {
            Delivery::Delivered => "delivered",
            Delivery::Retry { .. } => "retry",
            Delivery::Failed { .. } => "failed",
        };
        metrics::counter!("opendew_csms_notifications_total", "outcome" => label).increment(1);
        if let Delivery::Retry { error, .. } | Delivery::Failed { error } = &outcome {
            tracing::info!(record_id = %record.id, attempt = record.attempts, %error, outcome = label, "notification not delivered");
        }
        store.settle_delivery(&record.id, &outcome).await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let a = signature(b"0123456789abcdef", 1, b"{}");
        assert_eq!(a, signature(b"0123456789abcdef", 1, b"{}"));
        assert_ne!(a, signature(b"0123456789abcdef", 2, b"{}"));
        assert_ne!(a, signature(b"0123456789abcdef", 1, b"{ }"));
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
    }

    /// A loopback receiver answering 200 to every request; counts them.
    async fn receiver() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
            }
        });
        (addr, seen)
    }

    fn record() -> NotificationRecord {
        NotificationRecord {
            id: "r1".into(),
            project_id: "p".into(),
            event_name: "e".into(),
            event_type: "SECRET_DELETED".into(),
            secret_name: "s".into(),
            secret_type: "COMMON".into(),
            target_id: "urn:smn:r:p:t".into(),
            target_name: "t".into(),
            content: "{}".into(),
            status: "PENDING".into(),
            create_ms: 1,
            attempts: 1,
        }
    }

    /// In production a webhook on loopback is refused: named by address at
    /// start, by name at delivery, before any connection; `opendew dev`'s
    /// policy reaches it.
    #[tokio::test]
    async fn loopback_webhooks_are_refused_outside_dev() {
        let (addr, seen) = receiver().await;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("webhook.key");
        std::fs::write(&key, "0123456789abcdef0123").unwrap();
        let config = WebhookConfig { secret_file: Some(key), ..WebhookConfig::default() };
        let literal = WebhookSink::new(&config, &format!("http://{addr}/hook")).unwrap_err().to_string();
        assert!(literal.contains("loopback"), "{literal}");
        let by_name = WebhookSink::new(&config, &format!("http://localhost:{}/hook", addr.port())).unwrap();
        let refused = by_name.deliver(&record()).await.unwrap_err();
        assert!(refused.contains("loopback"), "{refused}");
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0, "no connection was made");
        let dev = WebhookConfig { allow_loopback: true, ..config };
        let sink = WebhookSink::new(&dev, &format!("http://localhost:{}/hook", addr.port())).unwrap();
        sink.deliver(&record()).await.unwrap();
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        let s = DeliverySchedule {
            interval: Duration::from_secs(1),
            max_attempts: 8,
            retry_base: Duration::from_millis(1000),
            lease: Duration::from_secs(30),
        };
        let first = s.retry_at(0, 1);
        let third = s.retry_at(0, 3);
        assert!((1000..1100).contains(&first), "{first}");
        assert!((4000..4400).contains(&third), "{third}");
        assert!(s.retry_at(0, 30) <= 330_000);
    }
}
