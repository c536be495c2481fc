//! List pages remembered for a moment, so that a client paging or polling a
//! list makes no database round trip while nothing changed.
//!
//! A page is trusted only while two things hold (docs/design/secrets.md, "List
//! page cache"):
//!
//! - the owner's **epoch** is the one the page was loaded under. The
//!   services' entity caches bump their epoch on every invalidation: this
//!   process's own committed changes at once, every replica's through the
//!   change feed milliseconds after their commit (state changes, deletions,
//!   updates). So a disabled key or a deleted secret leaves every cached
//!   page of every replica as soon as it leaves the entity cache;
//! - the page is younger than [`PAGE_TTL`]. Creations on another replica
//!   send no notification (a `NOTIFY` would serialise every create's
//!   commit), so they are what this bound is for: a new key or secret is in
//!   every replica's lists within it, and in this replica's at once (the
//!   create bumps the local epoch).
//!
//! A load that raced an invalidation is not kept, and the owner does not
//! consult the cache at all while its change feed is down.

use std::{hash::Hash, sync::Arc, time::Duration};

/// How long a page is trusted without a change: the staleness bound for
/// what the change feed does not carry (creations on other replicas).
pub const PAGE_TTL: Duration = Duration::from_millis(750);

/// Rows the cache holds at most, over all pages (a row is a key's or a
/// secret's metadata, a few hundred bytes): 100 full pages, about 2.5 MB at most.
pub const PAGE_ROWS: u64 = 5_000;

#[derive(Debug)]
struct Stamped<P> {
    epoch: u64,
    page: Arc<P>,
}

/// Pages of type `P` by query `Q`; see the module documentation.
pub struct PageCache<Q, P> {
    pages: moka::sync::Cache<Q, Arc<Stamped<P>>>,
}

impl<Q, P> std::fmt::Debug for PageCache<Q, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").field("pages", &self.pages.entry_count()).finish()
    }
}

impl<Q, P> PageCache<Q, P>
where
    Q: Hash + Eq + Send + Sync + 'static,
    P: Send + Sync + 'static,
{
    /// A cache of at most `rows` rows (as `rows_of` counts a page's), each
    /// page trusted for at most `ttl`.
    pub fn new(rows: u64, ttl: Duration, rows_of: fn(&P) -> u32) -> Self {
        let pages = moka::sync::Cache::builder()
            .max_capacity(rows)
            // An empty page still costs its entry.
            .weigher(move |_: &Q, v: &Arc<Stamped<P>>| rows_of(&v.page).max(1))
            .time_to_live(ttl)
            .build();
        Self { pages }
    }

    /// The page for `query` if it was loaded under `epoch` (the owner's
    /// current one).
    pub fn get(&self, query: &Q, epoch: u64) -> Option<Arc<P>> {
        let hit = self.pages.get(query).filter(|s| s.epoch == epoch).map(|s| s.page.clone());
        let outcome = if hit.is_some() { "hit" } else { "miss" };
        metrics::counter!("opendew_list_page_cache_total", "outcome" => outcome).increment(1);
        hit
    }

    /// Keeps a page loaded after the owner's epoch was read as `epoch`;
    /// `current` re-reads it afterwards. A page whose load overlapped an
    /// invalidation is dropped: it may predate that change.
    pub fn insert(&self, query: Q, page: Arc<P>, epoch: u64, current: impl Fn() -> u64) {
        if current() != epoch {
            return;
        }
        self.pages.insert(query, Arc::new(Stamped { epoch, page }));
        // A stale stamp is never served (get compares it), so a race after
        // the check costs nothing but the entry's memory until it expires.
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[test]
    fn a_page_is_served_only_under_its_epoch() {
        let epoch = AtomicU64::new(7);
        let cache: PageCache<&str, Vec<u32>> = PageCache::new(100, Duration::from_secs(60), |p| p.len() as u32);
        cache.insert("q", Arc::new(vec![1, 2]), 7, || epoch.load(Ordering::SeqCst));
        assert_eq!(cache.get(&"q", 7).as_deref(), Some(&vec![1, 2]));
        epoch.store(8, Ordering::SeqCst);
        assert!(cache.get(&"q", 8).is_none(), "an invalidation ends every page");
        // A load that began under 8 but finished after another change.
        epoch.store(9, Ordering::SeqCst);
        cache.insert("q", Arc::new(vec![3]), 8, || epoch.load(Ordering::SeqCst));
        assert!(cache.get(&"q", 9).is_none() && cache.get(&"q", 8).is_none());
    }

    #[test]
    fn pages_expire() {
        let cache: PageCache<&str, Vec<u32>> = PageCache::new(100, Duration::from_millis(50), |p| p.len() as u32);
        cache.insert("q", Arc::new(vec![1]), 0, || 0);
        assert!(cache.get(&"q", 0).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get(&"q", 0).is_none());
    }
}
