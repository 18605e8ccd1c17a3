//! Issue 19: a discrete-event load model of one deployment's DynamoDB
//! partitions. It drives the store's own partition-key functions
//! (`shared::store::keys`) with a synthetic workload and reports each
//! partition's peak writes per second against DynamoDB's 1,000 WCU/s (and
//! reads against 3,000 RCU/s) per partition, flagging the first to go over.
//!
//! ```sh
//! cargo test -p ce-tests --test capacity_model -- --nocapture
//! ```
//!
//! The writes each event makes, and their units, come from
//! `docs/capacity/inputs.json` (the cost table reads the same file). No AWS
//! and no moto: it runs in `make test` with the other tests, in seconds.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde_json::Value;
use shared::store::keys;

const INPUTS: &str = include_str!("../docs/capacity/inputs.json");
const WRITE_CEILING: f64 = 1_000.0;
const READ_CEILING: f64 = 3_000.0;

/// The synthetic workload.
#[derive(Debug, Clone)]
struct Workload {
    /// Mean offered events per second over the run.
    rate: f64,
    seconds: usize,
    instances: u64,
    orgs: u64,
    /// Instance 1 (organization 1), a WooCommerce store whose webhooks also
    /// write their reconciliation markers: this share of all events.
    hot_share: f64,
    /// Of the other instances, this share polls (every minute, each at its
    /// own second); the rest push webhooks (ONe: no markers).
    polling_share: f64,
    /// Every `burst_every` seconds, `burst_len` seconds at `burst_factor`
    /// times the base rate (the base is lowered so the mean stays `rate`).
    burst_every: usize,
    burst_len: usize,
    burst_factor: f64,
    payload_bytes: usize,
    due_shards: u32,
    seed: u64,
}

impl Workload {
    fn default_at(rate: f64) -> Self {
        Self {
            rate,
            seconds: 20,
            instances: 1_000,
            orgs: 200,
            hot_share: 0.30,
            polling_share: 0.30,
            burst_every: 20,
            burst_len: 3,
            burst_factor: 3.0,
            payload_bytes: 1_024,
            due_shards: shared::store::PENDING_SHARDS,
            seed: 19,
        }
    }

    fn rate_at(&self, second: usize) -> f64 {
        let every = self.burst_every as f64;
        let len = self.burst_len as f64;
        let base = self.rate * every / (every - len + len * self.burst_factor);
        if second % self.burst_every < self.burst_len {
            base * self.burst_factor
        } else {
            base
        }
    }

    fn org_of(&self, instance: u64) -> u64 {
        if instance == 1 {
            1
        } else {
            2 + instance % (self.orgs - 1)
        }
    }

    fn polls(&self, instance: u64) -> bool {
        instance != 1 && (instance % 100) < (self.polling_share * 100.0) as u64
    }
}

/// SplitMix64: a deterministic generator, so every run prints the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// The wait to the next arrival of a Poisson process at `rate`.
    fn exp(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// The partitions a write can land on: a table or index of the layout.
const TABLES: [&str; 7] = [
    "notifications",
    "deliveries",
    "by-instance-log",
    "by-org-log",
    "by-due",
    "poll_state",
    "instances",
];

/// One request (or index write) of a path, resolved from the inputs.
#[derive(Debug, Clone, Copy)]
struct Op {
    table: usize,
    write: bool,
    /// Capacity units as DynamoDB bills them, doubled in a transaction.
    units: f64,
    /// Once per event rather than once per notification.
    per_event: bool,
}

/// The ops of `path` in `docs/capacity/inputs.json`, for inline bodies of
/// `payload` bytes (raw parts never occur).
fn ops_of(inputs: &Value, path: &str, payload: usize) -> Vec<Op> {
    let s = &inputs["sizes"];
    let size = |k: &str| s[k].as_f64().expect(k);
    let kb = size("kb");
    assert!(
        payload as f64 <= size("inline_raw_max_bytes"),
        "the model stores raw bodies inline"
    );
    inputs["ops"][path]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["only"].is_null())
        .map(|op| {
            let write = op["kind"] == "write";
            let step = if write { kb } else { 4.0 * kb };
            let bytes = |b: f64| (b / step).ceil();
            let base = match &op["units"] {
                Value::Number(x) => x.as_f64().unwrap(),
                Value::String(u) => match u.as_str() {
                    "notification" => bytes(size("notification_overhead_bytes") + payload as f64),
                    // The completion writes the item with its attempt log entry.
                    "notification_with_attempt" => bytes(
                        size("notification_overhead_bytes")
                            + payload as f64
                            + size("delivery_record_bytes"),
                    ),
                    "delivery_record" => bytes(size("delivery_record_bytes")),
                    "marker" => bytes(size("marker_bytes")),
                    "instance" => bytes(size("instance_item_bytes")),
                    other => panic!("units {other}"),
                },
                other => panic!("units {other}"),
            };
            let tx = op["tx"].as_bool() == Some(true);
            Op {
                table: TABLES
                    .iter()
                    .position(|t| op["table"] == *t)
                    .unwrap_or_else(|| panic!("table {}", op["table"])),
                write,
                units: if tx { base * 2.0 } else { base },
                per_event: op["per"] == "event",
            }
        })
        .collect()
}

/// What happens when, in simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    /// A change at a store: a webhook now, or a version the next poll finds.
    Change { instance: u64 },
    /// A poll of one instance writes what changed since the last one.
    Poll { instance: u64 },
    /// The dispatcher's stream invocation: claim, send, record, complete,
    /// and the claim's own stream record claimed again (and refused).
    Deliver { instance: u64, notification: u64 },
}

/// Per partition: units in each simulated second.
struct Ledger {
    seconds: usize,
    by_table: Vec<HashMap<String, usize>>,
    names: Vec<(usize, String)>,
    writes: Vec<Vec<f64>>,
    reads: Vec<Vec<f64>>,
    /// The first second a partition passed its ceiling, and which.
    first_hot: Option<(usize, usize)>,
}

impl Ledger {
    fn new(seconds: usize) -> Self {
        Self {
            seconds,
            by_table: vec![HashMap::new(); TABLES.len()],
            names: Vec::new(),
            writes: Vec::new(),
            reads: Vec::new(),
            first_hot: None,
        }
    }

    fn slot(&mut self, table: usize, key: &str) -> usize {
        if let Some(i) = self.by_table[table].get(key) {
            return *i;
        }
        self.names.push((table, key.to_string()));
        self.writes.push(vec![0.0; self.seconds]);
        self.reads.push(vec![0.0; self.seconds]);
        let i = self.names.len() - 1;
        self.by_table[table].insert(key.to_string(), i);
        i
    }

    fn add(&mut self, op: &Op, key: &str, second: usize, scale: f64) {
        if second >= self.seconds {
            return;
        }
        let i = self.slot(op.table, key);
        let (cell, ceiling) = if op.write {
            (&mut self.writes[i][second], WRITE_CEILING)
        } else {
            (&mut self.reads[i][second], READ_CEILING)
        };
        *cell += op.units * scale;
        // The base tables' keys are single notifications: DynamoDB spreads
        // them over its partitions by hash. Only shared keys can run hot.
        if op.table > 1 && *cell > ceiling && self.first_hot.is_none_or(|(s, _)| second < s) {
            self.first_hot = Some((second, i));
        }
    }

    fn peak(&self, i: usize, write: bool) -> f64 {
        let cells = if write {
            &self.writes[i]
        } else {
            &self.reads[i]
        };
        cells.iter().cloned().fold(0.0, f64::max)
    }
}

/// One instance's partition keys, from the store's own key functions.
struct InstanceKeys {
    log: String,
    org_log: String,
    poll_state: String,
    item: String,
}

struct Report {
    lines: Vec<String>,
    first_hot: Option<String>,
    peak: HashMap<String, f64>,
}

fn simulate(w: &Workload) -> Report {
    let inputs: Value = serde_json::from_str(INPUTS).unwrap();
    let webhook_ops = ops_of(&inputs, "webhook_ingest", w.payload_bytes);
    let poll_ops = ops_of(&inputs, "poll_ingest", w.payload_bytes);
    let delivery_ops = ops_of(&inputs, "delivery", w.payload_bytes);
    let marker = *poll_ops
        .iter()
        .find(|op| TABLES[op.table] == "poll_state" && op.write)
        .unwrap();
    let per_notification = inputs["polling"]["events_per_notification"][1]
        .as_u64()
        .unwrap() as usize;
    let instance_keys: Vec<InstanceKeys> = (0..=w.instances)
        .map(|i| InstanceKeys {
            log: keys::instance_log_partition(i),
            org_log: keys::org_log_partition(&w.org_of(i).to_string()),
            poll_state: keys::poll_state_partition(i),
            // InstancesTable's key is the instance id as text (its layout
            // is instances.rs's, outside this model's change).
            item: i.to_string(),
        })
        .collect();
    let mut rng = Rng(w.seed);
    let n = w.seconds;
    let mut ledger = Ledger::new(n);
    let mut queue: BinaryHeap<Reverse<(u64, Step)>> = BinaryHeap::new();
    let micros = |t: f64| (t * 1e6) as u64;

    // Arrivals: a Poisson process whose rate follows the bursts.
    let mut t = 0.0;
    let mut changes = 0u64;
    while t < n as f64 {
        t += rng.exp(w.rate_at(t as usize));
        let instance = if rng.unit() < w.hot_share {
            1
        } else {
            2 + rng.next() % (w.instances - 1)
        };
        queue.push(Reverse((micros(t), Step::Change { instance })));
        changes += 1;
    }
    // Polls: every polling instance once a minute, at its own second.
    for instance in 2..=w.instances {
        if w.polls(instance) {
            let mut at = (instance % 60) as f64 + 0.5;
            while at < n as f64 {
                queue.push(Reverse((micros(at), Step::Poll { instance })));
                at += 60.0;
            }
        }
    }

    let mut waiting: HashMap<u64, usize> = HashMap::new();
    let mut next_notification = 0u64;
    // Each notification's `by-due` shard, from its id, until delivered.
    let mut shards: HashMap<u64, String> = HashMap::new();
    let apply =
        |ledger: &mut Ledger, op: &Op, instance: u64, shard: &str, second: usize, scale: f64| {
            let k = &instance_keys[instance as usize];
            let key = match TABLES[op.table] {
                "notifications" | "deliveries" => "all keys",
                "by-instance-log" => &k.log,
                "by-org-log" => &k.org_log,
                "by-due" => shard,
                "poll_state" => &k.poll_state,
                _ => &k.item,
            };
            ledger.add(op, key, second, scale);
        };
    // A new notification of `instance`: its number and `by-due` shard.
    let mut store = |instance: u64, source: &str, shards: &mut HashMap<u64, String>| {
        next_notification += 1;
        let id = keys::notification_key(instance, &format!("{source}-{next_notification}"));
        let shard = keys::due_shard(&id, w.due_shards);
        shards.insert(next_notification, shard.clone());
        (next_notification, shard)
    };

    while let Some(Reverse((at, step))) = queue.pop() {
        let second = (at / 1_000_000) as usize;
        match step {
            Step::Change { instance } if w.polls(instance) => {
                *waiting.entry(instance).or_default() += 1;
            }
            Step::Change { instance } => {
                let (notification, shard) = store(instance, "change", &mut shards);
                for op in &webhook_ops {
                    apply(&mut ledger, op, instance, &shard, second, 1.0);
                    if instance == 1 && op.write {
                        // WooCommerce: the notification and its version's
                        // marker in one transaction, so its writes count twice.
                        apply(&mut ledger, op, instance, &shard, second, 1.0);
                    }
                }
                if instance == 1 {
                    apply(&mut ledger, &marker, instance, &shard, second, 1.0);
                }
                // The stream invokes the dispatcher within about 0.3 s.
                queue.push(Reverse((
                    at + 300_000,
                    Step::Deliver {
                        instance,
                        notification,
                    },
                )));
            }
            Step::Poll { instance } => {
                let mut left = waiting.remove(&instance).unwrap_or(0);
                let mut offset = 0u64;
                while left > 0 {
                    let events = left.min(per_notification);
                    left -= events;
                    let (notification, shard) = store(instance, "poll", &mut shards);
                    // One transaction after the other, 20 ms each.
                    let s = ((at + offset) / 1_000_000) as usize;
                    for op in &poll_ops {
                        let scale = if op.per_event { events as f64 } else { 1.0 };
                        apply(&mut ledger, op, instance, &shard, s, scale);
                    }
                    queue.push(Reverse((
                        at + offset + 300_000,
                        Step::Deliver {
                            instance,
                            notification,
                        },
                    )));
                    offset += 20_000;
                }
            }
            Step::Deliver {
                instance,
                notification,
            } => {
                let shard = shards.remove(&notification).unwrap();
                for op in &delivery_ops {
                    apply(&mut ledger, op, instance, &shard, second, 1.0);
                }
            }
        }
    }

    // The report: the hottest partition of each kind, and the table.
    let mut lines = Vec::new();
    let mut peak: HashMap<String, f64> = HashMap::new();
    let mut rows: Vec<(String, String, f64, &'static str, f64)> = Vec::new();
    for (table, kind) in TABLES.iter().enumerate().skip(2) {
        let write = *kind != "instances";
        let best = ledger
            .names
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t == table)
            .map(|(i, _)| (i, ledger.peak(i, write)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, value)) = best {
            let (ceiling, unit) = if write {
                (WRITE_CEILING, "WCU/s")
            } else {
                (READ_CEILING, "RCU/s")
            };
            peak.insert(kind.to_string(), value);
            rows.push((
                kind.to_string(),
                ledger.names[i].1.clone(),
                value,
                unit,
                ceiling,
            ));
        }
    }
    let due_table = TABLES.iter().position(|t| *t == "by-due").unwrap();
    let shard_peaks: Vec<String> = (0..w.due_shards)
        .map(|s| {
            let v = ledger.by_table[due_table]
                .get(&keys::due_shard_name(s))
                .map(|i| ledger.peak(*i, true))
                .unwrap_or(0.0);
            format!("{v:.0}")
        })
        .collect();
    let table_peak = ledger.by_table[0]
        .get("all keys")
        .map(|i| ledger.peak(*i, true))
        .unwrap_or(0.0);
    peak.insert("table".into(), table_peak);
    lines.push(format!(
        "{} events/s mean ({} changes in {} s; bursts of {}x for {} s every {} s), {} instances in {} organizations, \
         instance 1 (a WooCommerce store, webhooks with markers) at {:.0}%, {:.0}% of the others polling every minute, \
         {} B payloads, DueShards {}",
        w.rate, changes, w.seconds, w.burst_factor, w.burst_len, w.burst_every, w.instances, w.orgs,
        w.hot_share * 100.0, w.polling_share * 100.0, w.payload_bytes, w.due_shards
    ));
    lines.push(String::new());
    lines.push(
        "| partition (hottest of its kind) | key | peak per second | ceiling | load |".into(),
    );
    lines.push("|---|---|---|---|---|".into());
    for (kind, key, value, unit, ceiling) in &rows {
        let load = value / ceiling * 100.0;
        let flag = if *value > *ceiling { " **HOT**" } else { "" };
        lines.push(format!(
            "| {kind} | `{key}` | {value:.0} {unit} | {ceiling:.0} | {load:.0}%{flag} |"
        ));
    }
    lines.push(format!(
        "| by-due, every shard | `p0`..`p{}` | {} WCU/s | 1000 each | |",
        w.due_shards - 1,
        shard_peaks.join(" / ")
    ));
    lines.push(format!(
        "| NotificationsTable, all keys (spread by hash) | | {table_peak:.0} WCU/s | 4000 (a new on-demand table), 40000 (table quota) | {:.0}% of 4000 |",
        table_peak / 4_000.0 * 100.0
    ));
    let first_hot = ledger.first_hot.map(|(second, i)| {
        let (table, key) = &ledger.names[i];
        format!(
            "first hot partition: {} `{key}`, in second {second}",
            TABLES[*table]
        )
    });
    lines.push(String::new());
    lines.push(
        first_hot
            .clone()
            .unwrap_or_else(|| "first hot partition: none".into()),
    );
    Report {
        lines,
        first_hot,
        peak,
    }
}

/// The three rates of docs/capacity.md, and DueShards raised at the top one.
/// Asserted: what the doc says of each, so a change to the keys or to the
/// inputs that moves a conclusion fails here first.
#[test]
fn per_partition_write_rates_at_100_1000_and_10000_events_per_second() {
    let started = std::time::Instant::now();
    let low = simulate(&Workload::default_at(100.0));
    let mid = simulate(&Workload::default_at(1_000.0));
    let high = simulate(&Workload::default_at(10_000.0));
    let high_sharded = simulate(&Workload {
        due_shards: 64,
        ..Workload::default_at(10_000.0)
    });
    for r in [&low, &mid, &high, &high_sharded] {
        println!("{}\n", r.lines.join("\n"));
    }
    println!("model run: {:.1} s", started.elapsed().as_secs_f64());

    // 100 events/s: nothing near a ceiling.
    assert!(low.first_hot.is_none(), "{:?}", low.first_hot);
    // 1,000 events/s: the hot store's log partitions go over in its bursts
    // (3 index writes per event, 300 events/s mean, 3x in a burst).
    let first = mid.first_hot.as_deref().unwrap_or_default();
    assert!(
        first.contains("by-instance-log `1`") || first.contains("by-org-log `1`"),
        "{first}"
    );
    // ... and, in a burst (3 x 770 events/s), the 4 by-due shards nearly so.
    assert!(mid.peak["by-due"] > 0.8 * WRITE_CEILING, "{:?}", mid.peak);
    // 10,000 events/s: by-due's 4 shards are over too; 64 bring them under.
    assert!(high.peak["by-due"] > WRITE_CEILING, "{:?}", high.peak);
    assert!(
        high_sharded.peak["by-due"] < WRITE_CEILING,
        "{:?}",
        high_sharded.peak
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the model stays under 30 s: {:?}",
        started.elapsed()
    );
}
