//! The one error type the apps handle. Each variant is something an app can act on; the core's
//! errors are converted in exactly one place ([`From<DeviceError>`]). Messages never contain
//! patient health information (the core's never do, and nothing is added here).

use sop_core::device::DeviceError;

/// Why a call failed.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum SopError {
    /// The rules (checked on the device, or by the server) said no; nothing was queued. Show
    /// the message in the user's language; `code` is stable for app logic.
    #[error("refused: {code}")]
    Refused {
        /// Stable machine code, e.g. `medical_history_required`.
        code: String,
        /// The reason in English.
        message_en: String,
        /// The reason in Arabic.
        message_ar: String,
    },
    /// No such case, document or request on this device.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for (a kind of thing, never content).
        what: String,
    },
    /// The server could not be reached or kept failing; nothing was lost, try `sync()` later.
    #[error("offline: {message}")]
    Offline {
        /// What went wrong, for logs.
        message: String,
    },
    /// The server rejected the token: refresh it, call `set_token`, then sync again.
    #[error("unauthorized: {message}")]
    Unauthorized {
        /// What went wrong, for logs.
        message: String,
    },
    /// An argument was not acceptable (an id, a file path, a value); a programming error in the
    /// app more often than a user mistake.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What was wrong with it.
        message: String,
    },
    /// The local store failed (disk full, file damaged).
    #[error("storage: {message}")]
    Storage {
        /// What failed, for logs.
        message: String,
    },
}

impl From<DeviceError> for SopError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Refused {
                code,
                message_en,
                message_ar,
            } => SopError::Refused {
                code,
                message_en,
                message_ar,
            },
            DeviceError::NotFound { what } => SopError::NotFound { what },
            DeviceError::Offline { message } => SopError::Offline { message },
            DeviceError::Unauthorized { message } => SopError::Unauthorized { message },
            DeviceError::InvalidInput { message } => SopError::InvalidInput { message },
            DeviceError::Storage { message } => SopError::Storage { message },
        }
    }
}
