//! What a `ce-load` run cost: store requests by operation and the capacity
//! units the server reported (the stores' meters, shared/src/store/metering.rs),
//! CPU seconds of this process (`getrusage`) and of the DynamoDB server
//! (`/proc/<pid>/stat`, the pid from `MOTO_PID`, which scripts/with-moto.sh
//! exports). Reported per delivered event, so every change to the access
//! pattern is measured.

use shared::store::metering::Metered;
use shared::store::Store;

/// A point in a run to measure from.
pub struct Usage {
    metered: Metered,
    ours: f64,
    server: Option<f64>,
}

/// User plus system CPU seconds of this process.
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// User plus system CPU seconds of the DynamoDB server, when it is known.
fn server_cpu_seconds() -> Option<f64> {
    let pid = std::env::var("MOTO_PID").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).ok()?;
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are fields 14 and 15 of proc(5).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((ticks(11)? + ticks(12)?) / per_second)
}

fn metered(stores: &[&Store]) -> Metered {
    let mut sum = Metered::default();
    for store in stores {
        sum.add(&store.meter().snapshot());
    }
    sum
}

impl Usage {
    pub fn now(stores: &[&Store]) -> Usage {
        Usage {
            metered: metered(stores),
            ours: own_cpu_seconds(),
            server: server_cpu_seconds(),
        }
    }

    /// One line: requests and capacity units per event, by operation, and
    /// CPU seconds per event here and in the server, since `self`.
    pub fn report(&self, label: &str, stores: &[&Store], events: usize) -> String {
        let spent = metered(stores).since(&self.metered);
        let per = |x: f64| x / events.max(1) as f64;
        let by_operation = spent
            .operations
            .iter()
            .map(|(name, c)| format!("{name} {:.2}", per(c.requests as f64)))
            .collect::<Vec<_>>()
            .join(", ");
        let ours = per(own_cpu_seconds() - self.ours);
        let server = match (self.server, server_cpu_seconds()) {
            (Some(a), Some(b)) => format!("{:.2} ms", per(b - a) * 1e3),
            _ => "unknown (MOTO_PID not set)".into(),
        };
        format!(
            "{label}: {events} events; store requests per event {:.2} ({by_operation}); \
             capacity units per event as reported {:.2}; CPU per event: ce-load process {:.2} ms, DynamoDB server {server}",
            per(spent.requests() as f64),
            per(spent.capacity_units()),
            ours * 1e3,
        )
    }
}

/// Write units per delivered webhook event, computed with DynamoDB's sizing
/// rules from delivered notification items as stored (moto reports a
/// constant per call, not units by size). Every write of the notification is
/// charged at its size after delivery, the largest it has been: rounding
/// against us. Each write that adds, changes or removes a projected
/// attribute also writes the index entry (one unit: the projections are
/// keys, `status` and `attempts`): `by-instance-log` and `by-org-log` on
/// the ingest put, the claim (`attempts`) and the completion (`status`);
/// `by-due` on the put and the completion (which removes `pending_shard`).
/// The three ways to record the attempt are compared.
pub fn write_units_per_event(items: &[shared::store::metering::ItemSample]) -> String {
    use shared::store::metering::write_units;
    if items.is_empty() {
        return "no delivered items to size".into();
    }
    let n = items.len() as f64;
    let avg = |f: &dyn Fn(&shared::store::metering::ItemSample) -> u64| {
        items.iter().map(f).sum::<u64>() as f64 / n
    };
    let bytes = items.iter().map(|i| i.bytes).sum::<usize>() as f64 / n;
    let index_writes = 2.0 * 3.0 + 2.0;
    let inline = avg(&|i| 3 * write_units(i.bytes)) + index_writes;
    let apart =
        avg(&|i| 3 * write_units(i.bytes - i.attempt_log_bytes) + write_units(i.attempt_log_bytes))
            + index_writes;
    let transaction = avg(&|i| {
        2 * write_units(i.bytes - i.attempt_log_bytes)
            + 2 * (write_units(i.bytes - i.attempt_log_bytes) + write_units(i.attempt_log_bytes))
    }) + index_writes;
    format!(
        "write units per delivered event (notification item {bytes:.0} bytes after delivery, sizes by DynamoDB's rules): \
         attempt in the completion {inline:.1}; attempt as its own PutItem {apart:.1}; \
         completion and attempt in one transaction {transaction:.1} (each includes {index_writes} index writes)"
    )
}
