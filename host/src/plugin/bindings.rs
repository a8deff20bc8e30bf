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

/// The `tokenizing-adapter-plugin` world: an adapter that also exports `tokenizer`. Only its
/// `tokenizer` export is called through these bindings; the `adapter` calls go through the
/// adapter world's, which bind the same component.
pub(crate) mod tokenizing {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/tokenizing-adapter-plugin@0.1.0",
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
