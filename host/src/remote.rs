//! The command line as a client of a `serve` instance: `--remote URL` (or
//! `LLM_LOADTEST_REMOTE`) on `run`, `history`, `show`, `compare` and `export`, with the key
//! from `LLM_LOADTEST_API_KEY`, so a team keeps one store whichever machine it works from.
//!
//! The server does the work and the client prints what it answers, with the same renderers
//! the local commands use, so a remote `history` or `show` reads as a local one. The key is
//! sent as a bearer token marked sensitive and never printed.
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::Value;

use crate::engine::client::{self, ClientError, HyperClient, Target};

/// The variable that names the server when `--remote` is not given.
pub const REMOTE_ENV: &str = "LLM_LOADTEST_REMOTE";
/// The variable that holds the API key.
pub const KEY_ENV: &str = "LLM_LOADTEST_API_KEY";

/// Longest answer read: a result with every record of a large run.
const MAX_ANSWER: usize = 1 << 30;
/// Longest wait for one answer (an HTML export of a large run takes a while).
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Unreachable(String),
    /// The server refused: its own words, and the setting when it names one.
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
        field: Option<String>,
    },
    #[error("{url} did not answer what was expected: {reason}")]
    Unexpected { url: String, reason: String },
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
    field: Option<String>,
}

/// The header a submission carries the load target's own API key in.
pub const TARGET_KEY_HEADER: &str = "llm-loadtest-target-key";

/// A `serve` instance.
pub struct Remote {
    target: Target,
    client: HyperClient,
}

impl Remote {
    /// `url` is the server's base URL; `key` its API key.
    pub fn new(url: &str, key: Option<&str>) -> Result<Remote, RemoteError> {
        let target = Target::new(url, &[], key)?;
        let client = client::new_client(&target, 4)?;
        Ok(Remote { target, client })
    }

    /// The server's base URL.
    pub fn url(&self) -> String {
        self.target.base_url()
    }

    /// `method path` (with a JSON body): the answer's body, or the server's refusal.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Bytes, RemoteError> {
        self.send(method, path, body, None).await
    }

    /// Submits a run or search (`body` at `path`): the job the server answers. The load
    /// target's own API key, when there is one, goes in a header of this request alone
    /// (`LLM-Loadtest-Target-Key`), never in the settings, so it is not stored anywhere.
    pub async fn submit(
        &self,
        path: &str,
        body: &Value,
        target_key: Option<&str>,
    ) -> Result<Value, RemoteError> {
        let bytes = self
            .send(Method::POST, path, Some(body), target_key)
            .await?;
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::Unexpected {
            url: format!("{}{path}", self.url()),
            reason: e.to_string(),
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        target_key: Option<&str>,
    ) -> Result<Bytes, RemoteError> {
        let uri = self.target.uri(path)?;
        let url = uri.to_string();
        let mut req = Request::builder().method(method).uri(uri);
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        let mut req = req
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .map_err(|e| RemoteError::Unexpected {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        for (k, v) in self.target.headers() {
            req.headers_mut().insert(k.clone(), v.clone());
        }
        if let Some(key) = target_key {
            let mut v = http::HeaderValue::from_str(key).map_err(|_| RemoteError::Unexpected {
                url: url.clone(),
                reason: "the target's API key is not a valid header value".into(),
            })?;
            v.set_sensitive(true);
            req.headers_mut().insert(TARGET_KEY_HEADER, v);
        }
        let (status, bytes) = client::exchange(&self.client, req, MAX_ANSWER, TIMEOUT)
            .await
            .map_err(|reason| RemoteError::Unreachable(format!("{url} {reason}")))?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let (message, field) = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => (b.message, b.field),
            Err(_) => (String::from_utf8_lossy(&bytes).trim().to_string(), None),
        };
        Err(RemoteError::Refused {
            url,
            status,
            message,
            field,
        })
    }

    /// [`Remote::call`], read as JSON into `T`.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, RemoteError> {
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::Unexpected {
            url: format!("{}{path}", self.url()),
            reason: e.to_string(),
        })
    }

    /// [`Remote::call`], read as text.
    pub async fn text(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, RemoteError> {
        let bytes = self.call(method, path, body).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| RemoteError::Unexpected {
            url: format!("{}{path}", self.url()),
            reason: e.to_string(),
        })
    }
}

/// `--remote` on the commands that read saved runs.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RemoteFlag {
    /// A `serve` instance to ask instead of the local store (its key from
    /// LLM_LOADTEST_API_KEY).
    #[arg(long = "remote", env = "LLM_LOADTEST_REMOTE", value_name = "URL")]
    pub url: Option<String>,
}

impl RemoteFlag {
    /// The server to ask, if one is named.
    pub fn chosen(&self) -> Result<Option<Remote>, RemoteError> {
        chosen(self.url.as_deref())
    }
}

/// The server a command should use: `--remote`, else the variable; with the key from its
/// variable.
pub fn chosen(flag: Option<&str>) -> Result<Option<Remote>, RemoteError> {
    let url = flag
        .map(str::to_string)
        .or_else(|| std::env::var(REMOTE_ENV).ok().filter(|v| !v.is_empty()));
    let Some(url) = url else {
        return Ok(None);
    };
    let key = std::env::var(KEY_ENV).ok().filter(|v| !v.is_empty());
    Remote::new(&url, key.as_deref()).map(Some)
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `f` on a runtime of its own: the commands that call a server are otherwise
/// synchronous.
pub fn block_on<F: std::future::Future>(f: F) -> std::io::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}

/// Every saved run on the server that matches `query` (`model=...&tag=...`), all pages.
pub async fn history(
    remote: &Remote,
    query: &str,
) -> Result<(Vec<crate::store::RunRow>, Vec<String>), RemoteError> {
    #[derive(Deserialize)]
    struct Page {
        total: usize,
        runs: Vec<crate::store::RunRow>,
        unreadable: Vec<String>,
    }
    let mut rows = Vec::new();
    loop {
        let path = format!(
            "/api/v1/benchmark/history?{query}&limit=500&offset={}",
            rows.len()
        );
        let page: Page = remote.json(Method::GET, &path, None).await?;
        let done = page.runs.is_empty() || rows.len() + page.runs.len() >= page.total;
        rows.extend(page.runs);
        if done {
            return Ok((rows, page.unreadable));
        }
    }
}
