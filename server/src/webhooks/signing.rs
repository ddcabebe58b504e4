//! The Standard Webhooks wire format and retry policy, with no I/O.
//!
//! * Secret: at least 24 and at most 64 random bytes, shown as `whsec_` + base64
//!   (spec, "Signature scheme", symmetric column). We generate 32.
//! * Signed content: `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 keyed by
//!   the decoded secret; sent as `v1,<base64 signature>` in `webhook-signature` (a space
//!   separated list, to allow key rotation; we send one).
//! * `webhook-id` must not contain `.` (it is part of the signed content) and stays the
//!   same across retries; `webhook-timestamp` is the attempt's time in Unix seconds, so
//!   every retry is signed afresh.
//! * A 2xx answer is success; anything else, a timeout or a transport error is a
//!   failure; 410 Gone asks the sender to disable the endpoint; `Retry-After` (seconds)
//!   on 429 or 503 pushes the next attempt back (spec, "Delivery success and failure").

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{event_type, DeliveryId, EndpointId, PING_KIND};
use crate::ids::WorkOrderId;
use crate::UnixMillis;

/// The prefix that marks a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
const GENERATED_BYTES: usize = 32;

/// An endpoint's signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret starts with `whsec_`")]
    Prefix,
    #[error("a webhook secret is base64 after `whsec_`")]
    Base64,
    #[error("a webhook secret holds 24 to 64 bytes")]
    Length,
}

impl Secret {
    /// A fresh random secret from the operating system's generator.
    pub fn generate() -> Secret {
        let mut key = vec![0u8; GENERATED_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Secret { key }
    }

    /// Parses the `whsec_<base64>` form.
    pub fn parse(s: &str) -> Result<Secret, SecretError> {
        let b64 = s.strip_prefix(SECRET_PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Secret { key })
    }

    /// The `whsec_<base64>` form: what is stored and shown once to the admin.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value: `v1,<base64 HMAC-SHA256>`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(msg_id, timestamp, body).finalize().into_bytes()))
    }

    /// True when one of the space-separated `v1` signatures in `header` matches
    /// (constant-time comparison). Used by the tests and the documentation example;
    /// receivers implement their own.
    pub fn verify(&self, msg_id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .any(|sig| self.mac(msg_id, timestamp, body).verify_slice(&sig).is_ok())
    }
}

/// The `webhook-id` of a work-order event: the same for every endpoint and every retry,
/// so receivers can dedupe. No `.` (spec: the id is part of the signed content).
pub fn message_id(work_order_id: WorkOrderId, seq: i64) -> String {
    format!("msg_{}_{seq}", work_order_id.0.simple())
}

/// The `webhook-id` of a test ping.
pub fn ping_message_id(delivery: DeliveryId) -> String {
    format!("msg_ping_{}", delivery.0.simple())
}

/// A stored event, as the payload needs it.
pub struct EventFacts<'a> {
    pub work_order_id: WorkOrderId,
    pub seq: i64,
    pub kind: &'a str,
    pub actor: &'a str,
    pub occurred_at: UnixMillis,
    /// The stored event payload (JSON text with its `kind` tag).
    pub payload: &'a str,
}

/// The body of an event delivery (minified JSON):
/// `{"type":"work_order.<kind>","timestamp":…,"data":{"work_order_id","seq","actor","occurred_at","event"}}`.
/// Built from the stored event alone, so every retry sends the same bytes.
pub fn event_body(e: &EventFacts<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let event: Value = serde_json::from_str(e.payload)?;
    serde_json::to_vec(&json!({
        "type": event_type(e.kind),
        "timestamp": crate::rfc3339(e.occurred_at),
        "data": {
            "work_order_id": e.work_order_id,
            "seq": e.seq,
            "actor": e.actor,
            "occurred_at": crate::rfc3339(e.occurred_at),
            "event": event,
        }
    }))
}

/// The body of a test ping.
pub fn ping_body(endpoint: EndpointId, delivery: DeliveryId, created_at: UnixMillis) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": event_type(PING_KIND),
        "timestamp": crate::rfc3339(created_at),
        "data": { "endpoint_id": endpoint, "delivery_id": delivery }
    }))
    .expect("a JSON literal serializes")
}

/// What one attempt came back with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered with this status (and `Retry-After`, if any, as sent).
    Answered { status: u16, retry_after: Option<String> },
    /// No answer: connection refused, TLS failure, timeout, reset...
    Failed(String),
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this instant.
    Retry { at: UnixMillis },
    /// Out of attempts.
    Failed,
    /// 410 Gone: fail it and deactivate the endpoint.
    Gone,
}

/// Longest `Retry-After` honoured: one day.
const MAX_RETRY_AFTER_MS: u64 = 24 * 3_600_000;

/// Delay before the next attempt after `attempts` (>= 1) have failed: the schedule's
/// entry for it (the last entry repeats) plus up to 10 % jitter (`jitter` in 0..1).
pub fn backoff_ms(schedule: &[u64], attempts: u32, jitter: f64) -> u64 {
    let i = (attempts.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    let base = schedule.get(i).copied().unwrap_or(5_000);
    base + (base as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as u64
}

/// Decides the delivery's next state after attempt number `attempts` (counted, >= 1).
pub fn after_attempt(result: &Attempt, attempts: u32, max_attempts: u32, schedule: &[u64], now: UnixMillis, jitter: f64) -> Next {
    let mut delay = backoff_ms(schedule, attempts, jitter);
    match result {
        Attempt::Answered { status, .. } if (200..300).contains(status) => return Next::Delivered,
        Attempt::Answered { status: 410, .. } => return Next::Gone,
        Attempt::Answered { status: 429 | 503, retry_after: Some(ra) } => {
            if let Ok(secs) = ra.trim().parse::<u64>() {
                delay = delay.max(secs.saturating_mul(1000).min(MAX_RETRY_AFTER_MS));
            }
        }
        _ => {}
    }
    if attempts >= max_attempts {
        Next::Failed
    } else {
        Next::Retry { at: now.saturating_add(delay as i64) }
    }
}

/// Shortens an error message for the delivery log (at most `max` characters).
pub fn truncate_error(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_published_standard_webhooks_vector() {
        // The vector of the reference libraries (standard-webhooks, svix).
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = format!("v1,bm9wZQ== {sig}");
        assert!(secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#, &header));
        assert!(!secret.verify("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, br#"{"test": 2432232314}"#, &header));
    }

    #[test]
    fn generated_secrets_round_trip_and_never_show_in_debug() {
        let s = Secret::generate();
        let shown = s.expose();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(Secret::parse(&shown).unwrap(), s);
        assert_eq!(STANDARD.decode(&shown[6..]).unwrap().len(), 32);
        assert!(!format!("{s:?}").contains(&shown[6..]));
        assert_ne!(Secret::generate(), s);
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SecretError::Length));
        assert_eq!(Secret::parse("whsec_***"), Err(SecretError::Base64));
    }

    #[test]
    fn message_ids_are_stable_and_free_of_full_stops() {
        let wo = WorkOrderId::new();
        assert_eq!(message_id(wo, 3), message_id(wo, 3));
        assert_ne!(message_id(wo, 3), message_id(wo, 4));
        assert!(!message_id(wo, 3).contains('.'));
        assert!(!ping_message_id(DeliveryId::new()).contains('.'));
    }

    #[test]
    fn the_event_body_wraps_the_stored_payload() {
        let wo = WorkOrderId::new();
        let body = event_body(&EventFacts {
            work_order_id: wo,
            seq: 2,
            kind: "note_added",
            actor: "system",
            occurred_at: 1_795_363_758_250,
            payload: r#"{"kind":"note_added","text":"hi"}"#,
        })
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "work_order.note_added");
        assert_eq!(v["timestamp"], "2026-11-22T16:09:18.250Z");
        assert_eq!(v["data"]["work_order_id"], wo.to_string());
        assert_eq!(v["data"]["seq"], 2);
        assert_eq!(v["data"]["event"]["text"], "hi");
        assert!(!String::from_utf8(body).unwrap().contains('\n'), "minified");
    }

    #[test]
    fn backoff_follows_the_schedule_and_repeats_its_last_step() {
        let s = [5_000, 30_000, 120_000];
        assert_eq!(backoff_ms(&s, 1, 0.0), 5_000);
        assert_eq!(backoff_ms(&s, 2, 0.0), 30_000);
        assert_eq!(backoff_ms(&s, 3, 0.0), 120_000);
        assert_eq!(backoff_ms(&s, 9, 0.0), 120_000);
        assert_eq!(backoff_ms(&s, 1, 1.0), 5_500, "at most 10 % jitter");
    }

    #[test]
    fn only_2xx_is_success_and_410_disables() {
        let s = [1_000];
        let ans = |status| Attempt::Answered { status, retry_after: None };
        assert_eq!(after_attempt(&ans(204), 1, 8, &s, 0, 0.0), Next::Delivered);
        assert_eq!(after_attempt(&ans(301), 1, 8, &s, 0, 0.0), Next::Retry { at: 1_000 }, "redirects are failures");
        assert_eq!(after_attempt(&ans(500), 8, 8, &s, 0, 0.0), Next::Failed);
        assert_eq!(after_attempt(&Attempt::Failed("refused".into()), 2, 8, &s, 10, 0.0), Next::Retry { at: 1_010 });
        assert_eq!(after_attempt(&ans(410), 1, 8, &s, 0, 0.0), Next::Gone);
        let busy = Attempt::Answered { status: 503, retry_after: Some("120".into()) };
        assert_eq!(after_attempt(&busy, 1, 8, &s, 0, 0.0), Next::Retry { at: 120_000 });
        let huge = Attempt::Answered { status: 429, retry_after: Some("99999999".into()) };
        assert_eq!(after_attempt(&huge, 1, 8, &s, 0, 0.0), Next::Retry { at: 24 * 3_600_000 });
    }
}
