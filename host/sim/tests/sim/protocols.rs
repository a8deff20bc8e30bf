//! SGLang, Ollama, Triton and TGI: the bytes each route produces, parsed and checked.

use std::time::Duration;

use llm_loadtest_sim::SimConfig;
use serde_json::{Value, json};

use crate::client::{get, keys, post, spawn};

fn quick() -> SimConfig {
    SimConfig::fixed(Duration::from_millis(3), Duration::from_millis(1))
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

#[tokio::test]
async fn sglang_stream_text_is_cumulative_with_meta_info() {
    let sim = spawn(quick()).await;
    let body = json!({"text": "The capital of France is", "stream": true,
        "sampling_params": {"max_new_tokens": 6, "ignore_eos": true, "temperature": 0}});
    let r = post(sim.local_addr(), "/generate", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/event-stream"));
    assert!(
        r.text()
            .split("\n\n")
            .filter(|e| !e.is_empty())
            .all(|e| e.starts_with("data: "))
    );
    let data = r.sse_data();
    assert_eq!(data.last().unwrap(), "[DONE]");
    let events: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 6);
    let mut previous = String::new();
    for (i, e) in events.iter().enumerate() {
        let text = e["text"].as_str().unwrap();
        assert!(text.starts_with(&previous), "text is cumulative");
        assert_eq!(words(text), i + 1);
        previous = text.to_owned();
        let meta = &e["meta_info"];
        assert_eq!(meta["prompt_tokens"], 5);
        assert_eq!(meta["completion_tokens"], i + 1);
        assert!(meta["id"].is_string());
    }
    assert!(events[4]["meta_info"]["finish_reason"].is_null());
    assert_eq!(
        events[5]["meta_info"]["finish_reason"],
        json!({"type": "length", "length": 6})
    );

    let body = json!({"text": "x", "sampling_params": {"max_new_tokens": 3, "ignore_eos": true}});
    let v = post(sim.local_addr(), "/generate", &body.to_string())
        .await
        .json();
    assert_eq!(words(v["text"].as_str().unwrap()), 3);
    assert_eq!(v["meta_info"]["completion_tokens"], 3);

    let r = post(sim.local_addr(), "/generate", "{\"text\": ").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn ollama_generate_and_chat_stream_ndjson_by_default() {
    let sim = spawn(quick()).await;
    let body = json!({"model": "llama3", "prompt": "why is the sky blue",
        "options": {"num_predict": 4, "ignore_eos": true}});
    let r = post(sim.local_addr(), "/api/generate", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 5, "4 tokens and the final line");
    for l in &lines[..4] {
        assert_eq!(keys(l), ["created_at", "done", "model", "response"]);
        assert_eq!(l["done"], false);
        assert_eq!(l["model"], "llama3");
        assert!(l["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let last = &lines[4];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "length");
    assert_eq!(last["response"], "");
    assert_eq!(last["prompt_eval_count"], 5);
    assert_eq!(last["eval_count"], 4);
    // Three 1 ms gaps between four tokens: eval_duration is at least 3 ms, in nanoseconds.
    assert!(last["eval_duration"].as_u64().unwrap() >= 3_000_000);
    assert!(last["prompt_eval_duration"].as_u64().unwrap() >= 3_000_000);
    assert!(last["total_duration"].as_u64().unwrap() >= last["eval_duration"].as_u64().unwrap());

    let body = json!({"model": "llama3", "messages": [{"role": "user", "content": "hi you"}],
        "options": {"num_predict": 2}, "stream": true});
    let r = post(sim.local_addr(), "/api/chat", &body.to_string()).await;
    let lines: Vec<Value> = r
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = lines.len() - 1;
    assert!((1..=2).contains(&n));
    assert_eq!(lines[0]["message"]["role"], "assistant");
    assert!(
        lines[0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with(' ')
    );
    assert_eq!(lines[n]["done"], true);
    assert_eq!(lines[n]["eval_count"], n);
    assert_eq!(lines[n]["prompt_eval_count"], 2);

    let body = json!({"prompt": "a b", "stream": false, "options": {"num_predict": 3, "ignore_eos": true}});
    let v = post(sim.local_addr(), "/api/generate", &body.to_string())
        .await
        .json();
    assert_eq!(v["done"], true);
    assert_eq!(words(v["response"].as_str().unwrap()), 3);
    assert_eq!(v["eval_count"], 3);

    let r = post(sim.local_addr(), "/api/chat", "not json").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
    assert_eq!(
        get(sim.local_addr(), "/api/tags").await.json()["models"][0]["name"],
        "sim-llama"
    );
    assert!(get(sim.local_addr(), "/api/version").await.json()["version"].is_string());
}

#[tokio::test]
async fn triton_generate_stream_and_generate() {
    let sim = spawn(quick()).await;
    let body = json!({"text_input": "what is ml", "max_tokens": 5, "ignore_eos": true,
        "stream": true});
    let r = post(
        sim.local_addr(),
        "/v2/models/ensemble/generate_stream",
        &body.to_string(),
    )
    .await;
    assert_eq!(r.status, 200);
    let events: Vec<Value> = r
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 5, "one event per token, no [DONE]");
    for e in &events {
        assert_eq!(keys(e), ["model_name", "model_version", "text_output"]);
        assert_eq!(e["model_name"], "ensemble");
        assert_eq!(
            words(e["text_output"].as_str().unwrap()),
            1,
            "deltas, not cumulative"
        );
    }
    let body = json!({"text_input": "q", "parameters": {"max_tokens": 4, "ignore_eos": true}});
    let v = post(
        sim.local_addr(),
        "/v2/models/ensemble/generate",
        &body.to_string(),
    )
    .await
    .json();
    assert_eq!(words(v["text_output"].as_str().unwrap()), 4);
    assert_eq!(get(sim.local_addr(), "/v2/health/ready").await.status, 200);
    let r = post(sim.local_addr(), "/v2/models/ensemble/generate", "{").await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
}

#[tokio::test]
async fn tgi_generate_stream_and_generate() {
    let sim = spawn(quick()).await;
    let body = json!({"inputs": "What is deep learning?",
        "parameters": {"max_new_tokens": 4, "ignore_eos": true}});
    let r = post(sim.local_addr(), "/generate_stream", &body.to_string()).await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().starts_with("data:{"),
        "TGI writes data: without a space"
    );
    let events: Vec<Value> = r
        .sse_data()
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 4);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(keys(&e["token"]), ["id", "logprob", "special", "text"]);
        assert_eq!(e["token"]["special"], false);
        assert_eq!(e["index"], i + 1);
    }
    assert!(events[2]["generated_text"].is_null());
    assert!(events[2]["details"].is_null());
    let last = &events[3];
    let text: String = events
        .iter()
        .map(|e| e["token"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(last["generated_text"], text);
    assert_eq!(last["details"]["generated_tokens"], 4);
    assert_eq!(last["details"]["finish_reason"], "length");

    let body = json!({"inputs": "x y", "parameters": {"max_new_tokens": 3, "details": true, "ignore_eos": true}});
    let v = post(sim.local_addr(), "/generate", &body.to_string())
        .await
        .json();
    assert_eq!(words(v["generated_text"].as_str().unwrap()), 3);
    assert_eq!(v["details"]["generated_tokens"], 3);
    let info = get(sim.local_addr(), "/info").await.json();
    assert_eq!(info["model_id"], "sim-llama");
    let r = post(sim.local_addr(), "/generate_stream", "{\"inputs\":").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error_type"], "validation");
}
