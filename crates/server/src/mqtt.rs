//! Events on MQTT: every new violation and every review decision, as the
//! JSON of [`Event`](crate::Event) (schema in the OpenAPI document under
//! `components.schemas.Event`), published with QoS 1 to a topic made from a
//! template such as `roadwarden/{camera}/violations`. The broker connection
//! reconnects on its own; events that arrive while it is down wait in the
//! client's queue (bounded).

use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
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

/// Publishes violation and review events from `events` until the channel
/// closes. Threshold changes are not published.
pub async fn publish_events(config: MqttConfig, mut events: broadcast::Receiver<Event>) {
    let mut opts = MqttOptions::new(config.client_id.clone(), config.host.clone(), config.port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    let driver = tokio::spawn(async move {
        let mut warned = false;
        loop {
            match eventloop.poll().await {
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
    });
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("MQTT publisher fell behind; {n} events were not published");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
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
        if let Err(e) = client
            .publish(config.topic(&camera), QoS::AtLeastOnce, false, payload)
            .await
        {
            tracing::warn!("MQTT publish failed: {e}");
        }
    }
    let _ = client.disconnect().await;
    driver.abort();
}
