//! Whether the compared runs sent the same workload.
//!
//! A comparison's verdicts ("slower", "worse") mean something only between runs that asked the
//! same of the server. A vLLM run with 128-token prompts beside ours with 212 (cl100k sizing
//! counted by the model's tokenizer) was called "worse" without a word; so every difference
//! that changes what was measured is said before any figure: the settings that shape the
//! requests, and per level the server-counted tokens per request where they differ by more
//! than [`WorkloadCheck::WARN_RELATIVE_DIFF`].

use crate::metrics::{LevelSummary, WorkloadCheck};
use crate::result::{RunResult, ToolInfo};

/// One line per difference, naming each run's value; empty when the workloads match.
pub fn differences(ids: &[String], runs: &[&RunResult]) -> Vec<String> {
    let mut out = Vec::new();
    // (name, whether an imported vLLM result records it, value). What an import cannot know
    // (vLLM's result names no adapter, dataset file or ignore_eos) is compared only between
    // runs of ours; the tokens per request below catch the difference that matters anyway.
    type Setting = (&'static str, bool, fn(&RunResult) -> String);
    let settings: [Setting; 8] = [
        ("model", true, |r| r.settings.model.clone()),
        ("endpoint", true, |r| r.settings.endpoint.clone()),
        ("streaming", true, |r| r.settings.stream.to_string()),
        ("metric mode", true, |r| {
            r.settings.metric_mode.name().to_string()
        }),
        ("adapter", false, |r| r.adapter.name.clone()),
        ("dataset", false, |r| r.settings.dataset.clone()),
        ("ignore-eos", false, |r| r.settings.ignore_eos.to_string()),
        ("max tokens", false, |r| {
            r.settings
                .max_tokens
                .map_or_else(|| "per prompt".to_string(), |m| m.to_string())
        }),
    ];
    let us = ToolInfo::current().name;
    let ours = |r: &RunResult| r.tool.name == us;
    for (name, in_imports, get) in settings {
        let compared: Vec<(String, String)> = ids
            .iter()
            .zip(runs)
            .filter(|(_, r)| in_imports || ours(r))
            .map(|(id, r)| (id.clone(), get(r)))
            .collect();
        if compared.iter().any(|(_, v)| *v != compared[0].1) {
            let (who, values): (Vec<String>, Vec<String>) = compared.into_iter().unzip();
            out.push(format!("{name} differs: {}", by_run(&who, &values)));
        }
    }
    // Known versions only: an imported vLLM result, or a server that names none, is not a
    // difference to warn about.
    let versions: Vec<(String, String)> = ids
        .iter()
        .zip(runs)
        .filter_map(|(id, r)| Some((id.clone(), r.settings.server_version.clone()?)))
        .collect();
    if versions.iter().any(|(_, v)| *v != versions[0].1) {
        let (who, values): (Vec<String>, Vec<String>) = versions.into_iter().unzip();
        out.push(format!("server version differs: {}", by_run(&who, &values)));
    }
    let base = runs.first().map_or(&[][..], |r| &r.levels[..]);
    for level in base {
        type Total = fn(&LevelSummary) -> u64;
        let per_request = |r: &RunResult, total: Total| {
            let l = r.levels.iter().find(|l| l.label == level.label)?;
            let s = &l.summary;
            (s.completed > 0).then(|| total(s) as f64 / s.completed as f64)
        };
        let totals: [(&str, Total); 2] = [
            ("prompt", |s| s.total_input_tokens),
            ("output", |s| s.total_output_tokens),
        ];
        for (what, f) in totals {
            let values: Vec<Option<f64>> = runs.iter().map(|r| per_request(r, f)).collect();
            let Some(first) = values[0].filter(|v| *v > 0.0) else {
                continue;
            };
            let apart = values
                .iter()
                .flatten()
                .any(|v| WorkloadCheck::off(Some((v - first) / first)));
            if apart {
                let shown: Vec<String> = values
                    .iter()
                    .map(|v| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}")))
                    .collect();
                out.push(format!(
                    "{}: {what} tokens per request differ: {}",
                    level.label,
                    by_run(ids, &shown)
                ));
            }
        }
    }
    out
}

fn by_run(ids: &[String], values: &[String]) -> String {
    ids.iter()
        .zip(values)
        .map(|(id, v)| format!("{id} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::sample_run;

    #[test]
    fn the_same_workload_says_nothing() {
        let (a, _) = sample_run("m", &[], &[1, 4]);
        let (b, _) = sample_run("m", &[], &[1, 4]);
        let ids = ["a".to_string(), "b".to_string()];
        assert!(differences(&ids, &[&a, &b]).is_empty());
    }

    #[test]
    fn settings_and_tokens_per_request_that_differ_are_named_with_each_value() {
        let (a, _) = sample_run("m", &[], &[1, 4]);
        let (mut b, _) = sample_run("other", &[], &[1, 4]);
        b.settings.stream = false;
        b.settings.server_version = Some("vLLM 0.32.0".into());
        // 212 server-counted prompt tokens per request where the baseline sent 32.
        b.levels[1].summary.total_input_tokens = 212 * b.levels[1].summary.completed;
        let ids = ["a".to_string(), "b".to_string()];
        let d = differences(&ids, &[&a, &b]);
        assert_eq!(
            d,
            [
                "model differs: a m, b other",
                "streaming differs: a true, b false",
                "c=4: prompt tokens per request differ: a 32.0, b 212.0",
            ]
        );
        // A version only one run knows is no difference; two known versions that differ are.
        let mut c = b.clone();
        c.settings.server_version = Some("vLLM 0.33.0".into());
        let d = differences(&ids, &[&b, &c]);
        assert_eq!(d, ["server version differs: a vLLM 0.32.0, b vLLM 0.33.0"]);
    }
}
