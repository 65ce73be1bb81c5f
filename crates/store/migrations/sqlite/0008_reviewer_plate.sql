-- roadwarden store, SQLite dialect: the licence plate a reviewer filled in or corrected (normalised: upper case,
-- letters and digits only; NULL while none is given). Not part of the chain record (it is set after recording);
-- every change is in the audit log as `plate`, with the value before and after.
ALTER TABLE violations ADD COLUMN plate TEXT;
CREATE INDEX violations_plate ON violations (plate, occurred_at_us, id);
