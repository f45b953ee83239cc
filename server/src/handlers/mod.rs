//! Request handlers, one module per route group. Each exposes `routes()`, nested under its
//! prefix by [`crate::router`]. Handlers stay thin: extract, call the core and the store, answer
//! an envelope.

pub mod admin;
pub mod app;
pub mod downloads;
pub mod ops;
pub mod payments;
pub mod pro;
pub mod scheduler;
pub mod sync;
