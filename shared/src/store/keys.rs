//! The partition keys of every write the state store makes, as small pure
//! functions: the store writes with them, and the capacity model
//! (`tests/capacity_model.rs`) drives the same functions, so its per-partition
//! rates are the deployed layout's, not a copy of it.

/// The NotificationsTable key of a notification (`evt_<hex>`): spread over
/// the table's partitions by a hash of the instance and the dedupe key.
pub fn notification_key(instance_id: u64, dedupe_key: &str) -> String {
    crate::events::notification_id(instance_id, dedupe_key)
}

/// The NotificationsTable key of the `n`th out-of-line part of a large raw
/// body: its own partition, next to nothing else.
pub fn raw_part_key(notification_id: &str, n: usize) -> String {
    format!("{notification_id}#raw{n}")
}

/// The `by-instance-log` partition of an instance's notifications: one
/// partition key per instance, whatever its traffic.
pub fn instance_log_partition(instance_id: u64) -> String {
    instance_id.to_string()
}

/// The `by-org-log` partition of an organization's notifications.
pub fn org_log_partition(org_id: &str) -> String {
    org_id.to_string()
}

/// The PollStateTable partition of an instance: its lease, cursors and the
/// markers of every object version it notified.
pub fn poll_state_partition(instance_id: u64) -> String {
    format!("instance#{instance_id}")
}

/// The PollStateTable sort key of one notified object version.
pub fn marker_sort_key(resource: &str, object_id: &str, modified_ms: i64) -> String {
    format!("seen#{resource}#{object_id}#{modified_ms}")
}

/// The `by-due` partition of a pending notification among `shards` (`p0`..).
///
/// A 64-bit FNV-1a hash of the whole id, rather than its last byte: the id
/// ends in a hex digit, which takes 16 values only, so `last byte % shards`
/// left shards 10..15 empty at 16 shards and put 5 ids in 16 in `p1` at 4.
/// Changing the function moves no stored item: each keeps the shard it was
/// written with, and the sweep reads every shard a writer may have used.
pub fn due_shard(notification_id: &str, shards: u32) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in notification_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("p{}", hash % u64::from(shards.max(1)))
}

/// The `by-due` partition value of shard `n`.
pub fn due_shard_name(n: u32) -> String {
    format!("p{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shard gets a near-equal share of real ids, at every count the
    /// template allows, including those above the 16 a hex digit can reach.
    #[test]
    fn due_shards_are_even_at_every_count() {
        let ids: Vec<String> = (0..64_000)
            .map(|i| notification_key(i % 97, &format!("dedupe-{i}")))
            .collect();
        for shards in [1u32, 2, 3, 4, 8, 16, 32, 64] {
            let mut counts = vec![0usize; shards as usize];
            for id in &ids {
                let shard = due_shard(id, shards);
                let n: usize = shard[1..].parse().unwrap();
                counts[n] += 1;
            }
            let mean = ids.len() as f64 / f64::from(shards);
            let max = *counts.iter().max().unwrap() as f64;
            let min = *counts.iter().min().unwrap() as f64;
            assert!(
                max < mean * 1.1 && min > mean * 0.9,
                "{shards} shards: {counts:?}"
            );
        }
    }
}
