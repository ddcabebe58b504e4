//! Outgoing webhooks: every work-order event is POSTed to every active endpoint whose
//! filter matches its kind, signed per the Standard Webhooks specification
//! (<https://www.standardwebhooks.com/>, version 1.0.0), with retries and a delivery log.
//!
//! * [`signing`] — secrets (`whsec_<base64>`), the `v1` HMAC-SHA256 signature, message
//!   ids, payloads, the retry schedule and what a response status means (pure).
//! * [`repo`] — endpoints and deliveries in the database.
//! * [`sender`] — one signed POST over HTTP/1.1, plain or TLS (rustls), with a timeout.
//! * [`worker`] — the background task: turns new events into pending deliveries and
//!   sends the due ones with bounded concurrency and exponential backoff.
//!
//! ## Guarantees
//!
//! * At most one delivery row per (endpoint, event): `UNIQUE (endpoint_id,
//!   work_order_id, seq)`, so re-scanning events never duplicates a delivery. Delivery
//!   itself is at least once (a receiver that times out after processing sees a
//!   retry): receivers dedupe on `webhook-id`, which is stable per (work order, seq).
//! * Per endpoint and work order, events are sent in `seq` order: a delivery waits
//!   while an earlier one of the same work order to the same endpoint is pending.
//! * An endpoint receives the events that occurred while it was active (from
//!   `active_since`); history before it was created is never replayed.
//!
//! ## What this module must not do
//!
//! It never writes work-order events (it only reads the log), never logs a secret or an
//! endpoint URL (URLs often carry tokens; logs name the endpoint id), and never follows
//! redirects (Standard Webhooks: a 3xx is a failure; update the URL instead).

pub mod repo;
pub mod sender;
pub mod signing;
pub mod worker;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `[webhooks]` config section.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Run the delivery worker. Endpoints can be managed either way.
    pub enabled: bool,
    /// How often new events are scanned and due deliveries sent, in milliseconds.
    pub poll_interval_ms: u64,
    /// Longest one attempt may take (connect, TLS, request, response head), in seconds.
    pub timeout_secs: u64,
    /// Attempts per delivery before it is marked `failed`.
    pub max_attempts: u32,
    /// Requests in flight at once, over all endpoints.
    pub max_concurrency: usize,
    /// Delay before retry n (n = 1, 2, ...) in milliseconds; the last entry repeats.
    /// Up to 10 % random jitter is added to each.
    pub retry_backoff_ms: Vec<u64>,
    /// PEM file of the certificate authorities trusted for `https` endpoints; empty:
    /// the system bundle (`SSL_CERT_FILE`, else the usual Debian / Red Hat / Alpine paths).
    pub ca_file: PathBuf,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            poll_interval_ms: 1000,
            timeout_secs: 10,
            max_attempts: 8,
            max_concurrency: 4,
            // 5 s, 30 s, 2 min, 10 min, 1 h, 4 h, 12 h: eight attempts span about 17 h.
            retry_backoff_ms: vec![5_000, 30_000, 120_000, 600_000, 3_600_000, 14_400_000, 43_200_000],
            ca_file: PathBuf::new(),
        }
    }
}

impl WebhookConfig {
    /// Checks the section; the error names the key (without the `webhooks.` prefix).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(("poll_interval_ms", "must be 10-60000".into()));
        }
        if !(1..=300).contains(&self.timeout_secs) {
            return Err(("timeout_secs", "must be 1-300".into()));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(("max_attempts", "must be 1-100".into()));
        }
        if !(1..=64).contains(&self.max_concurrency) {
            return Err(("max_concurrency", "must be 1-64".into()));
        }
        if self.retry_backoff_ms.is_empty() || self.retry_backoff_ms.len() > 100 {
            return Err(("retry_backoff_ms", "needs 1-100 delays".into()));
        }
        if self.retry_backoff_ms.iter().any(|d| !(1..=7 * 24 * 3_600_000).contains(d)) {
            return Err(("retry_backoff_ms", "each delay must be 1 ms to 7 days".into()));
        }
        Ok(())
    }
}

/// A registered webhook endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointId(pub Uuid);

/// One delivery of one event (or ping) to one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryId(pub Uuid);

macro_rules! uuid_id {
    ($name:ident) => {
        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }
        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}
uuid_id!(EndpointId);
uuid_id!(DeliveryId);

/// Every work-order event kind ([`crate::work_orders::events::Event::kind`]): what an
/// endpoint's filter may name. A unit test compares this list with the variants serde
/// knows, so a kind added to `Event` and not here fails `cargo test` (without breaking
/// anyone's build). Events of an unlisted kind are still delivered to unfiltered
/// endpoints.
pub const EVENT_KINDS: &[&str] = &[
    "created",
    "status_changed",
    "priority_changed",
    "note_added",
    "evidence_attached",
    "invite_created",
    "invite_redeemed",
    "diagnosis_added",
    "session_joined",
    "session_left",
    "session_ended",
    "procedure_started",
    "step_shown",
    "step_answered",
    "procedure_finished",
    "escalation_recorded",
    "parts_reserved",
    "parts_released",
    "parts_consumed",
    "technician_offered",
    "assignment_answered",
    "visit_progress",
    "visit_report",
    "sla_warning",
    "sla_breached",
    "survey_sent",
    "survey_answered",
    "follow_up_done",
];

/// The kind of a test delivery (`POST /webhooks/{id}/test`); sent whatever the filter.
pub const PING_KIND: &str = "ping";

/// The Standard Webhooks `type` of a delivery: `work_order.<kind>`, or `webhook.ping`.
pub fn event_type(kind: &str) -> String {
    if kind == PING_KIND {
        "webhook.ping".to_owned()
    } else {
        format!("work_order.{kind}")
    }
}

/// Longest endpoint URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest endpoint description accepted.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Most endpoints that may be registered at once.
pub const MAX_ENDPOINTS: i64 = 50;

/// An endpoint URL that passed [`EndpointUrl::parse`]: `http` or `https`, a host, no
/// credentials (user info would be sent in clear and logged by proxies: put tokens in
/// the path or query, or rely on the signature), no fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Parses a URL; the error says what is wrong (without echoing the URL).
    pub fn parse(raw: &str) -> Result<EndpointUrl, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > MAX_URL_CHARS {
            return Err(format!("must be at most {MAX_URL_CHARS} characters"));
        }
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("must not contain spaces or control characters".into());
        }
        if s.contains('#') {
            return Err("must not have a fragment (#...)".into());
        }
        let uri: axum::http::Uri = s.parse().map_err(|_| "is not a valid absolute URL".to_owned())?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            Some(_) => return Err("must use http or https".into()),
            None => return Err("must be absolute, starting with http:// or https://".into()),
        }
        let authority = uri.authority().ok_or("must name a host")?;
        if authority.as_str().contains('@') {
            return Err("must not contain credentials (user:password@); authenticate with the signature or a token in the path".into());
        }
        if authority.host().trim_matches(['[', ']']).is_empty() {
            return Err("must name a host".into());
        }
        if authority.port_u16() == Some(0) {
            return Err("must not use port 0".into());
        }
        Ok(EndpointUrl(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Parses an endpoint's event-kind filter: each entry a known kind, bare
/// (`status_changed`) or as its type (`work_order.status_changed`); duplicates
/// dropped; empty means every kind.
pub fn parse_kinds(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.len() > EVENT_KINDS.len() {
        return Err(format!("at most {} kinds", EVENT_KINDS.len()));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for k in raw {
        let bare = k.trim().strip_prefix("work_order.").unwrap_or(k.trim());
        let Some(known) = EVENT_KINDS.iter().find(|e| **e == bare) else {
            let shown: String = k.chars().take(64).collect();
            return Err(format!("`{shown}` is not an event kind; use one of: {}", EVENT_KINDS.join(", ")));
        };
        if !out.iter().any(|o| o == known) {
            out.push((*known).to_owned());
        }
    }
    Ok(out)
}

/// True when an endpoint with this filter receives events of `kind`.
pub fn filter_matches(kinds: &[String], kind: &str) -> bool {
    kinds.is_empty() || kinds.iter().any(|k| k == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work_orders::events::Event;

    /// The kinds serde knows for `Event`, read from its error for an unknown tag
    /// ("unknown variant `x`, expected one of `a`, `b`, ..."): the one list of variants
    /// that needs no hand-written match.
    fn serde_kinds() -> Vec<String> {
        let err = serde_json::from_str::<Event>(r#"{"kind":"__no_such_kind__"}"#).unwrap_err().to_string();
        let list = err.split("expected one of ").nth(1).unwrap_or_else(|| panic!("unexpected serde message: {err}"));
        let list = list.split(" at line").next().unwrap_or(list);
        list.split(", ").map(|k| k.trim_matches('`').to_owned()).collect()
    }

    #[test]
    fn every_event_kind_can_be_named_in_a_filter() {
        let mut known = serde_kinds();
        known.sort();
        let mut listed: Vec<String> = EVENT_KINDS.iter().map(|k| k.to_string()).collect();
        listed.sort();
        assert_eq!(listed, known, "EVENT_KINDS must list exactly the Event kinds");
        assert_eq!(Event::NoteAdded { text: "x".into() }.kind(), "note_added", "kind() is the serde tag");
        assert!(!EVENT_KINDS.contains(&PING_KIND));
    }

    #[test]
    fn event_types_are_full_stop_delimited() {
        assert_eq!(event_type("status_changed"), "work_order.status_changed");
        assert_eq!(event_type(PING_KIND), "webhook.ping");
    }

    #[test]
    fn the_default_config_is_valid_and_bad_values_name_their_key() {
        WebhookConfig::default().validate().unwrap();
        let c = WebhookConfig { retry_backoff_ms: vec![], ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "retry_backoff_ms");
        let c = WebhookConfig { max_concurrency: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().0, "max_concurrency");
    }

    #[test]
    fn endpoint_urls_are_http_or_https_with_a_host_and_no_credentials() {
        for ok in ["http://127.0.0.1:8080/hook", "https://crm.example.com/webhooks/fixline?token=abc", "https://[::1]:8443/x", "HTTPS://crm.example.com"] {
            assert!(EndpointUrl::parse(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("ftp://example.com/x", "http or https"),
            ("/relative/path", "absolute"),
            ("https://user:pw@crm.example.com/x", "credentials"),
            ("https://crm.example.com/x#frag", "fragment"),
            ("https://crm.example.com/a b", "spaces"),
            ("http://example.com:0/", "port 0"),
        ] {
            let e = EndpointUrl::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(EndpointUrl::parse(&long).unwrap_err().contains("at most"));
    }

    #[test]
    fn kind_filters_accept_bare_kinds_and_types_and_refuse_unknown_ones() {
        let k = parse_kinds(&["status_changed".into(), "work_order.note_added".into(), "status_changed".into()]).unwrap();
        assert_eq!(k, vec!["status_changed", "note_added"]);
        assert!(parse_kinds(&["exploded".into()]).unwrap_err().contains("`exploded`"));
        assert!(parse_kinds(&["ping".into()]).is_err());
        assert!(filter_matches(&[], "created"));
        assert!(filter_matches(&k, "note_added"));
        assert!(!filter_matches(&k, "created"));
    }
}
