-- The catalog, cases (materialized state + append-only event log), notifications, the
-- hash-chained audit log and the transactional outbox.

CREATE TABLE review_types (
    rt_id                BLOB PRIMARY KEY,
    title_en             TEXT NOT NULL,
    title_ar             TEXT NOT NULL,
    description_en       TEXT NOT NULL,
    description_ar       TEXT NOT NULL,
    duration_en          TEXT NOT NULL,
    duration_ar          TEXT NOT NULL,
    price                INTEGER NOT NULL CHECK (price >= 0),
    currency             TEXT NOT NULL,
    expected_review_days INTEGER NOT NULL CHECK (expected_review_days >= 1),
    icon                 TEXT NOT NULL,
    active               INTEGER NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX review_types_created_idx ON review_types (created_at);

CREATE TABLE disease_categories (
    dc_id      BLOB PRIMARY KEY,
    label_en   TEXT NOT NULL,
    label_ar   TEXT NOT NULL,
    active     INTEGER NOT NULL,
    doctor_ids TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE coordinator_mappings (
    cc_id         BLOB PRIMARY KEY,
    speciality_id BLOB NOT NULL REFERENCES disease_categories (dc_id),
    doctor_ids    TEXT NOT NULL,
    active        INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE UNIQUE INDEX coordinator_mappings_one_active ON coordinator_mappings (speciality_id) WHERE active = 1;

CREATE TABLE doctors (
    doctor_id   TEXT PRIMARY KEY,
    name_en     TEXT NOT NULL,
    name_ar     TEXT NOT NULL,
    phone       TEXT NOT NULL,
    email       TEXT NOT NULL,
    specialties TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE cases (
    case_id        BLOB PRIMARY KEY,
    patient_id     TEXT NOT NULL,
    rt_id          BLOB NOT NULL REFERENCES review_types (rt_id),
    dc_id          BLOB NOT NULL REFERENCES disease_categories (dc_id),
    status         TEXT NOT NULL,
    coordinator_id TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    due_at         TEXT,
    version        INTEGER NOT NULL,
    state          TEXT NOT NULL
);
CREATE INDEX cases_patient_idx ON cases (patient_id, created_at DESC);
CREATE INDEX cases_status_idx ON cases (status, created_at DESC);
CREATE INDEX cases_coordinator_idx ON cases (coordinator_id);
CREATE INDEX cases_created_idx ON cases (created_at DESC);

CREATE TABLE case_events (
    case_id BLOB NOT NULL REFERENCES cases (case_id),
    seq     INTEGER NOT NULL,
    at      TEXT NOT NULL,
    event   TEXT NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- Which doctors are on which case, for the doctors' case lists.
CREATE TABLE case_doctors (
    case_id   BLOB NOT NULL REFERENCES cases (case_id),
    doctor_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    active    INTEGER NOT NULL,
    PRIMARY KEY (case_id, doctor_id, role)
);
CREATE INDEX case_doctors_doctor_idx ON case_doctors (doctor_id, active);

-- Payment attempts by id, so a callback finds its case.
CREATE TABLE payments (
    payment_id BLOB PRIMARY KEY,
    case_id    BLOB NOT NULL REFERENCES cases (case_id),
    created_at TEXT NOT NULL
);
CREATE INDEX payments_case_idx ON payments (case_id);

-- Saved drafts of people's text: notes, opinions, the summary (one row per document).
CREATE TABLE case_content (
    case_id    BLOB NOT NULL REFERENCES cases (case_id),
    kind       TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    frozen_at  TEXT,
    PRIMARY KEY (case_id, kind, owner_id)
);

-- Uploaded files, content-addressed; stored once however often uploaded.
CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE notifications (
    notification_id BLOB PRIMARY KEY,
    recipient       TEXT NOT NULL,
    case_id         BLOB NOT NULL,
    kind            TEXT NOT NULL,
    title_en        TEXT NOT NULL,
    title_ar        TEXT NOT NULL,
    body_en         TEXT NOT NULL,
    body_ar         TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    read_at         TEXT
);
CREATE INDEX notifications_recipient_idx ON notifications (recipient, created_at DESC);

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    user_id     TEXT,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    case_id     BLOB,
    resource_id TEXT,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    device_id   TEXT,
    device_time TEXT,
    ip          TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, seq);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, seq);

CREATE TABLE outbox (
    outbox_id       BLOB PRIMARY KEY,
    case_id         BLOB,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
