//! How many `by-due` partitions pending notifications are spread over: each
//! takes at most 1,000 writes a second (docs/capacity.md), so the count is a
//! deployment parameter (`DueShards` in template.yaml, `DUE_SHARDS`).
//!
//! A pending notification keeps the shard it was written with until it
//! leaves `pending` (a retry does not move it; only a replay or recover
//! rewrites it), so after the count changes the sweep must go on reading the
//! shards of the old count: it reads `max(DUE_SHARDS, DUE_SHARDS_PREVIOUS)`.

use super::StoreError;

/// The count every deployment used before it was a parameter: the default
/// of both the count and the previous count, so lowering `DueShards` alone
/// still reads what the old default wrote.
pub const PENDING_SHARDS: u32 = 4;

/// The largest count the template allows: the sweep makes one Query per
/// shard read, every minute, empty or not.
pub const MAX_DUE_SHARDS: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueShards {
    write: u32,
    previous: u32,
}

impl Default for DueShards {
    fn default() -> Self {
        Self {
            write: PENDING_SHARDS,
            previous: PENDING_SHARDS,
        }
    }
}

impl DueShards {
    /// `count` shards written from now on; `previous` the largest count
    /// written with while a notification could still be pending (its
    /// retention, 30 days).
    pub fn new(count: u32, previous: u32) -> Result<Self, StoreError> {
        for (name, value) in [("DUE_SHARDS", count), ("DUE_SHARDS_PREVIOUS", previous)] {
            if !(1..=MAX_DUE_SHARDS).contains(&value) {
                return Err(StoreError::Config(format!(
                    "{name} must be 1 to {MAX_DUE_SHARDS}, got {value}"
                )));
            }
        }
        Ok(Self {
            write: count,
            previous,
        })
    }

    /// `DUE_SHARDS` and `DUE_SHARDS_PREVIOUS`, each [`PENDING_SHARDS`] when unset.
    pub fn from_env() -> Result<Self, StoreError> {
        let read = |name: &str| match std::env::var(name) {
            Err(_) => Ok(PENDING_SHARDS),
            Ok(v) => v.trim().parse::<u32>().map_err(|_| {
                StoreError::Config(format!("{name} must be a whole number, got {v:?}"))
            }),
        };
        Self::new(read("DUE_SHARDS")?, read("DUE_SHARDS_PREVIOUS")?)
    }

    /// Shards new and re-queued pending notifications are written to.
    pub fn write_count(&self) -> u32 {
        self.write
    }

    /// Shards the sweep reads: every one a writer may have used.
    pub fn read_count(&self) -> u32 {
        self.write.max(self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_reads_the_larger_of_the_two_counts() {
        assert_eq!(DueShards::default().read_count(), 4);
        assert_eq!(DueShards::new(8, 4).unwrap().read_count(), 8);
        assert_eq!(DueShards::new(2, 4).unwrap().read_count(), 4);
        assert_eq!(DueShards::new(2, 4).unwrap().write_count(), 2);
        assert!(DueShards::new(0, 4).is_err());
        assert!(DueShards::new(4, 65).is_err());
    }
}
