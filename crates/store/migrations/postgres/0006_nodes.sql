-- roadwarden store, PostgreSQL dialect: several `serve` nodes share a site's cameras (see leases.rs).
-- Which node's data folder holds a violation's evidence files (NULL: recorded before nodes were named).
ALTER TABLE violations ADD COLUMN node TEXT;
-- When the violation's event was acknowledged by NATS JetStream (NULL: not yet; a node's sweep publishes
-- those recorded within the last hour, so an event a crash cut off still goes out, once: Nats-Msg-Id).
ALTER TABLE violations ADD COLUMN nats_published_at_us BIGINT;
CREATE INDEX violations_nats_unpublished ON violations (recorded_at_us) WHERE nats_published_at_us IS NULL;

-- Each node says it is alive at every lease round; a node seen within the lease TTL counts as live.
CREATE TABLE nodes (
    id          TEXT PRIMARY KEY,
    seen_at_us  BIGINT NOT NULL
);

-- One lease per camera: the node that runs it until expires_at_us, unless it renews it. epoch counts the
-- takes. Taking and renewing are single statements (INSERT ... ON CONFLICT ... WHERE, UPDATE ... WHERE).
CREATE TABLE camera_leases (
    camera_id       TEXT PRIMARY KEY,
    node_id         TEXT NOT NULL,
    epoch           BIGINT NOT NULL,
    acquired_at_us  BIGINT NOT NULL,
    expires_at_us   BIGINT NOT NULL
);
CREATE INDEX camera_leases_node ON camera_leases (node_id);
