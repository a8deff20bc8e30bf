use super::*;
use crate::metrics::histogram::LevelHistograms;
use crate::metrics::{LevelSummary, RequestRecord};
use crate::plan::{Bound, Load, Warmup};
use crate::result::{LevelResult, PluginRef, RunResult, RunSettings, SCHEMA_VERSION, ToolInfo};

pub(crate) fn record(index: u64, ttft: f64) -> RequestRecord {
    RequestRecord {
        index,
        send_s: index as f64 * 0.1,
        ttft_ms: Some(ttft),
        e2el_ms: Some(ttft + 40.0),
        latency_ms: ttft + 40.0,
        itl_ms: vec![10.0; 4],
        content_events: 5,
        input_tokens: 32,
        output_tokens: 5,
        output_tokens_server: Some(5),
        ..Default::default()
    }
}

pub(crate) fn sample_run(
    model: &str,
    tags: &[&str],
    concurrency: &[u32],
) -> (RunResult, Vec<Vec<RequestRecord>>) {
    let mut levels = Vec::new();
    let mut all = Vec::new();
    for (li, &c) in concurrency.iter().enumerate() {
        let recs: Vec<RequestRecord> = (0..20)
            .map(|i| record(i, 20.0 + f64::from(c) + (i as f64) + li as f64))
            .collect();
        let mut h = LevelHistograms::default();
        recs.iter().for_each(|r| h.record(r));
        levels.push(LevelResult {
            label: format!("c={c}"),
            load: Load::Concurrency { concurrency: c },
            bound: Bound::Requests(20),
            warmup: Warmup::None,
            interrupted: false,
            wall_s: 2.0,
            started_at: None,
            summary: LevelSummary::compute(&recs, None),
            histograms: h.serialize(),
            requests: None,
            gpu: None,
            server: None,
            client: None,
            phase: None,
        });
        all.push(recs);
    }
    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo::current(),
        started_at: "2026-01-02T03:04:05.000Z".into(),
        finished_at: "2026-01-02T03:05:05.000Z".into(),
        interrupted: false,
        settings: RunSettings {
            server: "http://127.0.0.1:8000".into(),
            model: model.into(),
            endpoint: "completions".into(),
            dataset: "synthetic".into(),
            tokenizer: "cl100k_base".into(),
            stream: true,
            metric_mode: crate::metrics::MetricMode::Content,
            max_tokens: None,
            min_tokens: None,
            ignore_eos: true,
            temperature: None,
            timeout_s: 30.0,
            seed: 0,
            header_names: vec![],
            api_key_set: false,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            unsupported: Vec::new(),
            served_model: None,
            server_version: None,
            tls: None,
            arrival_times: None,
            shard: None,
            ramp_up_s: None,
            slo: None,
        },
        adapter: PluginRef {
            name: "vllm".into(),
            version: "0.1.0".into(),
            wit_version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            source: "embedded".into(),
        },
        slo_policy: None,
        levels,
        recommendation: None,
        gpu: None,
        server_metrics: None,
        merge: None,
        load_series: None,
    };
    (result, all)
}

#[test]
fn save_list_load_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let (a, a_recs) = sample_run("llama", &["base"], &[1, 4]);
    let (b, _) = sample_run("qwen", &["new", "base"], &[1]);
    let id_a = save_result(&store, a.clone(), Some(a_recs.clone()), RunOrigin::Measured).unwrap();
    let id_b = save_result(&store, b, None, RunOrigin::Measured).unwrap();
    assert_ne!(id_a, id_b);

    let (all, bad) = list(&store, &RunFilter::default()).unwrap();
    assert!(bad.is_empty());
    assert_eq!(all.len(), 2);
    assert!(all[0].id >= all[1].id, "newest first");
    let only = |f: RunFilter| {
        list(&store, &f)
            .unwrap()
            .0
            .into_iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(RunFilter {
            model: Some("LLA".into()),
            ..Default::default()
        }),
        vec![id_a.clone()]
    );
    assert_eq!(
        only(RunFilter {
            tags: vec!["new".into()],
            ..Default::default()
        }),
        vec![id_b.clone()]
    );
    assert_eq!(
        only(RunFilter {
            since: humantime::parse_rfc3339_weak("2026-01-03T00:00:00Z").ok(),
            ..Default::default()
        }),
        Vec::<String>::new()
    );

    let loaded = load(&store, &id_a).unwrap();
    assert_eq!(loaded.entry.result, a);
    assert_eq!(loaded.records, a_recs);
    assert_eq!(loaded.entry.status, RunStatus::Complete);
    assert_eq!(
        loaded.result_with_records().levels[1].requests.as_deref(),
        Some(&a_recs[1][..])
    );
    // Records given inside the result are moved to their own keys.
    let (c, c_recs) = sample_run("x", &[], &[2]);
    let mut c_with = c.clone();
    c_with.levels[0].requests = Some(c_recs[0].clone());
    let id_c = save_result(&store, c_with, None, RunOrigin::Measured).unwrap();
    let loaded_c = load(&store, &id_c).unwrap();
    assert_eq!(loaded_c.entry.result, c);
    assert_eq!(loaded_c.records, c_recs);

    assert!(store.delete(&id_a).unwrap());
    assert!(!store.delete(&id_a).unwrap());
    assert!(matches!(load(&store, &id_a), Err(StoreError::NotFound(_))));
    assert!(store.records(&id_a).unwrap().is_empty());
    assert_eq!(load(&store, &id_b).unwrap().records.len(), 0);
}

#[test]
fn ids_resolve_by_unique_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let (a, _) = sample_run("m", &[], &[1]);
    let id = save_result(&store, a.clone(), None, RunOrigin::Measured).unwrap();
    let id2 = save_result(&store, a, None, RunOrigin::Measured).unwrap();
    assert_eq!(
        resolve(&store, &id[..16]).ok(),
        (id[..16] != id2[..16]).then(|| id.clone())
    );
    assert_eq!(resolve(&store, &id).unwrap(), id);
    assert!(matches!(
        resolve(&store, "2"),
        Err(StoreError::Ambiguous { .. })
    ));
    assert!(matches!(
        resolve(&store, "nope"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(resolve(&store, ""), Err(StoreError::NotFound(_))));
}

#[test]
fn a_level_larger_than_a_batch_is_written_deleted_and_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let n = 2 * super::sled_store::RECORDS_PER_BATCH as u64 + 17;
    let recs: Vec<RequestRecord> = (0..n).map(|i| record(i, 20.0 + i as f64)).collect();
    store.put_records("run-a", 1, &recs).unwrap();
    store.put_records("run-b", 0, &recs[..3]).unwrap();
    let back = store.records("run-a").unwrap();
    assert_eq!(back.len(), 2);
    assert!(back[0].is_empty());
    assert_eq!(back[1], recs);
    // Written again (a recovery after a save that died part-way): replaced, not doubled.
    store.put_records("run-a", 1, &recs).unwrap();
    assert_eq!(store.records("run-a").unwrap()[1].len(), recs.len());
    store.delete("run-a").unwrap();
    assert!(store.records("run-a").unwrap().is_empty());
    assert_eq!(store.records("run-b").unwrap()[0].len(), 3);
}

#[test]
fn a_second_open_is_refused_while_one_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path()).unwrap();
    let err =
        SledStore::open_waiting(dir.path(), std::time::Duration::from_millis(50)).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another llm-loadtest process"));
}

#[test]
fn other_versions_are_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).unwrap();
    let (a, _) = sample_run("m", &[], &[1]);
    let good = save_result(&store, a.clone(), None, RunOrigin::Measured).unwrap();
    // A run written by a future result schema.
    let mut entry = store.entry(&good).unwrap().unwrap();
    entry.id = "990101-000000-zzzz".into();
    let mut v = serde_json::to_value(&entry).unwrap();
    v["result"]["schema_version"] = 99.into();
    v["result"]["levels"] = serde_json::json!("a shape this reader does not know");
    store
        .put_raw_entry(&entry.id, &serde_json::to_vec(&v).unwrap())
        .unwrap();
    let (ok, bad) = list(&store, &RunFilter::default()).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].to_string().contains("schema version 99"),
        "{}",
        bad[0]
    );
    let err = load(&store, "990101").unwrap_err();
    assert!(
        matches!(err, StoreError::RunVersion { found: 99, .. }),
        "{err}"
    );

    // A store with another layout version is refused on open.
    store.set_layout_version(STORE_SCHEMA_VERSION + 1).unwrap();
    drop(store);
    let err = open(dir.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::Version { found, .. } if found == STORE_SCHEMA_VERSION + 1),
        "{err}"
    );
    assert!(err.to_string().contains("matching release"));
}

/// The `running` entry of a run planned as `result`'s levels.
fn running_entry(result: &RunResult) -> RunEntry {
    let mut draft = result.clone();
    draft.levels.clear();
    RunEntry {
        id: run_id::new_run_id(),
        status: RunStatus::Running,
        origin: RunOrigin::Measured,
        pid: 4_000_000,
        updated_at: "2026-01-02T03:04:30.000Z".into(),
        plans: result.levels.iter().map(PlannedLevel::from).collect(),
        note: None,
        result: draft,
    }
}

/// Level 1 finished, level 2 died after 7 of its 20 requests: what recovery must rebuild.
fn assert_rebuilt(run: &StoredRun, result: &RunResult) {
    assert_eq!(run.entry.status, RunStatus::Interrupted);
    assert!(run.entry.result.interrupted);
    assert!(run.entry.note.as_deref().unwrap().contains("pid 4000000"));
    let levels = &run.entry.result.levels;
    assert_eq!(levels.len(), 2);
    assert!(!levels[0].interrupted, "level 1 reached its bound");
    assert!(levels[1].interrupted);
    assert_eq!(levels[0].summary, result.levels[0].summary);
    assert_eq!(levels[1].summary.completed, 7);
    assert_eq!(run.entry.result.finished_at, "2026-01-02T03:04:30.000Z");
    assert_eq!(run.records[1].len(), 7);
    // The settings the run started with survive.
    assert_eq!(run.entry.result.settings, result.settings);
}

#[test]
fn a_run_left_running_is_marked_interrupted_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (result, recs) = sample_run("m", &["killed"], &[2, 8]);
    let id = {
        let store = open(dir.path()).unwrap();
        let entry = running_entry(&result);
        store.put_entry(&entry).unwrap();
        store.put_records(&entry.id, 0, &recs[0]).unwrap();
        store.put_records(&entry.id, 1, &recs[1][..7]).unwrap();
        store.flush().unwrap();
        entry.id
    };
    let store = open(dir.path()).unwrap();
    assert_rebuilt(&load(&store, &id).unwrap(), &result);
}

#[test]
fn a_live_journal_is_left_alone_and_a_dead_one_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let (result, recs) = sample_run("m", &["killed"], &[2, 8]);
    let entry = running_entry(&result);
    let mut writer = journal::Writer::create(dir.path(), &entry).unwrap();
    for r in &recs[0] {
        writer.append(0, r).unwrap();
    }
    for r in &recs[1][..7] {
        writer.append(1, r).unwrap();
    }
    writer.sync().unwrap();
    {
        let store = open(dir.path()).unwrap();
        store.put_entry(&entry).unwrap();
    }
    // Its writer lives: another open leaves it running, and shows the journal's records.
    {
        let store = open(dir.path()).unwrap();
        let run = load(&store, &entry.id).unwrap();
        assert_eq!(run.entry.status, RunStatus::Running);
        assert_eq!((run.records[0].len(), run.records[1].len()), (20, 7));
    }
    // The writer dies mid-line (its lock goes with it).
    drop(writer);
    let path = journal::path(dir.path(), &entry.id);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"[1,{\"index\":8,\"war").unwrap();
    drop(f);
    let store = open(dir.path()).unwrap();
    let run = load(&store, &entry.id).unwrap();
    assert_rebuilt(&run, &result);
    assert!(
        run.entry
            .note
            .as_deref()
            .unwrap()
            .contains("1 torn journal line")
    );
    assert!(!path.exists(), "the journal is merged and deleted");
}

#[test]
fn a_journal_whose_run_never_reached_the_store_is_recovered_from_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let (result, recs) = sample_run("m", &[], &[2, 8]);
    let entry = running_entry(&result);
    let mut writer = journal::Writer::create(dir.path(), &entry).unwrap();
    for r in recs[0].iter().chain(&recs[1][..7]) {
        let level = usize::from(recs[1].iter().any(|x| std::ptr::eq(x, r)));
        writer.append(level, r).unwrap();
    }
    writer.sync().unwrap();
    drop(writer);
    let store = open(dir.path()).unwrap();
    assert_rebuilt(&load(&store, &entry.id).unwrap(), &result);
}

#[test]
fn a_recovered_run_is_judged_again_against_the_objectives_it_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let (mut result, recs) = sample_run("m", &[], &[2, 8]);
    let objectives = crate::metrics::parse_objectives("ttft:30ms").unwrap();
    result.settings.slo = Some(crate::result::SloSettings {
        objectives: objectives.clone(),
        policy: "slo".into(),
    });
    let mut broken = result.clone();
    broken.settings.slo = Some(crate::result::SloSettings {
        objectives,
        policy: dir.path().join("gone.wasm").display().to_string(),
    });
    let ids: Vec<String> = [&result, &broken]
        .iter()
        .map(|r| {
            let store = open(dir.path()).unwrap();
            let entry = running_entry(r);
            store.put_entry(&entry).unwrap();
            store.put_records(&entry.id, 0, &recs[0]).unwrap();
            store.flush().unwrap();
            entry.id
        })
        .collect();
    let store = open(dir.path()).unwrap();
    let judged = load(&store, &ids[0]).unwrap();
    // TTFTs at c=2 are 22 … 41 ms: the first 9 of 20 meet 30 ms.
    let g = judged.entry.result.levels[0]
        .summary
        .goodput
        .as_ref()
        .unwrap();
    assert_eq!(g.good, 9);
    assert!((g.attainment_pct - 45.0).abs() < 1e-9);
    assert!(
        judged
            .entry
            .note
            .as_deref()
            .unwrap()
            .contains("judged again by the `slo` policy")
    );
    let unjudged = load(&store, &ids[1]).unwrap();
    assert!(unjudged.entry.result.levels[0].summary.goodput.is_none());
    assert!(
        unjudged
            .entry
            .note
            .as_deref()
            .unwrap()
            .contains("not judged against its SLO: "),
        "{:?}",
        unjudged.entry.note
    );
}
