//! The web pages (plain ES modules, no build step), embedded in the binary so a
//! deployment is one file: the expert console at `/` and `/console`, the customer page
//! at `/join` (invite links point there), the dispatcher board at `/dispatch`, the
//! technician's page at `/technician`, the service dashboard at `/admin`, assets under `/web/`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::AppState;

const FILES: &[(&str, &str, &str)] = &[
    ("console.html", "text/html; charset=utf-8", include_str!("../../../web/console.html")),
    ("join.html", "text/html; charset=utf-8", include_str!("../../../web/join.html")),
    ("app.css", "text/css; charset=utf-8", include_str!("../../../web/app.css")),
    ("js/i18n.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/i18n.js")),
    ("js/signal.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/signal.js")),
    ("js/customer.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/customer.js")),
    ("js/console.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/console.js")),
    ("js/ui.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/ui.js")),
    ("js/overlay.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/overlay.js")),
    ("survey.html", "text/html; charset=utf-8", include_str!("../../../web/survey.html")),
    ("js/survey.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/survey.js")),
    ("dispatch.html", "text/html; charset=utf-8", include_str!("../../../web/dispatch.html")),
    ("technician.html", "text/html; charset=utf-8", include_str!("../../../web/technician.html")),
    ("admin.html", "text/html; charset=utf-8", include_str!("../../../web/admin.html")),
    ("js/staff.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/staff.js")),
    ("js/dispatch.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/dispatch.js")),
    ("js/technician.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/technician.js")),
    ("js/dashboard.js", "text/javascript; charset=utf-8", include_str!("../../../web/js/dashboard.js")),
];

/// Pages may talk to this server only (API, signaling) and show media and images.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:; img-src 'self' data: blob:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { file("console.html") }))
        .route("/console", get(|| async { file("console.html") }))
        .route("/join", get(|| async { file("join.html") }))
        .route("/survey", get(|| async { file("survey.html") }))
        .route("/dispatch", get(|| async { file("dispatch.html") }))
        .route("/technician", get(|| async { file("technician.html") }))
        .route("/admin", get(|| async { file("admin.html") }))
        .route("/web/{*path}", get(|Path(path): Path<String>| async move { file(&path) }))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
}

fn file(name: &str) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => {
            let mut r = (*body).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, crate::error::ApiError::not_found("page")).into_response(),
    }
}
