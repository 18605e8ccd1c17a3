//! Fair shares: one tenant's backlog or hanging endpoint never takes another
//! tenant's turn.
//!
//! Three bounds apply to the sweep and to each stream batch alike:
//! - a **share**: at most `instance_share` attempts per instance and
//!   `org_share` per organization are considered by one sweep (or batch);
//!   the rest stay pending and due, for the next one;
//! - **in flight**: at most `instance_in_flight` attempts per instance and
//!   `org_in_flight` per organization run at once. A task waiting for its
//!   owner's slot holds no slot of the invocation's global concurrency, so
//!   a hanging endpoint holds only its own slots;
//! - a **time budget**: once `instance_budget` has passed since an
//!   instance's first attempt of this invocation, it starts no more; the
//!   rest wait for the next sweep. One instance so takes at most the budget
//!   plus one attempt timeout from a sweep.
//!
//! The selected work is interleaved round-robin, organization by organization
//! and, within one, instance by instance, so every tenant's first attempt is
//! among the first the invocation starts.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One unit of work and whose it is.
pub trait Owned {
    fn instance_id(&self) -> u64;
    fn org_id(&self) -> &str;
}

impl Owned for shared::store::DueNotification {
    fn instance_id(&self) -> u64 {
        self.instance_id
    }
    fn org_id(&self) -> &str {
        &self.org_id
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    pub instance_share: usize,
    pub org_share: usize,
    pub instance_in_flight: usize,
    pub org_in_flight: usize,
    /// The time one instance may take from one invocation.
    pub instance_budget: Duration,
}

/// Keeps at most each owner's share of `work` (in the given order) and at
/// most `total` items, interleaved round-robin by organization, then by
/// instance. Returns the kept items and how many were deferred.
pub fn select<T: Owned>(work: Vec<T>, shares: &Shares, total: usize) -> (Vec<T>, usize) {
    let all = work.len();
    // org → instance → items, each in arrival (due) order. BTreeMap keeps the
    // interleaving deterministic.
    let mut orgs: Vec<(String, Vec<Vec<T>>)> = Vec::new();
    let mut org_index: HashMap<String, usize> = HashMap::new();
    let mut inst_index: HashMap<(usize, u64), usize> = HashMap::new();
    let mut per_org: HashMap<String, usize> = HashMap::new();
    for item in work {
        let org = item.org_id().to_string();
        let taken = per_org.entry(org.clone()).or_default();
        if *taken >= shares.org_share.max(1) {
            continue;
        }
        let oi = *org_index.entry(org.clone()).or_insert_with(|| {
            orgs.push((org.clone(), Vec::new()));
            orgs.len() - 1
        });
        let (_, instances) = &mut orgs[oi];
        let ii = *inst_index
            .entry((oi, item.instance_id()))
            .or_insert_with(|| {
                instances.push(Vec::new());
                instances.len() - 1
            });
        if instances[ii].len() >= shares.instance_share.max(1) {
            continue;
        }
        instances[ii].push(item);
        *taken += 1;
    }
    // Round-robin: each round takes one item of each instance of each org.
    let mut queues: Vec<Vec<std::collections::VecDeque<T>>> = orgs
        .into_iter()
        .map(|(_, instances)| instances.into_iter().map(Into::into).collect())
        .collect();
    let mut out = Vec::new();
    let mut cursor: Vec<usize> = vec![0; queues.len()];
    loop {
        let mut progressed = false;
        for (oi, org) in queues.iter_mut().enumerate() {
            // One item per organization per round, rotating over its instances.
            for step in 0..org.len() {
                let ii = (cursor[oi] + step) % org.len();
                if let Some(item) = org[ii].pop_front() {
                    out.push(item);
                    cursor[oi] = ii + 1;
                    progressed = true;
                    break;
                }
            }
            if out.len() >= total {
                break;
            }
        }
        if !progressed || out.len() >= total {
            break;
        }
    }
    let kept = out.len();
    (out, all - kept)
}

/// In-flight caps per instance and per organization, shared by the tasks of
/// one invocation.
#[derive(Debug, Default)]
pub struct InFlight {
    instances: Mutex<BTreeMap<u64, Arc<Semaphore>>>,
    orgs: Mutex<BTreeMap<String, Arc<Semaphore>>>,
}

/// Held while an attempt runs.
pub struct Permits {
    _org: OwnedSemaphorePermit,
    _instance: OwnedSemaphorePermit,
}

impl InFlight {
    /// Waits until both the organization and the instance have a free slot.
    /// The organization's slot is taken first, always, so two tasks never
    /// hold one each of the other's.
    pub async fn acquire(&self, shares: &Shares, instance_id: u64, org_id: &str) -> Permits {
        let org = {
            let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
            orgs.entry(org_id.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(shares.org_in_flight.max(1))))
                .clone()
        };
        let instance = {
            let mut instances = self.instances.lock().unwrap_or_else(|e| e.into_inner());
            instances
                .entry(instance_id)
                .or_insert_with(|| Arc::new(Semaphore::new(shares.instance_in_flight.max(1))))
                .clone()
        };
        // The semaphores are never closed, so acquiring cannot fail.
        let org = org.acquire_owned().await.expect("semaphore open");
        let instance = instance.acquire_owned().await.expect("semaphore open");
        Permits {
            _org: org,
            _instance: instance,
        }
    }
}

/// Runs `attempt` over `work` (already [`select`]ed) under the in-flight
/// caps, at most `concurrency` at once overall, and within each instance's
/// time budget. `None` for work not started because its instance's budget
/// was spent.
pub async fn run<T, F, Fut, R>(
    work: Vec<T>,
    shares: &Shares,
    concurrency: usize,
    attempt: F,
) -> Vec<Option<R>>
where
    T: Owned,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    let in_flight = InFlight::default();
    let global = Semaphore::new(concurrency.max(1));
    let first_start: Mutex<HashMap<(String, u64), Instant>> = Mutex::default();
    let (in_flight, global, first_start, attempt) = (&in_flight, &global, &first_start, &attempt);
    let count = work.len().max(1);
    stream::iter(work)
        .map(|item| async move {
            let _owner = in_flight
                .acquire(shares, item.instance_id(), item.org_id())
                .await;
            let key = (item.org_id().to_string(), item.instance_id());
            let spent = first_start
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .map(Instant::elapsed);
            if spent.is_some_and(|spent| spent >= shares.instance_budget) {
                return None;
            }
            let _slot = global.acquire().await.expect("semaphore open");
            // Waiting for a global slot may have taken the rest of the budget.
            let spent = first_start
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .map(Instant::elapsed);
            if spent.is_some_and(|spent| spent >= shares.instance_budget) {
                return None;
            }
            first_start
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key)
                .or_insert_with(Instant::now);
            Some(attempt(item).await)
        })
        // Every item waits on its owner's slots, not on a global slot, so
        // all of them are polled; memory is bounded by the selection.
        .buffer_unordered(count)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct W(u64, &'static str, u32);
    impl Owned for W {
        fn instance_id(&self) -> u64 {
            self.0
        }
        fn org_id(&self) -> &str {
            self.1
        }
    }

    const SHARES: Shares = Shares {
        instance_share: 3,
        org_share: 5,
        instance_in_flight: 2,
        org_in_flight: 4,
        instance_budget: Duration::from_secs(60),
    };

    #[test]
    fn a_backlog_keeps_its_share_and_others_come_first_in_line() {
        let mut work: Vec<W> = (0..400).map(|i| W(1, "x", i)).collect();
        work.push(W(2, "y", 0));
        let (kept, deferred) = select(work, &SHARES, 100);
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert_eq!(deferred, 397);
        assert_eq!(kept[1], W(2, "y", 0), "the other tenant is second in line");
    }

    #[test]
    fn an_org_share_spans_its_instances_and_instances_rotate() {
        let work: Vec<W> = (0..10)
            .flat_map(|i| [W(1, "x", i), W(2, "x", i), W(3, "x", i)])
            .collect();
        let (kept, _) = select(work, &SHARES, 100);
        assert_eq!(kept.len(), 5);
        let instances: Vec<u64> = kept.iter().map(|w| w.0).collect();
        assert_eq!(instances, [1, 2, 3, 1, 2]);
    }

    #[test]
    fn one_instance_id_in_two_orgs_is_two_owners() {
        let work = vec![W(0, "a", 0), W(0, "b", 0), W(0, "a", 1)];
        let (kept, _) = select(work, &SHARES, 100);
        assert_eq!(kept, [W(0, "a", 0), W(0, "b", 0), W(0, "a", 1)]);
    }

    #[tokio::test]
    async fn a_slow_instance_stops_at_its_budget_and_holds_only_its_slots() {
        let shares = Shares {
            instance_share: 100,
            org_share: 100,
            instance_in_flight: 2,
            org_in_flight: 2,
            instance_budget: Duration::from_millis(250),
        };
        let mut work: Vec<W> = (0..20).map(|i| W(1, "x", i)).collect();
        work.extend((0..6).map(|i| W(2, "y", i)));
        let (work, _) = select(work, &shares, 1000);
        let started = Instant::now();
        let done = run(work, &shares, 3, |w| async move {
            if w.0 == 1 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (w.0, started.elapsed())
        })
        .await;
        let slow: Vec<_> = done.iter().flatten().filter(|(i, _)| *i == 1).collect();
        let fast: Vec<_> = done.iter().flatten().filter(|(i, _)| *i == 2).collect();
        assert_eq!(fast.len(), 6, "the other tenant ran all of its work");
        assert!(
            fast.iter().all(|(_, at)| *at < Duration::from_millis(150)),
            "{fast:?}"
        );
        assert_eq!(
            slow.len(),
            4,
            "two rounds of two in flight, then the budget: {slow:?}"
        );
        assert_eq!(done.iter().filter(|d| d.is_none()).count(), 16);
    }

    #[test]
    fn the_total_bounds_the_selection() {
        let work: Vec<W> = (0..50).map(|i| W(i, "x", 0)).collect();
        let shares = Shares {
            org_share: 1000,
            ..SHARES
        };
        assert_eq!(select(work, &shares, 7).0.len(), 7);
    }
}
