//! Storage of uploaded documents and generated reports, content-addressed by SHA-256.
//!
//! Standalone: a local directory, `<root>/<sha256[0..2]>/<sha256>`. A blob is written to a
//! temporary file under `<root>/tmp/` while it is hashed, then renamed into place, so a reader
//! never sees a half-written blob and the same content is stored once however often it is
//! uploaded. Blobs are never deleted here: a removed document keeps its bytes for the audit
//! trail (SPEC T13) until retention ends. (Object storage through the `object_store` crate can
//! sit behind the same methods.)
//!
//! The helpers at the end turn stored bytes into a download response and find a case's report.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sop_core::Case;
use sop_core::lang::Lang;
use std::io;
use std::path::{Path, PathBuf};
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Where blobs live.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// Whether `key` is a lowercase hex SHA-256, the only names blobs have (so a key can never
/// point outside the store).
pub fn is_sha256_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn bad_key() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a sha256 blob key")
}

impl BlobStore {
    /// Blobs as files under `root`.
    pub fn local(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `sha256` is (or would be) stored.
    pub fn path_of(&self, sha256: &str) -> io::Result<PathBuf> {
        if !is_sha256_key(sha256) {
            return Err(bad_key());
        }
        Ok(self.root.join(&sha256[..2]).join(sha256))
    }

    /// Starts writing a new blob; its key is known once it is [finished](BlobWriter::finish).
    pub async fn begin(&self) -> io::Result<BlobWriter> {
        let dir = self.root.join("tmp");
        fs::create_dir_all(&dir).await?;
        let path = dir.join(Uuid::now_v7().simple().to_string());
        let file = fs::File::create(&path).await?;
        Ok(BlobWriter {
            store: self.clone(),
            temp: TempFile(path),
            file,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores `bytes` (a generated report, …) and returns their key.
    pub async fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let mut writer = self.begin().await?;
        writer.write(bytes).await?;
        let staged = writer.finish().await?;
        let key = staged.sha256().to_owned();
        staged.commit().await?;
        Ok(key)
    }

    /// The bytes of blob `sha256`, or `None` if it is not stored.
    pub async fn get(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path_of(sha256)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether blob `sha256` is stored.
    pub async fn contains(&self, sha256: &str) -> io::Result<bool> {
        fs::try_exists(self.path_of(sha256)?).await
    }
}

/// A temporary file, removed when dropped unless it was renamed away.
#[derive(Debug)]
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: after a successful rename the file is gone and this fails harmlessly.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A blob being written: bytes go to a temporary file and into the hash as they arrive, so an
/// upload is never held in memory whole. Dropping it discards what was written.
#[derive(Debug)]
pub struct BlobWriter {
    store: BlobStore,
    temp: TempFile,
    file: fs::File,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    /// Appends `chunk`.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the content to disk; the blob can then be inspected and committed.
    pub async fn finish(mut self) -> io::Result<StagedBlob> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        Ok(StagedBlob {
            store: self.store,
            temp: self.temp,
            sha256: hex::encode(self.hasher.finalize()),
            size: self.size,
        })
    }
}

/// A fully written blob not yet in the store. Dropping it discards it.
#[derive(Debug)]
pub struct StagedBlob {
    store: BlobStore,
    temp: TempFile,
    sha256: String,
    size: u64,
}

impl StagedBlob {
    /// Lowercase hex SHA-256 of the content: its key once committed.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file holding the content (to detect its type).
    pub fn path(&self) -> &Path {
        &self.temp.0
    }

    /// Moves the content into the store under its key. Content already stored is kept as it
    /// is (it is the same bytes) and this copy is discarded.
    pub async fn commit(self) -> io::Result<()> {
        let target = self.store.path_of(&self.sha256)?;
        if fs::try_exists(&target).await? {
            return Ok(());
        }
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).await?;
        }
        // Atomic within one file system (`tmp/` is under the same root); two concurrent commits
        // of the same content both succeed with identical bytes.
        fs::rename(&self.temp.0, &target).await
    }
}

/// The blob key of `case`'s report in `lang`, if the report is stored.
///
/// Reports are stored by their SHA-256 like any blob. The case records one report today, so
/// both languages answer it; when the report work stores one PDF per language, this is the one
/// place that picks the variant.
pub fn report_blob(case: &Case, _lang: Lang) -> Option<&str> {
    case.report.as_ref().map(|r| r.sha256.as_str())
}

/// A download response: the bytes with their content type, as an attachment named
/// `file_name` (RFC 6266/5987 encoding, so any name is a safe header value), never sniffed
/// by the browser.
pub fn file_response(bytes: Vec<u8>, content_type: &str, file_name: &str) -> Response {
    let content_type = HeaderValue::from_str(content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(file_name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from(bytes),
    )
        .into_response()
}

/// `attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded>`.
fn content_disposition(file_name: &str) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_content_is_stored_once_under_its_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().join("blobs"));
        let a = store.put(b"hello").await.unwrap();
        let b = store.put(b"hello").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let path = store.path_of(&a).unwrap();
        assert!(path.starts_with(dir.path().join("blobs").join("2c")));
        assert_eq!(store.get(&a).await.unwrap().unwrap(), b"hello");
        // No temporary file is left behind.
        let tmp = std::fs::read_dir(dir.path().join("blobs").join("tmp")).unwrap();
        assert_eq!(tmp.count(), 0);
    }

    #[tokio::test]
    async fn a_dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().to_path_buf());
        let mut w = store.begin().await.unwrap();
        w.write(b"partial").await.unwrap();
        drop(w);
        let staged = {
            let mut w = store.begin().await.unwrap();
            w.write(b"whole").await.unwrap();
            w.finish().await.unwrap()
        };
        let key = staged.sha256().to_owned();
        drop(staged);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert!(!store.contains(&key).await.unwrap());
    }

    #[tokio::test]
    async fn keys_that_are_not_sha256_are_refused() {
        let store = BlobStore::local(PathBuf::from("/nonexistent"));
        assert!(store.get("../../etc/passwd").await.is_err());
        assert!(store.path_of(&"A".repeat(64)).is_err());
    }

    #[test]
    fn attachment_names_are_safe_header_values() {
        let v = content_disposition("scan \"1\"\r\n.pdf");
        assert!(HeaderValue::from_str(&v).is_ok());
        assert!(v.contains("filename*=UTF-8''scan%20%221%22%0D%0A.pdf"));
        let ar = content_disposition("تقرير.pdf");
        assert!(HeaderValue::from_str(&ar).is_ok());
    }
}
