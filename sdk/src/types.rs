//! The plain Rust types an adapter author works with.
//!
//! They mirror the WIT records of `llm-loadtest:plugin/types@0.1.0`; the SDK
//! converts to and from the generated bindings so no wit-bindgen type ever
//! reaches an author's code.

use crate::framing::Framing;

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `system`, `user`, `assistant`, ...
    pub role: String,
    /// The message text.
    pub content: String,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// What to send: a raw completion prompt, or a chat conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A raw completion prompt.
    Text(String),
    /// A chat conversation, oldest message first.
    Chat(Vec<Message>),
}

/// A generation the host wants sent; the adapter turns it into an
/// [`HttpRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    /// The model name the server should use.
    pub model: String,
    /// The prompt or conversation.
    pub prompt: Prompt,
    /// The most tokens to generate.
    pub max_tokens: u32,
    /// Ask for at least this many tokens, where the server supports it.
    pub min_tokens: Option<u32>,
    /// Ask the server to keep generating past end-of-sequence.
    pub ignore_eos: bool,
    /// Sampling temperature; `None` leaves the server's default.
    pub temperature: Option<f32>,
    /// Whether to ask for a streamed response.
    pub stream: bool,
    /// A JSON object (as text) whose fields are merged into the request body;
    /// see [`crate::json::merge_extra_body`].
    pub extra_body: Option<String>,
}

impl GenerationRequest {
    /// A streaming request for `prompt` with no optional settings, mostly for
    /// tests.
    pub fn new(model: impl Into<String>, prompt: Prompt, max_tokens: u32) -> Self {
        GenerationRequest {
            model: model.into(),
            prompt,
            max_tokens,
            min_tokens: None,
            ignore_eos: false,
            temperature: None,
            stream: true,
            extra_body: None,
        }
    }
}

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name, e.g. `content-type`.
    pub name: String,
    /// Header value.
    pub value: String,
}

impl Header {
    /// A header `name: value`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The request the host sends. `path` is joined to the server's base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// Path (and query) joined to the base URL, e.g. `/v1/completions`.
    pub path: String,
    /// Headers to send besides the ones the host adds (host, length, auth).
    pub headers: Vec<Header>,
    /// The request body.
    pub body: Vec<u8>,
    /// How the response to this request is framed for the parser.
    pub framing: Framing,
}

impl HttpRequest {
    /// A `POST` of a JSON body with `content-type: application/json`.
    pub fn post_json(path: impl Into<String>, body: Vec<u8>, framing: Framing) -> Self {
        HttpRequest {
            method: "POST".to_string(),
            path: path.into(),
            headers: vec![Header::new("content-type", "application/json")],
            body,
            framing,
        }
    }
}

/// Generated text in one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDelta {
    /// The new text (not cumulative).
    pub text: String,
    /// How many tokens this delta carries, when the server says.
    pub tokens: Option<u32>,
}

/// Token counts reported by the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: Option<u32>,
    /// Tokens generated.
    pub completion_tokens: Option<u32>,
    /// Prompt tokens served from a prefix cache.
    pub cached_tokens: Option<u32>,
}

/// What one framed message meant.
///
/// A server that repeats usage on every chunk should emit a [`Event::Usage`]
/// each time with the cumulative totals: the host keeps the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Generated output text, timed as a token arrival. Empty text marks a
    /// message that carries a token but no text (see the crate's rules).
    Token(TokenDelta),
    /// Reasoning / thinking output; counts as generated content.
    Reasoning(TokenDelta),
    /// Token counts.
    Usage(Usage),
    /// The server's finish reason (`stop`, `length`, ...).
    Finish(String),
    /// The server reported an error inside the stream.
    Error(String),
    /// The stream is complete.
    Done,
}

impl Event {
    /// A [`Event::Token`] with `text` and no token count.
    pub fn token(text: impl Into<String>) -> Self {
        Event::Token(TokenDelta {
            text: text.into(),
            tokens: None,
        })
    }

    /// A [`Event::Reasoning`] with `text` and no token count.
    pub fn reasoning(text: impl Into<String>) -> Self {
        Event::Reasoning(TokenDelta {
            text: text.into(),
            tokens: None,
        })
    }
}

/// What an adapter is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// Short name, e.g. `openai`.
    pub name: String,
    /// The adapter's own version.
    pub version: String,
    /// One line for `plugin list`.
    pub description: String,
    /// Framing of streaming responses (the default for replays).
    pub framing: Framing,
    /// Path used when the request does not choose one.
    pub default_path: String,
    /// Free-form capability names: `completions`, `chat`, `ignore-eos`,
    /// `min-tokens`, `usage`, `reasoning`.
    pub capabilities: Vec<String>,
}

/// What the host wants counted: `prompt` as `model` would receive it in a generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizeQuery {
    /// The model name the run sends.
    pub model: String,
    /// The prompt or conversation to count.
    pub prompt: Prompt,
}

/// What one answer to a tokenize request meant.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenizeStep {
    /// The server's count for the whole query: what it would count as the prompt of a
    /// generation request (special tokens and, for chat, the template included).
    Count(u32),
    /// Not done yet: the host sends this request and hands its answer back as the next step.
    Then(HttpRequest),
}
