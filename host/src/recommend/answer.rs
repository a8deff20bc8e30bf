//! The recommendation: replicas and GPUs for a peak concurrency, from C* and its bracket,
//! with what binds above C* and one plain sentence.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::metrics::{LevelSummary, Objective};

/// What was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub peak_concurrency: u32,
    /// Share of requests that must meet every objective (0.95).
    pub target: f64,
    pub objectives: Vec<Objective>,
    pub gpus_per_replica: u32,
    /// `--gpu-type`, or NVML's name when the server runs on this machine; never guessed.
    pub gpu_type: Option<String>,
    /// Where `gpu_type` came from, or why there is none.
    pub gpu_type_from: Option<String>,
    pub cost_per_gpu_hour: Option<f64>,
}

/// One measured probe, as the answer lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProbeResult {
    pub concurrency: u32,
    /// Requests measured (after warm-up), failures included.
    pub requests: u64,
    pub good: u64,
    pub attainment_pct: f64,
    pub output_tokens_per_s: f64,
}

/// Cost at the recommended GPU count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cost {
    pub per_gpu_hour: f64,
    pub per_hour: f64,
    /// At C* per replica, every replica as busy as the measured one.
    pub per_million_output_tokens: Option<f64>,
}

/// The answer `recommend` gives and saves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Recommendation {
    pub peak_concurrency: u32,
    pub goodput_target_pct: f64,
    pub objectives: Vec<Objective>,
    /// C*: the largest measured concurrency one replica holds at the target (0: none).
    pub per_replica: u32,
    /// The smallest measured concurrency above C* that missed the target, when one did.
    pub first_failing: Option<u32>,
    /// The search stopped at its largest allowed concurrency, which passed: C* is at least
    /// `per_replica`.
    pub at_least: bool,
    /// ⌈peak / C*⌉; absent when no concurrency met the target.
    pub replicas: Option<u32>,
    pub gpus_per_replica: u32,
    pub gpus: Option<u32>,
    /// GPUs if one replica held as many as the bracket allows (`first_failing − 1`), and as
    /// measured (C*): the range the bracket leaves open.
    pub gpus_range: Option<(u32, u32)>,
    pub gpu_type: Option<String>,
    /// Where `gpu_type` came from (`--gpu-type`, NVML on the server's machine), or why the
    /// answer names no GPU model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_type_from: Option<String>,
    /// What failed first above C* (or at concurrency 1 when nothing passed), and by how much.
    pub binding: Option<String>,
    pub output_tokens_per_s_per_gpu: Option<f64>,
    pub cost: Option<Cost>,
    pub probes: Vec<ProbeResult>,
    pub assumption: String,
    pub sentence: String,
    /// What the server's metrics and the GPUs said held back the first failing concurrency
    /// (e.g. "KV cache 98 % full and up to 40 requests waiting"), when they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_resource: Option<String>,
    /// The recommendation policy that chose the probes and decided C*: name, version, where it
    /// was loaded from and its hash (absent in results saved before policies were components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

const ASSUMPTION: &str = "an even load balancer across identical replicas, each serving the \
                          measured workload as the measured replica did";

fn div_ceil(a: u32, b: u32) -> u32 {
    a.div_ceil(b.max(1))
}

/// The binding constraint in the probes at `c`: the objective missed by the most requests, or
/// errors when failures outnumber every objective's misses.
pub fn binding(ask: &Ask, c: u32, at_c: &[&LevelSummary]) -> Option<String> {
    let requests: u64 = at_c.iter().map(|s| s.requests).sum();
    let failed: u64 = at_c.iter().map(|s| s.failed).sum();
    let misses = |o: &Objective| -> u64 {
        at_c.iter()
            .filter_map(|s| s.goodput.as_ref()?.violations.get(o.metric.name()))
            .sum()
    };
    let worst = ask.objectives.iter().max_by_key(|o| misses(o))?;
    let missed = misses(worst);
    if failed > missed {
        return Some(format!(
            "errors: {failed} of {requests} requests failed at c={c}"
        ));
    }
    // The quantile the target speaks of, among those a summary keeps.
    let summary = at_c.last()?;
    let d = worst.metric.distribution(summary);
    let (q, v) = if ask.target <= 0.90 {
        ("p90", d.p90)
    } else if ask.target <= 0.95 {
        ("p95", d.p95)
    } else {
        ("p99", d.p99)
    };
    Some(format!(
        "{}: {missed} of {requests} requests missed {} ≤ {} ms at c={c} ({q} {v:.1} ms)",
        worst.metric.name(),
        worst.metric.name(),
        worst.threshold_ms
    ))
}

/// The recommendation for `outcome`, given every probe's summary by concurrency.
pub fn recommend(ask: &Ask, outcome: Outcome, probes: &[(u32, LevelSummary)]) -> Recommendation {
    let at = |c: u32| -> Vec<&LevelSummary> {
        probes
            .iter()
            .filter(|(pc, _)| *pc == c)
            .map(|(_, s)| s)
            .collect()
    };
    let (per_replica, first_failing, at_least) = match outcome {
        Outcome::Found { lo, hi } => (lo, Some(hi), false),
        Outcome::None => (0, Some(1), false),
        Outcome::AtLeast(n) => (n, None, true),
    };
    let replicas = (per_replica > 0).then(|| div_ceil(ask.peak_concurrency, per_replica));
    let gpus = replicas.map(|r| r * ask.gpus_per_replica);
    let gpus_range = match (replicas, first_failing) {
        (Some(r), Some(hi)) if hi > per_replica + 1 => Some((
            div_ceil(ask.peak_concurrency, hi - 1) * ask.gpus_per_replica,
            r * ask.gpus_per_replica,
        )),
        (Some(r), _) => Some((r * ask.gpus_per_replica, r * ask.gpus_per_replica)),
        _ => None,
    };
    let binding = first_failing.and_then(|c| binding(ask, c, &at(c)));
    let tps_at_c_star = {
        let s = at(per_replica);
        (!s.is_empty()).then(|| s.iter().map(|s| s.output_throughput).sum::<f64>() / s.len() as f64)
    };
    let per_gpu = tps_at_c_star.map(|t| t / f64::from(ask.gpus_per_replica.max(1)));
    let cost = ask.cost_per_gpu_hour.map(|price| {
        let g = f64::from(gpus.unwrap_or(0));
        Cost {
            per_gpu_hour: price,
            per_hour: price * g,
            per_million_output_tokens: per_gpu
                .filter(|t| *t > 0.0)
                .map(|t| price / (t * 3600.0) * 1e6),
        }
    });
    let gpu = ask.gpu_type.as_deref().unwrap_or("GPU");
    let target_pct = ask.target * 100.0;
    let sentence = match (replicas, gpus) {
        (Some(r), Some(g)) => {
            let bracket = match first_failing {
                Some(hi) => format!("{per_replica} held, {hi} did not"),
                None => format!("at least {per_replica}: the largest probe allowed passed"),
            };
            format!(
                "{} concurrent users at {target_pct:.0} % SLO attainment need {g} × {gpu} \
                 ({r} replica{} × {} GPU{}); one replica holds {per_replica} ({bracket}){}.",
                ask.peak_concurrency,
                if r == 1 { "" } else { "s" },
                ask.gpus_per_replica,
                if ask.gpus_per_replica == 1 { "" } else { "s" },
                binding
                    .as_deref()
                    .map(|b| format!(", bound by {}", b.split(':').next().unwrap_or(b)))
                    .unwrap_or_default()
            )
        }
        _ => format!(
            "No concurrency meets {target_pct:.0} % SLO attainment on one replica, not even \
             1{}: no number of replicas reaches the target with this workload.",
            binding
                .as_deref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default()
        ),
    };
    Recommendation {
        peak_concurrency: ask.peak_concurrency,
        goodput_target_pct: target_pct,
        objectives: ask.objectives.clone(),
        per_replica,
        first_failing,
        at_least,
        replicas,
        gpus_per_replica: ask.gpus_per_replica,
        gpus,
        gpus_range,
        gpu_type: ask.gpu_type.clone(),
        gpu_type_from: ask.gpu_type_from.clone(),
        binding,
        output_tokens_per_s_per_gpu: per_gpu,
        cost,
        probes: probes
            .iter()
            .map(|(c, s)| {
                let good = s.goodput.as_ref().map_or(0, |g| g.good);
                ProbeResult {
                    concurrency: *c,
                    requests: s.requests,
                    good,
                    attainment_pct: s.goodput.as_ref().map_or(0.0, |g| g.attainment_pct),
                    output_tokens_per_s: s.output_throughput,
                }
            })
            .collect(),
        assumption: ASSUMPTION.to_owned(),
        sentence,
        binding_resource: None,
        policy: None,
    }
}

impl Recommendation {
    /// Adds what the readings say held back the first failing concurrency, to the figures and
    /// the sentence.
    pub fn with_binding_resource(mut self, resource: Option<String>) -> Self {
        if let Some(r) = &resource {
            let c = self.first_failing.unwrap_or(1);
            self.sentence = format!("{} At c={c} the readings point to: {r}.", self.sentence);
        }
        self.binding_resource = resource;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Goodput, SloMetric};

    fn ask() -> Ask {
        Ask {
            peak_concurrency: 500,
            target: 0.95,
            objectives: vec![Objective {
                metric: SloMetric::Ttft,
                threshold_ms: 500.0,
            }],
            gpus_per_replica: 1,
            gpu_type: Some("H100".into()),
            gpu_type_from: Some("--gpu-type".into()),
            cost_per_gpu_hour: Some(2.0),
        }
    }

    fn summary(requests: u64, good: u64, ttft_misses: u64, tps: f64) -> LevelSummary {
        let mut s = LevelSummary {
            requests,
            completed: requests,
            output_throughput: tps,
            ..LevelSummary::default()
        };
        s.ttft_ms.p95 = 712.0;
        s.goodput = Some(Goodput {
            objectives: ask().objectives,
            good,
            goodput_rps: 0.0,
            attainment_pct: good as f64 * 100.0 / requests as f64,
            violations: [("ttft".to_string(), ttft_misses)].into_iter().collect(),
        });
        s
    }

    #[test]
    fn replicas_gpus_range_binding_cost_and_sentence() {
        let probes = vec![
            (236, summary(480, 480, 0, 3600.0)),
            (241, summary(482, 470, 12, 3700.0)),
            (247, summary(494, 400, 94, 3750.0)),
        ];
        let r = recommend(&ask(), Outcome::Found { lo: 241, hi: 247 }, &probes);
        assert_eq!(r.replicas, Some(3));
        assert_eq!(r.gpus, Some(3));
        // 500 / 246 → 3 as well.
        assert_eq!(r.gpus_range, Some((3, 3)));
        assert_eq!(r.output_tokens_per_s_per_gpu, Some(3700.0));
        let b = r.binding.clone().expect("binding");
        assert_eq!(
            b,
            "ttft: 94 of 494 requests missed ttft ≤ 500 ms at c=247 (p95 712.0 ms)"
        );
        let cost = r.cost.clone().expect("cost");
        assert_eq!(cost.per_hour, 6.0);
        let per_m = cost.per_million_output_tokens.expect("per token");
        assert!((per_m - 2.0 / (3700.0 * 3600.0) * 1e6).abs() < 1e-9);
        assert_eq!(
            r.sentence,
            "500 concurrent users at 95 % SLO attainment need 3 × H100 (3 replicas × 1 GPU); \
             one replica holds 241 (241 held, 247 did not), bound by ttft."
        );
    }

    #[test]
    fn none_and_at_least_are_said_plainly() {
        let probes = vec![(1, summary(75, 10, 65, 10.0))];
        let r = recommend(&ask(), Outcome::None, &probes);
        assert_eq!((r.replicas, r.gpus, r.per_replica), (None, None, 0));
        assert!(
            r.sentence.starts_with("No concurrency meets 95 %"),
            "{}",
            r.sentence
        );
        assert!(
            r.sentence.contains("65 of 75 requests missed ttft"),
            "{}",
            r.sentence
        );

        let probes = vec![(64, summary(128, 128, 0, 100.0))];
        let r = recommend(&ask(), Outcome::AtLeast(64), &probes);
        assert!(r.at_least);
        assert_eq!(r.gpus, Some(8));
        assert!(r.sentence.contains("at least 64"), "{}", r.sentence);
    }
}
