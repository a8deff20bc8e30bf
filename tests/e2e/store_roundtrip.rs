//! `run` saves to the store; `history`, `show`, `export`, `import`,
//! `compare` and `delete` read it back, and exported files import to the
//! same run.
use llm_loadtest::store::{self, Store as _};

use crate::store_support::{cmd, ok, saved_id};
use crate::support::{fixed, sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_saves_and_export_import_round_trips() {
    let server = sim(fixed(5, 2)).await;
    let url = format!("http://{}", server.local_addr());
    let data = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let d = data.path();

    let stdout = ok(cmd(
        d,
        &[
            "run",
            "--server",
            &url,
            "--adapter",
            "vllm",
            "--concurrency",
            "1,4",
            "--num-prompts",
            "24",
            "--input-len",
            "16",
            "--output-len",
            "6",
            "--ignore-eos",
            "--slo",
            "ttft:1s",
            "--tag",
            "baseline",
            "--no-progress",
        ],
    ))
    .await;
    let id = saved_id(&stdout);
    assert!(stdout.contains("(complete)"), "{stdout}");

    let history = ok(cmd(d, &["history", "--tag", "baseline", "--since", "1h"])).await;
    assert!(
        history.contains(&id) && history.contains("complete"),
        "{history}"
    );
    assert!(history.contains("48 ok"), "{history}");
    let none = ok(cmd(d, &["history", "--model", "no-such-model"])).await;
    assert!(!none.contains(&id), "{none}");
    let show = ok(cmd(d, &["show", &id[..16]])).await;
    assert!(
        show.contains("c=4") && show.contains("48 request records saved"),
        "{show}"
    );

    // Native JSON: the same result and records after a trip through a file.
    let json = files.path().join("run.json");
    ok({
        let mut c = cmd(d, &["export", &id, "--format", "json", "--out"]);
        c.arg(&json);
        c
    })
    .await;
    let imported = ok({
        let mut c = cmd(other.path(), &["import"]);
        c.arg(&json);
        c
    })
    .await;
    let copy_id = saved_id(&imported);
    let (orig, copy) = {
        let a = store::open(d).unwrap();
        let b = store::open(other.path()).unwrap();
        (
            store::load(&a, &id).unwrap(),
            store::load(&b, &copy_id).unwrap(),
        )
    };
    assert_eq!(orig.entry.result, copy.entry.result);
    assert_eq!(orig.records, copy.records);
    assert_eq!(orig.records[1].len(), 24);
    assert!(orig.records[1].iter().all(|r| r.output_tokens == 6));

    // vLLM's format, one file per level; the c=4 file reads back to the
    // same figures and compares as noise-free.
    let vllm = files.path().join("v.json");
    ok({
        let mut c = cmd(d, &["export", &id, "--format", "vllm", "--out"]);
        c.arg(&vllm);
        c
    })
    .await;
    let level_file = files.path().join("v-1-c4.json");
    let imported = ok({
        let mut c = cmd(
            d,
            &[
                "import",
                "--tag",
                "from-vllm",
                "--server",
                "http://gpu-box:8000",
            ],
        );
        c.arg(&level_file);
        c
    })
    .await;
    let vllm_id = saved_id(&imported);
    let back = {
        let st = store::open(d).unwrap();
        store::load(&st, &vllm_id).unwrap()
    };
    let (a, b) = (
        &orig.entry.result.levels[1].summary,
        &back.entry.result.levels[0].summary,
    );
    assert_eq!(back.entry.result.levels[0].label, "c=4");
    assert_eq!(back.entry.result.settings.server, "http://gpu-box:8000");
    // The export wrote the server's prompt counts, so the import reads the same tokens back.
    assert_eq!(a.total_input_tokens, b.total_input_tokens);
    assert_eq!((a.completed, a.failed), (b.completed, b.failed));
    assert!((a.ttft_ms.p99 - b.ttft_ms.p99).abs() < 1e-6);
    assert!((a.e2el_ms.p50 - b.e2el_ms.p50).abs() < 1e-6);
    assert!((a.tpot_ms.mean - b.tpot_ms.mean).abs() < 1e-6);
    assert_eq!(a.request_throughput, b.request_throughput);

    let cmp = ok(cmd(d, &["compare", &id, &vllm_id])).await;
    assert!(
        cmp.contains("Level c=4") && cmp.contains("Level c=1"),
        "{cmp}"
    );
    assert!(cmp.contains("within noise"), "{cmp}");
    // Same workload, the same tokens per request: nothing to warn about, even though the
    // import knows no adapter or dataset.
    assert!(!cmp.contains("Workloads differ"), "{cmp}");
    assert!(!cmp.contains("worse") && !cmp.contains("better"), "{cmp}");

    ok(cmd(d, &["delete", &vllm_id])).await;
    let st = store::open(d).unwrap();
    assert!(st.entry(&vllm_id).unwrap().is_none());
    assert!(st.records(&vllm_id).unwrap().is_empty());
    assert!(st.entry(&id).unwrap().is_some());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_save_leaves_the_store_alone_and_bad_ids_fail() {
    let server = sim(fixed(2, 1)).await;
    let url = format!("http://{}", server.local_addr());
    let data = tempfile::tempdir().unwrap();
    let stdout = ok(cmd(
        data.path(),
        &[
            "run",
            "--server",
            &url,
            "--model",
            "m",
            "--num-prompts",
            "3",
            "--input-len",
            "8",
            "--output-len",
            "2",
            "--no-progress",
            "--no-save",
        ],
    ))
    .await;
    assert!(!stdout.contains("run saved"), "{stdout}");
    let history = ok(cmd(data.path(), &["history"])).await;
    assert!(history.contains("no saved runs"), "{history}");
    let out = tokio::task::spawn_blocking({
        let mut c = cmd(data.path(), &["show", "nope"]);
        move || c.output()
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stored run matches `nope`"));
    server.shutdown().await.unwrap();
}
