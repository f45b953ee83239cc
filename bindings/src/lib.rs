//! The uniffi surface the patient and doctor apps embed: [`SopDevice`] (one per signed-in user),
//! its records ([`types`]), the [`SopError`] an app acts on, and the [`ChangeListener`] the app
//! implements. Each exported item delegates to `sop_core::device` in a line or two; no business
//! rule lives here. Bindings for Python, Kotlin and Swift are generated from the built library by
//! `bindings/generate.sh`.

uniffi::setup_scaffolding!();

mod error;
mod session;
pub mod types;

pub use error::SopError;
pub use session::{ChangeListener, SopDevice, Subscription};

/// The version of the SOP core compiled into this library.
#[uniffi::export]
pub fn core_version() -> String {
    sop_core::VERSION.to_string()
}
