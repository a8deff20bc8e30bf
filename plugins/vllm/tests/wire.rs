//! Every OpenAI-protocol capture replayed through the vllm adapter (the
//! cases are shared with the openai plugin).

#[macro_use]
#[path = "../../openai/tests/shared/wire_cases.rs"]
mod wire_cases;

use llm_loadtest_plugin_vllm::Vllm;

wire_tests!(Vllm);
