//! Extractors whose rejections are problem+json with a message that says what is wrong:
//! JSON bodies (content type, size, syntax, unknown fields, types), query strings,
//! path ids, and the authenticated principal.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::header;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Principal;
use crate::error::ApiError;

/// A JSON body parsed into `T` (request types deny unknown fields).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !(mime == "application/json" || mime.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the body as application/json (got `{}`)",
                if ct.is_empty() { "no content type" } else { ct }
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("the JSON body is larger than the server accepts".into())
            } else {
                ApiError::BadRequest(format!("could not read the body: {e}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the field that is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                if path == "." || path.is_empty() {
                    ApiError::Validation(inner.to_string())
                } else {
                    ApiError::Validation(format!("{path}: {inner}"))
                }
            }
            _ => ApiError::BadRequest(format!("malformed JSON: {inner}")),
        }
    })
}

/// A query string parsed into `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))
    }
}

/// Path parameters as strings; parse them with [`id`].
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::BadRequest(format!("bad path: {e}")))
    }
}

/// Parses a typed id from a path or body, naming what it was meant to be.
pub fn id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| ApiError::BadRequest(format!("`{}` is not a valid {what} id", truncate(raw, 64))))
}

/// Shortens client-supplied text quoted in an error message.
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("this route needs an access token".into()))
    }
}

/// Pagination parameters common to list endpoints.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Clamps a requested page size to `1..=max` (default 50).
pub fn page_size(requested: Option<u32>, max: u32) -> Result<u32, ApiError> {
    match requested {
        None => Ok(50.min(max)),
        Some(0) => Err(ApiError::BadRequest("limit must be at least 1".into())),
        Some(n) if n > max => Err(ApiError::BadRequest(format!("limit must be at most {max}"))),
        Some(n) => Ok(n),
    }
}

/// An opaque cursor: base64url of JSON.
pub fn encode_cursor<T: Serialize>(c: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).expect("cursors serialize"))
}

pub fn decode_cursor<T: DeserializeOwned>(s: &str) -> Result<T, ApiError> {
    let bad = || ApiError::BadRequest("the cursor is not one this server issued".into());
    if s.len() > 512 {
        return Err(bad());
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// A page of results.
#[derive(Serialize)]
pub struct Page<T: Serialize> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Trims and bounds a required text field.
pub fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::Validation(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(ApiError::Validation(format!("{field} must be at most {max} characters")));
    }
    Ok(v.to_owned())
}

/// Bounds an optional text field; empty becomes None.
pub fn opt_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(Some),
    }
}
