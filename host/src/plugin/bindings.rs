//! wasmtime bindings for the v0.1 WIT worlds, kept apart so the generated
//! code is compiled once and never leaks into the public API (which uses the
//! host-native types of `plugin::types`).

/// The `adapter-plugin` world.
pub(crate) mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/adapter-plugin@0.1.0",
        // Our `host` import is cheap and infallible: no store access, no traps.
    });
}

/// The 0.2 `adapter-plugin` world: 0.1's adapter with `feed-batch` in place of `feed`. Its
/// types and `host` import are 0.1's, so they map onto the 0.1 bindings' Rust types and one set
/// of conversions serves both versions.
pub(crate) mod adapter_v2 {
    wasmtime::component::bindgen!({
        path: ["../wit/v0.1", "../wit/v0.2"],
        world: "llm-loadtest:plugin/adapter-plugin@0.2.0",
        with: {
            "llm-loadtest:plugin/host@0.1.0": super::adapter::llm_loadtest::plugin::host,
            "llm-loadtest:plugin/types@0.1.0": super::adapter::llm_loadtest::plugin::types,
        },
    });
}

/// The `tokenizer-plugin` world: the optional `tokenizer` export alone, bound by name in a
/// component that exports it beside an `adapter` of either contract version.
pub(crate) mod tokenizer {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/tokenizer-plugin@0.1.0",
        with: {
            "llm-loadtest:plugin/host": super::adapter::llm_loadtest::plugin::host,
            "llm-loadtest:plugin/types": super::adapter::llm_loadtest::plugin::types,
        },
    });
}

/// The `slo-plugin` world. It shares the `host` import with the adapter
/// world, so one `Host` implementation serves both.
pub(crate) mod slo {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/slo-plugin@0.1.0",
        with: {
            "llm-loadtest:plugin/host": super::adapter::llm_loadtest::plugin::host,
        },
    });
}

/// The `recommend-plugin` world. It shares the `host` import with the adapter world.
pub(crate) mod recommend {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/recommend-plugin@0.1.0",
        with: {
            "llm-loadtest:plugin/host": super::adapter::llm_loadtest::plugin::host,
        },
    });
}
