//! The GPUs sampled and the server metrics scraped during a run, per level: a line under the
//! terminal table and a table in the reports.

use super::document::{TextTable, gib, num};
use crate::gpu::LevelGpu;
use crate::result::RunResult;
use crate::telemetry::server::{Quantile, Quantiles};

/// One level's GPUs in a sentence.
pub fn line(label: &str, g: &LevelGpu) -> String {
    if g.gpus.is_empty() {
        return format!("{label}: no GPU reading (no sample of the level listed a GPU)");
    }
    let util: Vec<f64> = g
        .gpus
        .iter()
        .filter_map(|x| x.mean_sm_utilization_pct)
        .collect();
    let power: Option<f64> = g.gpus.iter().map(|x| x.mean_power_w).sum();
    let peak = g.gpus.iter().filter_map(|x| x.peak_memory_used_bytes).max();
    let from: Vec<&str> = g.gpus.iter().map(|x| x.energy_from.as_str()).collect();
    let mut parts = vec![format!(
        "{} GPU{}",
        g.gpus.len(),
        if g.gpus.len() == 1 { "" } else { "s" }
    )];
    if !util.is_empty() {
        parts.push(format!(
            "{:.0} % SM",
            util.iter().sum::<f64>() / util.len() as f64
        ));
    }
    if let Some(p) = power {
        parts.push(format!("{p:.0} W"));
    }
    if let Some(b) = peak {
        parts.push(format!("peak {} GiB", gib(b)));
    }
    match (g.energy_j, g.joules_per_output_token) {
        (Some(e), Some(j)) => parts.push(format!(
            "{} kJ, {} J per output token ({})",
            num(e / 1e3),
            num(j),
            from.first().copied().unwrap_or("")
        )),
        (Some(e), None) => parts.push(format!("{} kJ, no output token", num(e / 1e3))),
        _ => parts.push(
            from.iter()
                .find(|f| f.starts_with("no energy"))
                .copied()
                .unwrap_or("no energy")
                .to_owned(),
        ),
    }
    format!("{label}: {}", parts.join(", "))
}

/// One level's server metrics in a sentence.
pub fn server_line(
    label: &str,
    server: Option<&str>,
    s: &crate::telemetry::server::ServerLevel,
) -> String {
    let mut parts = Vec::new();
    if let (Some(max), Some(mean)) = (s.max_running, s.mean_running) {
        parts.push(format!("running {mean:.1} mean / {max:.0} max"));
    }
    if let (Some(max), Some(mean)) = (s.max_waiting, s.mean_waiting) {
        parts.push(format!("waiting {mean:.1} / {max:.0}"));
    }
    if let Some(kv) = s.peak_kv_usage_pct {
        parts.push(format!("KV cache peak {kv:.0} %"));
    }
    if let Some(p) = s.preemptions {
        parts.push(format!("{p:.0} preemptions"));
    }
    if let Some(h) = s.prefix_cache_hit_pct {
        parts.push(format!("prefix-cache hits {h:.0} %"));
    }
    // The buckets the quantiles fall in where the server exposes buckets (an interpolated
    // value would claim a precision the histogram does not have), its means otherwise.
    let bucket = |q: Quantile| match q.bucket_hi_ms {
        Some(hi) => format!("{}–{}", num(q.bucket_lo_ms), num(hi)),
        None => format!("> {}", num(q.bucket_lo_ms)),
    };
    let timing = |what: &str, q: Option<Quantiles>, mean: Option<f64>| match (q, mean) {
        (Some(q), _) => Some(format!(
            "{what} p50 {} ms, p99 {} ms",
            bucket(q.p50),
            bucket(q.p99)
        )),
        (None, Some(m)) => Some(format!("{what} mean {} ms", num(m))),
        (None, None) => None,
    };
    parts.extend(timing(
        "server TTFT",
        s.server_ttft_ms,
        s.server_mean_ttft_ms,
    ));
    parts.extend(timing("ITL", s.server_itl_ms, s.server_mean_itl_ms));
    if s.failed_scrapes > 0 {
        parts.push(format!(
            "{} of {} scrapes failed",
            s.failed_scrapes, s.scrapes
        ));
    }
    if parts.is_empty() {
        parts.push(format!("no metric read in {} scrapes", s.scrapes));
    }
    format!(
        "{label} ({}): {}",
        server.unwrap_or("server"),
        parts.join(", ")
    )
}

/// Per level: the GPUs' utilisation, memory, power and energy per output token.
pub fn table(run: &RunResult) -> Option<TextTable> {
    let rows: Vec<Vec<String>> = run
        .levels
        .iter()
        .filter_map(|l| Some((l, l.gpu.as_ref()?)))
        .flat_map(|(l, g)| {
            g.gpus.iter().map(move |x| {
                let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), num);
                vec![
                    l.label.clone(),
                    x.index.to_string(),
                    opt(x.mean_sm_utilization_pct),
                    x.max_sm_utilization_pct
                        .map_or("-".into(), |v| v.to_string()),
                    x.peak_memory_used_bytes.map_or("-".into(), gib),
                    opt(x.mean_power_w),
                    opt(x.energy_j.map(|e| e / 1e3)),
                    opt(g.joules_per_output_token),
                    x.energy_from.clone(),
                ]
            })
        })
        .collect();
    (!rows.is_empty()).then(|| TextTable {
        header: [
            "level",
            "GPU",
            "mean SM %",
            "max SM %",
            "peak memory GiB",
            "mean power W",
            "energy kJ",
            "J per output token (all GPUs)",
            "energy from",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    })
}
