//! Every first-party adapter against the simulator's route for its protocol:
//! exact token counts, both prompt shapes, no errors.
use llm_loadtest::dataset::Endpoint;

use crate::support::{fixed, run, sim, spec};

const ADAPTERS: [&str; 6] = ["openai", "vllm", "sglang", "ollama", "triton", "tgi"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_adapter_runs_end_to_end_with_exact_counts() {
    let server = sim(fixed(5, 1)).await;
    for adapter in ADAPTERS {
        for endpoint in [Endpoint::Completions, Endpoint::Chat] {
            let mut sp = spec(&server, 2, 6, 8);
            sp.adapter = adapter.to_string();
            sp.endpoint = endpoint;
            // Ollama and TGI send ignore_eos but do not declare it (their real servers
            // ignore it); the simulator honours it, so the run is allowed on purpose.
            sp.allow_unsupported = matches!(adapter, "ollama" | "tgi");
            let out = run(&sp).await;
            let s = &out.result.levels[0].summary;
            assert_eq!(
                (s.completed, s.failed),
                (6, 0),
                "{adapter} {endpoint:?}: {:?}",
                s.errors
            );
            for r in &out.records[0] {
                // One simulator word per event, and every protocol but
                // Triton's reports the count itself.
                assert_eq!(r.content_events, 8, "{adapter} {endpoint:?}");
                let server = if adapter == "triton" { None } else { Some(8) };
                assert_eq!(r.output_tokens_server, server, "{adapter} {endpoint:?}");
                // Eight simulator words: at least eight tiktoken tokens, and
                // not many more (" batching" may split) — the text arrived whole.
                let client = r.output_tokens_client.unwrap_or(0);
                assert!(
                    (8..=16).contains(&client),
                    "{adapter} {endpoint:?}: {client}"
                );
                assert!(r.ttft_ms.unwrap() >= 4.9, "{adapter}: ttft {:?}", r.ttft_ms);
                assert_eq!(r.itl_ms.len() as u32 + 1, r.content_events);
            }
            assert_eq!(out.result.adapter.name, adapter);
        }
    }
    server.shutdown().await.unwrap();
}
