//! What the API answers when it cannot do what was asked: a status code and a JSON body that
//! says why (`{"error": "invalid", "message": "...", "field": "...", "reason": "..."}`).
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::guard::Refusal;
use super::keys::Role;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("an API key is needed: send `Authorization: Bearer KEY`")]
    Unauthorized,
    #[error("this key is a {have}; {what} needs a {need} key")]
    Forbidden {
        have: &'static str,
        need: &'static str,
        what: &'static str,
    },
    #[error(
        "this server runs without API keys and so answers only requests addressed to \
         localhost (Host: {0})"
    )]
    NotLocal(String),
    #[error("{0}")]
    Invalid(Refusal),
    #[error("the body must be JSON (Content-Type: application/json)")]
    NotJson,
    #[error("the body must be a WebAssembly component (Content-Type: application/wasm)")]
    NotWasm,
    #[error("{0}")]
    BadRequest(String),
    #[error("no run `{0}`")]
    NotFound(String),
    /// Something other than a run is not there; the message names it.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// 422: `field` refused, and why.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        ApiError::Invalid(super::guard::refuse(field, reason))
    }

    pub fn forbidden(have: Role, need: Role, what: &'static str) -> ApiError {
        ApiError::Forbidden {
            have: have.name(),
            need: need.name(),
            what,
        }
    }

    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } | ApiError::NotLocal(_) => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::NotJson => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-json"),
            ApiError::NotWasm => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "not-wasm"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::NotFound(_)
            | ApiError::Missing(_)
            | ApiError::Store(StoreError::NotFound(_)) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::Store(StoreError::Ambiguous { .. }) => (StatusCode::BAD_REQUEST, "ambiguous"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Store(StoreError::Locked { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "store-busy")
            }
            ApiError::Store(_) | ApiError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

/// The body of every answer that is not a success.
#[derive(Debug, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// A stable kind: unauthorized, forbidden, invalid, not-json, not-wasm, bad-request,
    /// not-found,
    /// ambiguous, conflict, store-busy, internal.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The setting refused (invalid only), as named in the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why it was refused (invalid only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status();
        let (field, reason) = match &self {
            ApiError::Invalid(r) => (Some(r.field.clone()), Some(r.reason.clone())),
            _ => (None, None),
        };
        let body = ErrorBody {
            error: kind.to_string(),
            message: self.to_string(),
            field,
            reason,
        };
        if status.is_server_error() {
            tracing::warn!("{self}");
        }
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ApiError::Invalid(r)
    }
}
