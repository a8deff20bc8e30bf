use super::*;
use crate::metrics::RequestRecord;
use crate::metrics::histogram::LevelHistograms;
use crate::result::ShardSettings;

/// Shard `index` of 2 of a one-level run of 6 requests, its level started `start` (RFC 3339).
fn shard(index: u32, start: &str) -> ShardInput {
    let (mut result, _) = crate::store::tests::sample_run("m", &[], &[2]);
    let records: Vec<RequestRecord> = (0..6u64)
        .filter(|i| i % 2 == u64::from(index))
        .map(|i| crate::store::tests::record(i, 20.0 + i as f64))
        .collect();
    let level = &mut result.levels[0];
    let mut hist = LevelHistograms::default();
    records.iter().for_each(|r| hist.record(r));
    level.summary = crate::metrics::LevelSummary::compute(&records, None);
    level.histograms = hist.serialize();
    level.requests = Some(records);
    level.started_at = Some(start.to_owned());
    result.settings.shard = Some(ShardSettings {
        index,
        count: 2,
        start_at: None,
        level_interval_s: None,
    });
    ShardInput {
        name: format!("s{index}.json"),
        result,
    }
}

#[test]
fn records_go_onto_one_timeline_by_each_level_start() {
    // The second shard started its level 1 s after the first.
    let a = shard(0, "2026-12-05T10:00:00.000000Z");
    let b = shard(1, "2026-12-05T10:00:01.000000Z");
    let merged = merge(vec![a, b]).unwrap();
    let level = &merged.levels[0];
    let records = level.requests.as_ref().unwrap();
    assert_eq!(
        records.iter().map(|r| r.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    // Index 1 was sent 0.1 s into the second shard's level: 1.1 s on the merged timeline.
    assert!(
        (records[1].send_s - 1.1).abs() < 1e-9,
        "{}",
        records[1].send_s
    );
    assert_eq!(
        level.started_at.as_deref(),
        Some("2026-12-05T10:00:00.000000Z")
    );
    // First send 0.0 to last end 1.5 + 0.065: the union window, not either shard's.
    assert!(
        (level.summary.duration_s - 1.565).abs() < 1e-6,
        "{}",
        level.summary.duration_s
    );
    let report = merged.merge.unwrap();
    assert_eq!(report.levels[0].method, "records");
    let offsets: Vec<f64> = report.levels[0]
        .shards
        .iter()
        .map(|s| s.start_offset_ms)
        .collect();
    assert_eq!(offsets, [0.0, 1000.0]);
    assert!(!report.partial());
}

#[test]
fn without_records_histograms_are_merged_and_counts_added() {
    let a = shard(0, "2026-12-05T10:00:00Z");
    let mut b = shard(1, "2026-12-05T10:00:00Z");
    b.result.levels[0].requests = None;
    let merged = merge(vec![a, b]).unwrap();
    let s = &merged.levels[0].summary;
    assert_eq!((s.requests, s.completed, s.total_output_tokens), (6, 6, 30));
    assert_eq!(s.ttft_ms.count, 6);
    // 20..25 ms at the histograms' 0.1 % resolution.
    assert!((s.ttft_ms.min - 20.0).abs() < 0.05 && (s.ttft_ms.max - 25.0).abs() < 0.05);
    assert_eq!(merged.merge.unwrap().levels[0].method, "histograms");
    assert!(merged.levels[0].requests.is_none());
}

#[test]
fn what_is_not_one_run_is_refused_and_what_is_missing_is_named() {
    let one = || shard(0, "2026-12-05T10:00:00Z");
    let err = merge(vec![one(), one()]).unwrap_err().to_string();
    assert!(err.contains("are both shard 1/2"), "{err}");
    let mut other = shard(1, "2026-12-05T10:00:00Z");
    other.result.settings.max_tokens = Some(99);
    let err = merge(vec![one(), other]).unwrap_err().to_string();
    assert!(err.contains("max_tokens 99 against"), "{err}");
    let mut whole = shard(1, "2026-12-05T10:00:00Z");
    whole.result.settings.shard = None;
    assert!(matches!(
        merge(vec![one(), whole]),
        Err(MergeError::NotAShard(_))
    ));
    assert!(matches!(merge(Vec::new()), Err(MergeError::Empty)));

    let alone = merge(vec![shard(1, "2026-12-05T10:00:00Z")]).unwrap();
    let report = alone.merge.unwrap();
    assert_eq!(
        (report.merged.clone(), report.missing.clone()),
        (vec![1], vec![0])
    );
    assert!(report.partial() && alone.interrupted);
    assert_eq!(alone.levels[0].summary.requests, 3);
}
