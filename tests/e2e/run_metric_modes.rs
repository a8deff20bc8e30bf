//! The two metric modes on a real vLLM 0.32 stream: 128 tokens, 5 of them in chunks whose
//! text is empty (`tests/fixtures/wire/vllm-tiny-completions-128.sse`), replayed by a server
//! on 127.0.0.1 that writes each chunk on its own.
//!
//! vLLM's client takes a timestamp t_k for every chunk with a choice and computes, for that
//! timeline: TTFT = t_1 − send, ITL = [t_{k+1} − t_k], E2EL = t_last − send, TPOT =
//! (E2EL − TTFT) / (output tokens − 1). These tests check our record against those formulas
//! on our own timeline, to float precision: the counts exactly, and the identities that tie
//! the figures together (whatever the machine's load made the gaps).
use llm_loadtest::metrics::{MetricMode, RequestRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{run, spec_at};

const CAPTURE: &[u8] = include_bytes!("../fixtures/wire/vllm-tiny-completions-128.sse");
const TOKENS: usize = 128;
const EMPTY_TEXT_CHUNKS: usize = 5;
const EPS_MS: f64 = 1e-6;

/// Serves `requests` requests, one connection each, answering every one with the capture:
/// one chunked-encoding chunk per SSE message, each written and flushed on its own.
async fn replay_server(requests: usize) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        for _ in 0..requests {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tcp.set_nodelay(true).unwrap();
            read_request(&mut tcp).await;
            tcp.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
            let text = std::str::from_utf8(CAPTURE).unwrap();
            for message in text.split_inclusive("\n\n") {
                let chunk = format!("{:x}\r\n{message}\r\n", message.len());
                tcp.write_all(chunk.as_bytes()).await.unwrap();
                tcp.flush().await.unwrap();
            }
            tcp.write_all(b"0\r\n\r\n").await.unwrap();
            tcp.shutdown().await.unwrap();
        }
    });
    (url, task)
}

/// Reads one request's head and its content-length body.
async fn read_request(tcp: &mut tokio::net::TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before a whole request");
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        if got.len() >= end + 4 + length {
            return;
        }
    }
}

async fn replayed(mode: MetricMode) -> RequestRecord {
    let (url, server) = replay_server(1).await;
    let mut spec = spec_at(&url, 1, 1, 4);
    spec.metric_mode = mode;
    let out = run(&spec).await;
    server.await.unwrap();
    assert_eq!(out.result.settings.metric_mode, mode);
    let r = out.records[0][0].clone();
    assert!(r.succeeded(), "{:?}", r.error);
    assert_eq!(r.output_tokens, TOKENS as u32, "usage");
    r
}

/// The identities of vLLM's formulas on the record's own timeline.
fn assert_vllm_formulas(r: &RequestRecord, arrivals: usize) {
    assert_eq!(r.content_events as usize, arrivals);
    assert_eq!(r.itl_ms.len(), arrivals - 1);
    let ttft = r.ttft_ms.unwrap();
    let e2el = r.e2el_ms.unwrap();
    let spanned: f64 = r.itl_ms.iter().sum();
    assert!((ttft + spanned - e2el).abs() < EPS_MS, "ttft + itl != e2el");
    let tpot = r.tpot_ms().unwrap();
    assert!(((e2el - ttft) / (TOKENS - 1) as f64 - tpot).abs() < EPS_MS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_mode_times_every_chunk_with_a_choice() {
    let r = replayed(MetricMode::Vllm).await;
    // One arrival per token chunk, empty text or not: 127 gaps, as vLLM's client records.
    assert_vllm_formulas(&r, TOKENS);
    // So mean ITL is TPOT exactly, as in vLLM's results.
    let mean_itl = r.itl_ms.iter().sum::<f64>() / r.itl_ms.len() as f64;
    assert!((mean_itl - r.tpot_ms().unwrap()).abs() < EPS_MS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_mode_times_only_chunks_with_text() {
    let r = replayed(MetricMode::Content).await;
    // The 5 empty-text chunks are not arrivals: 122 gaps where vLLM records 127. TPOT is
    // still per generated token (usage says 128).
    assert_vllm_formulas(&r, TOKENS - EMPTY_TEXT_CHUNKS);
}
