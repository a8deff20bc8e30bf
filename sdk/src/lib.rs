//! SDK for llm-loadtest server adapters and SLO policies.
#![deny(missing_docs)]

extern crate self as llm_loadtest_sdk;

pub mod adapter;
#[doc(hidden)]
pub mod bindings;
pub mod framing;
pub mod json;
mod log;
pub mod slo;
pub mod types;

pub use adapter::{Adapter, StreamParser};
pub use framing::Framing;
pub use log::{Level, log};
pub use serde_json;
pub use slo::{Measurement, Objective, PolicyInfo, SloPolicy, Verdict};
pub use types::{
    AdapterInfo, Event, GenerationRequest, Header, HttpRequest, Message, Prompt, TokenDelta, Usage,
};

#[doc(hidden)]
pub mod __private {
    pub use crate::glue::{AdapterExport, ParserGlue, SloExport};
    pub use wit_bindgen;
}
mod glue;

/// Export a type implementing [`Adapter`] as this component's adapter.
///
/// Invoke it once, at the top level of the plugin crate.
#[macro_export]
macro_rules! register_adapter {
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
