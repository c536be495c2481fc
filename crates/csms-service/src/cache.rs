//! The read path's memory: show-secret-version answers from here when
//! nothing changed, without a database round trip or a kms-service call.
//!
//! Two maps, each bounded (see docs/design/secrets.md, "Secret read cache"):
//!
//! - **reads**: (project, name, `latest` or a version number) → the secret's
//!   row and that version as stored (value still sealed). An entry is
//!   trusted only while its secret's *generation* is the one it was loaded
//!   under. Every committed write that changes what a read returns tells
//!   the store's change feed the secret's id (this process's own writes at
//!   once after the commit, every replica's through Postgres
//!   `LISTEN`/`NOTIFY` milliseconds later), and that drops the generation:
//!   every entry of the secret, under any name or selector, is dead at
//!   once. A load that overlapped an invalidation is not kept (epoch
//!   check), a feed that lost its connection empties and bypasses the map
//!   until it is back, and entries expire after [`READ_TTL`] regardless.
//! - **data keys**: (secret id, version) → the version's unwrapped data
//!   key, for at most [`DATA_KEY_TTL`] (under a second) after kms-service
//!   last agreed to unwrap it. A disabled or deleted KMS key therefore stops
//!   every read within a second, as kms-service's own cache guarantees for
//!   its callers; the keys are [`Zeroizing`] and wiped when they expire
//!   (a sweeper evicts them even when no request comes).
//!
//! Neither map holds a secret's plaintext value.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use common::db::FeedEvent;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use crate::domain::{SecretRecord, VersionRecord};

/// How long a read entry is trusted without a change notification: the
/// backstop against anything unforeseen, as the key cache's.
pub const READ_TTL: Duration = Duration::from_secs(30);

/// How long an unwrapped data key is reused: a KMS key disabled or deleted
/// in kms-service stops reads here within this bound.
pub const DATA_KEY_TTL: Duration = Duration::from_millis(900);

/// Bytes of stored versions (ciphertexts and wrapped keys) the read map
/// may hold.
pub const READ_CAPACITY_BYTES: u64 = 32 * 1024 * 1024;

/// Unwrapped data keys held at most (32 bytes each).
pub const DATA_KEY_CAPACITY: u64 = 10_000;

/// Which version a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selector {
    /// `latest`: the `SYSCURRENT` version.
    Current,
    /// `v<n>`.
    Number(i32),
}

/// A secret and one of its versions, as stored.
#[derive(Debug)]
pub struct CachedRead {
    /// The secret's row when loaded.
    pub secret: SecretRecord,
    /// The version (its value sealed).
    pub version: VersionRecord,
    generation: u64,
}

/// See the module documentation.
pub struct ReadCache {
    reads: moka::sync::Cache<String, Arc<CachedRead>>,
    /// Secret id → the generation its entries must carry; absent means
    /// none is trusted.
    generations: moka::sync::Cache<String, u64>,
    next_generation: AtomicU64,
    epoch: AtomicU64,
    usable: AtomicBool,
    data_keys: moka::sync::Cache<(String, i32), Arc<Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("reads", &self.reads.entry_count())
            .field("data_keys", &self.data_keys.entry_count())
            .finish_non_exhaustive()
    }
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::new(READ_CAPACITY_BYTES, READ_TTL, DATA_KEY_CAPACITY, DATA_KEY_TTL)
    }
}

fn read_key(project_id: &str, name: &str, selector: Selector) -> String {
    // Names and project ids never contain a NUL.
    match selector {
        Selector::Current => format!("{project_id}\0{name}\0latest"),
        Selector::Number(n) => format!("{project_id}\0{name}\0{n}"),
    }
}

impl ReadCache {
    /// A cache of at most `read_bytes` of stored versions trusted for
    /// `read_ttl`, and `data_keys` unwrapped keys kept for `data_key_ttl`.
    pub fn new(read_bytes: u64, read_ttl: Duration, data_keys: u64, data_key_ttl: Duration) -> Self {
        let weigh = |_: &String, e: &Arc<CachedRead>| {
            let v = &e.version;
            u32::try_from(v.ciphertext.len() + v.wrapped_dek.len() + 512).unwrap_or(u32::MAX)
        };
        Self {
            reads: moka::sync::Cache::builder().max_capacity(read_bytes).weigher(weigh).time_to_live(read_ttl).build(),
            generations: moka::sync::Cache::builder().max_capacity(200_000).build(),
            next_generation: AtomicU64::new(1),
            epoch: AtomicU64::new(0),
            usable: AtomicBool::new(true),
            data_keys: moka::sync::Cache::builder().max_capacity(data_keys).time_to_live(data_key_ttl).build(),
        }
    }

    /// Call before reading from the database; pass the value to
    /// [`ReadCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Whether cached reads (and the list pages trusted under this
    /// cache's epoch) may be served: not while the change feed is down.
    pub fn usable(&self) -> bool {
        self.usable.load(Ordering::SeqCst)
    }

    /// The cached read, if it is still current.
    pub fn get(&self, project_id: &str, name: &str, selector: Selector) -> Option<Arc<CachedRead>> {
        let found = self.lookup(project_id, name, selector);
        let outcome = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("opendew_csms_read_cache_total", "outcome" => outcome).increment(1);
        found
    }

    fn lookup(&self, project_id: &str, name: &str, selector: Selector) -> Option<Arc<CachedRead>> {
        if !self.usable.load(Ordering::SeqCst) {
            return None;
        }
        let entry = self.reads.get(&read_key(project_id, name, selector))?;
        let current = self.generations.get(entry.secret.id.as_str())?;
        (current == entry.generation).then_some(entry)
    }

    /// Wraps a freshly loaded read, and keeps it unless an invalidation
    /// happened since `epoch` was read (the load may predate that change).
    pub fn insert(
        &self, project_id: &str, name: &str, selector: Selector, secret: SecretRecord, version: VersionRecord,
        epoch: u64,
    ) -> Arc<CachedRead> {
        let keep = self.usable.load(Ordering::SeqCst) && self.epoch() == epoch;
        let generation = if keep {
            self.generations.get_with(secret.id.clone(), || self.next_generation.fetch_add(1, Ordering::SeqCst))
        } else {
            0
        };
        let entry = Arc::new(CachedRead { secret, version, generation });
        // An invalidation after this check drops the generation read above,
        // so the entry is dead on arrival; one before it is caught here.
        if keep && self.epoch() == epoch {
            self.reads.insert(read_key(project_id, name, selector), entry.clone());
        }
        entry
    }

    /// Forgets everything read of one secret.
    pub fn invalidate(&self, secret_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.generations.invalidate(secret_id);
    }

    /// Applies a change-feed event.
    pub fn apply(&self, event: FeedEvent) {
        match event {
            FeedEvent::Changed(secret_id) => self.invalidate(&secret_id),
            FeedEvent::Reset { healthy } => {
                self.usable.store(false, Ordering::SeqCst);
                self.epoch.fetch_add(1, Ordering::SeqCst);
                self.generations.invalidate_all();
                self.reads.invalidate_all();
                self.usable.store(healthy, Ordering::SeqCst);
            }
        }
    }

    /// A data key kms-service unwrapped for this version less than
    /// [`DATA_KEY_TTL`] ago.
    pub fn data_key(&self, secret_id: &str, number: i32) -> Option<Arc<Zeroizing<Vec<u8>>>> {
        self.data_keys.get(&(secret_id.to_owned(), number))
    }

    /// Remembers an unwrapped data key for [`DATA_KEY_TTL`].
    pub fn keep_data_key(&self, secret_id: &str, number: i32, key: Arc<Zeroizing<Vec<u8>>>) {
        self.data_keys.insert((secret_id.to_owned(), number), key);
    }

    /// Evicts expired entries every `every` until `shutdown`, so that an
    /// expired data key is wiped even when no request comes.
    pub fn spawn_sweeper(self: &Arc<Self>, every: Duration, shutdown: CancellationToken) {
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = common::Ticker::new(every, shutdown);
            while ticks.next().await {
                let Some(cache) = cache.upgrade() else { return };
                cache.data_keys.run_pending_tasks();
                cache.reads.run_pending_tasks();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(id: &str) -> (SecretRecord, VersionRecord) {
        let secret = SecretRecord { id: id.into(), ..SecretRecord::new("p", "s".into(), "k".into(), 1) };
        let version = VersionRecord {
            secret_id: id.into(),
            number: 1,
            kms_key_id: "k".into(),
            kind: crate::domain::ValueKind::Text,
            wrapped_dek: vec![1; 100],
            ciphertext: vec![2; 40],
            create_ms: 1,
            expire_ms: None,
            stages: vec!["SYSCURRENT".into()],
        };
        (secret, version)
    }

    #[test]
    fn a_change_kills_every_entry_of_the_secret() {
        let cache = ReadCache::default();
        for selector in [Selector::Current, Selector::Number(1)] {
            let (s, v) = records("id-1");
            cache.insert("p", "s", selector, s, v, cache.epoch());
            assert!(cache.get("p", "s", selector).is_some());
        }
        cache.apply(FeedEvent::Changed("id-1".into()));
        assert!(cache.get("p", "s", Selector::Current).is_none());
        assert!(cache.get("p", "s", Selector::Number(1)).is_none());
        // Reloaded after the change, it is trusted again.
        let (s, v) = records("id-1");
        cache.insert("p", "s", Selector::Current, s, v, cache.epoch());
        assert!(cache.get("p", "s", Selector::Current).is_some());
        assert!(cache.get("p", "s", Selector::Number(1)).is_none(), "the old generation stays dead");
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_dropped() {
        let cache = ReadCache::default();
        let epoch = cache.epoch();
        cache.invalidate("id-2");
        let (s, v) = records("id-2");
        let entry = cache.insert("p", "s", Selector::Current, s, v, epoch);
        assert_eq!(entry.version.number, 1, "the caller still gets what it loaded");
        assert!(cache.get("p", "s", Selector::Current).is_none());
    }

    #[test]
    fn an_unhealthy_feed_bypasses_the_cache() {
        let cache = ReadCache::default();
        let (s, v) = records("id-3");
        cache.insert("p", "s", Selector::Current, s, v, cache.epoch());
        cache.apply(FeedEvent::Reset { healthy: false });
        assert!(cache.get("p", "s", Selector::Current).is_none());
        let (s, v) = records("id-3");
        cache.insert("p", "s", Selector::Current, s, v, cache.epoch());
        assert!(cache.get("p", "s", Selector::Current).is_none(), "nothing is cached while the feed is down");
        cache.apply(FeedEvent::Reset { healthy: true });
        let (s, v) = records("id-3");
        cache.insert("p", "s", Selector::Current, s, v, cache.epoch());
        assert!(cache.get("p", "s", Selector::Current).is_some());
    }

    #[test]
    fn data_keys_expire() {
        let cache = ReadCache::new(1 << 20, READ_TTL, 10, Duration::from_millis(50));
        cache.keep_data_key("id-4", 1, Arc::new(Zeroizing::new(vec![7; 32])));
        assert!(cache.data_key("id-4", 1).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.data_key("id-4", 1).is_none());
    }
}
