-- roadwarden store, PostgreSQL dialect. Times are microseconds since the Unix epoch (UTC), ids are UUID text.
CREATE TABLE cameras (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    chain_seq     BIGINT NOT NULL DEFAULT 0,
    chain_head    TEXT NOT NULL
);

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

CREATE TABLE violations (
    id               TEXT PRIMARY KEY,
    camera_id        TEXT NOT NULL REFERENCES cameras(id),
    seq              BIGINT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('no_helmet', 'red_light')),
    track_id         BIGINT NOT NULL,
    occurred_at_us   BIGINT NOT NULL,
    confidence       DOUBLE PRECISION NOT NULL,
    thresholds       TEXT NOT NULL,
    detail           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    prev_hash        TEXT NOT NULL,
    record_hash      TEXT NOT NULL,
    recorded_at_us   BIGINT NOT NULL,
    tombstoned_at_us BIGINT,
    UNIQUE (camera_id, seq)
);
CREATE INDEX violations_queue_camera ON violations (status, camera_id, occurred_at_us, id);
CREATE INDEX violations_queue ON violations (status, occurred_at_us, id);

CREATE TABLE evidence (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    violation_id   TEXT NOT NULL REFERENCES violations(id),
    kind           TEXT NOT NULL CHECK (kind IN ('photo', 'raw', 'clip', 'crop')),
    role           TEXT,
    path           TEXT NOT NULL UNIQUE,
    sha256         TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL,
    purged_at_us   BIGINT
);
CREATE INDEX evidence_violation ON evidence (violation_id);

CREATE TABLE reviews (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    violation_id   TEXT NOT NULL REFERENCES violations(id),
    user_id        BIGINT NOT NULL REFERENCES users(id),
    decision       TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
    reason         TEXT NOT NULL,
    reviewed_at_us BIGINT NOT NULL
);
CREATE INDEX reviews_violation ON reviews (violation_id);

CREATE TABLE audit_log (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us         BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    violation_id  TEXT,
    before_state  TEXT,
    after_state   TEXT
);
CREATE INDEX audit_log_violation ON audit_log (violation_id);
