-- The catalog, cases (materialized state + append-only event log), notifications, the
-- hash-chained audit log and the transactional outbox.

CREATE TABLE review_types (
    rt_id                UUID PRIMARY KEY,
    title_en             TEXT NOT NULL,
    title_ar             TEXT NOT NULL,
    description_en       TEXT NOT NULL,
    description_ar       TEXT NOT NULL,
    duration_en          TEXT NOT NULL,
    duration_ar          TEXT NOT NULL,
    price                BIGINT NOT NULL CHECK (price >= 0),
    currency             TEXT NOT NULL,
    expected_review_days INTEGER NOT NULL CHECK (expected_review_days >= 1),
    icon                 TEXT NOT NULL,
    active               BOOLEAN NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX review_types_created_idx ON review_types (created_at DESC);

CREATE TABLE disease_categories (
    dc_id      UUID PRIMARY KEY,
    label_en   TEXT NOT NULL,
    label_ar   TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    doctor_ids JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE coordinator_mappings (
    cc_id         UUID PRIMARY KEY,
    speciality_id UUID NOT NULL REFERENCES disease_categories (dc_id),
    doctor_ids    JSONB NOT NULL,
    active        BOOLEAN NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX coordinator_mappings_one_active ON coordinator_mappings (speciality_id) WHERE active;

CREATE TABLE doctors (
    doctor_id   TEXT PRIMARY KEY,
    name_en     TEXT NOT NULL,
    name_ar     TEXT NOT NULL,
    phone       TEXT NOT NULL,
    email       TEXT NOT NULL,
    specialties JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE cases (
    case_id        UUID PRIMARY KEY,
    patient_id     TEXT NOT NULL,
    rt_id          UUID NOT NULL REFERENCES review_types (rt_id),
    dc_id          UUID NOT NULL REFERENCES disease_categories (dc_id),
    status         TEXT NOT NULL,
    coordinator_id TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    due_at         TIMESTAMPTZ,
    version        BIGINT NOT NULL,
    state          JSONB NOT NULL
);
CREATE INDEX cases_patient_idx ON cases (patient_id, created_at DESC);
CREATE INDEX cases_status_idx ON cases (status, created_at DESC);
CREATE INDEX cases_coordinator_idx ON cases (coordinator_id);
CREATE INDEX cases_created_idx ON cases (created_at DESC);

CREATE TABLE case_events (
    case_id UUID NOT NULL REFERENCES cases (case_id),
    seq     BIGINT NOT NULL,
    at      TIMESTAMPTZ NOT NULL,
    event   JSONB NOT NULL,
    PRIMARY KEY (case_id, seq)
);

-- Which doctors are on which case, for the doctors' case lists.
CREATE TABLE case_doctors (
    case_id   UUID NOT NULL REFERENCES cases (case_id),
    doctor_id TEXT NOT NULL,
    role      TEXT NOT NULL,
    active    BOOLEAN NOT NULL,
    PRIMARY KEY (case_id, doctor_id, role)
);
CREATE INDEX case_doctors_doctor_idx ON case_doctors (doctor_id, active);

-- Payment attempts by id, so a callback finds its case.
CREATE TABLE payments (
    payment_id UUID PRIMARY KEY,
    case_id    UUID NOT NULL REFERENCES cases (case_id),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX payments_case_idx ON payments (case_id);

-- Saved drafts of people's text: notes, opinions, the summary (one row per document).
CREATE TABLE case_content (
    case_id    UUID NOT NULL REFERENCES cases (case_id),
    kind       TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    body       JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    frozen_at  TIMESTAMPTZ,
    PRIMARY KEY (case_id, kind, owner_id)
);

-- Uploaded files, content-addressed; stored once however often uploaded.
CREATE TABLE blobs (
    sha256       TEXT PRIMARY KEY,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE notifications (
    notification_id UUID PRIMARY KEY,
    recipient       TEXT NOT NULL,
    case_id         UUID NOT NULL,
    kind            TEXT NOT NULL,
    title_en        TEXT NOT NULL,
    title_ar        TEXT NOT NULL,
    body_en         TEXT NOT NULL,
    body_ar         TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    read_at         TIMESTAMPTZ
);
CREATE INDEX notifications_recipient_idx ON notifications (recipient, created_at DESC);

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    user_id     TEXT,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    case_id     UUID,
    resource_id TEXT,
    outcome     TEXT NOT NULL,
    request_id  TEXT,
    device_id   TEXT,
    device_time TIMESTAMPTZ,
    ip          TEXT,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_case_idx ON audit_log (case_id, seq);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, seq);

CREATE TABLE outbox (
    outbox_id       UUID PRIMARY KEY,
    case_id         UUID,
    kind            TEXT NOT NULL,
    payload         JSONB NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    done_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
