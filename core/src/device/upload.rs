//! Attached files: copied and hashed when attached, uploaded resumably by the sync client
//! (`GET`/`PATCH /sync/v1/upload/{sha256}`, the protocol of the server's `uploads` module).
//!
//! Attaching copies the file into the store's directory under its SHA-256 (the app's original
//! may go away), then records the pending upload and queues the `UploadDocument` command in one
//! transaction. Syncing asks the server how much it has (`received`) and sends the rest in
//! chunks from there, so an upload cut by a lost connection or a killed app continues where the
//! server stopped. The queued command is pushed only once the server has the whole file.

use super::error::{DeviceError, Result};
use super::net::{self, Endpoint};
use super::{Device, lock, parse_id};
use crate::command::{Command, NewDocument};
use crate::ids::{CaseId, DocumentId, RequestId};
use reqwest::blocking::Client;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes per `PATCH`.
pub(crate) const CHUNK: usize = 1024 * 1024;

/// The server's answer about an upload.
#[derive(Debug, Deserialize)]
struct Status {
    received: i64,
    complete: bool,
}

/// The content type of a file from its first bytes: the same signatures the server checks
/// (`server::detect`), so the type the device sends is the one the server records. ZIP archives
/// (allowed only when they hold DICOM files) are left to the caller's declared type.
pub(crate) fn sniff(head: &[u8]) -> Option<&'static str> {
    let heic = head.get(4..8) == Some(b"ftyp")
        && head.get(8..12).is_some_and(|b| {
            [b"heic", b"heix", b"mif1", b"msf1"]
                .iter()
                .any(|h| h[..] == *b)
        });
    if head.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if heic {
        Some("image/heic")
    } else if head.get(128..132) == Some(b"DICM") {
        Some("application/dicom")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("application/zip")
    } else {
        None
    }
}

/// Copies `source` to `dir/<sha256>` (through a temporary file, renamed once complete) and
/// returns the hash, the size and the first bytes.
fn copy_and_hash(source: &Path, dir: &Path) -> Result<(String, i64, Vec<u8>)> {
    std::fs::create_dir_all(dir)?;
    let mut input = File::open(source)
        .map_err(|_| DeviceError::invalid("the file to attach cannot be read"))?;
    let tmp = dir.join(format!(".incoming-{}", uuid::Uuid::new_v4()));
    let mut out = File::create(&tmp)?;
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let mut size: i64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 132 {
            let take = (132 - head.len()).min(n);
            head.extend_from_slice(&buf[..take]);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        size += n as i64;
    }
    out.sync_all()?;
    drop(out);
    let sha = hex::encode(hasher.finalize());
    std::fs::rename(&tmp, dir.join(&sha))?;
    Ok((sha, size, head))
}

impl Device {
    /// T12: attaches a file to a case; returns the document id. The content type is detected
    /// from the bytes (PDF, JPEG, PNG, HEIC, DICOM), else the one given; the core rules check
    /// it, the size and the name like any command. Refused: nothing is queued (the copy is
    /// removed unless another attachment uses it).
    pub fn attach_document(
        &self,
        case_id: String,
        file_path: String,
        file_name: String,
        content_type: Option<String>,
        request_id: Option<String>,
    ) -> Result<String> {
        let case: CaseId = parse_id("case id", &case_id)?;
        let request_id: Option<RequestId> = request_id
            .as_deref()
            .map(|r| parse_id("request id", r))
            .transpose()?;
        let (sha256, size, head) = copy_and_hash(Path::new(&file_path), &self.files_dir)?;
        let content_type = sniff(&head)
            .filter(|t| *t != "application/zip")
            .map(str::to_owned)
            .or(content_type)
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let document_id = DocumentId::new_v7();
        let command = Command::UploadDocument {
            document: NewDocument {
                document_id,
                file_name,
                content_type,
                size,
                sha256: sha256.clone(),
                request_id,
            },
        };
        let path = self.files_dir.join(&sha256);
        let result = self.write(|tx| {
            self.execute_in(tx, case, &command)?;
            tx.execute(
                "INSERT INTO uploads (document_id, case_id, sha256, path, size, received, complete)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, 0)",
                rusqlite::params![
                    document_id.to_string(),
                    case_id,
                    sha256,
                    path.to_string_lossy(),
                    size
                ],
            )?;
            Ok(())
        });
        if let Err(e) = result {
            let in_use: i64 = self.read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM uploads WHERE sha256 = ?1",
                    [&sha256],
                    |r| r.get(0),
                )?)
            })?;
            if in_use == 0 {
                let _ = std::fs::remove_file(&path);
            }
            return Err(e);
        }
        self.notify(vec![case_id]);
        Ok(document_id.to_string())
    }

    /// Drops a finished upload's row and, if no other attachment shares it, the local copy.
    pub(crate) fn forget_upload(
        &self,
        tx: &rusqlite::Transaction<'_>,
        document_id: &str,
    ) -> Result<()> {
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT sha256, path FROM uploads WHERE document_id = ?1",
                [document_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok();
        let Some((sha, path)) = row else {
            return Ok(());
        };
        tx.execute("DELETE FROM uploads WHERE document_id = ?1", [document_id])?;
        let others: i64 = tx.query_row(
            "SELECT count(*) FROM uploads WHERE sha256 = ?1",
            [&sha],
            |r| r.get(0),
        )?;
        if others == 0 {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Uploads every pending file, each resuming where the server stopped. Returns the bytes
    /// sent. A file the server refuses for good (too large, hash mismatch) stays pending and its
    /// command is refused when pushed; other files still go.
    pub(crate) fn upload_pending(&self, client: &Client) -> Result<i64> {
        let pending: Vec<(String, String, i64)> = self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT sha256, path, max(size) FROM uploads WHERE complete = 0
                 GROUP BY sha256, path ORDER BY min(rowid)",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let mut sent = 0;
        for (sha, path, size) in pending {
            let endpoint = lock(&self.endpoint).clone();
            match upload_file(
                client,
                &endpoint,
                &sha,
                Path::new(&path),
                size,
                &mut |received| {
                    self.write(|tx| {
                        tx.execute(
                            "UPDATE uploads SET received = ?1 WHERE sha256 = ?2",
                            rusqlite::params![received, sha],
                        )?;
                        Ok(())
                    })
                },
            ) {
                Ok(bytes) => {
                    sent += bytes;
                    self.write(|tx| {
                        tx.execute(
                            "UPDATE uploads SET complete = 1, received = size WHERE sha256 = ?1",
                            [&sha],
                        )?;
                        Ok(())
                    })?;
                }
                // Refused for good (too large, bytes not matching their hash): stop waiting for
                // it, so the queue behind it moves; pushing its command gets the server's
                // reason (`upload_incomplete`) into the refusals.
                Err(DeviceError::InvalidInput { .. }) => {
                    self.write(|tx| {
                        tx.execute("UPDATE uploads SET complete = -1 WHERE sha256 = ?1", [&sha])?;
                        Ok(())
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }
}

/// Uploads one file from where the server stopped; returns the bytes sent. `progress` records
/// each confirmed offset.
pub(crate) fn upload_file(
    client: &Client,
    endpoint: &Endpoint,
    sha256: &str,
    path: &Path,
    size: i64,
    progress: &mut dyn FnMut(i64) -> Result<()>,
) -> Result<i64> {
    let url = endpoint.url(&format!("/sync/v1/upload/{sha256}"));
    let status: Status = decode(
        net::send(&|| client.get(&url).bearer_auth(&endpoint.token))?
            .map_err(net::Rejected::into_error)?,
    )?;
    if status.complete {
        return Ok(0);
    }
    let mut file = File::open(path)?;
    let mut offset = status.received;
    let mut sent = 0;
    let mut mismatches = 0;
    loop {
        file.seek(SeekFrom::Start(u64::try_from(offset).unwrap_or(0)))?;
        let len = usize::try_from(size - offset).unwrap_or(0).min(CHUNK);
        let mut chunk = vec![0u8; len];
        file.read_exact(&mut chunk)?;
        let answer = net::send(&|| {
            client
                .patch(&url)
                .bearer_auth(&endpoint.token)
                .header("upload-offset", offset.to_string())
                .header("upload-length", size.to_string())
                .header("content-type", "application/octet-stream")
                .body(chunk.clone())
        })?;
        match answer {
            Ok(data) => {
                let status: Status = decode(data)?;
                sent += len as i64;
                offset = status.received;
                progress(offset)?;
                if status.complete {
                    return Ok(sent);
                }
                if len == 0 {
                    return Err(DeviceError::offline("upload did not complete"));
                }
            }
            // Another device (or an earlier, lost answer) moved the server on: resume there.
            Err(rejected) if rejected.status == 409 && mismatches < 3 => {
                mismatches += 1;
                offset = rejected
                    .body
                    .get("data")
                    .and_then(|d| d.get("received"))
                    .and_then(serde_json::Value::as_i64)
                    .ok_or_else(|| DeviceError::offline("upload offset unknown"))?;
            }
            Err(rejected) => return Err(rejected.into_error()),
        }
    }
}

fn decode(data: serde_json::Value) -> Result<Status> {
    serde_json::from_value(data).map_err(|e| DeviceError::offline(format!("upload answer: {e}")))
}
