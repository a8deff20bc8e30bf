//! Every OpenAI-protocol capture replayed through the openai adapter.

#[macro_use]
#[path = "shared/wire_cases.rs"]
mod wire_cases;

use llm_loadtest_plugin_openai::OpenAi;

wire_tests!(OpenAi);
