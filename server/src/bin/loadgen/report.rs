//! The Markdown report of a run: machine, command line, the load's numbers, the raw ceiling
//! measured in the same run and the ratios, the catch-up, and where the time went.

use crate::catchup::CatchUp;
use crate::ceiling::Ceiling;
use crate::floor::Floor;
use crate::load::{LoadResult, Summary};
use crate::probe::{Activity, CpuUse};
use std::fmt::Write as _;
use std::time::Duration;

/// The targets of issue #4.
pub const TARGET_SHARE_OF_CEILING: f64 = 0.20;
pub const TARGET_P99: Duration = Duration::from_millis(100);
pub const TARGET_CATCHUP_SECONDS: f64 = 2.0;

/// The machine the run happened on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu_model: String,
    pub kernel: String,
    pub postgres: String,
}

impl Machine {
    /// Reads `/proc` (Linux); unknown fields stay empty.
    pub fn probe(postgres: String) -> Self {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        Self {
            cores,
            memory_gib: memory_kib / 1024.0 / 1024.0,
            cpu_model,
            kernel,
            postgres,
        }
    }
}

/// Row counts of the server's tables after the run.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    pub sync_ops_applied: i64,
    pub feed_rows: i64,
    pub audit_rows: i64,
}

/// Everything measured in one run.
#[derive(Debug, Default)]
pub struct Report {
    pub command: String,
    pub date: String,
    pub machine: Machine,
    pub target: String,
    pub devices: usize,
    pub changes_per_push: usize,
    pub commands_per_push: usize,
    pub chars_per_change: usize,
    /// A device's pause between an answer and its next push.
    pub think: Duration,
    pub mean_change_bytes: f64,
    pub mean_body_bytes: f64,
    pub pregen_pushes: usize,
    pub pregen_seconds: f64,
    /// One device pushing alone before the load.
    pub baseline: Option<Summary>,
    /// CPU use during the baseline (whole baseline run, warm-up included).
    pub baseline_cpu: Option<CpuUse>,
    pub load: LoadResult,
    pub summary: Summary,
    pub cpu: Option<CpuUse>,
    /// The 1-minute load average before and after the load.
    pub load_average: (Option<f64>, Option<f64>),
    pub activity: Option<Activity>,
    pub tables: Option<Tables>,
    pub ceilings: Vec<Ceiling>,
    /// The devices' changes applied in-process with the core alone (no HTTP, JSON, database):
    /// their first pushes on fresh documents, before the load.
    pub floor: Option<Floor>,
    /// The same, replaying every push the server answered in the load (the run's documents).
    pub floor_run: Option<Result<Floor, String>>,
    pub catchup: Option<Result<CatchUp, String>>,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn mark(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn cores(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

/// The best raw ceiling on one connection (the one the ingest target is judged against).
fn best_single_ceiling(ceilings: &[Ceiling]) -> f64 {
    ceilings
        .iter()
        .filter(|c| c.connections == 1)
        .map(|c| c.rows_per_second)
        .fold(0.0, f64::max)
}

impl Report {
    /// The Markdown block.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let s = &self.summary;
        let m = &self.machine;
        let _ = writeln!(o, "### sop-loadgen run, {}\n", self.date);
        let _ = writeln!(o, "```\n{}\n```\n", self.command);
        let _ = writeln!(
            o,
            "- Machine: {} cores ({}), {:.1} GiB RAM, Linux {}; {}",
            m.cores, m.cpu_model, m.memory_gib, m.kernel, m.postgres
        );
        let _ = writeln!(o, "- Server: {}", self.target);
        let _ = writeln!(
            o,
            "- Load: {} devices (one patient and one draft each), closed loop, {}; each push = {} \
             content changes of {} characters on average (each device its own speed) typed into the \
             intake's medical history (one Automerge change each, typed setter, device actor; \
             the text kept under {} \
             characters by cutting the oldest {}, each device at its own point) + {} \
             `UpdateIntake` command(s); mean change {:.0} bytes, mean push body {:.1} KiB",
            self.devices,
            if self.think.is_zero() {
                "no think time (the next push leaves when the answer arrives)".to_owned()
            } else {
                format!("{} think time after each answer", ms(self.think))
            },
            self.changes_per_push,
            self.chars_per_change,
            crate::device::MAX_TEXT_CHARS,
            crate::device::TRIM_CHARS,
            self.commands_per_push,
            self.mean_change_bytes,
            self.mean_body_bytes / 1024.0
        );
        let _ = writeln!(
            o,
            "- Pushes generated before the run: {} (in {:.1} s); generated during the run: {}",
            self.pregen_pushes, self.pregen_seconds, self.load.generated_live
        );
        let _ = writeln!(o);

        if let Some(b) = &self.baseline {
            let _ = writeln!(o, "#### Baseline: one device pushing alone\n");
            let _ = writeln!(
                o,
                "{} pushes in {:.1} s: {:.1} pushes/s, {:.0} applied ops/s; latency p50 {} / p99 {} / max {}.\n",
                b.pushes,
                b.window.as_secs_f64(),
                b.sustained_pushes,
                b.sustained_ops,
                ms(b.p50),
                ms(b.p99),
                ms(b.max)
            );
            if let Some(cpu) = &self.baseline_cpu {
                let per_push = |c: Option<f64>| {
                    c.map_or_else(
                        || "n/a".to_owned(),
                        // CPU seconds of the whole baseline over every push it made.
                        |c| format!("{:.1} ms", 1000.0 * c * cpu.wall / b.pushes.max(1) as f64),
                    )
                };
                let _ = writeln!(
                    o,
                    "CPU per push while alone: sop-server {}, PostgreSQL {} (cores busy: {} / {}).\n",
                    per_push(cpu.server),
                    per_push(cpu.postgres),
                    cores(cpu.server),
                    cores(cpu.postgres)
                );
            }
        }

        let _ = writeln!(o, "#### Ingest over HTTP\n");
        let _ = writeln!(o, "| | |\n|---|---|");
        let _ = writeln!(
            o,
            "| Run / measured window | {:.1} s / {:.1} s (after warm-up) |",
            self.load.elapsed.as_secs_f64(),
            s.window.as_secs_f64()
        );
        let _ = writeln!(
            o,
            "| Pushes completed / ops in them | {} / {} |",
            s.pushes, s.ops
        );
        let _ = writeln!(
            o,
            "| Ops answered: applied / duplicate / refused | {} / {} / {} |",
            s.applied, s.duplicate, s.refused
        );
        let _ = writeln!(
            o,
            "| Transport or HTTP errors (retried) / pushes abandoned | {} / {} |",
            self.load.errors, self.load.abandoned
        );
        let _ = writeln!(
            o,
            "| **Sustained applied ops/s** (window) | **{:.0}** ({:.1} pushes/s) |",
            s.sustained_ops, s.sustained_pushes
        );
        let _ = writeln!(
            o,
            "| Applied ops/s over the whole run | {:.0} |",
            s.overall_ops
        );
        let _ = writeln!(
            o,
            "| Push latency p50 / p90 / **p99** / max (window) | {} / {} / **{}** / {} |",
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max)
        );
        let _ = writeln!(o, "| Mean push latency | {} |", ms(s.mean));
        let _ = writeln!(
            o,
            "| Applied ops per second of the run | {} |",
            s.per_second
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        let _ = writeln!(
            o,
            "| Slowest push in each second of the run (ms) | {} |",
            s.slowest_per_second
                .iter()
                .map(|d| d.as_millis().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        if !self.load.refused_codes.is_empty() {
            let codes: Vec<String> = self
                .load
                .refused_codes
                .iter()
                .map(|(c, n)| format!("{c}: {n}"))
                .collect();
            let _ = writeln!(o, "| Refusals by code | {} |", codes.join(", "));
        }
        if let Some(t) = &self.tables {
            let _ = writeln!(
                o,
                "| After the run: `sync_ops` applied / `feed` rows / `audit_log` rows | {} / {} / {} |",
                t.sync_ops_applied, t.feed_rows, t.audit_rows
            );
        }
        for e in &self.load.error_examples {
            let _ = writeln!(o, "| Error example | `{}` |", e.replace('|', "\\|"));
        }
        let _ = writeln!(o);

        let _ = writeln!(o, "#### Raw PostgreSQL ceiling, same run, same bytes\n");
        let _ = writeln!(
            o,
            "`INSERT … SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[])`, rows of the \
             devices' change bytes, primary key (doc_id, seq), one transaction per batch.\n"
        );
        let _ = writeln!(
            o,
            "| Connections | Rows | Rows per transaction | Mean bytes/row | Seconds | Rows/s | Ingest / ceiling |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|");
        for c in &self.ceilings {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {:.0} | {:.2} | {:.0} | {:.1}% |",
                c.connections,
                c.rows,
                c.batch,
                c.mean_bytes,
                c.seconds,
                c.rows_per_second,
                100.0 * s.sustained_ops / c.rows_per_second.max(1e-9)
            );
        }
        let _ = writeln!(o);

        self.write_floor(&mut o, best_single_ceiling(&self.ceilings));

        let _ = writeln!(o, "#### Catch-up\n");
        match &self.catchup {
            None => {
                let _ = writeln!(o, "Not run.\n");
            }
            Some(Err(e)) => {
                let _ = writeln!(o, "Failed: `{e}`\n");
            }
            Some(Ok(c)) => {
                let _ = writeln!(
                    o,
                    "Another device pushed {} changes in {} pushes ({:.2} s, slowest push {}).\n",
                    c.changes,
                    c.pushes,
                    c.push_seconds,
                    ms(c.push_max)
                );
                let _ = writeln!(
                    o,
                    "| Pull sequence | Wall clock (apply included) | Of which applying | Pages | Items | Content bytes | Response bytes |"
                );
                let _ = writeln!(o, "|---|---|---|---|---|---|---|");
                let stale = format!(
                    "stale cursor ({} changes behind), one apply per page",
                    c.changes
                );
                for (name, r) in [
                    (stale.as_str(), &c.stale),
                    ("same, one apply per content item", &c.stale_per_item),
                    (
                        "new device, cursor 0 (snapshot), one apply per page",
                        &c.fresh,
                    ),
                ] {
                    let _ = writeln!(
                        o,
                        "| {name} | **{:.3} s** | {:.3} s | {} | {} | {} | {} |",
                        r.seconds,
                        r.apply_seconds,
                        r.pages,
                        r.items,
                        r.content_bytes,
                        r.response_bytes
                    );
                }
                let _ = writeln!(o);
            }
        }

        let _ = writeln!(o, "#### Where the time went (load window)\n");
        if let Some(cpu) = &self.cpu {
            let (busy, idle, steal) = cpu.machine.unwrap_or_default();
            let ours = cpu.server.unwrap_or(0.0)
                + cpu.postgres.unwrap_or(0.0)
                + cpu.loadgen.unwrap_or(0.0);
            let _ = writeln!(
                o,
                "CPU over {:.1} s, in cores busy on average: sop-server {}, PostgreSQL (all backends) {}, \
                 sop-loadgen {}, other processes {:.2}; machine busy {:.2}, idle {:.2}, steal {:.2} \
                 (of {}). 1-minute load average before / after the load: {} / {}.\n",
                cpu.wall,
                cores(cpu.server),
                cores(cpu.postgres),
                cores(cpu.loadgen),
                (busy - ours).max(0.0),
                busy,
                idle,
                steal,
                m.cores,
                cores(self.load_average.0),
                cores(self.load_average.1),
            );
            let pushes = s.sustained_pushes.max(1e-9);
            let per_push = |c: Option<f64>| {
                c.map_or_else(
                    || "n/a".to_owned(),
                    |c| format!("{:.1} ms", 1000.0 * c / pushes),
                )
            };
            let _ = writeln!(
                o,
                "CPU per push under load: sop-server {}, PostgreSQL {}.\n",
                per_push(cpu.server),
                per_push(cpu.postgres)
            );
        }
        if let Some(a) = &self.activity {
            let _ = writeln!(
                o,
                "PostgreSQL backends of the server's database ({} samples of `pg_stat_activity`), \
                 average number in each state:\n",
                a.samples
            );
            let _ = writeln!(o, "| State | Backends |\n|---|---|");
            for (what, n) in a.by_state() {
                let _ = writeln!(o, "| {what} | {n:.2} |");
            }
            let _ = writeln!(o, "\nTop (state, statement):\n");
            let _ = writeln!(o, "| State | Statement | Backends |\n|---|---|---|");
            for (what, query, n) in a.averages().into_iter().filter(|r| r.0 != "idle").take(12) {
                let _ = writeln!(
                    o,
                    "| {what} | `{}` | {n:.2} |",
                    query.replace('|', "\\|").replace('`', "'")
                );
            }
            let _ = writeln!(
                o,
                "\nA backend held a lock that others waited for (in the server, the feed clock's row: \
                 `UPDATE feed_clock … RETURNING`, taken by every writing transaction at its end and \
                 held until its commit) in {:.1}% of the samples; what the holder was doing then:\n",
                100.0 * a.lock_held as f64 / a.samples.max(1) as f64
            );
            let mut by_state: Vec<(String, f64)> = Vec::new();
            for (what, _, share) in a.holder_shares() {
                match by_state.iter_mut().find(|(w, _)| *w == what) {
                    Some((_, s)) => *s += share,
                    None => by_state.push((what, share)),
                }
            }
            by_state.sort_by(|x, y| y.1.total_cmp(&x.1));
            let summary: Vec<String> = by_state
                .iter()
                .map(|(w, s)| format!("{w} {:.1}%", 100.0 * s))
                .collect();
            let _ = writeln!(o, "By state: {}.\n", summary.join("; "));
            let _ = writeln!(
                o,
                "| Holder's state | Statement | Share of held samples |\n|---|---|---|"
            );
            for (what, query, share) in a.holder_shares().into_iter().take(20) {
                let _ = writeln!(
                    o,
                    "| {what} | `{}` | {:.1}% |",
                    query.replace('|', "\\|").replace('`', "'"),
                    100.0 * share
                );
            }
            let _ = writeln!(o);
        }

        let _ = writeln!(o, "#### Targets\n");
        let best_single = best_single_ceiling(&self.ceilings);
        let best_any = self
            .ceilings
            .iter()
            .map(|c| c.rows_per_second)
            .fold(0.0, f64::max);
        let share1 = s.sustained_ops / best_single.max(1e-9);
        let share_any = s.sustained_ops / best_any.max(1e-9);
        let _ = writeln!(
            o,
            "- Sustained ingest ≥ 20% of the raw ceiling: {:.1}% of the 1-connection ceiling, \
             {:.1}% of the best ceiling → {}",
            100.0 * share1,
            100.0 * share_any,
            mark(share1 >= TARGET_SHARE_OF_CEILING)
        );
        if let Some(Ok(f)) = &self.floor_run {
            let _ = writeln!(
                o,
                "  - the bound: the Automerge apply alone, on the run's documents, would keep \
                 {:.2} cores busy at 20% of the 1-connection ceiling; on 2 cores it allows at \
                 most {:.1}%, before HTTP, JSON and the database take their share",
                f.cores_at(TARGET_SHARE_OF_CEILING * best_single),
                100.0 * 2.0 * f.ops_per_second() / best_single.max(1e-9)
            );
        }
        let push_size = self.changes_per_push + self.commands_per_push;
        let at_push_size: Vec<String> = self
            .ceilings
            .iter()
            .filter(|c| c.batch == push_size)
            .map(|c| {
                format!(
                    "{:.1}% on {} connection(s)",
                    100.0 * s.sustained_ops / c.rows_per_second.max(1e-9),
                    c.connections
                )
            })
            .collect();
        if !at_push_size.is_empty() {
            let _ = writeln!(
                o,
                "  - for comparison, not the target: against the ceiling in transactions of one \
                 push ({push_size} rows, one commit each, as the server commits), {}",
                at_push_size.join(", ")
            );
        }
        let _ = writeln!(
            o,
            "- p99 push latency ≤ 100 ms with {} devices: {} → {}",
            self.devices,
            ms(s.p99),
            mark(s.p99 <= TARGET_P99)
        );
        match &self.catchup {
            Some(Ok(c)) => {
                let _ = writeln!(
                    o,
                    "- Catch-up of a device {} changes behind < 2 s: {:.3} s → {}",
                    c.changes,
                    c.stale.seconds,
                    mark(c.stale.seconds < TARGET_CATCHUP_SECONDS)
                );
            }
            _ => {
                let _ = writeln!(o, "- Catch-up: not measured");
            }
        }
        let _ = writeln!(
            o,
            "- Errors: {} failed attempts, {} refused ops",
            self.load.errors, s.refused
        );
        o
    }

    /// The CRDT floor section: fresh documents and the run's own, against the ceiling.
    fn write_floor(&self, o: &mut String, best_single: f64) {
        let _ = writeln!(o, "#### The CRDT floor, same run, same changes\n");
        let _ = writeln!(
            o,
            "The devices' pushes applied to the intake with the core's `apply_remote_batch` \
             (decode, dependencies, one `apply_changes`, schema, size limit) in this process on \
             one core, with no HTTP, JSON or database: first each device's first pushes on a \
             fresh document (before the load), then every push the server answered in the load, \
             in order, so that each apply meets the history it met in the server. Automerge \
             0.12's apply walks the whole history of the text it touches, so the cost of an op \
             grows with its document.\n"
        );
        let _ = writeln!(
            o,
            "| Documents | Devices | Pushes | Change ops | Seconds | Change ops/s per core | µs \
             per op | On 2 cores, ops/s | ÷ 1-conn ceiling | Ingest ÷ 2-core floor |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
        let rows = [
            ("fresh (first pushes)", self.floor.as_ref().map(Ok)),
            (
                "**the run's** (every answered push)",
                self.floor_run.as_ref().map(Result::as_ref),
            ),
        ];
        for (label, floor) in rows {
            match floor {
                None => {}
                Some(Err(e)) => {
                    let _ = writeln!(o, "| {label} | failed: `{e}` |||||||||");
                }
                Some(Ok(f)) => {
                    let per_core = f.ops_per_second();
                    let _ = writeln!(
                        o,
                        "| {label} | {} | {} | {} | {:.2} | {per_core:.0} | {:.0} | {:.0} | \
                         {:.1}% | {:.1}% |",
                        f.devices,
                        f.pushes,
                        f.ops,
                        f.elapsed.as_secs_f64(),
                        1e6 / per_core.max(1e-9),
                        2.0 * per_core,
                        100.0 * 2.0 * per_core / best_single.max(1e-9),
                        100.0 * self.summary.sustained_ops / (2.0 * per_core).max(1e-9),
                    );
                }
            }
        }
        if let Some(Ok(f)) = &self.floor_run {
            let target = TARGET_SHARE_OF_CEILING * best_single;
            let _ = writeln!(
                o,
                "\nAt 20% of the 1-connection ceiling ({target:.0} ops/s), the apply alone on the \
                 run's documents would keep **{:.2} cores** busy, of this machine's 2.",
                f.cores_at(target)
            );
        }
        let _ = writeln!(o);
    }
}
