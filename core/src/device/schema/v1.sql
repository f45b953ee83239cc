-- Schema version 1 of the device store (PRAGMA user_version = 1). Kept verbatim as the fixture of
-- the upgrade test: never edit it; a change to the schema is a new upgrade step in schema.rs.

-- Key/value facts of this installation: device_id, actor (hex), user_id, role, cursor.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per case the device holds. `record` is the server's case record as the feed delivered
-- it (NULL while the server has never seen the case); `base` the core Case rebuilt from it;
-- `local` the Case after replaying the queued commands (what the app shows). The list columns
-- are copies of `local`'s, so listing reads no JSON.
CREATE TABLE cases (
    case_id     TEXT PRIMARY KEY,
    record      TEXT,
    base        TEXT,
    local       TEXT NOT NULL,
    status      TEXT NOT NULL,
    reference   TEXT NOT NULL,
    sub_state   TEXT,
    card_title  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX cases_by_update ON cases (updated_at DESC);

-- Content documents (Automerge). `data` is the device's whole document; `server_heads` the heads
-- of the server's version as last pulled (JSON array of hex), from which pushes and rollbacks
-- are computed.
CREATE TABLE documents (
    doc_id        TEXT PRIMARY KEY,
    case_id       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    data          BLOB NOT NULL,
    server_heads  TEXT NOT NULL
);
CREATE INDEX documents_by_case ON documents (case_id);

-- Operations waiting for the server, in the order the user made them. A change op's `op` is
-- NULL until it is first sent: its bytes are computed then (all the document's changes the
-- server lacks) and frozen, so a retried push resends exactly the same op.
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id       TEXT NOT NULL UNIQUE,
    case_id     TEXT NOT NULL,
    doc_id      TEXT,
    op          TEXT,
    sent        INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX outbox_by_case ON outbox (case_id);

-- Refusals the server gave to queued operations, kept until the user dismisses them.
CREATE TABLE refusals (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT NOT NULL,
    op_id       TEXT NOT NULL,
    what        TEXT NOT NULL,
    code        TEXT NOT NULL,
    message_en  TEXT NOT NULL,
    message_ar  TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- What the device kept of typing the server refused.
CREATE TABLE recovered_drafts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     TEXT NOT NULL,
    doc_id      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    content     TEXT NOT NULL,
    fields      TEXT NOT NULL,
    code        TEXT NOT NULL,
    message_en  TEXT NOT NULL,
    message_ar  TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Catalog entries from the feed, one per review type / category (`key` = `review_type:<id>`).
CREATE TABLE catalog (
    key   TEXT PRIMARY KEY,
    json  TEXT NOT NULL
) WITHOUT ROWID;

-- In-app notifications from the feed.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id      TEXT,
    json         TEXT NOT NULL,
    received_at  TEXT NOT NULL
);

-- Attached files not yet fully uploaded. `path` is the device's copy, named by its SHA-256;
-- `received` what the server confirmed.
CREATE TABLE uploads (
    document_id  TEXT PRIMARY KEY,
    case_id      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    path         TEXT NOT NULL,
    size         INTEGER NOT NULL,
    received     INTEGER NOT NULL DEFAULT 0,
    complete     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX uploads_by_case ON uploads (case_id);
