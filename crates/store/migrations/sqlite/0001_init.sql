-- roadwarden store, SQLite dialect. Times are microseconds since the Unix epoch (UTC), ids are UUID text.
CREATE TABLE cameras (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    chain_seq     INTEGER NOT NULL DEFAULT 0,
    chain_head    TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    created_at_us INTEGER NOT NULL
);

CREATE TABLE violations (
    id               TEXT PRIMARY KEY,
    camera_id        TEXT NOT NULL REFERENCES cameras(id),
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('no_helmet', 'red_light')),
    track_id         INTEGER NOT NULL,
    occurred_at_us   INTEGER NOT NULL,
    confidence       REAL NOT NULL,
    thresholds       TEXT NOT NULL,
    detail           TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'confirmed', 'rejected')),
    prev_hash        TEXT NOT NULL,
    record_hash      TEXT NOT NULL,
    recorded_at_us   INTEGER NOT NULL,
    tombstoned_at_us INTEGER,
    UNIQUE (camera_id, seq)
);
CREATE INDEX violations_queue_camera ON violations (status, camera_id, occurred_at_us, id);
CREATE INDEX violations_queue ON violations (status, occurred_at_us, id);

CREATE TABLE evidence (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    violation_id   TEXT NOT NULL REFERENCES violations(id),
    kind           TEXT NOT NULL CHECK (kind IN ('photo', 'raw', 'clip', 'crop')),
    role           TEXT,
    path           TEXT NOT NULL UNIQUE,
    sha256         TEXT NOT NULL,
    size_bytes     INTEGER NOT NULL,
    purged_at_us   INTEGER
);
CREATE INDEX evidence_violation ON evidence (violation_id);

CREATE TABLE reviews (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    violation_id   TEXT NOT NULL REFERENCES violations(id),
    user_id        INTEGER NOT NULL REFERENCES users(id),
    decision       TEXT NOT NULL CHECK (decision IN ('confirmed', 'rejected')),
    reason         TEXT NOT NULL,
    reviewed_at_us INTEGER NOT NULL
);
CREATE INDEX reviews_violation ON reviews (violation_id);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us         INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    action        TEXT NOT NULL,
    violation_id  TEXT,
    before_state  TEXT,
    after_state   TEXT
);
CREATE INDEX audit_log_violation ON audit_log (violation_id);
