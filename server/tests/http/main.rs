//! Integration tests of `sop-server`, one binary (STYLE: tests link once).
//!
//! Most tests run the real binary (see `support::TestServer`); PostgreSQL tests need the server
//! of `SOP_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and fail,
//! never skip, without it.

// Tests and their helpers panic on unexpected results by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_api;
mod app_api;
mod auth;
mod authz;
mod basics;
mod blobs;
mod case_flow;
mod cli;
mod device;
mod e2e;
mod in_process;
mod integrations;
mod jwks;
mod lifecycle;
mod live;
mod metrics;
mod overload;
mod payments;
mod postgres;
mod pro_api;
mod report;
mod robustness;
mod store;
mod support;
mod surface;
mod sync;
mod uploads;
