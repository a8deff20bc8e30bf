//! wit-bindgen output for the worlds a plugin can target. Authors never
//! name anything here: the `register_*!` macros and the SDK's conversions do.

// Generated code calls into the canonical ABI with raw pointers; there is no
// way to bind a component without it.
#![allow(unsafe_code)]
#![allow(missing_docs)]

/// The `tokenizer-plugin` world (contract 0.1): imports `host`, exports `tokenizer`. Its
/// `types` and `host` are the ones every other world here shares (0.2 changed only the
/// adapter), so one set of conversions serves them all. A tokenizing adapter exports this world
/// and the adapter world from one component.
pub mod tokenizer_world {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/tokenizer-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_tokenizer_world",
        default_bindings_module: "::llm_loadtest_sdk::bindings::tokenizer_world",
        runtime_path: "::llm_loadtest_sdk::__private::wit_bindgen::rt",
    });
}

/// The `adapter-plugin` world of contract 0.2: imports `host`, exports `adapter` with
/// `feed-batch` (every message of one read in one call).
pub mod adapter_world {
    wit_bindgen::generate!({
        path: ["../wit/v0.1", "../wit/v0.2"],
        world: "llm-loadtest:plugin/adapter-plugin@0.2.0",
        pub_export_macro: true,
        export_macro_name: "export_adapter_world",
        default_bindings_module: "::llm_loadtest_sdk::bindings::adapter_world",
        runtime_path: "::llm_loadtest_sdk::__private::wit_bindgen::rt",
        with: {
            "llm-loadtest:plugin/host@0.1.0": crate::bindings::tokenizer_world::llm_loadtest::plugin::host,
            "llm-loadtest:plugin/types@0.1.0": crate::bindings::tokenizer_world::llm_loadtest::plugin::types,
        },
    });
}

/// The `slo-plugin` world: imports `host`, exports `slo-policy`. The `host`
/// interface is shared with the other worlds so there is one `log` binding.
pub mod slo_world {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/slo-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_slo_world",
        default_bindings_module: "::llm_loadtest_sdk::bindings::slo_world",
        runtime_path: "::llm_loadtest_sdk::__private::wit_bindgen::rt",
        with: {
            "llm-loadtest:plugin/host@0.1.0": crate::bindings::tokenizer_world::llm_loadtest::plugin::host,
        },
    });
}

/// The `recommend-plugin` world: imports `host`, exports `recommend-policy`.
pub mod recommend_world {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "llm-loadtest:plugin/recommend-plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_recommend_world",
        default_bindings_module: "::llm_loadtest_sdk::bindings::recommend_world",
        runtime_path: "::llm_loadtest_sdk::__private::wit_bindgen::rt",
        with: {
            "llm-loadtest:plugin/host@0.1.0": crate::bindings::tokenizer_world::llm_loadtest::plugin::host,
        },
    });
}
