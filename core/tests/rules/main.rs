//! Integration tests of the sop-core transition rules (issue #2): the SPEC §3.2 table over every
//! status × command × actor, a failing test for every guard, the money rules of §5, the
//! notification recipients of §7, and property tests of the invariants; and the content documents
//! of issue #4 ([`content`]).
//!
//! One binary (STYLE.md §Tests); the modules share the fixtures in [`fixtures`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod content;
mod fixtures;
mod guards;
mod money;
mod notifications;
mod properties;
mod table;
mod views;
