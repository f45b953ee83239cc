//! Resumable uploads from the sync client: `GET` and `PATCH /sync/v1/upload/{sha256}`, exactly
//! as `docs/upload-protocol.md` describes (the device side is written against it).
//!
//! **Where partial data lives.** Each `PATCH` body is streamed to a local staging file, copied
//! to the blob store as the object `uploads/<user key>/<sha256>/<offset>-<uuid>`, and only then
//! recorded: one conditional `UPDATE uploads SET received = offset + len WHERE received =
//! offset` plus an `upload_chunks` row, in one transaction. The database row is the arbiter, so
//! two requests (or two server instances) sending the same offset cannot both win, and what was
//! acknowledged survives a restart and is seen by every instance. A chunk object whose request
//! lost the race is deleted.
//!
//! **Completion.** The request that makes `received == total` assembles the chunks in offset
//! order into a staging file while hashing them, and compares the SHA-256 with the one in the
//! path: a mismatch discards the partial data (`422 sha256_mismatch`); a match stores the blob
//! (once, whoever uploaded the same bytes before), records its detected content type, marks the
//! upload `complete` (kept: it is what lets this user attach the file, [`uploaded_by`]) and
//! deletes the chunk objects. If the server stops between the last chunk and the end of that
//! work, a `PATCH` with an empty body at offset `total` finishes it.
//!
//! Limits: `Upload-Length` above the per-file limit is refused at once (`413 file_too_large`);
//! the per-case limit is the core's, checked when the document is attached (`UploadDocument`).
//!
//! **Abandoned uploads.** An incomplete upload that received no chunk for
//! `Settings::upload_expiry` (default [`DEFAULT_UPLOAD_EXPIRY`], 7 days; `SOP_UPLOAD_EXPIRY_HOURS`)
//! is forgotten by [`remove_expired_uploads`], which the scheduler runs with its jobs: the row
//! and its chunk rows go in one conditional transaction (a chunk recorded meanwhile keeps the
//! upload), then the chunk objects are deleted. The device's next `GET` answers `received: 0`
//! and it starts again. Completed uploads are never removed: they are what lets a user attach
//! the file.

use crate::api::RequestMeta;
use crate::auth::SyncAuth;
use crate::blobs::{BlobStore, StagedBlob, is_sha256_key};
use crate::detect;
use crate::envelope::{Code, Envelope, ok};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::sql::BlobTx;
use crate::store::{StoreError, read_tx, write_tx};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sop_core::{Refusal, RefusalCode};
use std::time::Duration;
use uuid::Uuid;

/// How long an incomplete upload is kept without receiving a chunk, unless configured.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// How many expired uploads one transaction-and-delete round lists.
const EXPIRED_BATCH: i64 = 100;

/// The header with the offset of the body's first byte in the file.
pub const UPLOAD_OFFSET: &str = "upload-offset";
/// The header with the size of the whole file.
pub const UPLOAD_LENGTH: &str = "upload-length";

/// The answer of both methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UploadStatus {
    pub sha256: String,
    /// Bytes of this file this user has uploaded so far.
    pub received: i64,
    /// Whether the file is verified and stored.
    pub complete: bool,
}

/// A refused upload request: the envelope carries a stable `code` (and `received` where the
/// client must resume from elsewhere) in `data`.
#[derive(Debug)]
pub struct UploadRefusal {
    status: StatusCode,
    code: &'static str,
    message_en: String,
    message_ar: String,
    received: Option<i64>,
}

#[derive(Serialize)]
struct RefusalData<'a> {
    code: &'a str,
    message_en: &'a str,
    message_ar: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    received: Option<i64>,
}

/// Why an upload request failed.
#[derive(Debug)]
pub enum UploadError {
    Refused(UploadRefusal),
    App(AppError),
}

impl<E: Into<AppError>> From<E> for UploadError {
    fn from(e: E) -> Self {
        UploadError::App(e.into())
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        match self {
            UploadError::App(e) => e.into_response(),
            UploadError::Refused(r) => {
                let data = RefusalData {
                    code: r.code,
                    message_en: &r.message_en,
                    message_ar: &r.message_ar,
                    received: r.received,
                };
                let mut response =
                    Envelope::error_with_data(Code::BadInput, r.message_en.clone(), data)
                        .into_response();
                *response.status_mut() = r.status;
                response
            }
        }
    }
}

fn offset_mismatch(received: i64) -> UploadError {
    UploadError::Refused(UploadRefusal {
        status: StatusCode::CONFLICT,
        code: "upload_offset_mismatch",
        message_en: format!("Upload-Offset must be {received}: the bytes received so far"),
        message_ar: format!(
            "يجب أن تكون قيمة Upload-Offset ‏{received}: عدد البايتات المستلمة حتى الآن"
        ),
        received: Some(received),
    })
}

fn file_too_large(limit: i64) -> UploadError {
    UploadError::Refused(UploadRefusal {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "file_too_large",
        message_en: format!(
            "The file is larger than the limit of {limit} bytes ({:.1} MiB)",
            limit as f64 / (1024.0 * 1024.0)
        ),
        message_ar: format!("حجم الملف أكبر من الحد المسموح وهو {limit} بايت"),
        received: None,
    })
}

fn sha256_mismatch() -> UploadError {
    UploadError::Refused(UploadRefusal {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "sha256_mismatch",
        message_en: "The bytes received do not have the SHA-256 of the upload; the partial data \
                     was discarded, upload the file again"
            .to_owned(),
        message_ar: "البيانات المستلمة لا تطابق بصمة SHA-256 للملف؛ تم حذفها، أعد رفع الملف"
            .to_owned(),
        received: Some(0),
    })
}

fn length_mismatch(total: i64) -> UploadError {
    UploadError::Refused(UploadRefusal {
        status: StatusCode::CONFLICT,
        code: "upload_length_mismatch",
        message_en: format!("This upload was started with Upload-Length {total}"),
        message_ar: format!("بدأ هذا الرفع بقيمة Upload-Length ‏{total}"),
        received: None,
    })
}

fn io_error(err: std::io::Error) -> UploadError {
    UploadError::App(AppError::Internal(
        anyhow::Error::new(err).context("cannot store an upload chunk"),
    ))
}

/// The `{sha256}` of the path, lowercase hex.
fn sha_of(raw: &str) -> Result<String, UploadError> {
    if is_sha256_key(raw) {
        Ok(raw.to_owned())
    } else {
        Err(AppError::Refused(Refusal::new(RefusalCode::Sha256Invalid)).into())
    }
}

/// A non-negative integer header.
fn number_header(headers: &HeaderMap, name: &str) -> Result<i64, UploadError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            AppError::BadRequest(format!("header `{name}` must be a non-negative integer")).into()
        })
}

/// A user's directory in the store: a hash of the id, so any id is a safe path segment.
fn user_key(user: &str) -> String {
    hex::encode(&Sha256::digest(user.as_bytes())[..16])
}

/// The current state of `user`'s upload of `sha256`.
async fn current(state: &AppState, user: &str, sha256: &str) -> Result<UploadStatus, StoreError> {
    let row = read_tx!(state.store.db(), |tx| tx.upload(user, sha256).await)?;
    Ok(UploadStatus {
        sha256: sha256.to_owned(),
        received: row.as_ref().map_or(0, |r| r.received),
        complete: row.is_some_and(|r| r.complete),
    })
}

/// Whether `user` completed an upload of `sha256` (so they hold those bytes and may attach
/// them to a case).
pub async fn uploaded_by(state: &AppState, user: &str, sha256: &str) -> Result<bool, StoreError> {
    Ok(current(state, user, sha256).await?.complete)
}

/// Records that `user` uploaded the stored blob `sha256` in one go (`/app/upload-document`).
pub async fn record_uploaded(
    state: &AppState,
    user: &str,
    sha256: &str,
    size: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    write_tx!(state.store.db(), |tx| {
        async {
            tx.start_upload(user, sha256, size, now).await?;
            tx.complete_upload(user, sha256, now).await
        }
        .await
    })?;
    Ok(())
}

/// `GET /sync/v1/upload/{sha256}`: how much of the file this user has uploaded.
pub async fn status_handler(
    State(state): State<AppState>,
    SyncAuth(user): SyncAuth,
    Path(raw): Path<String>,
) -> Result<Envelope<UploadStatus>, UploadError> {
    let sha256 = sha_of(&raw)?;
    Ok(ok(current(&state, &user.sub, &sha256).await?))
}

/// `PATCH /sync/v1/upload/{sha256}`: the bytes `[Upload-Offset, Upload-Offset + len)`.
pub async fn patch_handler(
    State(state): State<AppState>,
    SyncAuth(user): SyncAuth,
    _meta: RequestMeta,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Envelope<UploadStatus>, UploadError> {
    let sha256 = sha_of(&raw)?;
    let offset = number_header(&headers, UPLOAD_OFFSET)?;
    let total = number_header(&headers, UPLOAD_LENGTH)?;
    let limit = state.settings.limits.max_file_bytes;
    if total > limit {
        return Err(file_too_large(limit));
    }
    if total == 0 {
        return Err(AppError::Refused(Refusal::new(RefusalCode::FileEmpty)).into());
    }
    let user = user.sub.as_str();
    let now = state.now();
    let row = write_tx!(state.store.db(), |tx| {
        async {
            tx.start_upload(user, &sha256, total, now).await?;
            tx.upload(user, &sha256).await
        }
        .await
    })?;
    let Some(row) = row else {
        return Err(AppError::Internal(anyhow::anyhow!("an upload row vanished")).into());
    };
    if row.complete {
        return Ok(ok(UploadStatus {
            sha256,
            received: row.total,
            complete: true,
        }));
    }
    if row.total != total {
        return Err(length_mismatch(row.total));
    }
    if offset != row.received {
        return Err(offset_mismatch(row.received));
    }
    let remaining = total - offset;
    let staged = read_body(&state.blobs, body, remaining).await?;
    if let Some(staged) = staged {
        let length = i64::try_from(staged.size()).unwrap_or(i64::MAX);
        let key = format!(
            "uploads/{}/{sha256}/{offset:020}-{}",
            user_key(user),
            Uuid::now_v7().simple()
        );
        let object = ObjectPath::from(key.as_str());
        staged.store_as(object.clone()).await.map_err(io_error)?;
        let appended = write_tx!(state.store.db(), |tx| {
            tx.append_chunk(user, &sha256, offset, length, &key, now)
                .await
        })?;
        if !appended {
            // Another request got this offset first: its bytes count, these do not.
            let _ = state.blobs.delete_object(&object).await;
            let now_at = current(&state, user, &sha256).await?;
            return Err(offset_mismatch(now_at.received));
        }
        if offset + length < total {
            return Ok(ok(UploadStatus {
                sha256,
                received: offset + length,
                complete: false,
            }));
        }
    } else if offset < total {
        // An empty body before the end: nothing to do.
        return Ok(ok(current(&state, user, &sha256).await?));
    }
    finish(&state, user, &sha256, total, now).await
}

/// Streams the body to a staging file; at most `remaining` bytes. `None` for an empty body.
async fn read_body(
    blobs: &BlobStore,
    body: Body,
    remaining: i64,
) -> Result<Option<StagedBlob>, UploadError> {
    let remaining = u64::try_from(remaining).unwrap_or(0);
    let mut stream = body.into_data_stream();
    let mut writer = blobs.begin().await.map_err(io_error)?;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("cannot read the body: {e}")))?;
        if writer.size() + chunk.len() as u64 > remaining {
            return Err(AppError::BadRequest("the body goes past Upload-Length".to_owned()).into());
        }
        writer.write(&chunk).await.map_err(io_error)?;
    }
    if writer.size() == 0 {
        return Ok(None);
    }
    Ok(Some(writer.finish().await.map_err(io_error)?))
}

/// Assembles and verifies a fully received upload, then stores it (see the module docs).
async fn finish(
    state: &AppState,
    user: &str,
    sha256: &str,
    total: i64,
    now: DateTime<Utc>,
) -> Result<Envelope<UploadStatus>, UploadError> {
    let chunks = read_tx!(state.store.db(), |tx| tx.upload_chunks(user, sha256).await)?;
    let mut writer = state.blobs.begin().await.map_err(io_error)?;
    let mut next = 0;
    let mut intact = true;
    for chunk in &chunks {
        let bytes = state
            .blobs
            .read_object(&ObjectPath::from(chunk.object_key.as_str()))
            .await
            .map_err(io_error)?;
        match bytes {
            Some(bytes) if chunk.start_offset == next && bytes.len() as i64 == chunk.length => {
                writer.write(&bytes).await.map_err(io_error)?;
                next += chunk.length;
            }
            _ => {
                intact = false;
                break;
            }
        }
    }
    let staged = writer.finish().await.map_err(io_error)?;
    let keys: Vec<ObjectPath> = chunks
        .iter()
        .map(|c| ObjectPath::from(c.object_key.as_str()))
        .collect();
    if !intact || next != total || staged.sha256() != sha256 {
        write_tx!(state.store.db(), |tx| tx.drop_upload(user, sha256).await)?;
        delete_chunks(&state.blobs, &keys).await;
        if !intact {
            tracing::warn!(
                chunks = chunks.len(),
                "an upload's chunks were missing; discarded"
            );
        }
        return Err(sha256_mismatch());
    }
    let path = staged.path().to_path_buf();
    let content_type = tokio::task::spawn_blocking(move || detect::detect_file(&path))
        .await
        .map_err(|e| AppError::Internal(anyhow::Error::new(e)))?
        .map_err(io_error)?;
    staged.commit().await.map_err(io_error)?;
    state
        .store
        .record_blob(sha256, total, content_type, now)
        .await?;
    write_tx!(state.store.db(), |tx| tx
        .complete_upload(user, sha256, now)
        .await)?;
    delete_chunks(&state.blobs, &keys).await;
    Ok(ok(UploadStatus {
        sha256: sha256.to_owned(),
        received: total,
        complete: true,
    }))
}

/// Deletes chunk objects that are no longer needed (best effort: a leftover is only space).
async fn delete_chunks(blobs: &BlobStore, keys: &[ObjectPath]) {
    for key in keys {
        if let Err(e) = blobs.delete_object(key).await {
            tracing::warn!(error = %e, "cannot delete an upload chunk");
        }
    }
}

/// Forgets every incomplete upload untouched for `Settings::upload_expiry` (at the state's
/// clock) and deletes its chunk objects; the number of uploads removed. Safe to run on several
/// instances at once: each upload is removed by one conditional transaction, and a chunk object
/// already gone is not an error.
pub async fn remove_expired_uploads(state: &AppState) -> Result<u64, StoreError> {
    let expiry =
        chrono::TimeDelta::from_std(state.settings.upload_expiry).unwrap_or(chrono::TimeDelta::MAX);
    let before = state
        .now()
        .checked_sub_signed(expiry)
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut removed = 0;
    loop {
        let expired = read_tx!(state.store.db(), |tx| tx
            .expired_uploads(before, EXPIRED_BATCH)
            .await)?;
        for upload in &expired {
            let (user, sha256) = (upload.user_id.as_str(), upload.sha256.as_str());
            let dropped = write_tx!(state.store.db(), |tx| tx
                .drop_expired_upload(user, sha256, before)
                .await)?;
            // `None`: a chunk arrived since the listing; the upload is alive.
            if let Some(keys) = dropped {
                let keys: Vec<ObjectPath> =
                    keys.iter().map(|k| ObjectPath::from(k.as_str())).collect();
                delete_chunks(&state.blobs, &keys).await;
                removed += 1;
            }
        }
        // Removed or touched, none of these is listed again: a short page is the last.
        if (expired.len() as i64) < EXPIRED_BATCH {
            return Ok(removed);
        }
    }
}
