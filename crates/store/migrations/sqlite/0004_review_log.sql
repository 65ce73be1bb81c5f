-- roadwarden store, SQLite dialect: the per-camera review log, a hash chain of every review decision and status
-- change (see review_log.rs), each entry anchored to its violation's chain record hash.
ALTER TABLE cameras ADD COLUMN review_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cameras ADD COLUMN review_head TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

CREATE TABLE review_log (
    camera_id    TEXT NOT NULL REFERENCES cameras(id),
    seq          INTEGER NOT NULL,
    prev_hash    TEXT NOT NULL,
    violation_id TEXT NOT NULL REFERENCES violations(id),
    record_hash  TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
    reason       TEXT NOT NULL,
    note         TEXT NOT NULL,
    at_us        INTEGER NOT NULL,
    entry_hash   TEXT NOT NULL,
    PRIMARY KEY (camera_id, seq)
);
CREATE INDEX review_log_violation ON review_log (violation_id, seq);
