-- The sync feed (docs/adr/0004-sync-feed.md), the content documents (docs/adr/0003) and the
-- exactly-once records of pushed operations.

-- The feed's one-row counter. A writing transaction takes its sequence numbers from it last,
-- just before commit (`UPDATE ... RETURNING`); the row lock is held until commit, so numbers
-- become visible in order and a reader's cursor never passes a row that commits later.
CREATE TABLE feed_clock (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO feed_clock (id, seq) VALUES (1, 0);

-- Everything a device may learn about, in commit order. `kind`: case, content, notification,
-- catalog, access_granted, access_revoked, content_refresh. `recipient`: a user id (or
-- '*admins') for rows addressed to one user, NULL for rows whose readers are decided at pull
-- time from the case. Content rows carry the document's new Automerge changes in `data`
-- (set to NULL by compaction once a newer snapshot holds them) and its heads in `payload`.
CREATE TABLE feed (
    seq       INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    case_id   BLOB,
    recipient TEXT,
    doc_id    BLOB,
    payload   TEXT,
    data      BLOB,
    at        TEXT NOT NULL
);
CREATE INDEX feed_recipient_idx ON feed (recipient, seq) WHERE recipient IS NOT NULL;
CREATE INDEX feed_doc_idx ON feed (doc_id, seq) WHERE doc_id IS NOT NULL;
CREATE INDEX feed_case_idx ON feed (case_id, seq) WHERE case_id IS NOT NULL;

-- Content documents: a compacted snapshot covering the feed up to `snapshot_seq`, plus the
-- content rows of the feed after it (`pending` of them). `heads` are the current heads,
-- `frozen_heads` the heads recorded when the text was submitted (T2/T3, T14, T15).
CREATE TABLE content_docs (
    doc_id       BLOB PRIMARY KEY,
    case_id      BLOB NOT NULL REFERENCES cases (case_id),
    kind         TEXT NOT NULL,
    doctor_id    TEXT NOT NULL,
    snapshot     BLOB NOT NULL,
    snapshot_seq INTEGER NOT NULL,
    pending      INTEGER NOT NULL,
    heads        TEXT NOT NULL,
    frozen_heads TEXT,
    frozen_at    TEXT,
    updated_at   TEXT NOT NULL
);
CREATE INDEX content_docs_case_idx ON content_docs (case_id);

-- One row per pushed operation: its answer, written in the transaction of its effect.
CREATE TABLE sync_ops (
    user_id   TEXT NOT NULL,
    device_id BLOB NOT NULL,
    op_id     BLOB NOT NULL,
    result    TEXT NOT NULL,
    at        TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, op_id)
);

-- Drafts now live in the content documents above (one store for what people type); the JSON
-- drafts table of 0002 goes. (No deployment held drafts in it.)
DROP TABLE case_content;
