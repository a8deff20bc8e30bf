//! Write [llm-loadtest](https://github.com/llm-loadtest/llm-loadtest) server
//! adapters and SLO policies as WebAssembly components.
//!
//! An adapter teaches llm-loadtest one server protocol: it turns a
//! [`GenerationRequest`] into an [`HttpRequest`], and its [`StreamParser`]
//! turns each framed response message into [`Event`]s (tokens, usage, finish,
//! errors). The host owns sockets, clocks and framing; the adapter never sees
//! the network or a timestamp, so it cannot distort a measurement.
//!
//! Implement [`Adapter`], call [`register_adapter!`] once, and build with
//! `cargo build --target wasm32-wasip2 --release`: the `.wasm` in
//! `target/wasm32-wasip2/release/` is a component that
//! `llm-loadtest run --adapter my_adapter.wasm` loads. The crate needs
//! `crate-type = ["cdylib", "rlib"]` (the rlib lets `cargo test` run natively).
//!
//! # Example: a complete adapter
//!
//! A server that takes `POST /generate {"prompt", "max_tokens"}` and streams
//! NDJSON lines `{"t": "text"}`, ending with `{"done": true, "n": 12}`:
//!
//! ```
//! use llm_loadtest_sdk::json::{body_with_extra, parse_message, str_at, u32_at};
//! use llm_loadtest_sdk::serde_json::json;
//! use llm_loadtest_sdk::{
//!     Adapter, AdapterInfo, Event, Framing, GenerationRequest, HttpRequest, Prompt,
//!     StreamParser, Usage,
//! };
//!
//! pub struct Tiny;
//!
//! impl Adapter for Tiny {
//!     type Parser = TinyParser;
//!
//!     fn info() -> AdapterInfo {
//!         AdapterInfo {
//!             name: "tiny".into(),
//!             version: "0.1.0".into(),
//!             description: "The tiny NDJSON protocol".into(),
//!             framing: Framing::Ndjson,
//!             default_path: "/generate".into(),
//!             capabilities: vec!["completions".into(), "usage".into()],
//!         }
//!     }
//!
//!     fn build_request(req: &GenerationRequest) -> Result<HttpRequest, String> {
//!         let Prompt::Text(prompt) = &req.prompt else {
//!             return Err("tiny: chat prompts are not supported".into());
//!         };
//!         let body = json!({"prompt": prompt, "max_tokens": req.max_tokens});
//!         // `?` turns a bad `extra_body` into a clear error message.
//!         let body = body_with_extra(body, req.extra_body.as_deref())?;
//!         Ok(HttpRequest::post_json("/generate", body, Framing::Ndjson))
//!     }
//! }
//!
//! #[derive(Default)]
//! pub struct TinyParser;
//!
//! impl StreamParser for TinyParser {
//!     fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
//!         let v = parse_message(message)?;
//!         let mut events = Vec::new();
//!         if let Some(t) = str_at(&v, "/t").filter(|t| !t.is_empty()) {
//!             events.push(Event::token(t));
//!         }
//!         if v["done"] == true {
//!             let completion_tokens = u32_at(&v, "/n");
//!             events.push(Event::Usage(Usage { completion_tokens, ..Usage::default() }));
//!             events.push(Event::Done);
//!         }
//!         Ok(events)
//!     }
//! }
//!
//! llm_loadtest_sdk::register_adapter!(Tiny);
//!
//! // A native test: replay a recorded body exactly as the host would.
//! let body = b"{\"t\": \"Hel\"}\n{\"t\": \"lo\"}\n{\"done\": true, \"n\": 2}\n";
//! let replay = llm_loadtest_sdk::testing::replay_split_everywhere::<Tiny>(Framing::Ndjson, body)
//!     .unwrap();
//! assert_eq!(replay.summary.content, "Hello");
//! assert_eq!(replay.summary.content_events, 2);
//! assert_eq!(replay.summary.usage.and_then(|u| u.completion_tokens), Some(2));
//! assert!(replay.summary.done);
//! ```
//!
//! # Rules of the contract
//!
//! - Each [`Event::Token`] with text is timed as a token arrival. A message
//!   that carries a generated token but no text (a byte-level token that
//!   completes no UTF-8 character yet, a chat stream's role-only first chunk)
//!   gets one [`Event::Token`] with empty text and `tokens: None`: the host
//!   times it only in `--metric-mode vllm`, as vLLM's client does. Emit no
//!   other empty tokens.
//! - A server that repeats usage on every chunk: emit each with cumulative
//!   totals; the host keeps the last.
//! - An error the server reports inside a 200 stream is an [`Event::Error`];
//!   an `Err` from `feed` means the message could not be understood.
//! - [`log`] writes to the host's log (stderr in native tests). Never log
//!   secrets.
//!
//! Adapters built with this SDK target contract 0.2: the host hands the parser every message one
//! read brought in one call, and the SDK feeds them to [`StreamParser::feed_into`] (by default
//! [`StreamParser::feed`]) in order. Nothing changes for the author; a parser on a hot path can
//! implement `feed_into` to append to one list instead of returning a `Vec` per message.
//!
//! An adapter whose server counts tokens on request (a `/tokenize` endpoint) also implements
//! [`Tokenize`] and registers with `register_adapter!(MyAdapter, tokenizer)`; the host then sizes
//! prompts so that the server counts exactly the length asked for.
//!
//! SLO policies work the same way with [`SloPolicy`] and
//! [`register_slo_policy!`], and recommendation policies (which concurrency `recommend`
//! measures next, and where C* lies) with [`RecommendPolicy`] and
//! [`register_recommend_policy!`]; [`recommend`] has a complete example.
#![deny(missing_docs)]

extern crate self as llm_loadtest_sdk;

pub mod adapter;
#[doc(hidden)]
pub mod bindings;
pub mod framing;
pub mod json;
mod log;
pub mod recommend;
pub mod slo;
pub mod testing;
pub mod types;

pub use adapter::{Adapter, StreamParser, Tokenize};
pub use framing::Framing;
pub use log::{Level, log};
pub use recommend::RecommendPolicy;
pub use serde_json;
pub use slo::{Measurement, Objective, PolicyInfo, SloPolicy, Verdict};
pub use types::{
    AdapterInfo, Event, GenerationRequest, Header, HttpRequest, Message, Prompt, TokenDelta,
    TokenizeQuery, TokenizeStep, Usage,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::glue::{AdapterExport, ParserGlue, RecommendExport, SloExport, TokenizerExport};
    pub use wit_bindgen;
}
mod glue;

/// Export a type implementing [`Adapter`] as this component's adapter.
///
/// Invoke it once, at the top level of the plugin crate. `register_adapter!(MyAdapter,
/// tokenizer)` also exports its [`Tokenize`] implementation, so the host can ask the server
/// to count prompt tokens.
#[macro_export]
macro_rules! register_adapter {
    ($adapter:ty, tokenizer) => {
        const _: fn() = || {
            fn is_tokenizing<A: $crate::Tokenize>() {}
            is_tokenizing::<$adapter>();
        };
        $crate::register_adapter!($adapter);
        // The tokenizer world's export beside the adapter world's: the component's world is
        // their union (`tokenizing-adapter-plugin`).
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __LlmLoadtestTokenizerExport = $crate::__private::TokenizerExport<$adapter>;
            $crate::bindings::tokenizer_world::export_tokenizer_world!(
                __LlmLoadtestTokenizerExport with_types_in $crate::bindings::tokenizer_world
            );
        };
    };
    ($adapter:ty) => {
        // Native builds (unit tests) only check the type: the export names
        // (`pkg:ns/iface#func`) are not valid symbol names for native linkers.
        const _: fn() = || {
            fn is_adapter<A: $crate::Adapter>() {}
            is_adapter::<$adapter>();
        };
        // wit-bindgen's export glue is canonical-ABI code built on raw
        // pointers; it is generated, not written by hand.
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __LlmLoadtestAdapterExport = $crate::__private::AdapterExport<$adapter>;
            $crate::bindings::adapter_world::export_adapter_world!(
                __LlmLoadtestAdapterExport with_types_in $crate::bindings::adapter_world
            );
        };
    };
}

/// Export a type implementing [`SloPolicy`] as this component's SLO policy.
///
/// Invoke it once, at the top level of the plugin crate.
#[macro_export]
macro_rules! register_slo_policy {
    ($policy:ty) => {
        // See `register_adapter!`: native builds only check the type.
        const _: fn() = || {
            fn is_policy<P: $crate::SloPolicy>() {}
            is_policy::<$policy>();
        };
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __LlmLoadtestSloExport = $crate::__private::SloExport<$policy>;
            $crate::bindings::slo_world::export_slo_world!(
                __LlmLoadtestSloExport with_types_in $crate::bindings::slo_world
            );
        };
    };
}

/// Export a type implementing [`RecommendPolicy`] as this component's recommendation policy.
///
/// Invoke it once, at the top level of the plugin crate.
#[macro_export]
macro_rules! register_recommend_policy {
    ($policy:ty) => {
        // See `register_adapter!`: native builds only check the type.
        const _: fn() = || {
            fn is_policy<P: $crate::RecommendPolicy>() {}
            is_policy::<$policy>();
        };
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __LlmLoadtestRecommendExport = $crate::__private::RecommendExport<$policy>;
            $crate::bindings::recommend_world::export_recommend_world!(
                __LlmLoadtestRecommendExport with_types_in $crate::bindings::recommend_world
            );
        };
    };
}
