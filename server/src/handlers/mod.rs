//! Request handlers, one module per route group (`ops` for health checks and fallbacks, `app`
//! for patients; `pro`, `admin`, `scheduler` and `sync` come next). Handlers stay thin:
//! extract, call the core and a store, answer an envelope. Routes are assembled in
//! [`crate::router`].

pub mod app;
pub mod ops;
