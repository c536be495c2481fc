//! The hot path's memory: unwrapped material and state of recently used
//! keys, so that crypto operations make no database round trip.
//!
//! Why it is safe (see docs/design/key-cache.md):
//! - this process invalidates an entry as soon as it commits a change to
//!   that key, before answering the call that made it;
//! - on Postgres every change also sends a NOTIFY in its transaction, and
//!   every replica's change feed invalidates its entry when it arrives
//!   (milliseconds after commit);
//! - while the feed is disconnected, the cache is bypassed entirely, and
//!   when it reconnects everything is forgotten, so a missed notification
//!   can never leave a stale entry behind;
//! - entries also expire after a short time to live, a backstop for
//!   anything unforeseen;
//! - a load that raced with an invalidation is not kept (epoch check).
//!
//! The cache is bounded; material is in [`SecretBytes`], zeroized when the
//! last reference to an evicted entry drops.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use crypto::asymmetric::PrivateKey;

use crate::{
    domain::{GrantRecord, KeyId, KeyRecord},
    envelope::SecretBytes,
    store::ChangeEvent,
};

/// A key with its unwrapped material versions.
#[derive(Debug)]
pub struct CachedKey {
    /// Metadata and state at load time.
    pub record: KeyRecord,
    /// Material by version.
    pub materials: HashMap<i32, SecretBytes>,
    /// Its grants: a change to them invalidates the entry like a change to
    /// the key.
    pub grants: Vec<GrantRecord>,
    /// An asymmetric key's private key, parsed once from its (only)
    /// material version; it wipes itself when the entry drops.
    pub private: Option<PrivateKey>,
}

/// Bounded cache of [`CachedKey`]s.
#[derive(Debug)]
pub struct KeyCache {
    entries: moka::sync::Cache<KeyId, Arc<CachedKey>>,
    epoch: AtomicU64,
    usable: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl KeyCache {
    /// A cache of at most `capacity` keys, each trusted for at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder().max_capacity(capacity).time_to_live(ttl).build(),
            epoch: AtomicU64::new(0),
            usable: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cached key, unless the cache is bypassed.
    pub fn get(&self, key_id: KeyId) -> Option<Arc<CachedKey>> {
        let found = if self.usable.load(Ordering::Acquire) { self.entries.get(&key_id) } else { None };
        let (counter, name) = if found.is_some() {
            (&self.hits, "opendew_kms_key_cache_hits_total")
        } else {
            (&self.misses, "opendew_kms_key_cache_misses_total")
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(name).increment(1);
        found
    }

    /// Call before reading a key from the database; pass the value to
    /// [`KeyCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Keeps a freshly loaded key unless an invalidation happened since
    /// `epoch` was read (the load may predate that change).
    pub fn insert(&self, entry: Arc<CachedKey>, epoch: u64) {
        if !self.usable.load(Ordering::Acquire) || self.epoch() != epoch {
            return;
        }
        let key_id = entry.record.key_id;
        self.entries.insert(key_id, entry);
        // An invalidation between the check and the insert bumped the epoch
        // and may have removed nothing yet: undo.
        if self.epoch() != epoch {
            self.entries.invalidate(&key_id);
        }
    }

    /// Whether the cache (and the list pages trusted under its epoch) may
    /// be consulted: not while the change feed is down.
    pub fn usable(&self) -> bool {
        self.usable.load(Ordering::Acquire)
    }

    /// Records a change that forgets no entry (a new key): the list pages
    /// stamped with the old epoch are no longer served.
    pub fn touch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets one key.
    pub fn invalidate(&self, key_id: KeyId) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(&key_id);
    }

    /// Applies a change-feed event.
    pub fn apply(&self, event: ChangeEvent) {
        match event {
            ChangeEvent::Key(key_id) => self.invalidate(key_id),
            ChangeEvent::Reset { healthy } => {
                self.usable.store(false, Ordering::Release);
                self.epoch.fetch_add(1, Ordering::AcqRel);
                self.entries.invalidate_all();
                self.usable.store(healthy, Ordering::Release);
            }
        }
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: KeyId) -> Arc<CachedKey> {
        Arc::new(CachedKey {
            record: KeyRecord { key_id: id, ..KeyRecord::sample("p", "a") },
            materials: HashMap::new(),
            grants: Vec::new(),
            private: None,
        })
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_dropped() {
        let cache = KeyCache::new(10, Duration::from_secs(60));
        let id = KeyId::new();
        let epoch = cache.epoch();
        cache.invalidate(id);
        cache.insert(entry(id), epoch);
        assert!(cache.get(id).is_none());
        cache.insert(entry(id), cache.epoch());
        assert!(cache.get(id).is_some());
    }

    #[test]
    fn an_unhealthy_feed_bypasses_the_cache() {
        let cache = KeyCache::new(10, Duration::from_secs(60));
        let id = KeyId::new();
        cache.insert(entry(id), cache.epoch());
        cache.apply(ChangeEvent::Reset { healthy: false });
        assert!(cache.get(id).is_none());
        cache.insert(entry(id), cache.epoch());
        assert!(cache.get(id).is_none(), "nothing is cached while the feed is down");
        cache.apply(ChangeEvent::Reset { healthy: true });
        cache.insert(entry(id), cache.epoch());
        assert!(cache.get(id).is_some());
        cache.apply(ChangeEvent::Key(id));
        assert!(cache.get(id).is_none());
    }
}
