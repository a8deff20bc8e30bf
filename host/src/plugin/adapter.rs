//! A loaded server adapter: request building and pooled stream parsers.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::PluginIdentity;
use super::bindings::adapter::llm_loadtest::plugin::types as wit;
use super::bindings::tokenizer::TokenizerPluginPre;
use super::bindings::tokenizer::exports::llm_loadtest::plugin::tokenizer as wit_tok;
use super::bindings::{adapter as v1, adapter_v2 as v2};
use super::error::PluginError;
use super::inspect::ComponentFacts;
use super::pool::{Live, Pool, World};
use super::sandbox::StoreData;
use super::types::{
    AdapterInfo, Event, GenerationRequest, HttpRequest, TokenizeQuery, TokenizeStep,
};

/// An adapter component of either contract version, linked and ready to instantiate.
pub(crate) enum AdapterPre {
    /// Built for 0.1: one `feed` call per message.
    V1(v1::AdapterPluginPre<StoreData>),
    /// Built for 0.2: one `feed-batch` call per read.
    V2(v2::AdapterPluginPre<StoreData>),
}

/// A live adapter instance's exports, of the version it was built for.
pub(crate) enum AdapterBindings {
    V1(v1::AdapterPlugin),
    V2(v2::AdapterPlugin),
}

impl World for AdapterPre {
    type Bindings = AdapterBindings;
    fn instantiate(&self, store: &mut Store<StoreData>) -> wasmtime::Result<AdapterBindings> {
        Ok(match self {
            AdapterPre::V1(pre) => AdapterBindings::V1(pre.instantiate(store)?),
            AdapterPre::V2(pre) => AdapterBindings::V2(pre.instantiate(store)?),
        })
    }
}

/// The calls of the two versions, as one: the host above this never asks which it has.
impl Live<AdapterBindings> {
    fn info(&mut self) -> wasmtime::Result<wit::AdapterInfo> {
        match &self.bindings {
            AdapterBindings::V1(b) => b.llm_loadtest_plugin_adapter().call_info(&mut self.store),
            AdapterBindings::V2(b) => b
                .llm_loadtest_plugin0_2_0_adapter()
                .call_info(&mut self.store),
        }
    }

    fn build_request(
        &mut self,
        req: &wit::GenerationRequest,
    ) -> wasmtime::Result<Result<wit::HttpRequest, String>> {
        match &self.bindings {
            AdapterBindings::V1(b) => b
                .llm_loadtest_plugin_adapter()
                .call_build_request(&mut self.store, req),
            AdapterBindings::V2(b) => b
                .llm_loadtest_plugin0_2_0_adapter()
                .call_build_request(&mut self.store, req),
        }
    }

    fn new_parser(&mut self) -> wasmtime::Result<ResourceAny> {
        match &self.bindings {
            AdapterBindings::V1(b) => b
                .llm_loadtest_plugin_adapter()
                .stream_parser()
                .call_constructor(&mut self.store),
            AdapterBindings::V2(b) => b
                .llm_loadtest_plugin0_2_0_adapter()
                .stream_parser()
                .call_constructor(&mut self.store),
        }
    }

    /// Every message of `batch`: one call for a 0.2 component (`feed` for a single message,
    /// the cheaper call then); for a 0.1 component one `feed` per message, stopping at the
    /// first that fails, which is what 0.2's answer says.
    fn feed_batch(&mut self, parser: ResourceAny, batch: &Batch) -> wasmtime::Result<WireFed> {
        let v2 = match &self.bindings {
            AdapterBindings::V2(b) if batch.len() > 1 => b,
            _ => return self.feed_each(parser, batch),
        };
        let fed = v2
            .llm_loadtest_plugin0_2_0_adapter()
            .stream_parser()
            .call_feed_batch(&mut self.store, parser, &batch.bytes, &batch.ends)?;
        Ok(WireFed {
            events: fed.events,
            ends: fed.ends,
            error: fed.error,
        })
    }

    /// `feed`, once per message of `batch`.
    fn feed_each(&mut self, parser: ResourceAny, batch: &Batch) -> wasmtime::Result<WireFed> {
        let mut fed = WireFed::default();
        for message in batch.messages() {
            let out = match &self.bindings {
                AdapterBindings::V1(b) => b
                    .llm_loadtest_plugin_adapter()
                    .stream_parser()
                    .call_feed(&mut self.store, parser, message)?,
                AdapterBindings::V2(b) => b
                    .llm_loadtest_plugin0_2_0_adapter()
                    .stream_parser()
                    .call_feed(&mut self.store, parser, message)?,
            };
            match out {
                Ok(events) => {
                    if fed.events.is_empty() {
                        // The usual batch of one: its list is the batch's, not copied.
                        fed.events = events;
                    } else {
                        fed.events.extend(events);
                    }
                    fed.ends
                        .push(u32::try_from(fed.events.len()).unwrap_or(u32::MAX));
                }
                Err(e) => {
                    fed.error = Some(e);
                    break;
                }
            }
        }
        Ok(fed)
    }

    fn finish(&mut self, parser: ResourceAny) -> wasmtime::Result<Result<Vec<wit::Event>, String>> {
        match &self.bindings {
            AdapterBindings::V1(b) => b
                .llm_loadtest_plugin_adapter()
                .stream_parser()
                .call_finish(&mut self.store, parser),
            AdapterBindings::V2(b) => b
                .llm_loadtest_plugin0_2_0_adapter()
                .stream_parser()
                .call_finish(&mut self.store, parser),
        }
    }
}

/// A batch's answer as the guest gave it, before the host checks it.
#[derive(Default)]
struct WireFed {
    events: Vec<wit::Event>,
    ends: Vec<u32>,
    error: Option<String>,
}

/// Messages gathered for one feed: their bytes end to end and where each ends, as 0.2's
/// `feed-batch` takes them. Kept by the request and cleared per read, so a steady stream
/// allocates nothing here.
#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    ends: Vec<u32>,
}

impl Batch {
    /// Add one message.
    pub fn push(&mut self, message: &[u8]) {
        self.bytes.extend_from_slice(message);
        // A batch is one read's messages; its bytes are far below 4 GiB (reads are 64 KiB).
        self.ends
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
    }

    /// Forget every message, keeping the room.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// How many messages it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The messages, in order.
    pub fn messages(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start as usize..end as usize])
    }
}

/// What a batch meant: each message's events in order, and the error that stopped it.
#[derive(Debug)]
pub struct Fed {
    /// The events of every message read, in order.
    pub events: Vec<Event>,
    /// One entry per message read: how many of `events` the messages up to and including it
    /// gave (checked: non-decreasing, the last one `events.len()`).
    pub ends: Vec<u32>,
    /// Why the next message could not be understood; the ones after it were not read.
    pub error: Option<PluginError>,
}

impl Fed {
    /// Each message read, with its events.
    pub fn messages(&self) -> impl Iterator<Item = &[Event]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.events[start as usize..end as usize])
    }
}

type AdapterPool = Pool<AdapterPre>;
/// Instances bound through the tokenizing world: only its `tokenizer` export is called there.
pub(crate) type TokenizerPool = Pool<TokenizerPluginPre<StoreData>>;

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
        let info = pool.call_on(0, "info", Live::info)?;
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
        let out = self.pool.call_any(call, |live| live.build_request(&wire))?;
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
                .call_on(slot, "stream-parser constructor", Live::new_parser)?;
        self.pool.parser_added(slot);
        Ok(StreamParser {
            batches: self.identity.wit_version != "0.1.0",
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
    /// Whether the adapter has `feed-batch` (contract 0.2), for naming the call that failed.
    batches: bool,
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
    /// One framed message (an SSE `data:` payload, an NDJSON line, or a whole body).
    pub fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, PluginError> {
        let mut batch = Batch::default();
        batch.push(message);
        let fed = self.feed_batch(&batch)?;
        match fed.error {
            Some(e) => Err(e),
            None => Ok(fed.events),
        }
    }

    /// Every message of `batch`, in order: one plugin call for a 0.2 adapter. An error of the
    /// guest about one message stops the batch there and comes back in [`Fed::error`] with the
    /// events of the messages before it; a failure of the call itself (trap, deadline, limits,
    /// an answer that breaks the contract) is the `Err`.
    pub fn feed_batch(&mut self, batch: &Batch) -> Result<Fed, PluginError> {
        // The call the guest is given (see `Live::feed_batch`), so an error names it.
        let call = if self.batches && batch.len() > 1 {
            "feed-batch"
        } else {
            "feed"
        };
        let fed = self.call(call, |live, handle| live.feed_batch(handle, batch))?;
        check_events(self.pool.plugin(), call, &fed.events)?;
        check_ends(
            batch.len(),
            fed.events.len(),
            &fed.ends,
            fed.error.is_some(),
        )
        .map_err(|message| PluginError::BadAnswer {
            plugin: self.pool.plugin().to_owned(),
            call,
            message,
        })?;
        Ok(Fed {
            events: fed.events.into_iter().map(Event::from).collect(),
            ends: fed.ends,
            error: fed.error.map(|message| PluginError::Guest {
                plugin: self.pool.plugin().to_owned(),
                call,
                message,
            }),
        })
    }

    /// The body ended: flush anything pending.
    pub fn finish(&mut self) -> Result<Vec<Event>, PluginError> {
        let call = "finish";
        let events = self
            .call(call, |live, handle| live.finish(handle))?
            .map_err(|message| PluginError::Guest {
                plugin: self.pool.plugin().to_owned(),
                call,
                message,
            })?;
        check_events(self.pool.plugin(), call, &events)?;
        Ok(events.into_iter().map(Event::from).collect())
    }

    /// Which instance slot this parser is pinned to.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Run `f` on this parser's instance. A failure that took the instance with it leaves the
    /// parser without a resource to drop.
    fn call<R>(
        &mut self,
        call: &'static str,
        f: impl FnOnce(&mut Live<AdapterBindings>, ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let Some(handle) = self.handle else {
            return Err(PluginError::InstanceLost {
                plugin: self.pool.plugin().to_owned(),
            });
        };
        let out = self
            .pool
            .call_pinned(self.slot, self.generation, call, |live| f(live, handle));
        if let Err(e) = &out
            && (matches!(e, PluginError::InstanceLost { .. }) || e.killed_instance())
        {
            // The resource died with its instance: nothing to drop.
            self.handle = None;
        }
        out
    }
}

/// Check the message boundaries a guest gave for a batch: they must account for every message
/// sent (every one before the failing one, when one failed) and stay within the events.
fn check_ends(sent: usize, events: usize, ends: &[u32], stopped: bool) -> Result<(), String> {
    let complete = if stopped {
        ends.len() < sent
    } else {
        ends.len() == sent
    };
    if !complete {
        return Err(format!(
            "{} message ends for {sent} messages{}",
            ends.len(),
            if stopped { " and an error" } else { "" }
        ));
    }
    if ends.windows(2).any(|w| w[0] > w[1]) || ends.iter().any(|&e| e as usize > events) {
        return Err(format!(
            "message ends {ends:?} that do not fit its {events} events"
        ));
    }
    let counted = ends.last().map_or(0, |&e| e as usize);
    if counted != events {
        return Err(format!(
            "{events} events but message ends that account for {counted}"
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_that_fit_the_events_pass() {
        check_ends(3, 4, &[1, 1, 4], false).unwrap();
        // Stopped at the third message: two ends, events of the first two only.
        check_ends(3, 2, &[2, 2], true).unwrap();
        check_ends(0, 0, &[], false).unwrap();
        check_ends(2, 0, &[], true).unwrap();
    }

    #[test]
    fn ends_that_break_the_contract_are_named() {
        let err = check_ends(3, 2, &[1, 2], false).unwrap_err();
        assert_eq!(err, "2 message ends for 3 messages");
        let err = check_ends(2, 2, &[1, 2], true).unwrap_err();
        assert_eq!(err, "2 message ends for 2 messages and an error");
        let err = check_ends(2, 2, &[2, 1], false).unwrap_err();
        assert!(err.contains("do not fit its 2 events"), "{err}");
        let err = check_ends(1, 2, &[3], false).unwrap_err();
        assert!(err.contains("do not fit"), "{err}");
        let err = check_ends(1, 3, &[2], false).unwrap_err();
        assert_eq!(err, "3 events but message ends that account for 2");
    }

    #[test]
    fn a_batch_keeps_its_messages_apart() {
        let mut b = Batch::default();
        for m in [&b"{}"[..], b"", b"abc"] {
            b.push(m);
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.messages().collect::<Vec<_>>(), [&b"{}"[..], b"", b"abc"]);
        b.clear();
        assert!(b.is_empty() && b.messages().next().is_none());
    }
}
