//! Who is asking: the key a request presents, and whether its role allows the route.
//!
//! HTTP clients send `Authorization: Bearer KEY`. A browser's WebSocket cannot set headers,
//! so the handshake may carry the key as a subprotocol, `bearer.KEY`, beside `llm-loadtest`
//! (the one the server selects); query strings are not accepted, since they end up in logs.
//!
//! A server that never had a key runs open, which `serve` allows only on a loopback address.
//! Open, it still answers only requests whose `Host` is loopback: a web page the user visits
//! could otherwise reach it through DNS rebinding. Creating the first key closes it at once.
use axum::http::{HeaderMap, header};

use super::error::ApiError;
use super::keys::{Caller, Keys, Role};

/// The subprotocol a WebSocket client offers, and the server selects.
pub const WS_PROTOCOL: &str = "llm-loadtest";
const WS_KEY_PREFIX: &str = "bearer.";

/// The key a request presents, if any.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        });
    bearer.or_else(|| {
        headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|p| p.trim().strip_prefix(WS_KEY_PREFIX))
    })
}

fn loopback_host(headers: &HeaderMap) -> Result<(), ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    let local = name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        Ok(())
    } else {
        Err(ApiError::NotLocal(host.to_string()))
    }
}

/// The server's gate.
#[derive(Debug, Clone)]
pub struct Gate {
    keys: Keys,
    /// Whether the server may run without keys (it listens on loopback).
    open_allowed: bool,
}

impl Gate {
    pub fn new(keys: Keys, open_allowed: bool) -> Gate {
        Gate { keys, open_allowed }
    }

    /// Whether requests need a key now.
    pub fn closed(&self) -> bool {
        self.keys.required() || !self.open_allowed
    }

    /// The caller, if the request may do `what`, which needs `need`.
    pub fn check(
        &self,
        headers: &HeaderMap,
        need: Role,
        what: &'static str,
    ) -> Result<Caller, ApiError> {
        if !self.closed() {
            loopback_host(headers)?;
            return Ok(Caller {
                key_id: "local".into(),
                role: Role::Admin,
            });
        }
        let caller = presented(headers)
            .and_then(|k| self.keys.check(k))
            .ok_or(ApiError::Unauthorized)?;
        if caller.role < need {
            return Err(ApiError::forbidden(caller.role, need, what));
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn keys_come_from_the_bearer_header_or_the_websocket_subprotocol() {
        let h = headers(&[(header::AUTHORIZATION, "Bearer llt_abc")]);
        assert_eq!(presented(&h), Some("llt_abc"));
        let h = headers(&[(header::AUTHORIZATION, "bearer  llt_abc ")]);
        assert_eq!(presented(&h), Some("llt_abc"));
        let h = headers(&[(header::AUTHORIZATION, "Basic abc")]);
        assert_eq!(presented(&h), None);
        let h = headers(&[(
            header::SEC_WEBSOCKET_PROTOCOL,
            "llm-loadtest, bearer.llt_xyz",
        )]);
        assert_eq!(presented(&h), Some("llt_xyz"));
    }

    #[test]
    fn an_open_server_answers_only_loopback_hosts() {
        for ok in ["127.0.0.1:8080", "localhost", "[::1]:9", "LOCALHOST:1"] {
            assert!(
                loopback_host(&headers(&[(header::HOST, ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in ["evil.example:8080", "10.0.0.1", ""] {
            assert!(
                loopback_host(&headers(&[(header::HOST, bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn roles_gate_routes_and_the_first_key_closes_an_open_server() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(Keys::new(dir.path()).unwrap(), true);
        let local = headers(&[(header::HOST, "127.0.0.1:1")]);
        assert_eq!(
            gate.check(&local, Role::Admin, "x").unwrap().role,
            Role::Admin
        );
        let (key, _) = super::super::keys::create(dir.path(), "v", Role::Viewer).unwrap();
        assert!(matches!(
            gate.check(&local, Role::Viewer, "x"),
            Err(ApiError::Unauthorized)
        ));
        let bearer = format!("Bearer {key}");
        let auth = headers(&[(header::AUTHORIZATION, bearer.as_str())]);
        assert_eq!(
            gate.check(&auth, Role::Viewer, "x").unwrap().role,
            Role::Viewer
        );
        assert!(matches!(
            gate.check(&auth, Role::Runner, "start runs"),
            Err(ApiError::Forbidden { .. })
        ));
        let remote = Gate::new(
            Keys::new(tempfile::tempdir().unwrap().path()).unwrap(),
            false,
        );
        assert!(matches!(
            remote.check(&local, Role::Viewer, "x"),
            Err(ApiError::Unauthorized)
        ));
    }
}
