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
