//! The command line of `sop-loadgen`: what to start or target, how much load, and what to
//! measure besides it. Durations are written `20s`, `500ms`, `2m` or as plain seconds.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// The PostgreSQL admin URL used when none is given (the one the tests use).
pub const DEFAULT_PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `sop-loadgen`: simulated devices push batches of small content changes and commands to a
/// `sop-server` on PostgreSQL over `/sync/v1/push`; the raw PostgreSQL insert ceiling and a
/// catch-up pull are measured in the same run, and a Markdown report is printed.
#[derive(Clone, Debug, Parser)]
#[command(name = "sop-loadgen", version)]
pub struct Args {
    /// Target this running server instead of starting one (needs `--data-dir`, the server's
    /// data directory, to mint tokens with its local key).
    #[arg(long, requires = "data_dir")]
    pub url: Option<String>,

    /// With `--url`: the target server's data directory (its local signing key mints tokens).
    #[arg(long, requires = "url")]
    pub data_dir: Option<PathBuf>,

    /// With `--url`: the target server's database; the demo catalog is seeded there and its
    /// backends are sampled during the load. Without it the catalog must already be seeded.
    #[arg(long, requires = "url")]
    pub database_url: Option<String>,

    /// The `sop-server` binary (default: the one next to this executable).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,

    /// `RUST_LOG` of the server this run starts.
    #[arg(long, default_value = "info")]
    pub server_log: String,

    /// PostgreSQL URL with the right to create databases: a fresh database is created there
    /// for the server (and the ceiling measurement) and dropped at the end.
    #[arg(long, env = "SOP_LOADGEN_PG_ADMIN_URL", default_value = DEFAULT_PG_ADMIN_URL)]
    pub pg_admin_url: String,

    /// Simulated devices pushing concurrently (one patient and one draft case each).
    #[arg(long, default_value_t = 100)]
    pub devices: usize,

    /// Operations per push (content changes plus `--commands` commands).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,

    /// Commands (`UpdateIntake` of the age) per push, placed after the changes.
    #[arg(long, default_value_t = 1)]
    pub commands: usize,

    /// Characters typed per content change (one Automerge change each), on average: device `i`
    /// types 2 fewer to 2 more, by `i` (from 3 on).
    #[arg(long, default_value_t = 4)]
    pub chars_per_change: usize,

    /// How long the devices push.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// The first part of `--duration` left out of the sustained rate and the latencies.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Before the load, one extra device pushes alone for this long: the service time of a push
    /// without contention (0s: skip).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub baseline: Duration,

    /// Pause of a device between the answer to one push and the next push.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub think: Duration,

    /// Push bodies are generated before the run for this many ops/s over `--duration` (so
    /// the devices' Automerge work does not compete with the server for CPU); a device that
    /// runs out generates more while pushing (reported).
    #[arg(long, default_value_t = 20_000)]
    pub pregen_rate: u64,

    /// Rows inserted per raw-ceiling measurement.
    #[arg(long, default_value_t = 200_000)]
    pub ceiling_rows: usize,

    /// Rows per `UNNEST` insert (one transaction each) in the raw-ceiling measurement.
    #[arg(long, default_value_t = 500)]
    pub ceiling_batch: usize,

    /// Content changes another device pushes before the catch-up pull (0: no catch-up).
    #[arg(long, default_value_t = 10_000)]
    pub catchup_changes: usize,

    /// Also write the Markdown report to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,

    /// Keep the database and the data directory (their names are printed).
    #[arg(long)]
    pub keep: bool,
}

/// Parses `20s`, `1500ms`, `2m` or `20` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (e.g. 20s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown duration unit `{other}` (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
