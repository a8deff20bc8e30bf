//! The HTTP side of a run: one pooled hyper client, reused connections.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;

use super::tls::{self, TlsError, TlsOptions};
use crate::plugin::HttpRequest;

/// The client for the requests around a run (HTTP or HTTPS).
pub type HyperClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("server URL `{url}` is not usable: {reason}")]
    Url { url: String, reason: String },
    #[error("header `{header}` is not valid: {reason}")]
    Header { header: String, reason: String },
    #[error("the adapter asked for method `{0}`, which is not an HTTP method")]
    Method(String),
    #[error("the adapter's path `{path}` does not form a URL with `{base}`")]
    Path { base: String, path: String },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Where requests go and what every request carries.
#[derive(Clone)]
pub struct Target {
    scheme: String,
    authority: String,
    base_path: String,
    headers: HeaderMap,
    /// For `https://` servers: how their certificates are checked.
    tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Target {
    // Headers may hold credentials: never print their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.base_url())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Target {
    /// `url` is the server's base URL (`http://host:port`, optionally with a
    /// path prefix); `headers` go on every request; `api_key` becomes a
    /// bearer token.
    pub fn new(
        url: &str,
        headers: &[(String, String)],
        api_key: Option<&str>,
    ) -> Result<Target, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ClientError::Url {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let tls = match scheme.as_str() {
            "http" => None,
            "https" => Some(tls::default_config()?),
            _ => {
                return Err(ClientError::Url {
                    url: url.to_string(),
                    reason: format!("scheme `{scheme}` is not supported; use http:// or https://"),
                });
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Url {
                url: url.to_string(),
                reason: "it has no host".to_string(),
            })?
            .to_string();
        let base_path = uri.path().trim_end_matches('/').to_string();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name =
                HeaderName::from_bytes(k.trim().as_bytes()).map_err(|e| ClientError::Header {
                    header: k.clone(),
                    reason: e.to_string(),
                })?;
            let value = HeaderValue::from_str(v.trim()).map_err(|e| ClientError::Header {
                header: k.clone(),
                reason: e.to_string(),
            })?;
            map.append(name, value);
        }
        if let Some(key) = api_key.filter(|k| !k.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ClientError::Header {
                    header: "Authorization".to_string(),
                    reason: "the API key holds characters not allowed in a header".to_string(),
                }
            })?;
            value.set_sensitive(true);
            map.insert(http::header::AUTHORIZATION, value);
        }
        Ok(Target {
            scheme,
            authority,
            base_path,
            headers: map,
            tls,
        })
    }

    /// Checks an `https://` server's certificate as `opts` say; no effect on `http://`.
    pub fn with_tls(mut self, opts: &TlsOptions) -> Result<Target, ClientError> {
        if self.tls.is_some() {
            self.tls = Some(tls::client_config(opts)?);
        }
        Ok(self)
    }

    /// The TLS configuration of an `https://` server.
    pub fn tls(&self) -> Option<&Arc<ClientConfig>> {
        self.tls.as_ref()
    }

    /// The server's port, when the URL names one.
    fn explicit_port(&self) -> Option<u16> {
        let (_, p) = self.authority.rsplit_once(':')?;
        (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    }

    /// The server's port: the URL's, or the scheme's own.
    pub fn port(&self) -> u16 {
        match self.explicit_port() {
            Some(p) => p,
            None if self.tls.is_some() => 443,
            None => 80,
        }
    }

    /// `host:port` to connect to, the scheme's port added when the URL names none.
    pub fn host_port(&self) -> String {
        match self.explicit_port() {
            Some(_) => self.authority.clone(),
            None => format!("{}:{}", self.authority, self.port()),
        }
    }

    /// `host:port` of the server.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The base URL, without credentials.
    /// What every request carries (credentials among them: never print the values).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.base_path)
    }

    /// The URL for a path under the base.
    pub fn uri(&self, path: &str) -> Result<Uri, ClientError> {
        let sep = if path.starts_with('/') { "" } else { "/" };
        format!("{}{sep}{path}", self.base_url())
            .parse()
            .map_err(|_| ClientError::Path {
                base: self.base_url(),
                path: path.to_string(),
            })
    }

    /// Turn an adapter's request into a hyper request.
    pub fn build(&self, req: HttpRequest) -> Result<Request<Full<Bytes>>, ClientError> {
        Ok(self.build_bytes(req)?.map(Full::new))
    }

    /// Turn an adapter's request into a request whose body is its bytes.
    pub fn build_bytes(&self, req: HttpRequest) -> Result<Request<Bytes>, ClientError> {
        let method = Method::from_bytes(req.method.as_bytes())
            .map_err(|_| ClientError::Method(req.method.clone()))?;
        let mut builder = Request::builder().method(method).uri(self.uri(&req.path)?);
        let headers = builder.headers_mut().expect("a fresh builder has headers");
        for (k, v) in &req.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| ClientError::Header {
                header: k.clone(),
                reason: e.to_string(),
            })?;
            let value = HeaderValue::from_str(v).map_err(|e| ClientError::Header {
                header: k.clone(),
                reason: e.to_string(),
            })?;
            headers.insert(name, value);
        }
        // The user's headers win over the adapter's.
        for (k, v) in &self.headers {
            headers.insert(k.clone(), v.clone());
        }
        if !req.body.is_empty() && !headers.contains_key(http::header::CONTENT_TYPE) {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        builder
            .body(Bytes::from(req.body))
            .map_err(|e| ClientError::Header {
                header: "(request)".to_string(),
                reason: e.to_string(),
            })
    }
}

/// A client for the few requests around a run (model discovery) to `target`, with its TLS
/// settings; the run's own requests go through [`super::ConnectionPool`], which keeps its
/// connections to the level's needs.
pub fn new_client(target: &Target, max_idle: usize) -> Result<HyperClient, ClientError> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    connector.enforce_http(false);
    // hyper-rustls asks for a configuration even for http:// URLs, which never use it.
    let config = match &target.tls {
        Some(c) => c.clone(),
        None => tls::default_config()?,
    };
    // hyper-rustls sets ALPN from `enable_http1` and refuses (panics on) a preset list.
    let mut config = (*config).clone();
    config.alpn_protocols.clear();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(super::connection::IDLE_TIMEOUT)
        .pool_max_idle_per_host(max_idle)
        .retry_canceled_requests(true)
        .build(connector))
}

/// Ask an OpenAI-compatible server which model it serves (`/v1/models`),
/// as vLLM's benchmark does when no model is named.
pub async fn discover_model(client: &HyperClient, target: &Target) -> Result<String, String> {
    let v = get_json(client, target, "/v1/models", Duration::from_secs(10)).await?;
    v["data"][0]["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} lists no model", target.base_url() + "/v1/models"))
}

/// The largest answer [`get_json`] reads: discovery and version answers are small.
const MAX_JSON_ANSWER: usize = 1024 * 1024;

/// GET `path` with the target's headers and read its JSON answer within `timeout`; the error
/// says what the server did instead.
pub async fn get_json(
    client: &HyperClient,
    target: &Target,
    path: &str,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    exchange_json(client, target, path, None, timeout).await
}

/// [`get_json`], but a POST of `body`.
pub async fn post_json(
    client: &HyperClient,
    target: &Target,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    exchange_json(client, target, path, Some(body), timeout).await
}

async fn exchange_json(
    client: &HyperClient,
    target: &Target,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let (uri, body) = fetch(client, target, path, body, MAX_JSON_ANSWER, timeout).await?;
    serde_json::from_slice(&body).map_err(|_| format!("{uri} did not answer JSON"))
}

/// GETs `path` under `target` and returns its text (at most `max_body` bytes), or why not.
pub async fn get_text(
    client: &HyperClient,
    target: &Target,
    path: &str,
    max_body: usize,
    timeout: Duration,
) -> Result<String, String> {
    let (uri, body) = fetch(client, target, path, None, max_body, timeout).await?;
    String::from_utf8(body.to_vec()).map_err(|_| format!("{uri} did not answer UTF-8 text"))
}

/// GET (or POST `body` as JSON) `path` under `target`: the URL asked and the body of a 2xx
/// answer, or what went wrong.
async fn fetch(
    client: &HyperClient,
    target: &Target,
    path: &str,
    body: Option<&serde_json::Value>,
    max_body: usize,
    timeout: Duration,
) -> Result<(Uri, Bytes), String> {
    let uri = target.uri(path).map_err(|e| e.to_string())?;
    let req = match body {
        None => Request::get(uri.clone()).body(Full::new(Bytes::new())),
        Some(b) => Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(b.to_string()))),
    };
    let mut req = req.map_err(|e| e.to_string())?;
    for (k, v) in &target.headers {
        req.headers_mut().insert(k.clone(), v.clone());
    }
    let (status, body) = exchange(client, req, max_body, timeout)
        .await
        .map_err(|reason| format!("{uri} {reason}"))?;
    if !(200..300).contains(&status) {
        return Err(format!("{uri} answered HTTP {status}"));
    }
    Ok((uri, body))
}

/// Sends `req` and reads its whole answer, at most `max_body` bytes, within `timeout`: the
/// status and the body, whatever the status. The error says what happened instead, phrased to
/// follow the request's URL ("could not be reached (...)").
pub async fn exchange(
    client: &HyperClient,
    req: Request<Full<Bytes>>,
    max_body: usize,
    timeout: Duration,
) -> Result<(u16, Bytes), String> {
    use http_body_util::{BodyExt, Limited};
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("could not be reached ({e})"))?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), max_body)
            .collect()
            .await
            .map_err(|e| format!("broke off: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("did not answer within {} s", timeout.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Framing;

    #[test]
    fn target_joins_paths_and_hides_the_key() {
        let t = Target::new(
            "http://127.0.0.1:8000/prefix/",
            &[("X-Team".into(), "a".into())],
            Some("sk-secret"),
        )
        .unwrap();
        assert_eq!(
            t.uri("/v1/completions").unwrap().to_string(),
            "http://127.0.0.1:8000/prefix/v1/completions"
        );
        assert!(!format!("{t:?}").contains("sk-secret"));
        let req = t
            .build(HttpRequest {
                method: "POST".into(),
                path: "v1/x".into(),
                headers: vec![("x-team".into(), "adapter".into())],
                body: b"{}".to_vec(),
                framing: Framing::Sse,
            })
            .unwrap();
        assert_eq!(req.headers()["x-team"], "a");
        assert_eq!(req.headers()["authorization"], "Bearer sk-secret");
        assert_eq!(req.headers()["content-type"], "application/json");
    }

    #[test]
    fn https_targets_carry_tls_and_default_to_port_443() {
        let t = Target::new("https://models.example.com/v1", &[], None).unwrap();
        assert!(t.tls().is_some());
        assert_eq!(t.port(), 443);
        assert_eq!(Target::new("http://x", &[], None).unwrap().port(), 80);
        assert_eq!(
            Target::new("https://x:8443", &[], None).unwrap().port(),
            8443
        );
        assert!(Target::new("http://x", &[], None).unwrap().tls().is_none());
        assert_eq!(
            Target::new("http://x", &[], None).unwrap().host_port(),
            "x:80"
        );
        assert_eq!(
            Target::new("https://x:8443", &[], None)
                .unwrap()
                .host_port(),
            "x:8443"
        );
        assert_eq!(
            Target::new("https://[::1]", &[], None).unwrap().host_port(),
            "[::1]:443"
        );
    }

    #[test]
    fn bad_urls_are_errors() {
        assert!(Target::new("ftp://x", &[], None).is_err());
        assert!(Target::new("not a url", &[], None).is_err());
        assert!(Target::new("http://x", &[("bad header".into(), "v".into())], None).is_err());
    }
}
