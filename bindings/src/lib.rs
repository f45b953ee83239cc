//! The uniffi surface the patient and doctor apps embed. Each exported item delegates to
//! `sop-core` in a line or two; no business rule lives here.

uniffi::setup_scaffolding!();

/// The version of the SOP core compiled into this library.
#[uniffi::export]
pub fn core_version() -> String {
    sop_core::VERSION.to_string()
}
