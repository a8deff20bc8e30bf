//! The traits an adapter author implements.

use crate::types::{AdapterInfo, Event, GenerationRequest, HttpRequest};

/// A server adapter: shapes requests for one server protocol and names the
/// parser that reads its responses.
///
/// Register the implementing type with [`crate::register_adapter!`]; the type
/// itself is never instantiated, so a unit struct is enough.
pub trait Adapter: 'static {
    /// Parses one response stream. The host creates one per request.
    type Parser: StreamParser;

    /// Name, version, framing and capabilities. Called once when the plugin
    /// is loaded.
    fn info() -> AdapterInfo;

    /// Turn a generation request into the HTTP request to send. An `Err`
    /// fails that request with the message as its reason (say what input was
    /// wrong).
    fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String>;
}

/// Reads one response, one framed message at a time.
///
/// The host frames the body natively (SSE `data:` payloads, NDJSON lines or
/// the whole body, per [`crate::HttpRequest::framing`]); the parser never sees
/// transport chunks, SSE comments or the `[DONE]` sentinel. It may keep state
/// between messages, e.g. the text so far when a server sends cumulative text.
pub trait StreamParser: Default + 'static {
    /// One framed message. An `Err` means the message could not be understood
    /// and fails the request; a server-reported error belongs in
    /// [`Event::Error`] instead.
    fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String>;

    /// The body ended; flush anything pending. The default has nothing to
    /// flush.
    fn finish(&mut self) -> Result<Vec<Event>, String> {
        Ok(Vec::new())
    }
}
