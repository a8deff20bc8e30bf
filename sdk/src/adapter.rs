//! The traits an adapter author implements.

use crate::types::{
    AdapterInfo, Event, GenerationRequest, HttpRequest, TokenizeQuery, TokenizeStep,
};

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

    /// One framed message, its events appended to `events`. The host hands the parser every
    /// message of one read in one call, and the SDK feeds them through this method into one
    /// list; the default calls [`StreamParser::feed`]. Override it to skip the `Vec` per
    /// message on the hot path. On an `Err`, leave `events` as it was before the call.
    fn feed_into(&mut self, message: &[u8], events: &mut Vec<Event>) -> Result<(), String> {
        events.extend(self.feed(message)?);
        Ok(())
    }

    /// The body ended; flush anything pending. The default has nothing to
    /// flush.
    fn finish(&mut self) -> Result<Vec<Event>, String> {
        Ok(Vec::new())
    }
}

/// Optional: the adapter's server counts a prompt's tokens on request (vLLM, SGLang, llama.cpp
/// and TGI have a `/tokenize` endpoint). With it, `--tokenizer server` (and the default,
/// `auto`) sizes synthetic prompts so that the server counts exactly `--input-len` tokens,
/// chat template included. Register with `register_adapter!(MyAdapter, tokenizer)`.
///
/// The host sends the request, with the run's headers and API key, and hands back the
/// status and whole body; it never times these requests. Count what the server would count
/// for the prompt of a generation request: special tokens (BOS) as the server adds them, and
/// for chat the rendered template with the generation prompt.
pub trait Tokenize: Adapter {
    /// The first request for `query`. An `Err` says why this query cannot be counted (for
    /// example chat, on a server whose tokenizer endpoint knows no templates); the host then
    /// falls back to another tokenizer and says so.
    fn build_tokenize_request(query: &TokenizeQuery) -> Result<HttpRequest, String>;

    /// Read the answer to step `step` (0 for the first request): a count, or one more
    /// request (a server that renders a chat template and counts with two endpoints).
    fn parse_tokenize_response(
        query: &TokenizeQuery,
        step: u32,
        status: u16,
        body: &[u8],
    ) -> Result<TokenizeStep, String>;
}
