//! One level of a merge: from the shards' records when every shard kept them (exact), from their
//! histograms and counts otherwise.
use std::time::SystemTime;

use super::{MergeError, MergedLevel, ShardLevel};
use crate::metrics::histogram::{LevelHistograms, distribution};
use crate::metrics::{Goodput, LevelSummary, RequestRecord};
use crate::result::{LevelResult, RunResult, rfc3339_micros};
use crate::runner::Rejudge;

/// A shard's level: its index, the name it is reported under, its result.
pub(super) type Part<'a> = (u32, &'a str, &'a LevelResult);

pub(super) fn merge(
    parts: &[Part<'_>],
    first: &RunResult,
    due: Option<SystemTime>,
    rejudge: &Rejudge,
) -> Result<(LevelResult, MergedLevel), MergeError> {
    let (_, _, head) = parts[0];
    let fail = |name: &str, what: String| MergeError::Level {
        name: name.to_owned(),
        level: head.label.clone(),
        what,
    };
    let mut starts = Vec::with_capacity(parts.len());
    for &(_, name, level) in parts {
        let stamp = level.started_at.as_deref().ok_or_else(|| {
            fail(
                name,
                "no wall-clock start recorded (made before 0.2?)".into(),
            )
        })?;
        let at = humantime::parse_rfc3339_weak(stamp)
            .map_err(|e| fail(name, format!("start `{stamp}` is not RFC 3339: {e}")))?;
        starts.push(at);
    }
    let base = starts
        .iter()
        .min()
        .copied()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let offset_s = |at: SystemTime| at.duration_since(base).unwrap_or_default().as_secs_f64();
    let signed_ms = |a: SystemTime, b: SystemTime| match a.duration_since(b) {
        Ok(d) => d.as_secs_f64() * 1e3,
        Err(e) => -e.duration().as_secs_f64() * 1e3,
    };

    let exact = parts.iter().all(|(_, _, l)| l.requests.is_some());
    let (summary, histograms, requests) = if exact {
        let mut union: Vec<RequestRecord> = Vec::new();
        for (&(_, _, level), &at) in parts.iter().zip(&starts) {
            let shift = offset_s(at);
            union.extend(level.requests.iter().flatten().map(|r| RequestRecord {
                send_s: r.send_s + shift,
                intended_start_s: r.intended_start_s + shift,
                ..r.clone()
            }));
        }
        union.sort_by_key(|r| r.index);
        if let Some(w) = union.windows(2).find(|w| w[0].index == w[1].index) {
            return Err(fail(
                parts[0].1,
                format!(
                    "request {} is in two shards' results: they did not deal one level",
                    w[0].index
                ),
            ));
        }
        let judged = match &first.settings.slo {
            Some(slo) => Some(
                rejudge
                    .judge(slo, &union)
                    .map_err(|e| fail(parts[0].1, format!("judging the SLOs: {e}")))?,
            ),
            None => None,
        };
        let summary = LevelSummary::compute(&union, judged.as_ref());
        let mut hist = LevelHistograms::default();
        union.iter().for_each(|r| hist.record(r));
        (summary, hist.serialize(), Some(union))
    } else {
        let (summary, hist) = summed(parts, &starts, &offset_s, first)?;
        (summary, hist, None)
    };

    let total = summary.requests.max(1) as f64;
    let shards = parts
        .iter()
        .zip(&starts)
        .map(|(&(shard, _, level), &at)| ShardLevel {
            shard,
            start_offset_ms: offset_s(at) * 1e3,
            late_ms: due.map(|d| signed_ms(at, d)),
            requests: level.summary.requests,
            share_pct: level.summary.requests as f64 / total * 100.0,
            failed: level.summary.failed,
            client: level.client.clone(),
        })
        .collect();
    let wall_s = parts
        .iter()
        .zip(&starts)
        .map(|(&(_, _, l), &at)| offset_s(at) + l.wall_s)
        .fold(0.0, f64::max);
    // The union's phases: shards that each spread their clients can still send in waves
    // together (and the other way round).
    let phase = match (head.load, requests.as_deref()) {
        (crate::plan::Load::Concurrency { concurrency }, Some(union)) => {
            crate::metrics::PhaseCheck::of(union, concurrency)
        }
        _ => None,
    };
    let merged = LevelResult {
        label: head.label.clone(),
        load: head.load,
        bound: head.bound,
        warmup: head.warmup,
        interrupted: parts.iter().any(|(_, _, l)| l.interrupted),
        wall_s,
        started_at: Some(rfc3339_micros(base)),
        summary,
        histograms,
        requests,
        gpu: None,
        server: None,
        client: None,
        phase,
    };
    let report = MergedLevel {
        label: head.label.clone(),
        method: if exact { "records" } else { "histograms" }.to_owned(),
        missing: Vec::new(),
        shards,
    };
    Ok((merged, report))
}

/// Counts added, histograms merged: what can be said of a level without its records. The
/// window runs from the first shard's start to the last shard's end; peaks are the shards'
/// added (an upper bound); queue times and the token checks are not merged.
fn summed(
    parts: &[Part<'_>],
    starts: &[SystemTime],
    offset_s: &dyn Fn(SystemTime) -> f64,
    first: &RunResult,
) -> Result<
    (
        LevelSummary,
        crate::metrics::histogram::SerializedHistograms,
    ),
    MergeError,
> {
    let mut s = LevelSummary::default();
    let mut hist = LevelHistograms::default();
    let mut good = 0;
    let mut violations = std::collections::BTreeMap::<String, u64>::new();
    let mut end = 0.0f64;
    for (&(_, name, level), &at) in parts.iter().zip(starts) {
        let l = &level.summary;
        s.requests += l.requests;
        s.completed += l.completed;
        s.failed += l.failed;
        s.total_input_tokens += l.total_input_tokens;
        s.total_output_tokens += l.total_output_tokens;
        s.peak_concurrency += l.peak_concurrency;
        s.peak_output_tokens_per_s += l.peak_output_tokens_per_s;
        for (class, e) in &l.errors {
            s.errors.entry(*class).or_default().absorb(e);
        }
        s.connections.absorb(&l.connections);
        if let Some(g) = &l.goodput {
            good += g.good;
            for (k, v) in &g.violations {
                *violations.entry(k.clone()).or_default() += v;
            }
        }
        end = end.max(offset_s(at) + l.duration_s);
        let theirs =
            LevelHistograms::deserialize(&level.histograms).map_err(|e| MergeError::Level {
                name: name.to_owned(),
                level: level.label.clone(),
                what: e.to_string(),
            })?;
        hist.merge(&theirs).map_err(|e| MergeError::Level {
            name: name.to_owned(),
            level: level.label.clone(),
            what: e.to_string(),
        })?;
    }
    s.duration_s = end;
    if end > 0.0 {
        s.request_throughput = s.completed as f64 / end;
        s.output_throughput = s.total_output_tokens as f64 / end;
        s.total_token_throughput = (s.total_input_tokens + s.total_output_tokens) as f64 / end;
    }
    s.ttft_ms = distribution(&hist.ttft);
    s.tpot_ms = distribution(&hist.tpot);
    s.itl_ms = distribution(&hist.itl);
    s.e2el_ms = distribution(&hist.e2el);
    if let Some(slo) = &first.settings.slo {
        s.goodput = Some(Goodput {
            objectives: slo.objectives.clone(),
            good,
            goodput_rps: if end > 0.0 { good as f64 / end } else { 0.0 },
            attainment_pct: good as f64 / s.requests.max(1) as f64 * 100.0,
            violations,
        });
    }
    Ok((s, hist.serialize()))
}
