//! Several `serve` nodes on one PostgreSQL store share a site's cameras through leases (the SQL is the
//! store's `leases`): every [`LEASE_EVERY`] a node says it is alive, renews the leases it holds, stops
//! the cameras whose lease it lost or could not renew for [`FENCE_AFTER`] (before the lease can expire
//! and be taken: [`LEASE_TTL`]), gives up the cameras beyond its fair share (the site's cameras over the
//! live nodes, rounded up) and takes free or expired leases up to that share. A dead node's cameras are
//! taken within `LEASE_TTL + LEASE_EVERY` of its last renewal. PostgreSQL decides every race; there is
//! no other coordination. On SQLite one node owns every camera: nothing is leased.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use roadwarden_rules::SiteConfig;
use roadwarden_store::{NodeId, Store};

/// How long a taken or renewed lease lasts.
pub const LEASE_TTL: Duration = Duration::from_secs(8);
/// How often a node renews its leases and looks for cameras to take.
pub const LEASE_EVERY: Duration = Duration::from_secs(2);
/// A camera whose lease was last renewed this long ago is stopped, [`LEASE_TTL`] - `FENCE_AFTER` before
/// another node may take it.
pub const FENCE_AFTER: Duration = Duration::from_secs(5);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A node's fair share: `cameras` over `live` nodes, rounded up.
pub fn fair_share(cameras: usize, live: usize) -> usize {
    cameras.div_ceil(live.max(1))
}

/// What one lease round changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Round {
    /// Cameras this node holds after the round: the ones to run.
    pub run: BTreeSet<String>,
    /// Newly taken.
    pub taken: Vec<String>,
    /// Lost (another node has them, or they could not be renewed in time): stop them.
    pub lost: Vec<String>,
    /// To give up once stopped (beyond the fair share, or gone from the site file).
    pub release: Vec<String>,
    /// Live nodes seen, and the share.
    pub live: usize,
    pub share: usize,
}

/// This node's leases.
pub struct Leasing {
    store: Store,
    node: NodeId,
    /// Held cameras, with when their lease was last taken or renewed (when the statement was sent).
    held: BTreeMap<String, Instant>,
}

impl Leasing {
    /// Says `node` is alive (so nodes starting together see each other before their first round).
    pub async fn join(store: Store, node: NodeId) -> Leasing {
        if let Err(e) = store.node_seen(&node, now_us()).await {
            tracing::warn!(node = %node, "cannot register the node: {e}");
        }
        Leasing {
            store,
            node,
            held: BTreeMap::new(),
        }
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// One round over `site`'s cameras (see the module).
    pub async fn round(&mut self, site: &SiteConfig) -> Round {
        let sent = Instant::now();
        let now = now_us();
        let (ttl, store, node) = (micros(LEASE_TTL), &self.store, &self.node);
        let mut round = Round::default();
        if let Err(e) = store.node_seen(node, now).await {
            tracing::warn!("lease round: cannot say node {node} is alive: {e}");
        }
        let renewed = match store.renew_leases(node, now, ttl).await {
            Ok(still) => {
                let still: BTreeSet<String> = still.into_iter().collect();
                for cam in self.held.keys().filter(|c| !still.contains(*c)) {
                    round.lost.push(cam.clone());
                }
                self.held.retain(|c, _| still.contains(c));
                // Also leases this node id holds from before a restart: renewed, so its own.
                for cam in still {
                    self.held.insert(cam, sent);
                }
                true
            }
            Err(e) => {
                tracing::warn!("lease round: cannot renew the leases of node {node}: {e}");
                false
            }
        };
        // Fencing: stop what could not be renewed in time, before another node may take it.
        let stale: Vec<String> = self
            .held
            .iter()
            .filter(|(_, at)| at.elapsed() >= FENCE_AFTER)
            .map(|(c, _)| c.clone())
            .collect();
        for cam in stale {
            self.held.remove(&cam);
            round.lost.push(cam);
        }
        let ids: Vec<String> = site.cameras.iter().map(|c| c.id.to_string()).collect();
        round.live = match store.live_nodes(now - ttl).await {
            Ok(n) => n.len().max(1),
            Err(_) => 1,
        };
        round.share = fair_share(ids.len(), round.live);
        // Gone from the site file, then the ones beyond the share (the last by id).
        let gone: Vec<String> = self
            .held
            .keys()
            .filter(|c| !ids.contains(c))
            .cloned()
            .collect();
        let over = self
            .held
            .len()
            .saturating_sub(gone.len())
            .saturating_sub(round.share);
        let extra: Vec<String> = self
            .held
            .keys()
            .filter(|c| ids.contains(c))
            .rev()
            .take(over)
            .cloned()
            .collect();
        for cam in gone.into_iter().chain(extra) {
            self.held.remove(&cam);
            round.release.push(cam);
        }
        if renewed {
            for cam in &ids {
                if self.held.len() >= round.share {
                    break;
                }
                if self.held.contains_key(cam) || round.release.contains(cam) {
                    continue;
                }
                match store.take_lease(cam, node, now, ttl).await {
                    Ok(Some(lease)) => {
                        tracing::info!(camera = %cam, node = %node, epoch = lease.epoch, "lease taken");
                        self.held.insert(cam.clone(), sent);
                        round.taken.push(cam.clone());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(camera = %cam, "cannot take the lease: {e}");
                        break;
                    }
                }
            }
        }
        for cam in &round.lost {
            tracing::warn!(camera = %cam, node = %node, "lease lost: the camera stops here");
        }
        round.run = self.held.keys().cloned().collect();
        round
    }

    /// Gives up leases of cameras that have stopped.
    pub async fn release(&self, cameras: &[String]) {
        for cam in cameras {
            match self.store.release_lease(cam, &self.node).await {
                Ok(_) => tracing::info!(camera = %cam, node = %self.node, "lease released"),
                Err(e) => {
                    tracing::warn!(camera = %cam, "cannot release the lease (it expires): {e}")
                }
            }
        }
    }

    /// A clean stop: every lease of this node released, the node no longer live.
    pub async fn leave(self) {
        if let Err(e) = self.store.node_gone(&self.node).await {
            tracing::warn!(node = %self.node, "cannot release the node's leases (they expire): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_cameras_spread_over_the_live_nodes() {
        assert_eq!(fair_share(6, 3), 2);
        assert_eq!(fair_share(6, 2), 3);
        assert_eq!(fair_share(7, 3), 3);
        assert_eq!(fair_share(6, 0), 6);
        assert_eq!(fair_share(0, 2), 0);
    }

    #[test]
    fn a_lease_is_fenced_before_it_can_be_taken() {
        assert!(FENCE_AFTER + LEASE_EVERY <= LEASE_TTL);
        // A dead node's cameras are taken within 15 s even with a camera's start on top.
        assert!(LEASE_TTL + LEASE_EVERY <= Duration::from_secs(10));
    }
}
