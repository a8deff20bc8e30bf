//! Prompts sized in the server's own tokens: by the server's `/tokenize` through the adapter
//! (the default, `auto`), by a model's `tokenizer.json`, or — the old way, kept for servers
//! that cannot count — by cl100k_base, which the server counts differently. The simulator
//! counts whitespace-separated words, plus a chat template's tokens for messages, and reports
//! them as `prompt_tokens`: the tests compare that with what was asked.
use llm_loadtest::dataset::{DatasetSpec, Endpoint};
use llm_loadtest::runner::{self, RunError, RunOutput};
use llm_loadtest::tokenize::{ResolveError, TokenizerChoice, TokenizerKind};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::support::{fixed, run, runtime, sim, spec};

const INPUT_LEN: u32 = 40;

fn server_prompt_tokens(out: &RunOutput) -> Vec<Option<u32>> {
    out.records[0]
        .iter()
        .map(|r| r.prompt_tokens_server)
        .collect()
}

fn sized(
    server: &llm_loadtest_sim::SimHandle,
    adapter: &str,
    endpoint: Endpoint,
) -> runner::RunSpec {
    let mut sp = spec(server, 2, 12, 4);
    sp.adapter = adapter.to_owned();
    sp.endpoint = endpoint;
    sp.tokenizer = TokenizerChoice::Auto;
    sp.allow_unsupported = adapter == "tgi";
    sp.dataset = DatasetSpec::Synthetic {
        input_len: INPUT_LEN,
        output_len: 4,
        range_ratio: 0.5,
        prefix_len: 8,
    };
    sp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_asks_the_server_and_the_server_counts_exactly_what_was_asked() {
    let server = sim(fixed(1, 1)).await;
    for (adapter, endpoint) in [
        ("vllm", Endpoint::Completions),
        // Chat: the count includes the template, as vLLM's /tokenize with messages does.
        ("vllm", Endpoint::Chat),
        ("openai", Endpoint::Chat),
        ("sglang", Endpoint::Completions),
        ("tgi", Endpoint::Chat),
    ] {
        let before = server.stats().tokenize_requests;
        let out = run(&sized(&server, adapter, endpoint)).await;
        let s = &out.result.levels[0].summary;
        assert_eq!(s.failed, 0, "{adapter} {endpoint:?}: {:?}", s.errors);
        assert!(
            out.result.settings.tokenizer.starts_with("server"),
            "{adapter}: {}",
            out.result.settings.tokenizer
        );
        assert!(
            server.stats().tokenize_requests > before,
            "{adapter}: never asked"
        );
        for r in &out.records[0] {
            // The sampled length (range 0.5 around 40, plus the 8-token prefix) is what the
            // server counted, to the token.
            assert_eq!(
                r.prompt_tokens_server,
                Some(r.input_tokens),
                "{adapter} {endpoint:?}"
            );
            assert!((28..=68).contains(&r.input_tokens), "{}", r.input_tokens);
        }
        let lengths: std::collections::HashSet<u32> =
            out.records[0].iter().map(|r| r.input_tokens).collect();
        assert!(
            lengths.len() > 3,
            "{adapter}: lengths do not vary: {lengths:?}"
        );
        let w = s.workload.as_ref().expect("usage came back");
        assert_eq!(w.requested_input_tokens, w.server_input_tokens, "{adapter}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cl100k_is_counted_differently_by_the_server_and_the_check_says_so() {
    let server = sim(fixed(1, 1)).await;
    let mut sp = sized(&server, "vllm", Endpoint::Completions);
    sp.tokenizer = TokenizerChoice::Bpe(TokenizerKind::Cl100kBase);
    let out = run(&sp).await;
    assert_eq!(out.result.settings.tokenizer, "cl100k_base");
    let differ = out.records[0]
        .iter()
        .filter(|r| r.prompt_tokens_server != Some(r.input_tokens))
        .count();
    assert!(
        differ > 6,
        "cl100k tokens are not words: {differ} of 12 differ"
    );
    assert_eq!(server.stats().tokenize_requests, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_models_tokenizer_json_sizes_prompts_without_asking_the_server() {
    let server = sim(fixed(1, 1)).await;
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/tokenizers/whitespace"
    );
    let mut sp = sized(&server, "ollama", Endpoint::Completions);
    sp.allow_unsupported = true;
    sp.tokenizer = dir.parse().expect("the fixture exists");
    let out = run(&sp).await;
    assert_eq!(out.result.levels[0].summary.failed, 0);
    assert!(out.result.settings.tokenizer.starts_with("hf:"));
    assert_eq!(server.stats().tokenize_requests, 0);
    let counts = server_prompt_tokens(&out);
    for (r, n) in out.records[0].iter().zip(counts) {
        assert_eq!(n, Some(r.input_tokens));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_tokenizer_auto_falls_back_and_server_refuses() {
    let server = sim(fixed(1, 1)).await;
    // Ollama has no tokenize endpoint, so its adapter exports no tokenizer.
    let mut sp = sized(&server, "ollama", Endpoint::Completions);
    sp.allow_unsupported = true;
    let out = run(&sp).await;
    assert_eq!(out.result.settings.tokenizer, "cl100k_base");
    assert_eq!(out.result.levels[0].summary.failed, 0);

    sp.tokenizer = TokenizerChoice::Server;
    let (events, _) = broadcast::channel(16);
    let err = runner::execute(&sp, &runtime(), events, CancellationToken::new())
        .await
        .expect_err("no tokenizer to ask");
    assert!(
        matches!(
            err,
            RunError::TokenizerChoice(ResolveError::NoServerTokenizer { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ollama"), "{err}");
    server.shutdown().await.unwrap();
}

/// The server's version is asked before the run and recorded; the simulator speaks vLLM's
/// `/version`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_version_is_recorded() {
    let server = sim(fixed(1, 1)).await;
    let mut sp = sized(&server, "vllm", Endpoint::Completions);
    sp.probe_server_version = true;
    let out = run(&sp).await;
    let version = out
        .result
        .settings
        .server_version
        .expect("the simulator says one");
    assert!(version.starts_with("vLLM "), "{version}");
    server.shutdown().await.unwrap();
}
