//! Events on a webhook: every [`Event`] (violation, review, threshold) is
//! POSTed as its JSON (schema: `docs/events.md`, and the OpenAPI document's
//! `components.schemas.Event`) to one configured `http://` URL, one event at
//! a time and in the order they happened.
//!
//! Each request carries `Content-Type: application/json`,
//! `X-Roadwarden-Event` (`violation`, `review`, `threshold`),
//! `X-Roadwarden-Delivery` (a UUID that stays the same across the retries of
//! one event, so a receiver can drop repeats) and, with a shared secret,
//! `X-Roadwarden-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! A request that fails (no connection, no answer within the timeout, a 5xx,
//! 408 or 429) is retried with exponential backoff up to a bounded number of
//! attempts; any other answer outside 2xx is final. An event whose attempts
//! all fail is logged and given up, and the next one is sent. While the
//! publisher waits, newer events queue in the service's broadcast channel
//! (1024 events); beyond that the oldest are lost and logged.
//!
//! Plain HTTP only (this build has no TLS client): reach an `https://`
//! receiver through a local TLS-originating proxy (stunnel, nginx, envoy)
//! listening on an `http://` address. The secret never enters a log line or
//! the `Debug` output.

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::broadcast;

use crate::Event;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-roadwarden-signature";
/// The per-event delivery id header.
pub const DELIVERY_HEADER: &str = "x-roadwarden-delivery";
/// The event-name header.
pub const EVENT_HEADER: &str = "x-roadwarden-event";

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL `{url}`: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "webhook URL `{url}`: https is not supported by this build; point --webhook at an http:// \
         TLS-originating proxy (stunnel, nginx) that forwards to the https receiver"
    )]
    Https { url: String },
    #[error("webhook secret file {}: {reason}", path.display())]
    SecretFile {
        path: std::path::PathBuf,
        reason: String,
    },
}

/// Where and how to deliver.
#[derive(Clone)]
pub struct WebhookConfig {
    url: reqwest::Url,
    secret: Option<Vec<u8>>,
    /// The limit on one request, connection included.
    pub timeout: Duration,
    /// Attempts per event, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url_for_logs())
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

impl WebhookConfig {
    /// An `http://` URL, no secret, 10 s per request, 6 attempts, backoff 0.5 s doubling up to 30 s.
    pub fn new(url: &str) -> Result<WebhookConfig, WebhookError> {
        let bad = |reason: &str| WebhookError::BadUrl {
            url: roadwarden_store::redact_url(url),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            "https" => {
                return Err(WebhookError::Https {
                    url: roadwarden_store::redact_url(url),
                });
            }
            other => return Err(bad(&format!("scheme `{other}` is not http"))),
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        Ok(WebhookConfig {
            url: parsed,
            secret: None,
            timeout: Duration::from_secs(10),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        })
    }

    /// Signs every body with this shared secret.
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> WebhookConfig {
        self.secret = Some(secret.into());
        self
    }

    /// Reads the shared secret from a file (trailing white space, such as
    /// the final newline, is not part of it).
    pub fn with_secret_file(self, path: &Path) -> Result<WebhookConfig, WebhookError> {
        let err = |reason: String| WebhookError::SecretFile {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        if end == 0 {
            return Err(err("the file is empty; put the shared secret in it".into()));
        }
        Ok(self.with_secret(bytes[..end].to_vec()))
    }

    /// The URL, with any password replaced by `***`.
    pub fn url_for_logs(&self) -> String {
        roadwarden_store::redact_url(self.url.as_str())
    }

    /// The wait before attempt `next` (2, 3, ...).
    fn backoff(&self, next: u32) -> Duration {
        let doublings = next.saturating_sub(2).min(20);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`, as sent in
/// `X-Roadwarden-Signature`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Violation { .. } => "violation",
        Event::Review { .. } => "review",
        Event::Threshold { .. } => "threshold",
    }
}

enum Attempt {
    Delivered,
    Retry(String),
    Final(String),
}

async fn attempt(
    client: &reqwest::Client,
    cfg: &WebhookConfig,
    name: &str,
    delivery: &str,
    body: &[u8],
    sig: Option<&str>,
) -> Attempt {
    let mut rb = client
        .post(cfg.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_HEADER, name)
        .header(DELIVERY_HEADER, delivery)
        .body(body.to_vec());
    if let Some(s) = sig {
        rb = rb.header(SIGNATURE_HEADER, s);
    }
    match rb.send().await {
        Ok(r) => {
            let s = r.status();
            if s.is_success() {
                Attempt::Delivered
            } else if s.is_server_error() || s.as_u16() == 408 || s.as_u16() == 429 {
                Attempt::Retry(format!("answered {s}"))
            } else {
                Attempt::Final(format!("answered {s}"))
            }
        }
        Err(e) if e.is_timeout() => Attempt::Retry(format!("no answer within {:?}", cfg.timeout)),
        // reqwest's errors name the URL; strip it, it may hold credentials.
        Err(e) => Attempt::Retry(e.without_url().to_string()),
    }
}

/// Delivers one event; returns whether the receiver accepted it.
async fn deliver(client: &reqwest::Client, cfg: &WebhookConfig, event: &Event) -> bool {
    let body = match serde_json::to_vec(event) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("cannot serialize event: {e}");
            return false;
        }
    };
    let name = event_name(event);
    let delivery = uuid::Uuid::new_v4().to_string();
    let sig = cfg.secret.as_deref().map(|s| signature(s, &body));
    let attempts = cfg.max_attempts.max(1);
    for n in 1..=attempts {
        if n > 1 {
            tokio::time::sleep(cfg.backoff(n)).await;
        }
        match attempt(client, cfg, name, &delivery, &body, sig.as_deref()).await {
            Attempt::Delivered => return true,
            Attempt::Retry(why) if n < attempts => {
                tracing::debug!(
                    "webhook {}: {name} event {delivery}, attempt {n}/{attempts}: {why}; retrying",
                    cfg.url_for_logs()
                );
            }
            Attempt::Retry(why) | Attempt::Final(why) => {
                tracing::warn!(
                    "webhook {}: {name} event {delivery} given up after attempt {n}/{attempts}: {why}",
                    cfg.url_for_logs()
                );
                return false;
            }
        }
    }
    false
}

/// POSTs every event from `events` to the webhook until the channel closes.
pub async fn publish_events(cfg: WebhookConfig, mut events: broadcast::Receiver<Event>) {
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout)
        .connect_timeout(cfg.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("roadwarden/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("webhook disabled: cannot build the HTTP client: {e}");
            return;
        }
    };
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    "webhook {} fell behind; {n} events were not delivered",
                    cfg.url_for_logs()
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        deliver(&client, &cfg, &event).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_secrets_stay_out_of_debug() {
        assert!(matches!(
            WebhookConfig::new("https://hooks.example/x"),
            Err(WebhookError::Https { .. })
        ));
        assert!(WebhookConfig::new("ftp://x/").is_err());
        assert!(WebhookConfig::new("not a url").is_err());
        let c = WebhookConfig::new("http://u:pw@127.0.0.1:9/h")
            .expect("http url")
            .with_secret("s3cr3t-value");
        let d = format!("{c:?}");
        assert!(!d.contains("s3cr3t-value") && !d.contains(":pw@"), "{d}");
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut c = WebhookConfig::new("http://127.0.0.1:9/").expect("url");
        c.initial_backoff = Duration::from_millis(100);
        c.max_backoff = Duration::from_millis(350);
        let waits: Vec<u128> = (2..=6).map(|n| c.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350, 350]);
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
