//! A loaded server adapter: request building and pooled stream parsers.

use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::PluginIdentity;
use super::bindings::adapter::AdapterPluginPre;
use super::bindings::adapter::llm_loadtest::plugin::types as wit;
use super::bindings::tokenizing::TokenizingAdapterPluginPre;
use super::bindings::tokenizing::exports::llm_loadtest::plugin::tokenizer as wit_tok;
use super::error::PluginError;
use super::inspect::ComponentFacts;
use super::pool::Pool;
use super::sandbox::StoreData;
use super::types::{
    AdapterInfo, Event, GenerationRequest, HttpRequest, TokenizeQuery, TokenizeStep,
};

type AdapterPool = Pool<AdapterPluginPre<StoreData>>;
/// Instances bound through the tokenizing world: only its `tokenizer` export is called there.
pub(crate) type TokenizerPool = Pool<TokenizingAdapterPluginPre<StoreData>>;

/// Most requests one tokenize exchange may take (llama.cpp's chat takes three).
pub const MAX_TOKENIZE_STEPS: u32 = 4;

/// Most events one `feed` or `finish` may return.
pub const MAX_EVENTS_PER_CALL: usize = 65_536;
/// Most text (token, reasoning, finish and error strings) one call may return.
pub const MAX_TEXT_PER_CALL: usize = 16 * 1024 * 1024;
/// Largest request body `build-request` may return.
pub const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// Most headers `build-request` may return.
pub const MAX_REQUEST_HEADERS: usize = 256;

/// A server adapter, ready to use from many threads: calls run on a pool of
/// instances, and each [`StreamParser`] is pinned to one of them.
pub struct Adapter {
    pool: Arc<AdapterPool>,
    /// Present when the component exports the optional `tokenizer` interface.
    tokenizer: Option<TokenizerPool>,
    info: AdapterInfo,
    identity: PluginIdentity,
    facts: ComponentFacts,
}

impl std::fmt::Debug for Adapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapter")
            .field("identity", &self.identity)
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl Adapter {
    /// Wrap a pool and ask the plugin what it is (once; the answer is kept).
    pub(crate) fn new(
        pool: AdapterPool,
        tokenizer: Option<TokenizerPool>,
        mut identity: PluginIdentity,
        facts: ComponentFacts,
    ) -> Result<Self, PluginError> {
        let info = pool.call_on(0, "info", |live| {
            live.bindings
                .llm_loadtest_plugin_adapter()
                .call_info(&mut live.store)
        })?;
        let info = AdapterInfo::from(info.0);
        identity.name.clone_from(&info.name);
        identity.version.clone_from(&info.version);
        Ok(Adapter {
            pool: Arc::new(pool),
            tokenizer,
            info,
            identity,
            facts,
        })
    }

    /// What the adapter says it is (fetched once, at load).
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Which plugin this is: name, version, contract version, hash, source.
    pub fn identity(&self) -> &PluginIdentity {
        &self.identity
    }

    /// The component's imports, by name.
    pub fn imports(&self) -> &[String] {
        &self.facts.imports
    }

    /// The component's exports, by name.
    pub fn exports(&self) -> &[String] {
        &self.facts.exports
    }

    /// How many instances calls are spread over.
    pub fn pool_size(&self) -> usize {
        self.pool.size()
    }

    /// Turn a generation request into the HTTP request to send.
    pub fn build_request(&self, req: &GenerationRequest) -> Result<HttpRequest, PluginError> {
        let call = "build-request";
        let wire = wit::GenerationRequest::from(req);
        let out = self.pool.call_any(call, |live| {
            live.bindings
                .llm_loadtest_plugin_adapter()
                .call_build_request(&mut live.store, &wire)
        })?;
        let req = out.map_err(|message| self.guest_error(call, message))?;
        self.checked_request(call, req)
    }

    /// Whether the adapter can ask its server to count tokens (exports `tokenizer`).
    pub fn can_tokenize(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// The first request of a tokenize exchange for `query`.
    pub fn build_tokenize_request(
        &self,
        query: &TokenizeQuery,
    ) -> Result<HttpRequest, PluginError> {
        let call = "build-tokenize-request";
        let pool = self.tokenizer_pool(call)?;
        let wire = wit_tok::TokenizeQuery::from(query);
        let out = pool.call_any(call, |live| {
            live.bindings
                .llm_loadtest_plugin_tokenizer()
                .call_build_tokenize_request(&mut live.store, &wire)
        })?;
        let req = out.map_err(|message| self.guest_error(call, message))?;
        self.checked_request(call, req)
    }

    /// Read the answer to the request of `step` of a tokenize exchange.
    pub fn parse_tokenize_response(
        &self,
        query: &TokenizeQuery,
        step: u32,
        status: u16,
        body: &[u8],
    ) -> Result<TokenizeStep, PluginError> {
        let call = "parse-tokenize-response";
        let pool = self.tokenizer_pool(call)?;
        let wire = wit_tok::TokenizeQuery::from(query);
        let out = pool.call_any(call, |live| {
            live.bindings
                .llm_loadtest_plugin_tokenizer()
                .call_parse_tokenize_response(&mut live.store, &wire, step, status, body)
        })?;
        match out.map_err(|message| self.guest_error(call, message))? {
            wit_tok::TokenizeStep::Count(n) => Ok(TokenizeStep::Count(n)),
            wit_tok::TokenizeStep::Then(req) => {
                Ok(TokenizeStep::Then(self.checked_request(call, req)?))
            }
        }
    }

    fn tokenizer_pool(&self, call: &'static str) -> Result<&TokenizerPool, PluginError> {
        self.tokenizer.as_ref().ok_or_else(|| {
            self.guest_error(
                call,
                "this adapter does not export the tokenizer interface".into(),
            )
        })
    }

    fn guest_error(&self, call: &'static str, message: String) -> PluginError {
        PluginError::Guest {
            plugin: self.pool.plugin().to_owned(),
            call,
            message,
        }
    }

    /// A request a plugin returned, held to the size limits.
    fn checked_request(
        &self,
        call: &'static str,
        req: wit::HttpRequest,
    ) -> Result<HttpRequest, PluginError> {
        let too_large = |what: String, limit: usize| PluginError::OutputTooLarge {
            plugin: self.pool.plugin().to_owned(),
            call,
            what,
            limit,
        };
        if req.body.len() > MAX_REQUEST_BODY {
            return Err(too_large(
                format!("a {}-byte body", req.body.len()),
                MAX_REQUEST_BODY,
            ));
        }
        if req.headers.len() > MAX_REQUEST_HEADERS {
            return Err(too_large(
                format!("{} headers", req.headers.len()),
                MAX_REQUEST_HEADERS,
            ));
        }
        Ok(HttpRequest::from(req))
    }

    /// A parser for one response stream, pinned to the least-loaded instance.
    pub fn new_parser(&self) -> Result<StreamParser, PluginError> {
        let slot = self.pool.least_loaded();
        let (handle, generation) =
            self.pool
                .call_on(slot, "stream-parser constructor", |live| {
                    live.bindings
                        .llm_loadtest_plugin_adapter()
                        .stream_parser()
                        .call_constructor(&mut live.store)
                })?;
        self.pool.parser_added(slot);
        Ok(StreamParser {
            pool: self.pool.clone(),
            slot,
            generation,
            handle: Some(handle),
        })
    }

    /// Make a fresh instance outside the pool and drop it: proves the
    /// component links and instantiates, and measures what that costs.
    pub fn probe_instance(&self) -> Result<(), PluginError> {
        self.pool.instantiate().map(drop)
    }

    /// Per instance slot: the parsers pinned to it and how many times its
    /// instance has been replaced.
    pub fn slot_stats(&self) -> Vec<(usize, u64)> {
        self.pool.slot_stats()
    }
}

/// Parses one response stream. Lives in one pooled instance; if that
/// instance traps (in any stream's call), this parser fails with
/// [`PluginError::InstanceLost`]. Dropping it frees the guest resource.
pub struct StreamParser {
    pool: Arc<AdapterPool>,
    slot: usize,
    generation: u64,
    handle: Option<ResourceAny>,
}

impl std::fmt::Debug for StreamParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamParser")
            .field("plugin", &self.pool.plugin())
            .field("slot", &self.slot)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl StreamParser {
    /// One framed message (an SSE `data:` payload, an NDJSON line, or a
    /// whole body).
    pub fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, PluginError> {
        self.call("feed", Some(message))
    }

    /// The body ended: flush anything pending.
    pub fn finish(&mut self) -> Result<Vec<Event>, PluginError> {
        self.call("finish", None)
    }

    /// Which instance slot this parser is pinned to.
    pub fn slot(&self) -> usize {
        self.slot
    }

    fn call(
        &mut self,
        call: &'static str,
        message: Option<&[u8]>,
    ) -> Result<Vec<Event>, PluginError> {
        let Some(handle) = self.handle else {
            return Err(PluginError::InstanceLost {
                plugin: self.pool.plugin().to_owned(),
            });
        };
        let out = self
            .pool
            .call_pinned(self.slot, self.generation, call, |live| {
                let parser = live.bindings.llm_loadtest_plugin_adapter().stream_parser();
                match message {
                    Some(m) => parser.call_feed(&mut live.store, handle, m),
                    None => parser.call_finish(&mut live.store, handle),
                }
            });
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                if matches!(e, PluginError::InstanceLost { .. }) || e.killed_instance() {
                    // The resource died with its instance: nothing to drop.
                    self.handle = None;
                }
                return Err(e);
            }
        };
        let events = out.map_err(|message| PluginError::Guest {
            plugin: self.pool.plugin().to_owned(),
            call,
            message,
        })?;
        check_events(self.pool.plugin(), call, &events)?;
        Ok(events.into_iter().map(Event::from).collect())
    }
}

fn check_events(
    plugin: &str,
    call: &'static str,
    events: &[wit::Event],
) -> Result<(), PluginError> {
    let too_large = |what: String, limit: usize| PluginError::OutputTooLarge {
        plugin: plugin.to_owned(),
        call,
        what,
        limit,
    };
    if events.len() > MAX_EVENTS_PER_CALL {
        return Err(too_large(
            format!("{} events", events.len()),
            MAX_EVENTS_PER_CALL,
        ));
    }
    let text: usize = events
        .iter()
        .map(|e| match e {
            wit::Event::Token(d) | wit::Event::Reasoning(d) => d.text.len(),
            wit::Event::Finish(s) | wit::Event::Error(s) => s.len(),
            wit::Event::Usage(_) | wit::Event::Done => 0,
        })
        .sum();
    if text > MAX_TEXT_PER_CALL {
        return Err(too_large(
            format!("{text} bytes of text"),
            MAX_TEXT_PER_CALL,
        ));
    }
    Ok(())
}

impl Drop for StreamParser {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.pool.drop_resource(self.slot, self.generation, handle);
        }
    }
}
