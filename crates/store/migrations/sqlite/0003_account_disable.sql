-- roadwarden store, SQLite dialect: a user can be disabled (kept for the reviews and audit entries that name
-- it, but no login, session or token of theirs works) until an admin enables them again.
ALTER TABLE users ADD COLUMN disabled_at_us INTEGER;
