//! A server's own metrics during a run: requests running and waiting, KV-cache use,
//! preemptions, prefix-cache hits and the server's own TTFT and ITL, scraped from its Prometheus
//! endpoint, and each level's share of them.
//!
//! Which metric means what differs per server software, not per protocol: an `openai` adapter
//! talks to vLLM, SGLang or llama.cpp alike, and each names its gauges its own way. So the
//! knowledge is one table here ([`SERVERS`]), keyed by the names a scrape contains, and the
//! server is recognised from its metrics themselves, not from the adapter or a flag. The vLLM
//! (0.32) and llama.cpp rows are checked against real captures (tests/fixtures/wire); the
//! SGLang, TGI and Triton rows follow those servers' documentation.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Periodic;
use super::prometheus::{Endpoint, Exposition, Histogram, Value};
use crate::engine::Target;

/// The metric names of one server software. Counters are cumulative; `kv_usage` is a share
/// (0–1); histograms are in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub server: &'static str,
    /// A prefix every one of its metrics has, to recognise it.
    pub prefix: &'static str,
    pub running: Option<&'static str>,
    pub waiting: Option<&'static str>,
    pub kv_usage: Option<&'static str>,
    pub preemptions: Option<&'static str>,
    pub prefix_cache_hits: Option<&'static str>,
    pub prefix_cache_queries: Option<&'static str>,
    pub cached_prompt_tokens: Option<&'static str>,
    pub ttft: Option<&'static str>,
    pub itl: Option<&'static str>,
}

const NONE: Names = Names {
    server: "",
    prefix: "",
    running: None,
    waiting: None,
    kv_usage: None,
    preemptions: None,
    prefix_cache_hits: None,
    prefix_cache_queries: None,
    cached_prompt_tokens: None,
    ttft: None,
    itl: None,
};

/// What each server calls what a load test needs.
pub const SERVERS: [Names; 5] = [
    Names {
        server: "vLLM",
        prefix: "vllm:",
        running: Some("vllm:num_requests_running"),
        waiting: Some("vllm:num_requests_waiting"),
        kv_usage: Some("vllm:kv_cache_usage_perc"),
        preemptions: Some("vllm:num_preemptions_total"),
        prefix_cache_hits: Some("vllm:prefix_cache_hits_total"),
        prefix_cache_queries: Some("vllm:prefix_cache_queries_total"),
        cached_prompt_tokens: Some("vllm:prompt_tokens_cached_total"),
        ttft: Some("vllm:time_to_first_token_seconds"),
        itl: Some("vllm:inter_token_latency_seconds"),
    },
    Names {
        server: "SGLang",
        prefix: "sglang:",
        running: Some("sglang:num_running_reqs"),
        waiting: Some("sglang:num_queue_reqs"),
        kv_usage: Some("sglang:token_usage"),
        ttft: Some("sglang:time_to_first_token_seconds"),
        itl: Some("sglang:inter_token_latency_seconds"),
        ..NONE
    },
    Names {
        server: "llama.cpp",
        prefix: "llamacpp:",
        running: Some("llamacpp:requests_processing"),
        waiting: Some("llamacpp:requests_deferred"),
        kv_usage: Some("llamacpp:kv_cache_usage_ratio"),
        cached_prompt_tokens: Some("llamacpp:prompt_tokens_cached_total"),
        ..NONE
    },
    Names {
        server: "TGI",
        prefix: "tgi_",
        running: Some("tgi_batch_current_size"),
        waiting: Some("tgi_queue_size"),
        ..NONE
    },
    Names {
        server: "Triton",
        prefix: "nv_inference_",
        waiting: Some("nv_inference_pending_request_count"),
        ..NONE
    },
];

/// The server whose metrics `e` holds.
pub fn recognise(e: &Exposition) -> Option<&'static Names> {
    SERVERS.iter().find(|n| e.has_prefix(n.prefix))
}

/// What one scrape said. Counters and histogram sums are cumulative since the server started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Scrape {
    /// Seconds since scraping began.
    pub t_s: f64,
    /// Why this scrape has no values (unreachable, not Prometheus text, an unknown server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    /// Share of the KV cache in use, 0–1.
    pub kv_usage: Option<f64>,
    pub preemptions: Option<f64>,
    pub prefix_cache_hits: Option<f64>,
    pub prefix_cache_queries: Option<f64>,
    pub cached_prompt_tokens: Option<f64>,
    pub ttft_sum_s: Option<f64>,
    pub ttft_count: Option<f64>,
    pub itl_sum_s: Option<f64>,
    pub itl_count: Option<f64>,
    /// The histograms' finite buckets, `(upper bound s, cumulative count)`: `+Inf`'s count is
    /// the count above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttft_buckets: Vec<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub itl_buckets: Vec<(f64, f64)>,
}

/// The values `names` picks out of `e`.
pub fn read(e: &Exposition, names: &Names, t_s: f64) -> Scrape {
    let num = |n: Option<&str>| n.and_then(|n| e.number(n));
    let hist = |n: Option<&str>| match n.and_then(|n| e.total(n)) {
        Some(Value::Histogram(Histogram {
            sum,
            count,
            mut buckets,
        })) => {
            buckets.retain(|b| b.0.is_finite());
            (Some(sum), Some(count), buckets)
        }
        _ => (None, None, Vec::new()),
    };
    let (ttft_sum_s, ttft_count, ttft_buckets) = hist(names.ttft);
    let (itl_sum_s, itl_count, itl_buckets) = hist(names.itl);
    Scrape {
        t_s,
        error: None,
        running: num(names.running),
        waiting: num(names.waiting),
        kv_usage: num(names.kv_usage),
        preemptions: num(names.preemptions),
        prefix_cache_hits: num(names.prefix_cache_hits),
        prefix_cache_queries: num(names.prefix_cache_queries),
        cached_prompt_tokens: num(names.cached_prompt_tokens),
        ttft_sum_s,
        ttft_count,
        itl_sum_s,
        itl_count,
        ttft_buckets,
        itl_buckets,
    }
}

/// Scraping `path` under `target` every interval, on a thread of its own with its own runtime.
pub struct Scraper {
    periodic: Periodic<(Scrape, Option<&'static str>)>,
}

impl Scraper {
    pub fn start(target: Target, path: String, interval: Duration) -> std::io::Result<Scraper> {
        let endpoint = Endpoint::new(target, path, interval.max(Duration::from_secs(1)))?;
        let periodic = Periodic::start("server-metrics", interval, move |t_s| {
            let failed = |error: String| {
                (
                    Scrape {
                        t_s,
                        error: Some(error),
                        ..Scrape::default()
                    },
                    None,
                )
            };
            let e = match endpoint.scrape() {
                Ok(e) => e,
                Err(why) => return failed(why),
            };
            match recognise(&e) {
                Some(names) => (read(&e, names, t_s), Some(names.server)),
                None => failed(
                    "no metric of a known server (vLLM, SGLang, llama.cpp, TGI, Triton)".into(),
                ),
            }
        })?;
        Ok(Scraper { periodic })
    }

    /// Resolves once the first scrape is done.
    pub async fn ready(&mut self) {
        self.periodic.ready().await;
    }

    pub fn t0(&self) -> std::time::Instant {
        self.periodic.t0()
    }

    /// Stops scraping: every scrape, and the server recognised (the last one named).
    pub fn stop(self) -> (Vec<Scrape>, Option<&'static str>) {
        let all = self.periodic.stop();
        let server = all.iter().rev().find_map(|(_, s)| *s);
        (all.into_iter().map(|(s, _)| s).collect(), server)
    }
}

/// The server over one level's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerLevel {
    /// Scrapes inside the window, and how many of them failed.
    pub scrapes: u64,
    pub failed_scrapes: u64,
    pub max_running: Option<f64>,
    pub mean_running: Option<f64>,
    pub max_waiting: Option<f64>,
    pub mean_waiting: Option<f64>,
    /// KV-cache use, %.
    pub peak_kv_usage_pct: Option<f64>,
    /// Counted over the window: the counter's last value in it minus its last before it.
    pub preemptions: Option<f64>,
    pub prefix_cache_hit_pct: Option<f64>,
    pub cached_prompt_tokens: Option<f64>,
    /// The server's own mean TTFT and ITL over the requests it finished in the window.
    pub server_mean_ttft_ms: Option<f64>,
    pub server_mean_itl_ms: Option<f64>,
    /// Their median and p99, from the growth of the server's histogram buckets over the window:
    /// as exact as the server's bucket bounds (vLLM's TTFT buckets are 40, 60, 80, 100, 250 ms
    /// …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ttft_ms: Option<Quantiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_itl_ms: Option<Quantiles>,
}

/// A median and a 99th percentile, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Quantiles {
    pub p50: Quantile,
    pub p99: Quantile,
}

/// A quantile of a Prometheus histogram: the bucket it falls in, which is all the histogram
/// knows, and a value interpolated inside it as `histogram_quantile` (and so Grafana) gives
/// it, which assumes the observations spread evenly over the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Quantile {
    pub interpolated_ms: f64,
    pub bucket_lo_ms: f64,
    /// `None`: above the highest finite bound (`interpolated_ms` is then that bound).
    pub bucket_hi_ms: Option<f64>,
}

/// The `q` quantile of the observations counted between two scrapes of one histogram:
/// `buckets` are the growth of each finite bucket, `total` the growth of the count. `None`
/// when nothing was observed. Values in the buckets' unit.
fn quantile(buckets: &[(f64, f64)], total: f64, q: f64) -> Option<Quantile> {
    if total <= 0.0 || buckets.is_empty() {
        return None;
    }
    let rank = q * total;
    let (mut lo, mut below) = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank && n > below {
            let share = (rank - below) / (n - below);
            return Some(Quantile {
                interpolated_ms: lo + (le - lo) * share.max(0.0),
                bucket_lo_ms: lo,
                bucket_hi_ms: Some(le),
            });
        }
        (lo, below) = (le, n);
    }
    Some(Quantile {
        interpolated_ms: lo,
        bucket_lo_ms: lo,
        bucket_hi_ms: None,
    })
}

/// The growth of a histogram between two scrapes, `None` when their bucket bounds differ
/// (the server restarted with other buckets) or a counter went back (it restarted).
fn growth(first: &[(f64, f64)], last: &[(f64, f64)], count: f64) -> Option<Vec<(f64, f64)>> {
    if first.len() != last.len() || count < 0.0 {
        return None;
    }
    first
        .iter()
        .zip(last)
        .map(|(a, b)| (a.0 == b.0 && b.1 >= a.1).then_some((b.0, b.1 - a.1)))
        .collect()
}

fn stats(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (
        Some(max),
        Some(values.iter().sum::<f64>() / values.len() as f64),
    )
}

/// The server's share of `scrapes` over [`from_s`, `to_s`].
pub fn level(scrapes: &[Scrape], from_s: f64, to_s: f64) -> ServerLevel {
    let inside: Vec<&Scrape> = scrapes
        .iter()
        .filter(|s| s.t_s >= from_s && s.t_s <= to_s)
        .collect();
    let ok: Vec<&Scrape> = inside
        .iter()
        .copied()
        .filter(|s| s.error.is_none())
        .collect();
    let gauge =
        |f: fn(&Scrape) -> Option<f64>| stats(&ok.iter().filter_map(|s| f(s)).collect::<Vec<_>>());
    // A counter's growth over the window: from the last good scrape at or before its start
    // to the last good one at or before its end.
    let before = |f: fn(&Scrape) -> Option<f64>, t: f64| {
        scrapes
            .iter()
            .filter(|s| s.t_s <= t && s.error.is_none())
            .filter_map(f)
            .next_back()
    };
    let delta = |f: fn(&Scrape) -> Option<f64>| Some(before(f, to_s)? - before(f, from_s)?);
    let ratio = |a: Option<f64>, b: Option<f64>, scale: f64| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b * scale),
        _ => None,
    };
    let (max_running, mean_running) = gauge(|s| s.running);
    let (max_waiting, mean_waiting) = gauge(|s| s.waiting);
    let (peak_kv, _) = gauge(|s| s.kv_usage);
    ServerLevel {
        scrapes: inside.len() as u64,
        failed_scrapes: (inside.len() - ok.len()) as u64,
        max_running,
        mean_running,
        max_waiting,
        mean_waiting,
        peak_kv_usage_pct: peak_kv.map(|k| k * 100.0),
        preemptions: delta(|s| s.preemptions),
        prefix_cache_hit_pct: ratio(
            delta(|s| s.prefix_cache_hits),
            delta(|s| s.prefix_cache_queries),
            100.0,
        ),
        cached_prompt_tokens: delta(|s| s.cached_prompt_tokens),
        server_mean_ttft_ms: ratio(delta(|s| s.ttft_sum_s), delta(|s| s.ttft_count), 1e3),
        server_mean_itl_ms: ratio(delta(|s| s.itl_sum_s), delta(|s| s.itl_count), 1e3),
        server_ttft_ms: histogram(scrapes, from_s, to_s, |s| (s.ttft_count, &s.ttft_buckets)),
        server_itl_ms: histogram(scrapes, from_s, to_s, |s| (s.itl_count, &s.itl_buckets)),
    }
}

/// A histogram's finite buckets: `(upper bound, cumulative count)`, ascending.
type Buckets = [(f64, f64)];

/// The window's median and p99 of one of the server's histograms, ms.
fn histogram(
    scrapes: &[Scrape],
    from_s: f64,
    to_s: f64,
    f: fn(&Scrape) -> (Option<f64>, &Buckets),
) -> Option<Quantiles> {
    let last_at = |t: f64| {
        scrapes
            .iter()
            .filter(|s| s.t_s <= t && s.error.is_none())
            .filter_map(|s| match f(s) {
                (Some(count), buckets) if !buckets.is_empty() => Some((count, buckets)),
                _ => None,
            })
            .next_back()
    };
    let (c0, b0) = last_at(from_s)?;
    let (c1, b1) = last_at(to_s)?;
    let total = c1 - c0;
    let grown: Vec<(f64, f64)> = growth(b0, b1, total)?
        .into_iter()
        .map(|(le, n)| (le * 1e3, n))
        .collect();
    Some(Quantiles {
        p50: quantile(&grown, total, 0.50)?,
        p99: quantile(&grown, total, 0.99)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::prometheus::parse;

    fn fixture(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/wire/");
        std::fs::read_to_string(format!("{path}{name}")).unwrap()
    }

    #[test]
    fn real_vllm_and_llama_cpp_metrics_are_recognised_and_read() {
        let e = parse(&fixture("vllm-tiny-metrics.txt")).unwrap();
        let names = recognise(&e).expect("vLLM");
        assert_eq!(names.server, "vLLM");
        let s = read(&e, names, 1.0);
        assert_eq!((s.running, s.waiting), (Some(0.0), Some(0.0)));
        assert!(s.kv_usage.is_some() && s.preemptions == Some(0.0));
        assert_eq!(s.ttft_count, Some(5.0));
        assert!(s.ttft_sum_s.unwrap() > 0.0 && s.itl_count.is_some());
        assert!(s.prefix_cache_queries.is_some() && s.cached_prompt_tokens.is_some());
        // vLLM 0.32's TTFT buckets, +Inf left to the count.
        assert_eq!(s.ttft_buckets.first().map(|b| b.0), Some(0.001));
        assert!(s.ttft_buckets.iter().all(|b| b.0.is_finite() && b.1 <= 5.0));
        assert!(!s.itl_buckets.is_empty());

        let e = parse(&fixture("llama-tiny-metrics.txt")).unwrap();
        let names = recognise(&e).expect("llama.cpp");
        assert_eq!(names.server, "llama.cpp");
        let s = read(&e, names, 1.0);
        assert!(s.running.is_some() && s.waiting.is_some());
        assert_eq!(s.cached_prompt_tokens, Some(19.0));
    }

    fn scrape(t_s: f64, running: f64, preemptions: f64, ttft: (f64, f64)) -> Scrape {
        Scrape {
            t_s,
            running: Some(running),
            waiting: Some(running / 2.0),
            kv_usage: Some(running / 100.0),
            preemptions: Some(preemptions),
            ttft_sum_s: Some(ttft.0),
            ttft_count: Some(ttft.1),
            ..Scrape::default()
        }
    }

    #[test]
    fn a_level_takes_gauges_inside_and_counters_across_its_window() {
        let scrapes = [
            scrape(0.0, 0.0, 10.0, (1.0, 10.0)),
            scrape(1.0, 8.0, 12.0, (2.0, 20.0)),
            Scrape {
                t_s: 1.5,
                error: Some("HTTP 500".into()),
                ..Scrape::default()
            },
            scrape(2.0, 6.0, 15.0, (4.0, 30.0)),
            scrape(3.0, 0.0, 15.0, (4.0, 30.0)),
        ];
        let l = level(&scrapes, 0.5, 2.5);
        assert_eq!((l.scrapes, l.failed_scrapes), (3, 1));
        assert_eq!((l.max_running, l.mean_running), (Some(8.0), Some(7.0)));
        assert_eq!(l.peak_kv_usage_pct, Some(8.0));
        assert_eq!(l.preemptions, Some(5.0));
        // (4 − 1) s over (30 − 10) requests.
        assert_eq!(l.server_mean_ttft_ms, Some(150.0));
        assert_eq!(l.prefix_cache_hit_pct, None);
        assert_eq!(l.server_ttft_ms, None, "no buckets were scraped");
    }

    #[test]
    fn quantiles_name_their_bucket_and_interpolate_inside_it_as_prometheus_does() {
        let b = [(100.0, 5.0), (200.0, 10.0)];
        let at = |total: f64, q: f64| quantile(&b, total, q).unwrap();
        let p50 = at(10.0, 0.5);
        assert_eq!((p50.bucket_lo_ms, p50.bucket_hi_ms), (0.0, Some(100.0)));
        assert_eq!(p50.interpolated_ms, 100.0);
        let p99 = at(10.0, 0.99);
        assert_eq!((p99.bucket_lo_ms, p99.bucket_hi_ms), (100.0, Some(200.0)));
        assert!((p99.interpolated_ms - 198.0).abs() < 1e-9);
        // Two observations above the last finite bound: p99 is above it.
        let over = at(12.0, 0.99);
        assert_eq!((over.bucket_lo_ms, over.bucket_hi_ms), (200.0, None));
        assert_eq!(quantile(&b, 0.0, 0.5), None);
        // An empty first bucket: the median lies in the second.
        let q = quantile(&[(100.0, 0.0), (300.0, 4.0)], 4.0, 0.5).unwrap();
        assert_eq!((q.bucket_lo_ms, q.interpolated_ms), (100.0, 200.0));
    }

    #[test]
    fn a_level_takes_the_growth_of_the_server_histogram_over_its_window() {
        let at = |t_s: f64, count: f64, buckets: Vec<(f64, f64)>| Scrape {
            t_s,
            ttft_count: Some(count),
            ttft_buckets: buckets,
            ..Scrape::default()
        };
        // 100 requests before the level, all under 40 ms; the level's 10 lie in 40–60 ms.
        let scrapes = [
            at(
                0.0,
                100.0,
                vec![(0.04, 100.0), (0.06, 100.0), (0.08, 100.0)],
            ),
            at(
                5.0,
                110.0,
                vec![(0.04, 100.0), (0.06, 110.0), (0.08, 110.0)],
            ),
        ];
        let q = level(&scrapes, 0.0, 5.0).server_ttft_ms.unwrap();
        assert_eq!((q.p50.bucket_lo_ms, q.p50.bucket_hi_ms), (40.0, Some(60.0)));
        assert!((q.p50.interpolated_ms - 50.0).abs() < 1e-9, "{q:?}");
        assert!((q.p99.interpolated_ms - 59.8).abs() < 1e-9, "{q:?}");
        // The server restarted with other buckets: no figure rather than a wrong one.
        let restarted = [scrapes[0].clone(), at(5.0, 3.0, vec![(0.05, 3.0)])];
        assert_eq!(level(&restarted, 0.0, 5.0).server_ttft_ms, None);
    }
}
