//! Prometheus metrics: request counts by method, route and status, and latency
//! histograms by method and route. Route labels are matched route templates (never raw
//! paths), so label cardinality is bounded by the route table.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram bucket upper bounds in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
}

impl Metrics {
    pub fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        let h = m.latency.entry((method.to_owned(), route.to_owned())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str("# HELP fixline_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE fixline_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(out, "fixline_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out.push_str("# HELP fixline_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE fixline_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.latency {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "fixline_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let labels = format!("method=\"{method}\",route=\"{route}\"");
            let _ = writeln!(out, "fixline_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "fixline_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "fixline_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out
    }
}
