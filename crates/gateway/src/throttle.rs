//! Slowing down callers that keep failing to authenticate.
//!
//! Each access key, login name and source address has a leaky bucket of
//! failures: every failed authentication adds one, and the bucket drains
//! at `--auth-failure-drain-seconds` per failure. A full bucket refuses
//! further attempts from that key or address with 429 (before any
//! signature or password check) until it has drained below full. Callers
//! that authenticate never fill a bucket, so they are never slowed by
//! someone else's failures, unless they share the failing source address,
//! whose bucket is larger for that reason.
//!
//! State lives in a bounded cache per replica; entries idle longer than a
//! full drain are forgotten.

use std::{
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Limits, from configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ThrottleConfig {
    /// Failed authentications an access key or user name may have in a row
    /// before further attempts are refused (429) for a while.
    #[arg(long = "auth-failures-per-key", env = "OPENDEW_AUTH_FAILURES_PER_KEY", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub per_key: u32,
    /// The same for a source address (larger: several clients may share one).
    #[arg(long = "auth-failures-per-address", env = "OPENDEW_AUTH_FAILURES_PER_ADDRESS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub per_address: u32,
    /// Seconds after which one failure is forgotten.
    #[arg(long = "auth-failure-drain-seconds", env = "OPENDEW_AUTH_FAILURE_DRAIN_SECONDS", default_value_t = 6,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub drain_seconds: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self { per_key: 10, per_address: 50, drain_seconds: 6 }
    }
}

/// Who failed: an access key or login, or a source address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An AK, or `domain/user` for a password login.
    Key(String),
    /// The peer's IP address.
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

/// The buckets of one replica.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    buckets: moka::sync::Cache<Subject, std::sync::Arc<Mutex<Bucket>>>,
}

impl Throttle {
    /// Buckets for at most 100,000 subjects.
    pub fn new(config: ThrottleConfig) -> Self {
        let idle = Duration::from_secs(config.drain_seconds * u64::from(config.per_address.max(config.per_key)));
        Self { buckets: moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(idle).build(), config }
    }

    fn capacity(&self, subject: &Subject) -> f64 {
        f64::from(match subject {
            Subject::Key(_) => self.config.per_key,
            Subject::Address(_) => self.config.per_address,
        })
    }

    fn drained(&self, bucket: &Bucket, now: Instant) -> f64 {
        let drained = now.duration_since(bucket.at).as_secs_f64() / self.config.drain_seconds as f64;
        (bucket.level - drained).max(0.0)
    }

    /// How long one failure takes to drain.
    pub fn failure_drain(&self) -> Duration {
        Duration::from_secs(self.config.drain_seconds)
    }

    /// How long `subject` must wait, if its bucket is full.
    pub fn wait(&self, subject: &Subject) -> Option<Duration> {
        let bucket = *self.buckets.get(subject)?.lock().expect("bucket lock");
        let level = self.drained(&bucket, Instant::now());
        let over = level - (self.capacity(subject) - 1.0);
        (over > 0.0)
            .then(|| Duration::from_secs_f64(over * self.config.drain_seconds as f64).max(Duration::from_secs(1)))
    }

    /// Charges one attempt to every subject, atomically per bucket, unless
    /// one of them is full: then nothing stays charged and the answer is how
    /// long to wait. Charging before the expensive check (password hashing)
    /// is what bounds concurrent attempts: checking first and recording the
    /// failure after let every request of a burst through (issue #15).
    /// An attempt that succeeds gives its charge back with [`Throttle::refund`].
    pub fn charge(&self, subjects: &[Subject]) -> Result<(), Duration> {
        for (i, subject) in subjects.iter().enumerate() {
            if let Err(wait) = self.charge_one(subject) {
                subjects[..i].iter().for_each(|s| self.refund(s));
                return Err(wait);
            }
        }
        Ok(())
    }

    fn charge_one(&self, subject: &Subject) -> Result<(), Duration> {
        let now = Instant::now();
        let capacity = self.capacity(subject);
        let entry =
            self.buckets.get_with(subject.clone(), || std::sync::Arc::new(Mutex::new(Bucket { level: 0.0, at: now })));
        let mut bucket = entry.lock().expect("bucket lock");
        let level = self.drained(&bucket, now);
        let over = level - (capacity - 1.0);
        if over > 0.0 {
            return Err(Duration::from_secs_f64(over * self.config.drain_seconds as f64).max(Duration::from_secs(1)));
        }
        bucket.level = level + 1.0;
        bucket.at = now;
        Ok(())
    }

    /// Gives back one charge of `subject` (its attempt succeeded).
    pub fn refund(&self, subject: &Subject) {
        let Some(entry) = self.buckets.get(subject) else { return };
        let now = Instant::now();
        let mut bucket = entry.lock().expect("bucket lock");
        bucket.level = (self.drained(&bucket, now) - 1.0).max(0.0);
        bucket.at = now;
    }

    /// Records one failed authentication.
    pub fn failed(&self, subject: Subject) {
        let now = Instant::now();
        let capacity = self.capacity(&subject);
        let entry = self.buckets.get_with(subject, || std::sync::Arc::new(Mutex::new(Bucket { level: 0.0, at: now })));
        let mut bucket = entry.lock().expect("bucket lock");
        bucket.level = (self.drained(&bucket, now) + 1.0).min(capacity);
        bucket.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_bucket_waits_and_others_do_not() {
        let throttle = Throttle::new(ThrottleConfig { per_key: 3, per_address: 5, drain_seconds: 60 });
        let key = Subject::Key("AK1".into());
        for _ in 0..2 {
            throttle.failed(key.clone());
            assert!(throttle.wait(&key).is_none());
        }
        throttle.failed(key.clone());
        let wait = throttle.wait(&key).expect("third failure fills the bucket");
        assert!(wait <= Duration::from_secs(60) && wait >= Duration::from_secs(1), "{wait:?}");
        assert!(throttle.wait(&Subject::Key("AK2".into())).is_none(), "another key is not slowed");
        let address = Subject::Address("127.0.0.1".parse().unwrap());
        for _ in 0..4 {
            throttle.failed(address.clone());
        }
        assert!(throttle.wait(&address).is_none(), "an address has a larger bucket");
        throttle.failed(address.clone());
        assert!(throttle.wait(&address).is_some());
    }

    #[test]
    fn concurrent_charges_stop_at_the_capacity() {
        let throttle =
            std::sync::Arc::new(Throttle::new(ThrottleConfig { per_key: 3, per_address: 100, drain_seconds: 600 }));
        let subjects = [Subject::Key("d/u".into()), Subject::Address("10.0.0.1".parse().unwrap())];
        let granted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..32 {
                scope.spawn(|| {
                    if throttle.charge(&subjects).is_ok() {
                        granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 3, "only the key's capacity of attempts runs at once");
        // A refused charge left nothing on the address beyond the granted three.
        throttle.refund(&subjects[0]);
        assert!(throttle.charge(&subjects).is_ok(), "a refund makes room again");
    }

    #[test]
    fn buckets_drain() {
        let throttle = Throttle::new(ThrottleConfig { per_key: 1, per_address: 1, drain_seconds: 1 });
        let key = Subject::Key("AK".into());
        throttle.failed(key.clone());
        assert!(throttle.wait(&key).is_some());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(throttle.wait(&key).is_none());
    }
}
