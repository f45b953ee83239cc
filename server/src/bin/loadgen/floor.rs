//! The CRDT floor, measured in the same run: the devices' own pushes applied to the intake
//! document with the core's `apply_remote_batch` (what the server runs per push: decode, check
//! dependencies, one `apply_changes`, schema validation, size limit), in this process, on one
//! core, with no HTTP, JSON or database. The server cannot ingest faster than this per core,
//! whatever its storage does: the report states the ingest as a share of it.
//!
//! It is measured twice. Before the load, on fresh documents (each device's first pushes).
//! After the load, on the run's own documents: every push the server answered, replayed in
//! order, so each apply meets the history it met in the server. Automerge 0.12's apply walks
//! the whole history of the text it touches, so the second is the one that bounds the run.

use crate::device::{Batch, Typist};
use sop_core::content::{RemoteChange, apply_remote_batch, intake};
use sop_core::rules::Limits;
use sop_core::sync::v1::{Op, PushRequest};
use sop_server::store::server_actor;
use std::time::{Duration, Instant};

/// What applying the pushes' changes cost.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    /// Devices whose documents were replayed.
    pub devices: usize,
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

    /// Cores the apply alone keeps busy at `ops_per_second` ops/s.
    pub fn cores_at(&self, ops_per_second: f64) -> f64 {
        ops_per_second / self.ops_per_second().max(f64::EPSILON)
    }
}

/// Applies each device's `pushes` to a copy of its draft's intake as the server holds it, in
/// order (the server's sequence of documents).
pub fn measure<'a, P>(devices: impl IntoIterator<Item = (&'a Typist, P)>) -> anyhow::Result<Floor>
where
    P: IntoIterator<Item = &'a Batch>,
{
    let limits = Limits::default();
    let mut floor = Floor {
        devices: 0,
        ops: 0,
        pushes: 0,
        elapsed: Duration::ZERO,
    };
    for (typist, pushes) in devices {
        let mut doc = intake::initial(typist.case_id, typist.initial(), server_actor())
            .map_err(|r| anyhow::anyhow!("initial intake: {}", r.code))?;
        floor.devices += 1;
        for batch in pushes {
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
