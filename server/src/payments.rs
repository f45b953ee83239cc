//! The payment platform behind a trait: the built-in sandbox (standalone default) now, an HTTP
//! client of the real platform later.

use std::path::Path;

/// What the server asks of a payment platform.
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// A short name for logs (`sandbox`, …).
    fn name(&self) -> &'static str;
}

/// The sandbox served by this server itself under `/sandbox/`.
#[derive(Debug)]
pub struct Sandbox {
    public_url: String,
}

impl Sandbox {
    pub fn new(_data_dir: &Path, public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }
}

impl PaymentProvider for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }
}
