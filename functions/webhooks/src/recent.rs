//! Instances read recently by this container, kept to verify webhooks while
//! the state store is unreachable: without them a verified delivery could
//! not even be verified during an outage, and could not be spooled.
//!
//! Only a fallback: every request reads the instance from the table first,
//! and an entry is used only when that read fails with the store
//! unavailable. Entries expire after [`MAX_AGE`], so a secret changed by a
//! PATCH is honoured at most that long after an outage began. A cold
//! container during an outage has no entries and answers 503, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shared::model::Instance;

/// How long an instance read stays usable as a fallback.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// At most this many instances per container: bounded memory whatever the
/// traffic.
pub const CAPACITY: usize = 1_000;

#[derive(Debug, Clone, Default)]
pub struct RecentInstances {
    entries: Arc<Mutex<HashMap<u64, (Instant, Instance)>>>,
}

impl RecentInstances {
    pub fn remember(&self, instances: &[Instance]) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if entries.len() + instances.len() > CAPACITY {
            entries.retain(|_, (at, _)| now.duration_since(*at) < MAX_AGE);
        }
        for instance in instances {
            if entries.len() >= CAPACITY && !entries.contains_key(&instance.id) {
                break;
            }
            entries.insert(instance.id, (now, instance.clone()));
        }
    }

    pub fn get(&self, id: u64) -> Option<Instance> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (at, instance) = entries.get(&id)?;
        (at.elapsed() < MAX_AGE).then(|| instance.clone())
    }
}
