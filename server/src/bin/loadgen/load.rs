//! The load phase: every device pushes its batches over `/sync/v1/push` in a closed loop (the
//! next push leaves when the previous answer arrived, plus `--think`) until the deadline, and
//! each push is recorded with its latency and per-operation answers. With a think time, each
//! device starts after a random part of it, so the devices do not push in waves.
//!
//! A push that fails in transport or with a 5xx is retried with the same body (the protocol
//! makes that safe: ops answered before answer `duplicate`); each failure counts as an error.
//! The sustained rate counts the ops answered `applied` by pushes that completed after the
//! warm-up and before the deadline.

use crate::device::{Batch, Typist};
use crate::setup::{Api, decode};
use sop_core::sync::v1::{Outcome, PushResponse};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Attempts per push before a device gives the batch up.
const ATTEMPTS: usize = 4;

/// One device and its token, with the pushes generated before the run.
pub struct LoadDevice {
    pub token: String,
    pub typist: Typist,
    pub pregen: VecDeque<Batch>,
    /// When `Some`, the pushes the server answered, in order (for the CRDT floor of the run's
    /// own documents); `None` keeps nothing.
    pub answered: Option<Vec<Batch>>,
}

/// How the load runs.
#[derive(Clone, Copy, Debug)]
pub struct LoadConfig {
    pub duration: Duration,
    pub warmup: Duration,
    pub think: Duration,
    pub changes: usize,
    pub commands: usize,
}

/// One completed push.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When it completed, from the start of the run.
    pub done: Duration,
    pub latency: Duration,
    pub ops: u32,
    pub applied: u32,
    pub duplicate: u32,
    pub refused: u32,
}

/// What the devices saw.
#[derive(Debug, Default)]
pub struct LoadResult {
    pub samples: Vec<Sample>,
    /// Failed attempts (transport errors, non-200 answers).
    pub errors: u64,
    /// Pushes given up after [`ATTEMPTS`] failures.
    pub abandoned: u64,
    /// The first few error messages.
    pub error_examples: Vec<String>,
    /// Refusals by code.
    pub refused_codes: BTreeMap<String, u64>,
    /// Pushes generated during the run because a device ran out of pre-generated ones.
    pub generated_live: u64,
    /// From the start to the last answer.
    pub elapsed: Duration,
    pub config: Option<LoadConfig>,
}

/// Shared tallies of the devices.
#[derive(Default)]
struct Shared {
    result: LoadResult,
}

/// Runs the load; answers the devices (their documents as they left them) and the result.
pub async fn run(
    api: &Api,
    devices: Vec<LoadDevice>,
    config: LoadConfig,
) -> (Vec<LoadDevice>, LoadResult) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let start = Instant::now();
    let deadline = start + config.duration;
    let tasks: Vec<_> = devices
        .into_iter()
        .map(|device| {
            let api = api.clone();
            let shared = Arc::clone(&shared);
            tokio::spawn(device_loop(api, device, config, start, deadline, shared))
        })
        .collect();
    let mut back = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(device) => back.push(device),
            Err(e) => shared
                .lock()
                .await
                .result
                .error_examples
                .push(format!("device task failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    let mut shared = shared.lock().await;
    let mut result = std::mem::take(&mut shared.result);
    result.elapsed = elapsed;
    result.config = Some(config);
    result.samples.sort_by_key(|s| s.done);
    (back, result)
}

async fn device_loop(
    api: Api,
    mut device: LoadDevice,
    config: LoadConfig,
    start: Instant,
    deadline: Instant,
    shared: Arc<Mutex<Shared>>,
) -> LoadDevice {
    let device_header = device.typist.device_id.0.to_string();
    if !config.think.is_zero() {
        // Uniform in [0, think): the random bits of a fresh v4 UUID.
        let think_us = u128::max(config.think.as_micros(), 1);
        let offset = uuid::Uuid::new_v4().as_u128() % think_us;
        tokio::time::sleep(Duration::from_micros(u64::try_from(offset).unwrap_or(0))).await;
    }
    while Instant::now() < deadline {
        let batch = match device.pregen.pop_front() {
            Some(b) => b,
            None => match device.typist.batch(config.changes, config.commands) {
                Ok(b) => {
                    shared.lock().await.result.generated_live += 1;
                    b
                }
                Err(e) => {
                    let mut s = shared.lock().await;
                    s.result.errors += 1;
                    s.result
                        .error_examples
                        .push(format!("generating a push: {e:#}"));
                    break;
                }
            },
        };
        let mut answered = None;
        for attempt in 0..ATTEMPTS {
            let sent = Instant::now();
            let reply = api
                .post_raw(
                    "/sync/v1/push",
                    &device.token,
                    Some(&device_header),
                    batch.body.clone(),
                )
                .await;
            let latency = sent.elapsed();
            let decoded = reply
                .and_then(|(status, body)| decode::<PushResponse>("/sync/v1/push", status, &body));
            match decoded {
                Ok(resp) => {
                    answered = Some((resp, latency));
                    break;
                }
                Err(e) => {
                    let mut s = shared.lock().await;
                    s.result.errors += 1;
                    if s.result.error_examples.len() < 10 {
                        s.result.error_examples.push(format!("{e:#}"));
                    }
                    drop(s);
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        let done = start.elapsed();
        let mut s = shared.lock().await;
        match answered {
            None => s.result.abandoned += 1,
            Some((resp, latency)) => {
                let mut sample = Sample {
                    done,
                    latency,
                    ops: u32::try_from(batch.ops).unwrap_or(u32::MAX),
                    applied: 0,
                    duplicate: 0,
                    refused: 0,
                };
                for r in resp.results {
                    match r.outcome {
                        Outcome::Applied => sample.applied += 1,
                        Outcome::Duplicate => sample.duplicate += 1,
                        Outcome::Refused { code, .. } => {
                            sample.refused += 1;
                            *s.result.refused_codes.entry(code.to_string()).or_default() += 1;
                        }
                    }
                }
                s.result.samples.push(sample);
                if let Some(kept) = &mut device.answered {
                    kept.push(batch);
                }
            }
        }
        drop(s);
        if !config.think.is_zero() {
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(config.think.min(left)).await;
        }
    }
    device
}

/// The numbers of a load run.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub pushes: usize,
    pub ops: u64,
    pub applied: u64,
    pub duplicate: u64,
    pub refused: u64,
    /// Applied ops/s over the measurement window (after the warm-up, up to the deadline).
    pub sustained_ops: f64,
    /// Pushes/s over the same window.
    pub sustained_pushes: f64,
    /// Applied ops/s over the whole run.
    pub overall_ops: f64,
    /// Latencies of the pushes completed in the window.
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
    /// Applied ops completed in each second of the run.
    pub per_second: Vec<u64>,
    /// The slowest push completed in each second of the run (whether slow pushes cluster).
    pub slowest_per_second: Vec<Duration>,
    pub window: Duration,
}

/// Summarizes `result`.
pub fn summarize(result: &LoadResult) -> Summary {
    let Some(config) = result.config else {
        return Summary::default();
    };
    let from = config.warmup.min(config.duration);
    let to = config.duration;
    let window = to.saturating_sub(from);
    let in_window: Vec<&Sample> = result
        .samples
        .iter()
        .filter(|s| s.done >= from && s.done <= to)
        .collect();
    let mut latencies: Vec<Duration> = in_window.iter().map(|s| s.latency).collect();
    latencies.sort();
    let pct = |p: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        // Nearest rank: the smallest latency with at least p of the pushes at or below it.
        let rank = (p * latencies.len() as f64).ceil() as usize;
        latencies[rank.clamp(1, latencies.len()) - 1]
    };
    let applied_in_window: u64 = in_window.iter().map(|s| u64::from(s.applied)).sum();
    let secs = window.as_secs_f64().max(1e-9);
    let seconds = result.elapsed.as_secs() as usize + 1;
    let mut per_second = vec![0u64; seconds];
    let mut slowest_per_second = vec![Duration::ZERO; seconds];
    for s in &result.samples {
        let second = s.done.as_secs() as usize;
        if let Some(slot) = per_second.get_mut(second) {
            *slot += u64::from(s.applied);
        }
        if let Some(slot) = slowest_per_second.get_mut(second) {
            *slot = (*slot).max(s.latency);
        }
    }
    let total_latency: Duration = latencies.iter().sum();
    let applied: u64 = result.samples.iter().map(|s| u64::from(s.applied)).sum();
    Summary {
        pushes: result.samples.len(),
        ops: result.samples.iter().map(|s| u64::from(s.ops)).sum(),
        applied,
        duplicate: result.samples.iter().map(|s| u64::from(s.duplicate)).sum(),
        refused: result.samples.iter().map(|s| u64::from(s.refused)).sum(),
        sustained_ops: applied_in_window as f64 / secs,
        sustained_pushes: in_window.len() as f64 / secs,
        overall_ops: applied as f64 / result.elapsed.as_secs_f64().max(1e-9),
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        mean: if latencies.is_empty() {
            Duration::ZERO
        } else {
            total_latency / u32::try_from(latencies.len()).unwrap_or(u32::MAX)
        },
        per_second,
        slowest_per_second,
        window,
    }
}
