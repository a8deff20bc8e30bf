//! The GPUs sampled during a run, per level: a line under the terminal table and a table in the
//! reports.

use super::document::{TextTable, num};
use crate::gpu::LevelGpu;
use crate::result::RunResult;

fn gib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1u32 << 30))
}

/// One level's GPUs in a sentence.
pub fn line(label: &str, g: &LevelGpu) -> String {
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
