//! Errors of the API and the status of each.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docchat_service::admission::Busy;
use docchat_service::disk::DiskTrouble;
use serde_json::json;

/// Errors of the API, each with its status.
#[derive(Debug)]
pub enum ApiError {
    /// The request is wrong; the message says how.
    BadRequest(String),
    /// No such thing.
    NotFound(String),
    /// Too many requests wait for the model.
    Busy(Busy),
    /// The upload is larger than allowed.
    TooLarge(String),
    /// The upload is of a type docchat does not read, or not what it claims.
    Unsupported(String),
    /// Too many requests of this kind run at once; the message says which.
    Crowded(String),
    /// The request's key may not do or see that; the message says what.
    Forbidden(String),
    /// This server does not do that (a reader of a shared store); the message says
    /// where it is done.
    ReadOnly(String),
    /// Something docchat depends on is down (the remote generator, the shared
    /// store); the message says what.
    Unavailable(String),
    /// docchat failed; details go to the log, not to the client.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match unavailable(&e) {
            Some(why) => Self::Unavailable(why),
            None => Self::Internal(e),
        }
    }
}

impl From<docchat_store::Error> for ApiError {
    fn from(e: docchat_store::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

/// Whether a storage error's text is about the network (an object store that does
/// not answer), not about the data.
fn is_network(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connection refused",
        "error sending request",
        "tcp connect",
        "dns error",
        "connection reset",
        "timed out",
        "broken pipe",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// What is down, when `e` comes from a remote generator or a shared store that
/// cannot be reached.
pub fn unavailable(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(down) = cause.downcast_ref::<docchat_service::remote::GeneratorDown>() {
            return Some(down.to_string());
        }
        if let Some(docchat_core::Error::Unavailable(why)) = cause.downcast_ref() {
            return Some(why.clone());
        }
        match cause.downcast_ref::<docchat_store::Error>() {
            Some(docchat_store::Error::Location { .. }) => return Some(cause.to_string()),
            Some(docchat_store::Error::Lance(l)) if is_network(&l.to_string()) => {
                return Some(format!("the store cannot be reached: {l}"));
            }
            _ => {}
        }
    }
    None
}

impl From<Busy> for ApiError {
    fn from(b: Busy) -> Self {
        Self::Busy(b)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Self::Busy(b) => {
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": { "message": "docchat is busy: too many questions are waiting for the model; retry later" } })),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&b.retry_after_s.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            Self::Crowded(m) => {
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": { "message": m } })),
                )
                    .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return res;
            }
            Self::Unavailable(m) => {
                tracing::warn!(reason = %m, "unavailable");
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": { "message": m } })),
                )
                    .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return res;
            }
            Self::ReadOnly(m) => (StatusCode::CONFLICT, m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, m),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m),
            Self::Unsupported(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                if let Some(trouble) = DiskTrouble::of(&e) {
                    // A full, read-only or forbidden data folder: the user can fix that.
                    (
                        StatusCode::INSUFFICIENT_STORAGE,
                        trouble.advice().to_string(),
                    )
                } else {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal error; see the server log".to_string(),
                    )
                }
            }
        };
        (status, Json(json!({ "error": { "message": message } }))).into_response()
    }
}
