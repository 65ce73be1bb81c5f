//! Several `serve` nodes over one PostgreSQL store: node ids, the nodes' heartbeats and the camera
//! leases. A lease is one row per camera (holder, epoch, expiry); taking one is a single
//! `INSERT ... ON CONFLICT DO UPDATE ... WHERE` that only succeeds on a free or expired lease, renewing
//! is a single `UPDATE ... WHERE` that only the holder of an unexpired lease passes, so the database
//! decides every race. Times are the caller's clock in microseconds (the nodes' clocks must agree to
//! well within the TTL); on SQLite one node owns every camera and `serve` does not lease, but the
//! statements run there too.

use std::fmt;

use sqlx::Row;

use crate::db::Pool;
use crate::{Store, StoreError};

/// A node's name: 1 to 64 of `A-Z a-z 0-9 . _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn parse(s: &str) -> Result<NodeId, StoreError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(NodeId(s.to_owned()))
        } else {
            Err(StoreError::Invalid(format!(
                "node id `{s}`: use 1 to 64 of A-Z, a-z, 0-9, `.`, `_` and `-` (e.g. --node-id node-1)"
            )))
        }
    }

    /// A new id: this host's name (cut to what a node id allows) and 8 random hex digits.
    pub fn generate() -> NodeId {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default();
        let host: String = host
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(40)
            .collect();
        let host = if host.is_empty() { "node".into() } else { host };
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        NodeId(format!("{host}-{suffix}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One camera's lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub camera: String,
    pub node: String,
    /// How many times the camera was taken (1: its first holder).
    pub epoch: i64,
    pub acquired_at_us: i64,
    pub expires_at_us: i64,
}

impl Store {
    /// Records that `node` is alive at `now_us`.
    pub async fn node_seen(&self, node: &NodeId, now_us: i64) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query(
            "INSERT INTO nodes (id, seen_at_us) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at_us = excluded.seen_at_us",
        )
        .bind(node.as_str())
        .bind(now_us)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// The nodes seen after `since_us`, by id.
    pub async fn live_nodes(&self, since_us: i64) -> Result<Vec<String>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query("SELECT id FROM nodes WHERE seen_at_us > $1 ORDER BY id")
                .bind(since_us)
                .fetch_all(p)
                .await?;
            rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
        })
    }

    /// A node that stops cleanly: its leases are released and it no longer counts as live.
    pub async fn node_gone(&self, node: &NodeId) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => {
            sqlx::query("DELETE FROM camera_leases WHERE node_id = $1")
                .bind(node.as_str())
                .execute(p)
                .await?;
            sqlx::query("DELETE FROM nodes WHERE id = $1")
                .bind(node.as_str())
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Takes `camera`'s lease for `node` until `now_us + ttl_us` if it is free or expired (at
    /// `now_us`); the lease taken, or `None` when another node holds it (or `node` itself does: it
    /// renews instead). Of concurrent takers exactly one wins.
    pub async fn take_lease(
        &self,
        camera: &str,
        node: &NodeId,
        now_us: i64,
        ttl_us: i64,
    ) -> Result<Option<Lease>, StoreError> {
        on_pool!(&self.pool, p => {
            let row = sqlx::query(
                "INSERT INTO camera_leases (camera_id, node_id, epoch, acquired_at_us, expires_at_us) \
                 VALUES ($1, $2, 1, $3, $4) \
                 ON CONFLICT (camera_id) DO UPDATE SET node_id = excluded.node_id, \
                 epoch = camera_leases.epoch + 1, acquired_at_us = excluded.acquired_at_us, \
                 expires_at_us = excluded.expires_at_us \
                 WHERE camera_leases.expires_at_us <= excluded.acquired_at_us \
                 RETURNING camera_id, node_id, epoch, acquired_at_us, expires_at_us",
            )
            .bind(camera)
            .bind(node.as_str())
            .bind(now_us)
            .bind(now_us.saturating_add(ttl_us))
            .fetch_optional(p)
            .await?;
            row.map(|r| lease_from_row(&r)).transpose()
        })
    }

    /// Extends every unexpired lease `node` holds to `now_us + ttl_us`; the cameras it still holds, by
    /// id. A lease that expired (another node may have taken it) is not renewed: take it again.
    pub async fn renew_leases(
        &self,
        node: &NodeId,
        now_us: i64,
        ttl_us: i64,
    ) -> Result<Vec<String>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "UPDATE camera_leases SET expires_at_us = $3 \
                 WHERE node_id = $1 AND expires_at_us > $2 RETURNING camera_id",
            )
            .bind(node.as_str())
            .bind(now_us)
            .bind(now_us.saturating_add(ttl_us))
            .fetch_all(p)
            .await?;
            let mut cams: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
            cams.sort();
            Ok(cams)
        })
    }

    /// Extends `camera`'s lease if `node` holds it unexpired; `false` (nothing changed) otherwise.
    pub async fn renew_lease(
        &self,
        camera: &str,
        node: &NodeId,
        now_us: i64,
        ttl_us: i64,
    ) -> Result<bool, StoreError> {
        let n = on_pool!(&self.pool, p => sqlx::query(
            "UPDATE camera_leases SET expires_at_us = $4 \
             WHERE camera_id = $1 AND node_id = $2 AND expires_at_us > $3",
        )
        .bind(camera)
        .bind(node.as_str())
        .bind(now_us)
        .bind(now_us.saturating_add(ttl_us))
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Gives `camera`'s lease up (after its camera stopped), if `node` holds it; whether it did.
    pub async fn release_lease(&self, camera: &str, node: &NodeId) -> Result<bool, StoreError> {
        let n = on_pool!(&self.pool, p => sqlx::query(
            "DELETE FROM camera_leases WHERE camera_id = $1 AND node_id = $2",
        )
        .bind(camera)
        .bind(node.as_str())
        .execute(p)
        .await?
        .rows_affected());
        Ok(n == 1)
    }

    /// Every lease, by camera.
    pub async fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        on_pool!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT camera_id, node_id, epoch, acquired_at_us, expires_at_us FROM camera_leases \
                 ORDER BY camera_id",
            )
            .fetch_all(p)
            .await?;
            rows.iter().map(lease_from_row).collect()
        })
    }
}

fn lease_from_row<R>(r: &R) -> Result<Lease, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Lease {
        camera: r.try_get(0)?,
        node: r.try_get(1)?,
        epoch: r.try_get(2)?,
        acquired_at_us: r.try_get(3)?,
        expires_at_us: r.try_get(4)?,
    })
}

/// A violation's event as the NATS publisher sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct ViolationEvent {
    pub id: String,
    pub camera: String,
    pub kind: String,
    pub occurred_at_us: i64,
    pub confidence: f64,
}

impl Store {
    /// Up to `limit` violations recorded within `(after_us, before_us)` whose event NATS has not
    /// acknowledged, oldest first.
    pub async fn nats_unpublished(
        &self,
        after_us: i64,
        before_us: i64,
        limit: i64,
    ) -> Result<Vec<ViolationEvent>, StoreError> {
        on_read!(&self.pool, p => {
            let rows = sqlx::query(
                "SELECT id, camera_id, kind, occurred_at_us, confidence FROM violations \
                 WHERE nats_published_at_us IS NULL AND recorded_at_us > $1 AND recorded_at_us < $2 \
                 ORDER BY recorded_at_us, id LIMIT $3",
            )
            .bind(after_us)
            .bind(before_us)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ViolationEvent {
                        id: r.try_get(0)?,
                        camera: r.try_get(1)?,
                        kind: r.try_get(2)?,
                        occurred_at_us: r.try_get(3)?,
                        confidence: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    /// Notes that NATS acknowledged violation `id`'s event.
    pub async fn nats_published(&self, id: &str, at_us: i64) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query(
            "UPDATE violations SET nats_published_at_us = $2 WHERE id = $1 AND nats_published_at_us IS NULL",
        )
        .bind(id)
        .bind(at_us)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }
}
