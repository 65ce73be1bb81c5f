//! Events on MQTT: every new violation and every review decision, as the
//! JSON of [`Event`](crate::Event) (schema in the OpenAPI document under
//! `components.schemas.Event`), published with QoS 1 to a topic made from a
//! template such as `roadwarden/{camera}/violations`. The broker connection
//! reconnects on its own; events that arrive while it is down wait in the
//! client's queue (bounded).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, Packet, QoS};
use tokio::sync::broadcast;

use crate::Event;

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    /// `{camera}` is replaced by the camera id (with `/`, `+` and `#` made `_`).
    pub topic_template: String,
}

impl MqttConfig {
    pub fn new(host: impl Into<String>, port: u16) -> MqttConfig {
        MqttConfig {
            host: host.into(),
            port,
            client_id: format!("roadwarden-{}", std::process::id()),
            topic_template: "roadwarden/{camera}/violations".into(),
        }
    }

    /// The topic of a camera's events.
    pub fn topic(&self, camera: &str) -> String {
        let safe: String = camera
            .chars()
            .map(|c| {
                if matches!(c, '/' | '+' | '#') || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        self.topic_template.replace("{camera}", &safe)
    }
}

/// How long [`publish_events`] waits at its stop for the broker to acknowledge what it published.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes violation and review events from `events` until the channel closes or `stop`
/// resolves. At the stop it still publishes the events already sent to it, then waits (at most
/// [`FLUSH_TIMEOUT`]) until the broker has acknowledged every publish, and disconnects: a
/// shutdown right after the last violation is recorded loses none of them while the broker is up
/// (the unacknowledged count is logged when it is not). Threshold changes are not published.
pub async fn publish_events(
    config: MqttConfig,
    mut events: broadcast::Receiver<Event>,
    stop: impl Future<Output = ()>,
) {
    let mut opts = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let acked = Arc::new(AtomicU64::new(0));
    let driver = tokio::spawn({
        let acked = acked.clone();
        async move {
            let mut warned = false;
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        warned = false;
                    }
                    Ok(_) => warned = false,
                    Err(e) => {
                        if !warned {
                            tracing::warn!("MQTT broker: {e}; retrying");
                            warned = true;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    });
    let mut sent = 0u64;
    let mut stopping = false;
    let mut stop = std::pin::pin!(stop);
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
                () = &mut stop => {
                    stopping = true;
                    continue;
                }
            }
        };
        let event = match received {
            Ok(e) => e,
            Err(n) => {
                tracing::warn!("MQTT publisher fell behind; {n} events were not published");
                continue;
            }
        };
        let camera = match &event {
            Event::Violation { camera, .. } | Event::Review { camera, .. } => camera.clone(),
            Event::Threshold { .. } => continue,
        };
        let payload = match serde_json::to_vec(&event) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot serialize event: {e}");
                continue;
            }
        };
        match client
            .publish(config.topic(&camera), QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => sent += 1,
            Err(e) => tracing::warn!("MQTT publish failed: {e}"),
        }
    }
    let deadline = tokio::time::Instant::now() + FLUSH_TIMEOUT;
    while acked.load(Ordering::Relaxed) < sent && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let missing = sent.saturating_sub(acked.load(Ordering::Relaxed));
    if missing > 0 {
        tracing::warn!(
            "MQTT: {missing} of {sent} events not acknowledged by the broker within {FLUSH_TIMEOUT:?}; \
             they are in the store, not on the broker"
        );
    }
    let _ = client.disconnect().await;
    // Let the disconnect itself leave before the connection is dropped.
    tokio::time::sleep(Duration::from_millis(50)).await;
    driver.abort();
}
