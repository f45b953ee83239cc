//! Storage of uploaded documents and generated reports, content-addressed by SHA-256, through
//! the `object_store` crate (docs/adr/0006-blobs-and-report.md).
//!
//! - Standalone: a local directory ([`BlobStore::local`]), objects at `<root>/<sha[0..2]>/<sha>`.
//! - Any S3-compatible store when configured ([`BlobStore::s3`], `SOP_S3_*`), same keys in the
//!   bucket.
//!
//! A blob is first written to a **local staging file** (under `<staging>/`, `<root>/tmp` for the
//! local store) while it is hashed and counted, so an upload is never held in memory whole and
//! its type can be detected from the file; [`StagedBlob::commit`] then copies it to the store
//! under its key (a multipart upload for large files on S3), unless that key is already there:
//! the same content is stored once however often it is uploaded. The local store writes each
//! object to a temporary file and renames it, so a reader never sees half an object. Blobs are
//! never deleted here: a removed document keeps its bytes for the audit trail (SPEC T13).
//!
//! Besides blobs, the store holds the chunks of resumable uploads (`uploads/...`, see
//! [`crate::uploads`]) so that partial data survives a restart and is seen by every instance.
//!
//! Nothing here checks access: callers (downloads, reports) decide first and audit.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter as ObjectWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

/// Where the blobs of an S3-compatible store live and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `http(s)://host:port` of an S3-compatible server; AWS itself when `None`.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<crate::config::SecretString>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret key never reaches a log; `SecretString` prints `***`.
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .finish()
    }
}

/// Where blobs live. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    objects: Arc<dyn ObjectStore>,
    /// Local directory for staging files (and, for the local store, the store's root).
    root: PathBuf,
    staging: PathBuf,
    kind: &'static str,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("kind", &self.kind)
            .field("objects", &self.objects.to_string())
            .field("staging", &self.staging)
            .finish()
    }
}

/// Whether `key` is a lowercase hex SHA-256, the only names blobs have (so a key can never
/// point outside the store).
pub fn is_sha256_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn bad_key() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a sha256 blob key")
}

/// The object key of blob `sha256`.
fn blob_key(sha256: &str) -> io::Result<ObjectPath> {
    if !is_sha256_key(sha256) {
        return Err(bad_key());
    }
    Ok(ObjectPath::from(format!("{}/{sha256}", &sha256[..2])))
}

fn store_error(e: object_store::Error) -> io::Error {
    io::Error::from(e)
}

impl BlobStore {
    /// Blobs as files under `root`, staged in `root/tmp`.
    pub fn local(root: PathBuf) -> Self {
        // `PrefixStore` over an unprefixed `LocalFileSystem`: unlike `new_with_prefix`, it needs
        // no existing directory now (directories are created on first write).
        let absolute = std::path::absolute(&root).unwrap_or_else(|_| root.clone());
        let prefix = ObjectPath::from_absolute_path(&absolute).unwrap_or_default();
        let objects: Arc<dyn ObjectStore> =
            Arc::new(PrefixStore::new(LocalFileSystem::new(), prefix));
        Self {
            objects,
            staging: root.join("tmp"),
            root,
            kind: "local",
        }
    }

    /// Blobs in an S3-compatible bucket; staging files under `staging`. Plain `http://`
    /// endpoints are allowed (a store on the local network or loopback).
    pub fn s3(config: &S3Config, staging: PathBuf) -> io::Result<Self> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose());
        }
        let objects: Arc<dyn ObjectStore> = Arc::new(builder.build().map_err(store_error)?);
        Ok(Self {
            objects,
            root: staging.clone(),
            staging,
            kind: "s3",
        })
    }

    /// `local` or `s3`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The local directory of this store: its root for the local store, the staging directory
    /// otherwise.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts writing a new blob; its key is known once it is [finished](BlobWriter::finish).
    pub async fn begin(&self) -> io::Result<BlobWriter> {
        fs::create_dir_all(&self.staging).await?;
        let path = self.staging.join(Uuid::now_v7().simple().to_string());
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
        let key = hex::encode(Sha256::digest(bytes));
        if !self.contains(&key).await? {
            self.objects
                .put(&blob_key(&key)?, PutPayload::from(bytes.to_vec()))
                .await
                .map_err(store_error)?;
        }
        Ok(key)
    }

    /// The bytes of blob `sha256`, or `None` if it is not stored.
    pub async fn get(&self, sha256: &str) -> io::Result<Option<Vec<u8>>> {
        self.read_object(&blob_key(sha256)?).await
    }

    /// Whether blob `sha256` is stored.
    pub async fn contains(&self, sha256: &str) -> io::Result<bool> {
        match self.objects.head(&blob_key(sha256)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Reads any object, `None` if it is missing.
    pub(crate) async fn read_object(&self, key: &ObjectPath) -> io::Result<Option<Vec<u8>>> {
        match self.objects.get(key).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(store_error)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Deletes a non-blob object; a missing one is not an error.
    pub(crate) async fn delete_object(&self, key: &ObjectPath) -> io::Result<()> {
        match self.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }
}

/// A temporary file, removed when dropped.
#[derive(Debug)]
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        // Best effort: the file may already be gone.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A blob being written: bytes go to a staging file and into the hash as they arrive, so an
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

    /// The staging file holding the content (to detect its type).
    pub fn path(&self) -> &Path {
        &self.temp.0
    }

    /// Copies the content into the store under its key. Content already stored is kept as it
    /// is (it is the same bytes) and this copy is discarded. Two concurrent commits of the same
    /// content both succeed: each writes identical bytes atomically.
    pub async fn commit(self) -> io::Result<()> {
        if self.store.contains(&self.sha256).await? {
            return Ok(());
        }
        let key = blob_key(&self.sha256)?;
        self.copy_to(key).await
    }

    /// Copies the content to the non-blob object `key` (an upload chunk).
    pub(crate) async fn store_as(self, key: ObjectPath) -> io::Result<()> {
        self.copy_to(key).await
    }

    async fn copy_to(&self, key: ObjectPath) -> io::Result<()> {
        let mut source = fs::File::open(&self.temp.0).await?;
        // Buffers up to 10 MiB and sends one PUT; beyond that, an S3 multipart upload.
        let mut target = ObjectWriter::new(self.store.objects.clone(), key);
        let copied = tokio::io::copy(&mut source, &mut target).await;
        match copied {
            Ok(_) => target.shutdown().await,
            Err(e) => {
                // Abandons the multipart upload, if one was started.
                let _ = target.abort().await;
                Err(e)
            }
        }
    }
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
        assert!(dir.path().join("blobs").join("2c").join(&a).is_file());
        assert_eq!(store.get(&a).await.unwrap().unwrap(), b"hello");
        // No temporary file is left behind.
        let tmp = dir.path().join("blobs").join("tmp");
        assert!(!tmp.exists() || std::fs::read_dir(tmp).unwrap().count() == 0);
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
        assert!(store.contains(&"A".repeat(64)).await.is_err());
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
