//! Violation events on NATS JetStream, besides MQTT: each new violation is published to the site's
//! stream (`[nats]` in the site file) on `<subject_prefix>.<camera>`, with a `Nats-Msg-Id` header = the
//! violation id so that JetStream drops a second copy, and the publisher waits for JetStream's ack
//! before it notes the event as published in the store. A sweep every [`SWEEP_EVERY`] publishes the
//! violations recorded within the last [`SWEEP_WINDOW`] that no node's ack covers yet (a node killed
//! between its commit and the ack, or NATS away for a while), so every violation's event reaches the
//! stream, once. As with MQTT, a failure is logged and publishing goes on: the store has the violation.

use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, stream};
use chrono::{DateTime, Utc};
use roadwarden_rules::NatsConfig;
use roadwarden_store::{Store, ViolationEvent};
use tokio::sync::broadcast;

use crate::Event;

/// How long one publish may wait for JetStream's ack.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the sweep looks for violations whose event no ack covers.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// A violation is swept when it was recorded at least this long ago (its own node publishes it first).
pub const SWEEP_AFTER: Duration = Duration::from_secs(5);
/// How far back the sweep looks.
pub const SWEEP_WINDOW: Duration = Duration::from_secs(3600);
/// How long JetStream remembers a message id (the stream's duplicate window, when it creates it).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

/// The stream the publisher creates when it is missing.
pub fn stream_config(cfg: &NatsConfig) -> stream::Config {
    stream::Config {
        name: cfg.stream.clone(),
        subjects: vec![format!("{}.>", cfg.subject_prefix)],
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

fn micros() -> i64 {
    Utc::now().timestamp_micros()
}

struct Publisher {
    cfg: NatsConfig,
    js: jetstream::Context,
    store: Store,
    /// Whether the stream is known to exist.
    stream_ready: bool,
    warned: bool,
}

impl Publisher {
    async fn ensure_stream(&mut self) -> Result<(), String> {
        if self.stream_ready {
            return Ok(());
        }
        self.js
            .get_or_create_stream(stream_config(&self.cfg))
            .await
            .map_err(|e| format!("stream {}: {e}", self.cfg.stream))?;
        self.stream_ready = true;
        Ok(())
    }

    /// Publishes one violation's event and waits for its ack; notes it in the store.
    async fn publish(&mut self, v: &ViolationEvent) -> Result<(), String> {
        self.ensure_stream().await?;
        let event = Event::Violation {
            id: v.id.clone(),
            camera: v.camera.clone(),
            kind: v.kind.clone(),
            occurred_at: DateTime::<Utc>::from_timestamp_micros(v.occurred_at_us)
                .unwrap_or_default(),
            confidence: v.confidence,
        };
        let payload = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, v.id.as_str());
        let subject = self.cfg.subject(&v.camera);
        let ack = tokio::time::timeout(ACK_TIMEOUT, async {
            self.js
                .publish_with_headers(subject, headers, payload.into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|_| format!("no ack within {ACK_TIMEOUT:?}"))??;
        if ack.stream != self.cfg.stream {
            return Err(format!(
                "the subject went to stream {} instead of {}",
                ack.stream, self.cfg.stream
            ));
        }
        if let Err(e) = self.store.nats_published(&v.id, micros()).await {
            tracing::debug!(violation = %v.id, "cannot note the NATS ack in the store: {e}");
        }
        Ok(())
    }

    async fn publish_logged(&mut self, v: &ViolationEvent) -> bool {
        match self.publish(v).await {
            Ok(()) => {
                self.warned = false;
                true
            }
            Err(e) => {
                if !self.warned {
                    tracing::warn!(
                        "NATS {}: violation {} not published ({e}); retried by the sweep every {SWEEP_EVERY:?}",
                        self.cfg.url,
                        v.id
                    );
                    self.warned = true;
                }
                self.stream_ready = false;
                false
            }
        }
    }

    /// Publishes what no ack covers yet, recorded within the window and at least SWEEP_AFTER ago.
    async fn sweep(&mut self, last: bool) {
        let now = micros();
        let after = now - SWEEP_WINDOW.as_micros() as i64;
        // The last sweep, at stop, takes everything: no later round of this node would.
        let before = if last {
            now + 1
        } else {
            now - SWEEP_AFTER.as_micros() as i64
        };
        let pending = match self.store.nats_unpublished(after, before, 200).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("NATS sweep: cannot read the store: {e}");
                return;
            }
        };
        for v in &pending {
            if !self.publish_logged(v).await {
                return;
            }
        }
        if !pending.is_empty() {
            tracing::info!(
                "NATS sweep: published {} violation event(s) no ack covered",
                pending.len()
            );
        }
    }
}

/// Publishes the violations of `events` (and the sweep's) to `cfg`'s stream until `stop`, then the
/// events already queued (each within [`ACK_TIMEOUT`]) and a last sweep of whatever no ack covers.
pub async fn publish_events(
    cfg: NatsConfig,
    store: Store,
    mut events: broadcast::Receiver<Event>,
    stop: impl Future<Output = ()>,
) {
    let client = match async_nats::ConnectOptions::new()
        .name(format!("roadwarden-{}", std::process::id()))
        .retry_on_initial_connect()
        .connect(cfg.url.as_str())
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "NATS {}: {e}; violations are not published there (fix [nats] url)",
                cfg.url
            );
            return;
        }
    };
    let mut p = Publisher {
        js: jetstream::new(client.clone()),
        cfg,
        store,
        stream_ready: false,
        warned: false,
    };
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = std::pin::pin!(stop);
    let mut stopping = false;
    loop {
        let received = if stopping {
            match events.try_recv() {
                Ok(e) => Ok(e),
                Err(broadcast::error::TryRecvError::Lagged(n)) => Err(n),
                Err(_) => break,
            }
        } else {
            tokio::select! {
                r = events.recv() => match r {
                    Ok(e) => Ok(e),
                    Err(broadcast::error::RecvError::Lagged(n)) => Err(n),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sweep.tick() => {
                    p.sweep(false).await;
                    continue;
                }
                () = &mut stop => {
                    stopping = true;
                    continue;
                }
            }
        };
        let event = match received {
            Ok(Event::Violation {
                id,
                camera,
                kind,
                occurred_at,
                confidence,
            }) => ViolationEvent {
                id,
                camera,
                kind,
                occurred_at_us: occurred_at.timestamp_micros(),
                confidence,
            },
            Ok(_) => continue,
            Err(n) => {
                tracing::warn!(
                    "NATS publisher fell behind; {n} events wait for the sweep (every {SWEEP_EVERY:?})"
                );
                continue;
            }
        };
        p.publish_logged(&event).await;
    }
    p.sweep(true).await;
    let _ = client.flush().await;
}
