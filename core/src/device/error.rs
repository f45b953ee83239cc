//! The device API's one error type: small, stable, and free of patient data in its messages.

use crate::refusal::Refusal;

/// Why a device call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The core rules (or the server) said no; nothing was queued.
    #[error("refused: {code}")]
    Refused {
        code: String,
        message_en: String,
        message_ar: String,
    },
    /// No such case, document or request on this device.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// The server could not be reached (or kept failing); nothing was lost.
    #[error("offline: {message}")]
    Offline { message: String },
    /// The server rejected the token: it needs refreshing.
    #[error("unauthorized: {message}")]
    Unauthorized { message: String },
    /// A bad argument (id, file path, value).
    #[error("invalid input: {message}")]
    InvalidInput { message: String },
    /// The local store failed.
    #[error("storage: {message}")]
    Storage { message: String },
}

impl DeviceError {
    pub(crate) fn storage(message: impl Into<String>) -> Self {
        DeviceError::Storage {
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        DeviceError::InvalidInput {
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        DeviceError::NotFound { what: what.into() }
    }

    pub(crate) fn offline(message: impl Into<String>) -> Self {
        DeviceError::Offline {
            message: message.into(),
        }
    }
}

impl From<Refusal> for DeviceError {
    fn from(r: Refusal) -> Self {
        DeviceError::Refused {
            code: r.code.to_string(),
            message_en: r.message_en,
            message_ar: r.message_ar,
        }
    }
}

impl From<rusqlite::Error> for DeviceError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite messages name tables and constraints, never values bound as parameters.
        DeviceError::storage(e.to_string())
    }
}

impl From<std::io::Error> for DeviceError {
    fn from(e: std::io::Error) -> Self {
        DeviceError::storage(format!("io: {}", e.kind()))
    }
}

/// Results of device calls.
pub type Result<T, E = DeviceError> = std::result::Result<T, E>;
