-- Resumable uploads and generated reports (docs/adr/0006-blobs-and-report.md).

-- One resumable upload per user and content: how many bytes arrived; `complete` once the bytes
-- were verified against `sha256` and stored as a blob (kept: it proves this user uploaded them).
CREATE TABLE uploads (
    user_id    TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    total      INTEGER NOT NULL CHECK (total >= 0),
    received   INTEGER NOT NULL CHECK (received >= 0 AND received <= total),
    complete   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, sha256)
);

-- The chunks received so far, each an object in the blob store.
CREATE TABLE upload_chunks (
    user_id      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    start_offset INTEGER NOT NULL,
    length       INTEGER NOT NULL CHECK (length > 0),
    object_key   TEXT NOT NULL,
    PRIMARY KEY (user_id, sha256, start_offset),
    FOREIGN KEY (user_id, sha256) REFERENCES uploads (user_id, sha256) ON DELETE CASCADE
);

-- The PDFs of a case's final report, one per language; `content_sha256` is the hash printed in
-- them (of the content they certify), `sha256` the PDF's own.
CREATE TABLE reports (
    report_id      BLOB NOT NULL,
    lang           TEXT NOT NULL,
    case_id        BLOB NOT NULL,
    sha256         TEXT NOT NULL,
    content_sha256 TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (report_id, lang)
);
CREATE INDEX reports_case_idx ON reports (case_id);
