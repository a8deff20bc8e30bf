//! OpenAI routes: shapes compared with vLLM's recorded bytes (fixtures/ are copies of
//! /work/shared/wire captures), counts, errors.

use std::time::Duration;

use llm_loadtest_sim::SimConfig;
use serde_json::{Value, json};

use crate::client::{get, keys, post, spawn, sse_data};

fn quick() -> SimConfig {
    SimConfig::fixed(Duration::from_millis(2), Duration::from_millis(1))
}

fn capture_events(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!(
        "{}/tests/sim/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    sse_data(&text)
        .into_iter()
        .filter(|d| d != "[DONE]")
        .map(|d| serde_json::from_str(&d).unwrap())
        .collect()
}

fn capture_json(name: &str) -> Value {
    let text = std::fs::read_to_string(format!(
        "{}/tests/sim/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn completions_stream_matches_vllm_capture() {
    let sim = spawn(quick()).await;
    let body = json!({"model": "m", "prompt": "one two three four five", "max_tokens": 16,
        "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true}});
    let reply = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        "text/event-stream; charset=utf-8"
    );
    let data = reply.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 17, "16 tokens and one usage chunk");

    let capture = capture_events("vllm-tiny-completions-stream.sse");
    let (cap_token, cap_usage) = (&capture[0], capture.last().unwrap());
    for e in &events[..16] {
        assert_eq!(keys(e), keys(cap_token));
        assert_eq!(keys(&e["choices"][0]), keys(&cap_token["choices"][0]));
        assert_eq!(e["object"], "text_completion");
        assert_eq!(e["model"], "m");
        assert!(e["id"].as_str().unwrap().starts_with("cmpl-"));
    }
    assert!(
        events[..15]
            .iter()
            .all(|e| e["choices"][0]["finish_reason"].is_null())
    );
    assert_eq!(events[15]["choices"][0]["finish_reason"], "length");
    let usage = &events[16];
    assert!(keys(usage).iter().all(|k| keys(cap_usage).contains(k)));
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(keys(&usage["usage"]), keys(&cap_usage["usage"]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 16, "total_tokens": 21})
    );

    let text: String = events[..16]
        .iter()
        .map(|e| e["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        text.split_whitespace().count(),
        16,
        "one word per token: {text:?}"
    );
    // One body frame per token event: the client sees each token when it leaves.
    assert_eq!(reply.frames.len(), 17);
}

#[tokio::test]
async fn continuous_usage_matches_vllm_capture() {
    let sim = spawn(quick()).await;
    let body = json!({"prompt": "a b", "max_tokens": 4, "ignore_eos": true, "stream": true,
        "stream_options": {"include_usage": true, "continuous_usage_stats": true}});
    let reply = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    let capture = capture_events("vllm-tiny-completions-stream-continuous-usage.sse");
    let data = reply.sse_data();
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 5);
    for (i, e) in events[..4].iter().enumerate() {
        assert_eq!(keys(e), keys(&capture[0]));
        assert_eq!(e["usage"]["completion_tokens"], i + 1);
    }
}

#[tokio::test]
async fn chat_stream_sends_role_first_then_content_then_usage() {
    let sim = spawn(quick()).await;
    let body = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "max_tokens": 5, "ignore_eos": true, "stream": true,
        "stream_options": {"include_usage": true}});
    let reply = post(sim.local_addr(), "/v1/chat/completions", &body.to_string()).await;
    assert_eq!(reply.status, 200);
    let data = reply.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 7, "role, 5 tokens, usage");
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let capture = capture_events("llama-tiny-chat-stream.sse");
    for e in &events[1..6] {
        assert_eq!(e["object"], "chat.completion.chunk");
        let delta = &e["choices"][0]["delta"];
        assert_eq!(keys(delta), keys(&capture[1]["choices"][0]["delta"]));
        assert!(delta["content"].as_str().unwrap().starts_with(' '));
    }
    assert_eq!(events[5]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[6]["choices"], json!([]));
    // Four words of content, two template tokens per message, one for the generation prompt.
    assert_eq!(events[6]["usage"]["prompt_tokens"], 4 + 2 * 2 + 1);
    assert_eq!(events[6]["usage"]["completion_tokens"], 5);
    // The role chunk leaves with the first token, in the same frame.
    assert_eq!(reply.frames.len(), 6);
}

#[tokio::test]
async fn non_streaming_answers_match_vllm_capture() {
    let sim = spawn(quick()).await;
    let capture = capture_json("vllm-tiny-completions-nostream.json");
    let body = json!({"prompt": "x y z", "max_tokens": 8, "ignore_eos": true});
    let reply = post(sim.local_addr(), "/v1/completions", &body.to_string()).await;
    assert_eq!(reply.status, 200);
    let v = reply.json();
    assert!(keys(&v).iter().all(|k| keys(&capture).contains(k)), "{v}");
    assert!(
        keys(&v["choices"][0])
            .iter()
            .all(|k| keys(&capture["choices"][0]).contains(k))
    );
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11})
    );
    assert_eq!(
        v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        8
    );
    assert_eq!(v["model"], "sim-llama");

    let body = json!({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 3,
        "ignore_eos": true});
    let v = post(sim.local_addr(), "/v1/chat/completions", &body.to_string())
        .await
        .json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn malformed_json_is_a_400_in_vllm_style_and_unknown_routes_404() {
    let sim = spawn(quick()).await;
    let reply = post(sim.local_addr(), "/v1/completions", "{bad json").await;
    assert_eq!(reply.status, 400);
    let capture = capture_json("vllm-tiny-err-badjson.json");
    assert_eq!(keys(&reply.json()), keys(&capture));
    assert_eq!(keys(&reply.json()["error"]), keys(&capture["error"]));
    assert_eq!(reply.json()["error"]["code"], 400);
    let reply = post(sim.local_addr(), "/v1/completions", r#"{"max_tokens": 3}"#).await;
    assert_eq!(reply.status, 400, "a prompt is required");
    assert_eq!(get(sim.local_addr(), "/no/such/route").await.status, 404);
    assert_eq!(sim.stats().requests_rejected, 2);
}

#[tokio::test]
async fn models_version_health_and_metrics() {
    let sim = spawn(quick()).await;
    let addr = sim.local_addr();
    let models = get(addr, "/v1/models").await.json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "sim-llama");
    assert!(get(addr, "/version").await.json()["version"].is_string());
    assert_eq!(get(addr, "/health").await.status, 200);

    let body = json!({"prompt": "p q", "max_tokens": 3, "ignore_eos": true});
    post(addr, "/v1/completions", &body.to_string()).await;
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.header("content-type").starts_with("text/plain"));
    let text = metrics.text();
    for name in [
        "vllm:num_requests_running{",
        "vllm:num_requests_waiting{",
        "vllm:kv_cache_usage_perc{",
        "# TYPE vllm:generation_tokens_total counter",
        "# TYPE vllm:time_to_first_token_seconds histogram",
        "vllm:inter_token_latency_seconds_bucket{engine=\"0\",model_name=\"sim-llama\",le=\"0.01\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        text.contains("vllm:generation_tokens_total{engine=\"0\",model_name=\"sim-llama\"} 3.0")
    );
    assert!(text.contains("finished_reason=\"length\"} 1.0"));
    assert!(text.contains("vllm:prompt_tokens_total{engine=\"0\",model_name=\"sim-llama\"} 2.0"));
}

#[tokio::test]
async fn same_seed_same_text_and_lengths_other_seed_other_text() {
    async fn answer(seed: u64, prompt: &str) -> (String, Value) {
        let mut config = quick();
        config.seed = seed;
        let sim = spawn(config).await;
        let body = json!({"prompt": prompt, "max_tokens": 400});
        let v = post(sim.local_addr(), "/v1/completions", &body.to_string())
            .await
            .json();
        (
            v["choices"][0]["text"].as_str().unwrap().to_owned(),
            v["usage"].clone(),
        )
    }
    let a = answer(7, "the same prompt").await;
    assert_eq!(a, answer(7, "the same prompt").await);
    assert_ne!(a.0, answer(8, "the same prompt").await.0);
    assert_ne!(a.0, answer(7, "another prompt").await.0);
    let count = a.0.split_whitespace().count();
    assert_eq!(a.1["completion_tokens"], count);
}

#[tokio::test]
async fn output_lengths_follow_limits() {
    let sim = spawn(quick()).await;
    let addr = sim.local_addr();
    let mut stops = 0;
    for i in 0..40 {
        let body = json!({"prompt": format!("prompt {i}"), "max_tokens": 50, "min_tokens": 5});
        let v = post(addr, "/v1/completions", &body.to_string())
            .await
            .json();
        let n = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((5..=50).contains(&n), "{n}");
        let finish = v["choices"][0]["finish_reason"].as_str().unwrap();
        assert_eq!(finish == "length", n == 50, "{finish} at {n}");
        stops += u32::from(finish == "stop");
    }
    // With a mean of 200 tokens, P(stop before 50) = 1 - (1 - 1/200)^49 ≈ 0.22 per request.
    assert!((1..=25).contains(&stops), "{stops} early stops in 40");
}
