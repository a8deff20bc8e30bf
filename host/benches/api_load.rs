//! The API under load: `cargo bench --bench api_load -- --clients 200 --seconds 20`.
//! A `serve` API in-process over a fresh data directory, the simulator beside it; one run
//! saved first, then a run of `--seconds` at 64 streams while `--clients` clients read the
//! history and the saved result as fast as they are answered. Prints each route's latency
//! percentiles, the answers that were not 200, and what the run measured meanwhile.
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use llm_loadtest::api::guard::{self, Limits};
use llm_loadtest::api::keys::{self, Keys, Role};
use llm_loadtest::api::{self, Api, auth, jobs};
use llm_loadtest::plugin::{Runtime, RuntimeConfig};

#[path = "shared/args.rs"]
mod bench_args;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    key: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
        .expect("a request");
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            (status, body)
        }
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_for(client: &HttpClient, base: &str, key: &str, id: &str) -> serde_json::Value {
    loop {
        let (_, body) = call(
            client,
            "GET",
            &format!("{base}/api/v1/benchmark/run/{id}"),
            key,
            None,
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if !matches!(v["status"].as_str(), Some("queued" | "running")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() {
    let clients = bench_args::number("--clients", 200) as usize;
    let seconds = bench_args::number("--seconds", 20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("a data directory");
        let (key, _) = keys::create(dir.path(), "bench", Role::Admin).expect("a key");
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let sim = llm_loadtest_sim::start(
            llm_loadtest_sim::SimConfig::fixed(Duration::from_millis(50), Duration::from_millis(10)),
            sim_listener,
        )
        .await
        .expect("the simulator");
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: llm_loadtest::plugin::default_cache_dir(),
            ..RuntimeConfig::default()
        })
        .expect("the plugin runtime");
        let jobs = Arc::new(jobs::Jobs::new(
            dir.path().to_path_buf(),
            runtime,
            1,
            Duration::from_secs(3600),
        ));
        let api = Arc::new(Api::new(
            auth::Gate::new(Keys::new(dir.path()).expect("keys"), true),
            Limits {
                targets: guard::loopback(),
                max_concurrency: 1024,
                max_run_time: Duration::from_secs(3600),
            },
            jobs,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(api::serve(listener, api, std::future::pending()));
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(clients)
            .build_http();
        let run = |bound: serde_json::Value| {
            let mut body = serde_json::json!({
                "server": format!("http://{}", sim.local_addr()),
                "model": "sim-llama", "concurrency": [64], "output-len": 32,
                "tokenizer": "cl100k_base", "no-progress": true,
            });
            for (k, v) in bound.as_object().expect("an object") {
                body[k] = v.clone();
            }
            body.to_string()
        };
        let submit = |body: String| {
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move {
                let (status, answer) =
                    call(&client, "POST", &format!("{base}/api/v1/benchmark/run"), &key, Some(&body)).await;
                assert_eq!(status, 202, "{answer}");
                let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
                v["id"].as_str().expect("an id").to_string()
            }
        };
        let saved = submit(run(serde_json::json!({"num-prompts": 500}))).await;
        wait_for(&client, &base, &key, &saved).await;
        let live = submit(run(serde_json::json!({"duration": format!("{seconds}s")}))).await;
        println!("api load: {clients} clients reading history and a saved run's result while a run of {seconds} s at 64 streams goes");
        let started = Instant::now();
        let stop = tokio_util::sync::CancellationToken::new();
        let mut readers = Vec::new();
        for i in 0..clients {
            let (client, base, key, saved, stop) =
                (client.clone(), base.clone(), key.clone(), saved.clone(), stop.clone());
            readers.push(tokio::spawn(async move {
                let mut history = Histogram::<u64>::new(3).expect("a histogram");
                let mut result = Histogram::<u64>::new(3).expect("a histogram");
                let mut failed = Vec::new();
                let mut n = i;
                while !stop.is_cancelled() {
                    n += 1;
                    let (url, h) = if n % 2 == 0 {
                        (format!("{base}/api/v1/benchmark/history?limit=20"), &mut history)
                    } else {
                        (format!("{base}/api/v1/benchmark/result/{saved}"), &mut result)
                    };
                    let t = Instant::now();
                    let (status, body) = call(&client, "GET", &url, &key, None).await;
                    let _ = h.record(t.elapsed().as_micros() as u64);
                    if status != 200 {
                        failed.push(format!("{status} {}", body.chars().take(120).collect::<String>()));
                    }
                }
                (history, result, failed)
            }));
        }
        let end = wait_for(&client, &base, &key, &live).await;
        stop.cancel();
        let mut history = Histogram::<u64>::new(3).expect("a histogram");
        let mut result = Histogram::<u64>::new(3).expect("a histogram");
        let mut failed = Vec::new();
        for r in readers {
            let (h, res, f) = r.await.expect("a reader");
            let _ = history.add(&h);
            let _ = result.add(&res);
            failed.extend(f);
        }
        let wall = started.elapsed().as_secs_f64();
        for (name, h) in [("history?limit=20", &history), ("result/{id} (500 requests)", &result)] {
            println!(
                "  GET {name:<28} {:>7} answers ({:>6.0}/s)  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
                h.len(),
                h.len() as f64 / wall,
                h.value_at_quantile(0.5) as f64 / 1000.0,
                h.value_at_quantile(0.99) as f64 / 1000.0,
                h.max() as f64 / 1000.0
            );
        }
        println!("  answers other than 200: {}", failed.len());
        for f in failed.iter().take(5) {
            println!("    {f}");
        }
        println!("  the run meanwhile: {} ({} levels finished)", end["status"], end["finished"].as_array().map_or(0, Vec::len));
        let (_, r) = call(&client, "GET", &format!("{base}/api/v1/benchmark/result/{live}"), &key, None).await;
        let v: serde_json::Value = serde_json::from_str(&r).unwrap_or_default();
        let s = &v["result"]["levels"][0]["summary"];
        println!(
            "  its level: {} completed, {} failed, TTFT p99 {:.1} ms (simulator: 50 ms), ITL p50 {:.2} ms (10 ms)",
            s["completed"], s["failed"], s["ttft_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            s["itl_ms"]["p50"].as_f64().unwrap_or(f64::NAN)
        );
    });
}
