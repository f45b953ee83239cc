//! Where the time goes while the load runs, measured from outside the server:
//!
//! - [`CpuClock`]: CPU seconds of the server process, of every `postgres` process and of this
//!   load generator (from `/proc/<pid>/stat`), and the machine's busy, idle and steal time
//!   (from `/proc/stat`), so the run can say which of them used the two cores.
//! - [`PgSampler`]: samples `pg_stat_activity` of the server's database every few milliseconds
//!   and counts what its backends are doing: running, waiting on a lock (which one), or idle in
//!   a transaction (waiting for the server process between two statements), with the statement.
//!
//! Linux only; on other systems the CPU figures are absent.

use sqlx::Connection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`: 100 on Linux x86-64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time of a process (user + system), in seconds.
fn process_cpu(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// CPU time of every process named `postgres`, in seconds.
fn postgres_cpu() -> Option<f64> {
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            total += process_cpu(pid).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// The machine's (busy, idle, steal) seconds summed over all cores, from `/proc/stat`.
fn machine_cpu() -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let get = |i: usize| v.get(i).copied().unwrap_or(0.0);
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    let idle = get(3) + get(4);
    Some((
        busy / TICKS_PER_SECOND,
        idle / TICKS_PER_SECOND,
        get(7) / TICKS_PER_SECOND,
    ))
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU readings at one moment.
#[derive(Clone, Copy, Debug)]
pub struct CpuClock {
    at: Instant,
    server: Option<f64>,
    postgres: Option<f64>,
    loadgen: Option<f64>,
    machine: Option<(f64, f64, f64)>,
}

/// CPU used between two readings, in cores (CPU seconds per wall second).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub wall: f64,
    pub server: Option<f64>,
    pub postgres: Option<f64>,
    pub loadgen: Option<f64>,
    /// Busy, idle and steal cores of the whole machine.
    pub machine: Option<(f64, f64, f64)>,
}

impl CpuClock {
    /// Reads the clocks now; `server_pid` is the server process, if this run started it.
    pub fn now(server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            server: server_pid.and_then(|p| process_cpu(&p.to_string())),
            postgres: postgres_cpu(),
            loadgen: process_cpu("self"),
            machine: machine_cpu(),
        }
    }

    /// What was used since `self`, per wall second.
    pub fn since(&self, later: &CpuClock) -> CpuUse {
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let rate = |a: Option<f64>, b: Option<f64>| Some((b? - a?) / wall);
        CpuUse {
            wall,
            server: rate(self.server, later.server),
            postgres: rate(self.postgres, later.postgres),
            loadgen: rate(self.loadgen, later.loadgen),
            machine: match (self.machine, later.machine) {
                (Some(a), Some(b)) => {
                    Some(((b.0 - a.0) / wall, (b.1 - a.1) / wall, (b.2 - a.2) / wall))
                }
                _ => None,
            },
        }
    }
}

/// What the database's backends were doing, summed over the samples.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    pub samples: u64,
    /// (what, statement) → backends seen in that state, summed over samples.
    pub counts: BTreeMap<(String, String), u64>,
    /// Samples in which a backend held a lock others were waiting for (in the server: the
    /// feed clock's row, which every writer takes at its end and holds until COMMIT).
    pub lock_held: u64,
    /// (what, statement) of a backend others were waiting for → samples.
    pub holder: BTreeMap<(String, String), u64>,
}

impl Activity {
    /// Average number of backends in each state (descending), with the statement.
    pub fn averages(&self) -> Vec<(String, String, f64)> {
        let n = self.samples.max(1) as f64;
        let mut out: Vec<(String, String, f64)> = self
            .counts
            .iter()
            .map(|((what, query), c)| (what.clone(), query.clone(), *c as f64 / n))
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        out
    }

    /// What the backends others waited for were doing: (state, statement, share of the samples in
    /// which the lock was held), descending.
    pub fn holder_shares(&self) -> Vec<(String, String, f64)> {
        let n = self.lock_held.max(1) as f64;
        let mut out: Vec<(String, String, f64)> = self
            .holder
            .iter()
            .map(|((what, query), c)| (what.clone(), query.clone(), *c as f64 / n))
            .collect();
        out.sort_by(|a, b| b.2.total_cmp(&a.2));
        out
    }

    /// Average number of backends per state, whatever the statement (descending).
    pub fn by_state(&self) -> Vec<(String, f64)> {
        let n = self.samples.max(1) as f64;
        let mut by_state: BTreeMap<String, f64> = BTreeMap::new();
        for ((what, _), c) in &self.counts {
            *by_state.entry(what.clone()).or_default() += *c as f64 / n;
        }
        let mut out: Vec<(String, f64)> = by_state.into_iter().collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// A sampled backend: state, wait event type and name, statement, holds a lock another backend
/// waits for.
type Row = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// A running sampler of `pg_stat_activity`.
pub struct PgSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<anyhow::Result<Activity>>,
}

impl PgSampler {
    /// Starts sampling the database of `db_url` every `every`.
    pub async fn start(db_url: &str, every: Duration) -> anyhow::Result<Self> {
        let mut conn = sqlx::PgConnection::connect(db_url).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut activity = Activity::default();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT a.state, a.wait_event_type, a.wait_event, a.query, \
                     a.pid IN (SELECT unnest(pg_blocking_pids(b.pid)) FROM pg_stat_activity b \
                               WHERE b.datname = current_database() AND b.wait_event_type = 'Lock') \
                     FROM pg_stat_activity a \
                     WHERE a.datname = current_database() AND a.backend_type = 'client backend' \
                     AND a.pid <> pg_backend_pid()",
                )
                .fetch_all(&mut conn)
                .await?;
                activity.samples += 1;
                if rows.iter().any(|r| r.4) {
                    activity.lock_held += 1;
                }
                for (state, wait_type, wait, query, holder) in rows {
                    let state = state.unwrap_or_default();
                    let what = match (state.as_str(), wait_type, wait) {
                        ("active", None, _) => "active: running".to_owned(),
                        ("active", Some(t), w) => {
                            format!("active: waiting {t}:{}", w.unwrap_or_default())
                        }
                        ("idle in transaction", _, _) => {
                            "idle in transaction (server process busy between statements)"
                                .to_owned()
                        }
                        (other, _, _) => other.to_owned(),
                    };
                    if what == "idle" {
                        *activity.counts.entry((what, String::new())).or_default() += 1;
                        continue;
                    }
                    let query: String = query
                        .unwrap_or_default()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                        .chars()
                        .take(70)
                        .collect();
                    if holder {
                        *activity
                            .holder
                            .entry((what.clone(), query.clone()))
                            .or_default() += 1;
                    }
                    *activity.counts.entry((what, query)).or_default() += 1;
                }
            }
            conn.close().await?;
            Ok(activity)
        });
        Ok(Self { stop, task })
    }

    /// Stops sampling; what was seen.
    pub async fn finish(self) -> anyhow::Result<Activity> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await?
    }
}
