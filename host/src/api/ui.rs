//! The web UI: three files embedded in the binary (no CDN, no build step: plain JavaScript
//! that `cargo build` needs nothing to include). They hold no data and are served without a
//! key (a browser cannot send one with a page load); everything they show comes from the
//! API, with the key the user enters.
//!
//! The content security policy allows only this server's own scripts, styles and sockets.
//! Inline styles are allowed because the reports shown in the page are `export`'s standalone
//! HTML files, which style themselves inline; they run in a sandboxed frame with no scripts.
use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; connect-src 'self'; frame-src blob:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

fn asset(mime: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            // Embedded in the binary: a new version is a new server, never a stale cache.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

/// `GET /ui/app.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /ui/app.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}
