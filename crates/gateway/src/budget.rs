//! What request bodies may cost: the reading budget before a request is
//! authenticated, and the memory permit after.
//!
//! **Reading.** Body bytes are charged to the reading budget as they
//! arrive, never for what a `Content-Length` declares: eight connections
//! that declared 12 MB and sent nothing once reserved the whole budget for
//! the 60 s body timeout and shut the signed API for everyone (issue #40).
//! A request without a body reserves nothing. One connection may hold at
//! most the largest route's limit, one client host (an IPv4 address, an
//! IPv6 /64) at most its share, and everything together the budget; past
//! any of them the request is refused at once ([`ApiError::Busy`]) and the
//! connection closed. Authentication checks what it can before any byte of
//! the body is read (a known AK, an in-window `X-Sdk-Date`, a valid token:
//! `auth`), so a stranger reserves nothing at all.
//!
//! **Memory.** Once the caller is known, the request trades its reading
//! reservation for a memory permit sized by what handling the body can
//! cost ([`crate::json::cost`]: the buffer, its parse, its copies), held
//! until the handler returns. Authenticated bodies are bounded per route
//! (`ApiRoute::body_limit`, from the constants below); the permits bound how many of
//! them are in the process at once, so a burst of large signed requests
//! waits for room instead of growing the heap past the pod's limit.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::body::{Body, Bytes};
use http::request::Parts;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{connections::Connection, error::ApiError};

const MIB: usize = 1024 * 1024;

/// The largest body of a KMS request: KMS bodies are kilobytes (4 KiB of
/// plaintext or message, a wrapped private key, a page of tags).
pub const KMS_BODY: usize = 64 * 1024;

/// The largest body of a CSMS request but restore: a value of at most
/// 32 KiB (csms-api.md), which JSON's `\uXXXX` escapes may make six times
/// longer, with room for the other fields; or a batch of a thousand
/// resources.
pub const CSMS_BODY: usize = 256 * 1024;

/// The largest body of an IAM request (a login, temporary credentials).
pub const IAM_BODY: usize = 16 * 1024;

/// The restore route's body: a backup blob of at most 5 MiB characters
/// (csms-service's `MAX_BLOB_LEN`) and its JSON.
pub const RESTORE_BODY: usize = 6 * 1024 * 1024;

/// The largest body any route reads; also what one connection may hold of
/// the reading budget (this module).
pub const LARGEST_BODY: usize = RESTORE_BODY;

/// The budgets' sizes.
#[derive(Debug, Clone, clap::Args)]
pub struct BudgetConfig {
    /// MiB of request bodies the gateway reads at once before their
    /// requests are authenticated.
    #[arg(long = "http-reading-budget-mib", env = "OPENDEW_HTTP_READING_BUDGET_MIB", default_value_t = 48,
          value_parser = clap::value_parser!(u32).range(8..))]
    pub reading_mib: u32,
    /// MiB of that one client host may hold.
    #[arg(long = "http-reading-budget-per-address-mib", env = "OPENDEW_HTTP_READING_BUDGET_PER_ADDRESS_MIB",
          default_value_t = 12, value_parser = clap::value_parser!(u32).range(7..))]
    pub reading_per_host_mib: u32,
    /// MiB that authenticated requests in flight may cost together (their
    /// bodies, parsed and copied); more wait for room.
    #[arg(long = "http-memory-budget-mib", env = "OPENDEW_HTTP_MEMORY_BUDGET_MIB", default_value_t = 96,
          value_parser = clap::value_parser!(u32).range(32..))]
    pub memory_mib: u32,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self { reading_mib: 48, reading_per_host_mib: 12, memory_mib: 96 }
    }
}

/// How long an authenticated request waits for memory before 429.
const MEMORY_WAIT: Duration = Duration::from_secs(10);

/// The budgets of one gateway.
#[derive(Debug)]
pub struct Budgets {
    reading: Semaphore,
    per_host: usize,
    by_host: Mutex<HashMap<IpAddr, usize>>,
    memory: Arc<Semaphore>,
    memory_total: usize,
}

impl Budgets {
    /// Budgets of the configured sizes.
    pub fn new(config: &BudgetConfig) -> Self {
        let memory_total = config.memory_mib as usize * MIB;
        Self {
            reading: Semaphore::new(config.reading_mib as usize * MIB),
            per_host: config.reading_per_host_mib as usize * MIB,
            by_host: Mutex::default(),
            memory: Arc::new(Semaphore::new(memory_total)),
            memory_total,
        }
    }

    /// A reservation that holds nothing yet, for a request on `conn`.
    pub fn reading(&self, conn: Option<Arc<Connection>>) -> Reading<'_> {
        Reading { budgets: self, conn, bytes: 0 }
    }

    /// A memory permit of `cost` bytes (at most the whole budget), waiting
    /// up to `MEMORY_WAIT` for room.
    pub async fn memory(&self, cost: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        self.memory_within(cost, MEMORY_WAIT).await
    }

    async fn memory_within(&self, cost: usize, patience: Duration) -> Result<OwnedSemaphorePermit, ApiError> {
        let cost = cost.min(self.memory_total) as u32;
        let wait = self.memory.clone().acquire_many_owned(cost);
        match tokio::time::timeout(patience, wait).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                metrics::counter!("opendew_http_memory_waits_expired_total").increment(1);
                Err(ApiError::Busy("too many large requests are in progress"))
            }
        }
    }

    /// Bytes of the reading budget free now (for tests and metrics).
    pub fn reading_available(&self) -> usize {
        self.reading.available_permits()
    }
}

/// Body bytes a request holds of the reading budget; given back on drop.
#[derive(Debug)]
pub struct Reading<'a> {
    budgets: &'a Budgets,
    conn: Option<Arc<Connection>>,
    bytes: usize,
}

impl Reading<'_> {
    /// Charges `n` more bytes to the connection, its host and the budget,
    /// or charges nothing and says which is full.
    fn take(&mut self, n: usize) -> Result<(), ApiError> {
        use std::sync::atomic::Ordering;
        if let Some(conn) = &self.conn {
            let held = conn.body_bytes.fetch_add(n, Ordering::AcqRel) + n;
            if held > LARGEST_BODY {
                conn.body_bytes.fetch_sub(n, Ordering::AcqRel);
                return Err(refused("too many request bodies are being received on this connection"));
            }
            let mut by_host = self.budgets.by_host.lock().expect("reading budget lock");
            let host = by_host.entry(conn.host()).or_insert(0);
            if *host + n > self.budgets.per_host {
                conn.body_bytes.fetch_sub(n, Ordering::AcqRel);
                if *host == 0 {
                    by_host.remove(&conn.host());
                }
                return Err(refused("too many request bodies are being received from this address"));
            }
            *host += n;
        }
        match self.budgets.reading.try_acquire_many(n as u32) {
            Ok(permit) => permit.forget(),
            Err(_) => {
                self.give_back_shares(n);
                return Err(refused("too many request bodies are being received"));
            }
        }
        self.bytes += n;
        Ok(())
    }

    fn give_back_shares(&self, n: usize) {
        use std::sync::atomic::Ordering;
        let Some(conn) = &self.conn else { return };
        conn.body_bytes.fetch_sub(n, Ordering::AcqRel);
        let mut by_host = self.budgets.by_host.lock().expect("reading budget lock");
        if let Some(host) = by_host.get_mut(&conn.host()) {
            *host -= n;
            if *host == 0 {
                by_host.remove(&conn.host());
            }
        }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.give_back_shares(self.bytes);
            self.budgets.reading.add_permits(self.bytes);
        }
    }
}

fn refused(why: &'static str) -> ApiError {
    metrics::counter!("opendew_http_reading_refused_total").increment(1);
    ApiError::Busy(why)
}

/// Reads a request's body of at most `limit` bytes within `timeout`,
/// charging its bytes to the reading budget (and the request's connection
/// and host) as they arrive; the reservation is held until the returned
/// [`Reading`] is dropped.
pub async fn read_body<'a>(
    budgets: &'a Budgets, parts: &Parts, body: Body, limit: usize, timeout: Duration,
) -> Result<(Bytes, Reading<'a>), ApiError> {
    let declared = within_limit(parts, limit)?;
    let mut reading = budgets.reading(parts.extensions.get::<Arc<Connection>>().cloned());
    let read = tokio::time::timeout(timeout, collect(&mut reading, body, declared, limit)).await;
    Ok((read.map_err(|_| ApiError::SlowBody)??, reading))
}

/// The body length the request declares, if any; 413 if it is past
/// `limit` or unreadable.
pub fn within_limit(parts: &Parts, limit: usize) -> Result<Option<usize>, ApiError> {
    let declared = match parts.headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => Some(v.to_str().ok().and_then(|v| v.trim().parse::<usize>().ok()).ok_or(ApiError::TooLarge)?),
        None => None,
    };
    if declared.is_some_and(|declared| declared > limit) {
        return Err(ApiError::TooLarge);
    }
    Ok(declared)
}

/// Bodies up to this size are read into the heap; larger ones into a
/// mapping of their own.
const HEAP_BODY_BYTES: usize = 64 * 1024;

/// The body's bytes, read once into one buffer.
///
/// Small bodies (every hot-path request) go into a heap buffer of the
/// declared size (or the limit, for a chunked body), allocated and charged
/// in full when the first bytes arrive. Larger ones go into an anonymous
/// mapping of that size, charged as bytes arrive: the kernel backs only the
/// pages written and takes them all back when the request is done. On the
/// heap, glibc kept freed 12 MB buffers in its arenas, and a flood of them
/// left the peak 100 MiB past the budget and climbing; axum's `to_bytes`
/// also held each body twice while joining its frames
/// (`tests/dev_binary.rs`, `floods_leave_peak_memory_bounded`).
async fn collect(
    reading: &mut Reading<'_>, body: Body, declared: Option<usize>, limit: usize,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let size = declared.unwrap_or(limit).min(limit);
    if size == 0 {
        return Ok(Bytes::new());
    }
    if size <= HEAP_BODY_BYTES {
        let mut buffer = bytes::BytesMut::new();
        // Allocated (and charged) when the first bytes arrive.
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.map_err(|_| ApiError::TooLarge)?.data_ref() {
                if data.is_empty() {
                    continue;
                }
                if buffer.len() + data.len() > size {
                    return Err(ApiError::TooLarge);
                }
                if buffer.capacity() == 0 {
                    reading.take(size)?;
                    buffer = bytes::BytesMut::with_capacity(size);
                }
                buffer.extend_from_slice(data);
            }
        }
        return Ok(buffer.freeze());
    }
    let mut mapping: Option<memmap2::MmapMut> = None;
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.map_err(|_| ApiError::TooLarge)?.data_ref() {
            let end = len + data.len();
            if end > size {
                return Err(ApiError::TooLarge);
            }
            if data.is_empty() {
                continue;
            }
            reading.take(data.len())?;
            let mapping = match &mut mapping {
                Some(mapping) => mapping,
                None => mapping.insert(memmap2::MmapMut::map_anon(size).map_err(|_| ApiError::TooLarge)?),
            };
            mapping[len..end].copy_from_slice(data);
            len = end;
        }
    }
    Ok(match mapping {
        Some(mapping) => Bytes::from_owner(MappedBody { mapping, len }),
        None => Bytes::new(),
    })
}

/// A body in its own mapping, `len` bytes of it written.
struct MappedBody {
    mapping: memmap2::MmapMut,
    len: usize,
}

impl AsRef<[u8]> for MappedBody {
    fn as_ref(&self) -> &[u8] {
        &self.mapping[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets() -> Budgets {
        Budgets::new(&BudgetConfig { reading_mib: 8, reading_per_host_mib: 7, memory_mib: 32 })
    }

    #[test]
    fn a_reading_gives_back_what_it_took() {
        let budgets = budgets();
        let full = budgets.reading_available();
        {
            let mut reading = budgets.reading(None);
            reading.take(1000).unwrap();
            reading.take(24).unwrap();
            assert_eq!(budgets.reading_available(), full - 1024);
            assert!(reading.take(8 * MIB).is_err(), "past the budget");
            assert_eq!(budgets.reading_available(), full - 1024, "a refusal charges nothing");
        }
        assert_eq!(budgets.reading_available(), full);
    }

    #[tokio::test]
    async fn memory_permits_wait_for_room_and_expire() {
        let budgets = Arc::new(budgets());
        let all = budgets.memory(usize::MAX).await.unwrap();
        let waiting = tokio::spawn({
            let budgets = budgets.clone();
            async move { budgets.memory_within(1, Duration::from_secs(5)).await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "no room while the budget is held");
        drop(all);
        assert!(waiting.await.unwrap().is_ok(), "room again once the permit is dropped");
        let _all = budgets.memory(usize::MAX).await.unwrap();
        let expired = budgets.memory_within(1, Duration::from_millis(100)).await;
        assert!(matches!(expired, Err(ApiError::Busy(_))), "refused once its patience is out");
    }
}
