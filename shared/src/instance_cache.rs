//! A per-container cache of instance records, with bounded staleness.
//!
//! Ingestion and delivery read an instance for every webhook and every
//! attempt; on AWS each read is a request paid for, and locally it is a
//! request to a single-threaded server. Within [`Staleness`] of being read,
//! a record is used again without asking the table. What that means, as
//! documented in docs/architecture.md ("Instance cache"):
//! - a PATCH (a new callback URL, a new signature key), a delete, a pause
//!   (410) or a recover takes effect in every container within the
//!   staleness bound, and at once in the container that made the change
//!   (it forgets the entry);
//! - a webhook that fails verification against a cached record is verified
//!   again against a fresh read before it is refused, so a rotated vendor
//!   secret works at once (the callers do that with [`InstanceCache::refresh`]);
//! - a read that finds no item forgets the entry: absence is never cached;
//! - records are kept sealed (secrets encrypted), as the table keeps them;
//! - at most [`DEFAULT_CAPACITY`] records, least recently used first out, so
//!   memory stays flat however many instances a container serves.
//!
//! Entries older than the bound stay (until evicted) as a fallback for an
//! outage: [`InstanceCache::fallback`] hands out one read within a longer
//! window when the table cannot be reached, so a webhook can still be
//! verified and spooled.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::model::InstanceRecord;
use crate::store::{Store, StoreError};

/// How long a cached record is used without asking the table.
pub const DEFAULT_STALENESS: Duration = Duration::from_secs(10);

/// The most staleness an operator may configure: past this a deleted
/// instance could receive events for longer than users would accept.
pub const MAX_STALENESS: Duration = Duration::from_secs(60);

/// Records per container. A sealed record is 1–4 KB: about 10 MB at most.
pub const DEFAULT_CAPACITY: usize = 2_500;

/// The staleness bound, from `INSTANCE_CACHE_SECONDS` (0 turns the cache
/// off: every use reads the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staleness(pub Duration);

impl Staleness {
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("INSTANCE_CACHE_SECONDS") {
            Err(_) => Ok(Staleness(DEFAULT_STALENESS)),
            Ok(v) => {
                let secs: u64 = v.trim().parse().map_err(|_| {
                    format!("INSTANCE_CACHE_SECONDS must be a whole number of seconds, got {v:?}")
                })?;
                let bound = Duration::from_secs(secs);
                if bound > MAX_STALENESS {
                    return Err(format!(
                        "INSTANCE_CACHE_SECONDS must be at most {}, got {secs}",
                        MAX_STALENESS.as_secs()
                    ));
                }
                Ok(Staleness(bound))
            }
        }
    }
}

impl Default for Staleness {
    fn default() -> Self {
        Staleness(DEFAULT_STALENESS)
    }
}

#[derive(Debug, Clone)]
pub struct InstanceCache {
    staleness: Duration,
    entries: Arc<Mutex<LruCache<u64, (Instant, InstanceRecord)>>>,
}

impl Default for InstanceCache {
    fn default() -> Self {
        Self::new(Staleness::default(), DEFAULT_CAPACITY)
    }
}

impl InstanceCache {
    pub fn new(staleness: Staleness, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            staleness: staleness.0,
            entries: Arc::new(Mutex::new(LruCache::new(capacity))),
        }
    }

    pub fn staleness(&self) -> Duration {
        self.staleness
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, (Instant, InstanceRecord)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record as read within the staleness bound, or read now.
    pub async fn get(&self, store: &Store, id: u64) -> Result<Option<InstanceRecord>, StoreError> {
        if let Some(record) = self.cached(id) {
            return Ok(Some(record));
        }
        self.refresh(store, id).await
    }

    /// The record within the staleness bound, without a read.
    pub fn cached(&self, id: u64) -> Option<InstanceRecord> {
        if self.staleness.is_zero() {
            return None;
        }
        let mut entries = self.lock();
        match entries.get(&id) {
            Some((at, record)) if at.elapsed() < self.staleness => Some(record.clone()),
            _ => None,
        }
    }

    /// Reads the record now and keeps it (or forgets it, when it is gone).
    pub async fn refresh(
        &self,
        store: &Store,
        id: u64,
    ) -> Result<Option<InstanceRecord>, StoreError> {
        let read_at = Instant::now();
        let record = store.get_instance(id).await?;
        match &record {
            Some(r) => {
                self.lock().put(id, (read_at, r.clone()));
            }
            None => self.forget(id),
        }
        Ok(record)
    }

    /// Keeps records read some other way (a routing query), as of now.
    pub fn remember(&self, records: &[InstanceRecord]) {
        let now = Instant::now();
        let mut entries = self.lock();
        for record in records {
            entries.put(record.id, (now, record.clone()));
        }
    }

    /// Drops the entry: this container changed the instance.
    pub fn forget(&self, id: u64) {
        self.lock().pop(&id);
    }

    /// A record read within `max_age`, however stale: only for when the
    /// table cannot be reached.
    pub fn fallback(&self, id: u64, max_age: Duration) -> Option<InstanceRecord> {
        let mut entries = self.lock();
        match entries.get(&id) {
            Some((at, record)) if at.elapsed() < max_age => Some(record.clone()),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64) -> InstanceRecord {
        InstanceRecord {
            id,
            org_id: "org".into(),
            element_key: "one".into(),
            name: format!("i{id}"),
            tags: vec![],
            public_config: "{}".into(),
            sealed_secrets: String::new(),
            events: "{}".into(),
            poll_interval: None,
            store_key: None,
            token_hash: String::new(),
            registered_webhooks: vec![],
            events_paused: None,
            delivery_epoch: 0,
            poll_invalid: None,
            webhook_health: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            version: 1,
        }
    }

    #[test]
    fn memory_stays_bounded_with_many_instances() {
        let cache = InstanceCache::new(Staleness(Duration::from_secs(10)), 100);
        for id in 0..10_000 {
            cache.remember(&[record(id)]);
        }
        assert_eq!(cache.len(), 100);
        // The most recent are kept, the oldest went first.
        assert!(cache.cached(9_999).is_some());
        assert!(cache.cached(0).is_none());
    }

    #[test]
    fn a_stale_entry_is_not_used_but_serves_as_an_outage_fallback() {
        let cache = InstanceCache::new(Staleness(Duration::from_millis(20)), 10);
        cache.remember(&[record(7)]);
        assert!(cache.cached(7).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.cached(7).is_none());
        assert!(cache.fallback(7, Duration::from_secs(60)).is_some());
        cache.forget(7);
        assert!(cache.fallback(7, Duration::from_secs(60)).is_none());
    }

    #[test]
    fn zero_staleness_turns_the_cache_off() {
        let cache = InstanceCache::new(Staleness(Duration::ZERO), 10);
        cache.remember(&[record(1)]);
        assert!(cache.cached(1).is_none());
    }
}
