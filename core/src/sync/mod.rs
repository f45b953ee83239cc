//! The sync protocol between devices and the server (DESIGN.md §3).
//!
//! - [`wire`] (also reachable as [`v1`]): the JSON types of `/sync/v1/*` — push, pull, the combined
//!   exchange and live hints. Covered by snapshot tests: any change to the format shows as a diff
//!   of `src/sync/snapshots/`. A breaking change goes into a new module (`v2`) behind a new path;
//!   `v1` stays as it is while apps that speak it are in use.

pub mod wire;

/// Version 1 of the wire format, served under `/sync/v1/`.
pub use wire as v1;
