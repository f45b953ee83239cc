//! Storage of uploaded documents and generated reports, content-addressed by SHA-256.
//!
//! Standalone: a local directory under the data directory. (Object storage through the
//! `object_store` crate comes with the documents-and-report work.)

use std::path::PathBuf;

/// Where blobs live.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Blobs as files under `root`.
    pub fn local(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }
}
