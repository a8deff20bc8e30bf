//! The terminal table printed after a run: one row per level.
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::metrics::{Distribution, TokenCountCheck, WorkloadCheck};
use crate::result::RunResult;

fn pair(d: &Distribution) -> String {
    if d.count == 0 {
        "-".to_string()
    } else {
        format!("{:.1} / {:.1}", d.p50, d.p99)
    }
}

/// The per-level table: throughput, latency p50 / p99, goodput and errors.
pub fn render(result: &RunResult) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    let has_slo = result.levels.iter().any(|l| l.summary.goodput.is_some());
    let mut header = vec![
        "level",
        "ok",
        "failed",
        "req/s",
        "out tok/s",
        "TTFT ms p50/p99",
        "TPOT ms p50/p99",
        "ITL ms p50/p99",
        "E2EL ms p50/p99",
    ];
    if has_slo {
        header.extend(["goodput req/s", "attainment"]);
    }
    t.set_header(header);
    for l in &result.levels {
        let s = &l.summary;
        let mut row = vec![
            Cell::new({
                let mut label = l.label.clone();
                if l.interrupted {
                    label.push_str(" (interrupted)");
                }
                if l.client.as_ref().is_some_and(|c| c.limited) {
                    label.push_str(" (client-limited)");
                }
                label
            }),
            Cell::new(s.completed).set_alignment(CellAlignment::Right),
            Cell::new(s.failed).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.2}", s.request_throughput)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.1}", s.output_throughput)).set_alignment(CellAlignment::Right),
            Cell::new(pair(&s.ttft_ms)).set_alignment(CellAlignment::Right),
            Cell::new(pair(&s.tpot_ms)).set_alignment(CellAlignment::Right),
            Cell::new(pair(&s.itl_ms)).set_alignment(CellAlignment::Right),
            Cell::new(pair(&s.e2el_ms)).set_alignment(CellAlignment::Right),
        ];
        if has_slo {
            match &s.goodput {
                Some(g) => {
                    row.push(
                        Cell::new(format!("{:.2}", g.goodput_rps))
                            .set_alignment(CellAlignment::Right),
                    );
                    row.push(
                        Cell::new(format!("{:.1} %", g.attainment_pct))
                            .set_alignment(CellAlignment::Right),
                    );
                }
                None => row.extend([Cell::new("-"), Cell::new("-")]),
            }
        }
        t.add_row(row);
    }
    t.to_string()
}

/// Lines worth reading under the table: errors by class, token-count
/// disagreements, SLO violations.
/// Share of failed requests above which a level's latencies describe a minority of its
/// requests: the failures' absence shifts every percentile.
pub const UNTRUSTED_ERROR_SHARE: f64 = 0.10;

/// Why a level's figures cannot be trusted, if they cannot.
pub fn untrusted(s: &crate::metrics::LevelSummary) -> Option<String> {
    if s.requests == 0 {
        return None;
    }
    if s.completed == 0 {
        return Some(format!(
            "none of its {} requests succeeded; every figure is empty",
            s.requests
        ));
    }
    let share = s.failed as f64 / s.requests as f64;
    (share > UNTRUSTED_ERROR_SHARE).then(|| {
        format!(
            "{} of {} requests ({:.0} %, above {:.0} %) failed, and latencies describe only \
             those that did not",
            s.failed,
            s.requests,
            share * 100.0,
            UNTRUSTED_ERROR_SHARE * 100.0
        )
    })
}

pub fn notes(result: &RunResult) -> Vec<String> {
    let mut out = Vec::new();
    let settings = &result.settings;
    if let Some(served) = &settings.served_model
        && *served != settings.model
    {
        out.push(format!(
            "the server says it served model `{served}`, not `{}` as asked",
            settings.model
        ));
    }
    if settings.metric_mode == crate::metrics::MetricMode::Vllm && settings.stream {
        out.push(
            "token arrivals timed as vLLM's bench serve times them (--metric-mode vllm): every \
             chunk with a choice, text or not"
                .to_string(),
        );
    }
    if !settings.unsupported.is_empty() {
        out.push(format!(
            "the adapter does not declare it can send {}: run with --allow-unsupported",
            settings.unsupported.join(", ")
        ));
    }
    if let Some(ramp) = settings.ramp_up_s {
        out.push(format!(
            "each level's clients started evenly over {ramp:.1} s (--ramp-up); the ramp counts \
             as warm-up"
        ));
    }
    for l in &result.levels {
        if let Some(p) = l.phase.as_ref().filter(|p| p.lockstep) {
            out.push(format!(
                "{}: the clients sent in lockstep ({:.0} % of sends bunched, phase concentration \
                 {:.2} over a {:.0} ms cycle): the server saw waves, not users, and the TTFT \
                 tail holds the waves' queueing; pass --ramp-up {:.0}ms (about one cycle) to \
                 spread them",
                l.label,
                p.bunched * 100.0,
                p.concentration,
                p.cycle_ms,
                p.cycle_ms.ceil()
            ));
        }
    }
    if let Some(shard) = &settings.shard {
        out.push(format!(
            "shard {}/{}: these figures are this machine's share of each level; join the \
             shards' results with `llm-loadtest merge`",
            shard.index + 1,
            shard.count
        ));
    }
    if let Some(m) = &result.merge {
        let exact = m.levels.iter().all(|l| l.method == "records");
        out.push(format!(
            "merged from {} of {} shards ({}){}",
            m.merged.len(),
            m.shards,
            if exact {
                "every request's record: exact"
            } else {
                "some levels from histograms: percentiles at 0.1 % resolution"
            },
            if m.partial() {
                "; PARTIAL: a shard or a shard's level is missing"
            } else {
                ""
            }
        ));
        for l in &m.levels {
            if let Some(s) = l
                .shards
                .iter()
                .find(|s| s.client.as_ref().is_some_and(|c| c.limited))
            {
                out.push(format!(
                    "{}: shard {} was client-limited; the merged timings are partly its machine's",
                    l.label,
                    s.shard + 1
                ));
            }
        }
    }
    out.extend(workload_lines(result));
    for l in &result.levels {
        if let Some(c) = l.client.as_ref().filter(|c| c.limited) {
            out.push(format!(
                "{}: client-limited — {}; its timings are partly this machine's",
                l.label,
                c.why.as_deref().unwrap_or("the client was busy")
            ));
        }
    }
    for l in &result.levels {
        let s = &l.summary;
        if let Some(why) = untrusted(s) {
            out.push(format!(
                "{}: these numbers cannot be trusted: {why}",
                l.label
            ));
        }
        if let Some(tls) = s.connections.mean_tls_handshake_ms() {
            out.push(format!(
                "{}: {} TLS handshake{}, mean {:.1} ms (max {:.1} ms), after a mean {:.1} ms TCP \
                 connect; each request that opened a connection has both inside its TTFT, as in \
                 vLLM's bench serve",
                l.label,
                s.connections.tls_handshakes,
                if s.connections.tls_handshakes == 1 {
                    ""
                } else {
                    "s"
                },
                tls,
                s.connections.tls_handshake_us_max as f64 / 1e3,
                s.connections.mean_connect_ms().unwrap_or(0.0),
            ));
        }
        for (class, e) in &s.errors {
            let lost = if e.collateral > 0 {
                format!(
                    " ({} of them lost with the plugin instance that failure replaced)",
                    e.collateral
                )
            } else {
                String::new()
            };
            out.push(format!(
                "{}: {} {class} error(s), first: {}{lost}",
                l.label,
                e.count,
                e.first_messages.first().map(String::as_str).unwrap_or("")
            ));
        }
        if let Some(c) = &s.token_count_check
            && c.disagrees()
        {
            out.push(format!(
                "{}: server and client token counts differ by more than {:.0} % (and \
                 one token) on {} of {} requests (mean {:.1} %, max {} tokens): statistics use the server's counts",
                l.label,
                TokenCountCheck::WARN_RELATIVE_DIFF * 100.0,
                c.requests_off,
                c.requests_compared,
                c.mean_relative_diff * 100.0,
                c.max_abs_diff
            ));
        }
        if let Some(g) = &s.goodput {
            for o in &g.objectives {
                let missed = g.violations.get(o.metric.name()).copied().unwrap_or(0);
                if missed == 0 {
                    continue;
                }
                let dist = o.metric.distribution(s);
                out.push(format!(
                    "{}: {missed} of {} requests missed {} ≤ {} ms (p99 {:.0} ms)",
                    l.label,
                    s.requests,
                    o.metric.name(),
                    o.threshold_ms,
                    dist.p99
                ));
            }
        }
    }
    for l in &result.levels {
        if let Some(g) = &l.gpu {
            out.push(super::readings::line(&l.label, g));
        }
        if let Some(r) = crate::telemetry::binding::resource(l.gpu.as_ref(), l.server.as_ref()) {
            out.push(format!("{}: likely bound by {r}", l.label));
        }
        if let Some(s) = &l.server {
            out.push(super::readings::server_line(
                &l.label,
                result
                    .server_metrics
                    .as_ref()
                    .and_then(|m| m.server.as_deref()),
                s,
            ));
        }
    }
    if let Some(m) = &result.server_metrics {
        let failed: Vec<&str> = m
            .scrapes
            .iter()
            .filter_map(|s| s.error.as_deref())
            .collect();
        if let Some(first) = failed.first() {
            out.push(format!(
                "server metrics: {} of {} scrapes of {} failed (first: {first})",
                failed.len(),
                m.scrapes.len(),
                m.url
            ));
        }
    }
    if result.interrupted {
        out.push("the run was interrupted: the table covers the requests that completed".into());
    }
    out
}

/// What the server counted where it differs from what was asked by more than
/// [`WorkloadCheck::WARN_RELATIVE_DIFF`].
fn workload_notes(w: &WorkloadCheck) -> Vec<String> {
    let per = |total: u64, n: u64| total as f64 / n.max(1) as f64;
    let mut out = Vec::new();
    if WorkloadCheck::off(w.input_diff()) {
        out.push(format!(
            "the server counted {:.1} prompt tokens per request where {:.1} were asked \
             ({:+.1} %): prompts were not sized in the server's tokens (see --tokenizer); \
             statistics use the server's counts",
            per(w.server_input_tokens, w.input_requests),
            per(w.requested_input_tokens, w.input_requests),
            w.input_diff().unwrap_or(0.0) * 100.0
        ));
    }
    if WorkloadCheck::off(w.output_diff()) {
        out.push(format!(
            "the server generated {:.1} tokens per request where {:.1} were asked \
             ({:+.1} %){}",
            per(w.server_output_tokens, w.output_requests),
            per(w.requested_output_tokens, w.output_requests),
            w.output_diff().unwrap_or(0.0) * 100.0,
            if w.server_output_tokens < w.requested_output_tokens {
                ": requests stopped early (--ignore-eos asks for exact lengths)"
            } else {
                ""
            }
        ));
    }
    if let Some(share) = w.cached_share()
        && share > 0.0
    {
        out.push(format!(
            "the server served {} of {} prompt tokens ({:.1} %) from its prefix cache \
             (TTFT is lower for them)",
            w.cached_prompt_tokens,
            w.cache_prompt_tokens,
            share * 100.0
        ));
    }
    out
}

/// Each workload note once, with the levels it holds for: a difference that comes from how
/// prompts are sized is usually the same at every level.
fn workload_lines(result: &RunResult) -> Vec<String> {
    let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
    for l in &result.levels {
        for note in l.summary.workload.iter().flat_map(workload_notes) {
            match grouped.iter_mut().find(|(n, _)| *n == note) {
                Some((_, labels)) => labels.push(&l.label),
                None => grouped.push((note, vec![&l.label])),
            }
        }
    }
    grouped
        .into_iter()
        .map(|(note, labels)| {
            if labels.len() > 1 && labels.len() == result.levels.len() {
                format!("every level: {note}")
            } else {
                format!("{}: {note}", labels.join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::sample_run;

    #[test]
    fn a_workload_note_shared_by_levels_is_said_once() {
        let (mut run, _) = sample_run("m", &[], &[1, 8, 32]);
        let sized = WorkloadCheck {
            input_requests: 10,
            requested_input_tokens: 1280,
            server_input_tokens: 2120,
            ..WorkloadCheck::default()
        };
        for l in &mut run.levels {
            l.summary.workload = Some(sized.clone());
        }
        // Level c=32 also stopped short of the asked output.
        run.levels[2].summary.workload = Some(WorkloadCheck {
            output_requests: 10,
            requested_output_tokens: 1280,
            server_output_tokens: 640,
            ..sized
        });
        let lines = workload_lines(&run);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("every level: the server counted 212.0 prompt tokens per request where 128.0 were asked (+65.6 %)"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("c=32: the server generated 64.0 tokens per request where 128.0 were asked (-50.0 %)"),
            "{lines:?}"
        );
    }
}
