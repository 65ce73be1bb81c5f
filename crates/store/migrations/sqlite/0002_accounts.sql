-- roadwarden store, SQLite dialect: accounts (password hashes, sessions, bearer tokens, login attempts),
-- per-camera per-class thresholds set over the API, and the note of a review decision.
ALTER TABLE users ADD COLUMN password_hash TEXT;

ALTER TABLE reviews ADD COLUMN note TEXT NOT NULL DEFAULT '';

-- A browser session: the SHA-256 of the cookie value (the value itself is never stored) and its CSRF token.
CREATE TABLE sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    csrf_token    TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    expires_at_us INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- A machine's bearer token, by its SHA-256.
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash    TEXT NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    label         TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    revoked_at_us INTEGER
);

CREATE TABLE login_attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us     INTEGER NOT NULL,
    name      TEXT NOT NULL,
    remote    TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_name ON login_attempts (name, at_us);
CREATE INDEX login_attempts_remote ON login_attempts (remote, at_us);

-- Score thresholds by camera and class role, overriding the site file's.
CREATE TABLE thresholds (
    camera_id     TEXT NOT NULL,
    class         TEXT NOT NULL,
    value         REAL NOT NULL,
    updated_at_us INTEGER NOT NULL,
    updated_by    TEXT NOT NULL,
    PRIMARY KEY (camera_id, class)
);

CREATE INDEX violations_time ON violations (occurred_at_us, id);
