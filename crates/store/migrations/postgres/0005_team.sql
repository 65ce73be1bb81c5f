-- roadwarden store, PostgreSQL dialect: team work. A pending case's claim (the reviewer holding it and until when; a
-- claim past its time is free), the undo mark of a decision (the decision row and its review-log entry stay; the
-- undo is a review-log entry of its own) and each user's time zone for the page.
ALTER TABLE violations ADD COLUMN claimed_by TEXT;
ALTER TABLE violations ADD COLUMN claimed_until_us BIGINT;
ALTER TABLE reviews ADD COLUMN undone_at_us BIGINT;
ALTER TABLE users ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
CREATE INDEX reviews_decided ON reviews (reviewed_at_us, id);
CREATE INDEX violations_claimed ON violations (claimed_by);
