//! The blob store, the same checks against a local directory and against a real S3-compatible
//! server (`moto_server`, started by the test): content addressing, storing once, a large blob
//! through a multipart upload, missing blobs, refused keys.

use crate::support::Moto;
use sha2::{Digest, Sha256};
use sop_server::blobs::BlobStore;

/// Bytes that are not all alike (so a wrong offset would show).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

async fn exercise(store: &BlobStore) {
    // Small blobs: stored under their SHA-256, once.
    let a = store.put(b"hello").await.unwrap();
    assert_eq!(
        a,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(store.put(b"hello").await.unwrap(), a);
    assert!(store.contains(&a).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap().unwrap(), b"hello");

    // A 12 MiB blob streamed through a writer: more than one part on S3.
    let big = pattern(12 * 1024 * 1024 + 5, 7);
    let mut writer = store.begin().await.unwrap();
    for chunk in big.chunks(1024 * 1024) {
        writer.write(chunk).await.unwrap();
    }
    let staged = writer.finish().await.unwrap();
    let key = staged.sha256().to_owned();
    assert_eq!(key, hex::encode(Sha256::digest(&big)));
    assert!(
        !store.contains(&key).await.unwrap(),
        "not stored before commit"
    );
    staged.commit().await.unwrap();
    assert!(
        store.get(&key).await.unwrap().unwrap() == big,
        "big blob differs"
    );

    // The same content committed again is kept as it is.
    let mut writer = store.begin().await.unwrap();
    writer.write(&big).await.unwrap();
    writer.finish().await.unwrap().commit().await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().len(), big.len());

    // A dropped staged blob never reaches the store.
    let mut writer = store.begin().await.unwrap();
    writer.write(b"abandoned").await.unwrap();
    let dropped = writer.finish().await.unwrap();
    let dropped_key = dropped.sha256().to_owned();
    drop(dropped);
    assert!(!store.contains(&dropped_key).await.unwrap());
    assert!(store.get(&dropped_key).await.unwrap().is_none());

    // Keys that are not SHA-256 are refused before reaching the store.
    assert!(store.get("../../etc/passwd").await.is_err());
    assert!(store.contains(&"A".repeat(64)).await.is_err());
}

#[tokio::test]
async fn local_directory_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("blobs"));
    assert_eq!(store.kind(), "local");
    exercise(&store).await;
    // Content-addressed layout on disk, and no staging file left behind.
    let key = hex::encode(Sha256::digest(b"hello"));
    assert!(
        dir.path()
            .join("blobs")
            .join(&key[..2])
            .join(&key)
            .is_file()
    );
    let tmp = dir.path().join("blobs").join("tmp");
    assert_eq!(std::fs::read_dir(tmp).unwrap().count(), 0);
}

#[tokio::test]
async fn s3_store_on_a_real_s3_server() {
    let moto = Moto::start("sop-blobs").await;
    let staging = tempfile::tempdir().unwrap();
    let store = BlobStore::s3(&moto.config(), staging.path().join("tmp")).unwrap();
    assert_eq!(store.kind(), "s3");
    exercise(&store).await;
    // The objects really are in the bucket: another store over it, with nothing local, reads them.
    let key = hex::encode(Sha256::digest(b"hello"));
    let elsewhere = tempfile::tempdir().unwrap();
    let other = BlobStore::s3(&moto.config(), elsewhere.path().to_path_buf()).unwrap();
    assert_eq!(other.get(&key).await.unwrap().unwrap(), b"hello");
    assert_eq!(
        std::fs::read_dir(staging.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn s3_store_reports_an_unreachable_bucket_as_an_error() {
    let moto = Moto::start("sop-present").await;
    let mut config = moto.config();
    config.bucket = "sop-absent".to_owned();
    let staging = tempfile::tempdir().unwrap();
    let store = BlobStore::s3(&config, staging.path().to_path_buf()).unwrap();
    assert!(store.put(b"x").await.is_err());
}
