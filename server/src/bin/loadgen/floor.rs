//! The CRDT floor, measured in the same run: the devices' own pushes applied to the intake
//! document with the core's `apply_remote_batch` (what the server runs per push: decode, check
//! dependencies, one `apply_changes`, schema validation, size limit), in this process, on one
//! core, with no HTTP, JSON or database. The server cannot ingest faster than this per core,
//! whatever its storage does: the report states the ingest as a share of it.

use crate::load::LoadDevice;
use sop_core::content::{RemoteChange, apply_remote_batch, intake};
use sop_core::rules::Limits;
use sop_core::sync::v1::{Op, PushRequest};
use sop_server::store::server_actor;
use std::time::{Duration, Instant};

/// What applying the pushes' changes cost.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// Change ops applied.
    pub ops: usize,
    /// Pushes (one `apply_remote_batch` each).
    pub pushes: usize,
    /// Time spent in `apply_remote_batch` alone.
    pub elapsed: Duration,
}

impl Floor {
    /// Change ops per second on one core.
    pub fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Applies the first `pushes_per_device` pregenerated pushes of each device to a copy of its
/// draft's intake as the server holds it, in order (the server's sequence of documents).
pub fn measure(devices: &[LoadDevice], pushes_per_device: usize) -> anyhow::Result<Floor> {
    let limits = Limits::default();
    let mut floor = Floor {
        ops: 0,
        pushes: 0,
        elapsed: Duration::ZERO,
    };
    for device in devices {
        let typist = &device.typist;
        let mut doc = intake::initial(typist.case_id, typist.initial(), server_actor())
            .map_err(|r| anyhow::anyhow!("initial intake: {}", r.code))?;
        for batch in device.pregen.iter().take(pushes_per_device) {
            let req: PushRequest = serde_json::from_slice(&batch.body)?;
            let changes: Vec<RemoteChange<'_>> = req
                .ops
                .iter()
                .filter_map(|op| match op {
                    Op::Change(c) => Some(c.remote()),
                    Op::Command(_) => None,
                })
                .collect();
            let started = Instant::now();
            let outcome = apply_remote_batch(&doc, &changes, &limits);
            floor.elapsed += started.elapsed();
            if let Some(Err(refusal)) = outcome.results.iter().find(|r| r.is_err()) {
                anyhow::bail!("the floor refused a change: {}", refusal.code);
            }
            doc = outcome.doc;
            floor.ops += changes.len();
            floor.pushes += 1;
        }
    }
    Ok(floor)
}
