//! What the API answers when it cannot do what was asked: a status code and a JSON body that
//! says why (`{"error": "invalid", "message": "...", "field": "...", "reason": "..."}`).
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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
    #[error("{0}")]
    BadRequest(String),
    #[error("no run `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
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
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::NotFound(_) | ApiError::Store(StoreError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "not-found")
            }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status();
        let mut body = json!({ "error": kind, "message": self.to_string() });
        if let ApiError::Invalid(r) = &self {
            body["field"] = json!(r.field);
            body["reason"] = json!(r.reason);
        }
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
