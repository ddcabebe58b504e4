#![recursion_limit = "512"]
//! # fixline
//!
//! An AR remote-assist and diagnosis server for after-sales service of power tools and
//! machining equipment. This crate doc is the architecture overview; `docs/architecture.md`
//! expands on it and the README has the data-flow picture.
//!
//! ## Layers
//!
//! * [`config`] — one typed config tree: defaults < TOML file < `FIXLINE_*` env < CLI.
//! * [`app`] — the composition root: opens the store, builds the router, runs until a
//!   signal arrives and drains in-flight requests.
//! * [`http`] — REST routes per resource, the route table that declares the roles of every
//!   route, the OpenAPI document, metrics and probes.
//! * [`auth`] — users, roles, Argon2id password hashes, signed access tokens, refresh
//!   tokens, single-use invite links.
//! * [`work_orders`] — the work-order domain: lifecycle state machine (pure), SLA policy
//!   (pure), event log and evidence.
//! * [`customers`] — customers, sites, assets and product lines with their fault codes.
//! * [`webhooks`] — signed outgoing webhooks (Standard Webhooks) for work-order events:
//!   endpoints, a delivery log, and a background worker with retries.
//! * [`diagnosis`] — ONNX models (registry, workers), preprocessing, telemetry features,
//!   fusion, explanations.
//! * [`session`], [`signal`], [`media`] — the live session: queue and rooms (pure), the
//!   signaling WebSocket and its hub task, the SFU and the frame tap.
//! * [`guidance`] — the knowledge base (procedures, parts; versioned, searchable), step
//!   cards and annotations in a session, anchor tracking.
//! * [`dispatch`] — technicians, working hours, matching, parts and stock, and the
//!   escalation -> offer -> visit flow.
//! * [`webhooks`] — signed outgoing webhooks for work-order events.
//! * [`store`] — the database pool (SQLite or PostgreSQL through `sqlx::Any`) and the
//!   embedded migrations.
//!
//! ## Invariants
//!
//! * The work-order event log is append-only and is the source of truth: the
//!   `work_orders` row is a projection written in the same transaction as the event, and
//!   [`work_orders::replay`] rebuilds it from the events alone (tested).
//! * Every state change is committed before it is acknowledged to the client.
//! * Input from a client, a file or the network never panics the server: it becomes a
//!   domain type at the edge or an `application/problem+json` 4xx.
//! * Every HTTP route is declared once in [`http::routes::ROUTES`] with the roles allowed;
//!   the authorization middleware refuses any matched route that is not declared.
//!
//! ## Threading
//!
//! A multi-threaded tokio runtime serves HTTP. Password hashing (Argon2id, deliberately
//! slow) runs on the blocking pool so it never stalls the reactor.

pub mod app;
pub mod auth;
pub mod config;
pub mod customers;
pub mod demo;
pub mod diagnosis;
pub mod dispatch;
pub mod error;
pub mod guidance;
pub mod http;
pub mod ids;
pub mod media;
pub mod session;
pub mod signal;
pub mod store;
pub mod tls;
pub mod webhooks;
pub mod work_orders;

/// Milliseconds since the Unix epoch: the one timestamp representation in storage.
pub type UnixMillis = i64;

/// Current wall-clock time in Unix milliseconds.
pub fn now_millis() -> UnixMillis {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Formats Unix milliseconds as RFC 3339 in UTC with exactly three fraction digits
/// (`2026-11-22T16:14:59.250Z`): fixed width, so the strings sort like the instants.
pub fn rfc3339(ms: UnixMillis) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_a_fixed_width_and_parse_as_rfc3339() {
        assert_eq!(super::rfc3339(1_795_363_758_250), "2026-11-22T16:09:18.250Z");
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        let parsed = time::OffsetDateTime::parse(&super::rfc3339(1_795_363_758_250), &time::format_description::well_known::Rfc3339).unwrap();
        assert_eq!(parsed.unix_timestamp(), 1_795_363_758);
    }
}
