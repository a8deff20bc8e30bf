//! wasm build helper.
