//! `llm-loadtest k8s job`: the manifest it prints, read back as YAML and checked field by
//! field, validated against the Kubernetes schema by `kubernetes-validate` where that is
//! installed (`pip install kubernetes-validate==1.37.0`; skipped with a warning where not),
//! and every refusal with its message. No cluster is needed: nothing is applied.
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::run_cli::cmd;

/// A key value the manifest must never contain, though it is in the command's environment.
const KEY: &str = "sk-test-must-not-leak-7f3a";

const RUN: [&str; 9] = [
    "run",
    "--server",
    "http://x:8000",
    "--model",
    "m",
    "--concurrency",
    "64",
    "--num-prompts",
    "400",
];

fn k8s_job(flags: &[&str], run: &[&str]) -> Output {
    let mut all = vec!["k8s", "job"];
    all.extend_from_slice(flags);
    all.push("--");
    all.extend_from_slice(run);
    cmd(&all)
        .env("OPENAI_API_KEY", KEY)
        .env("LLM_LOADTEST_API_KEY", KEY)
        .output()
        .unwrap()
}

/// The manifest's text and the Job read back from it.
fn manifest(flags: &[&str], run: &[&str]) -> (String, Value) {
    let out = k8s_job(flags, run);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(KEY), "a key value is in the manifest");
    let job: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, job)
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// The value after `flag` in `args`.
fn after<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1).copied())
}

fn env_of<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name} in {container}"))
}

/// Checks the manifest against the Kubernetes schema for the oldest version the Job's fields
/// need (1.29: backoffLimitPerIndex on by default) and the newest the validator knows, in
/// strict mode (an unknown field fails). Skipped with a warning where the validator is absent.
fn schema_valid(text: &str) {
    let version = Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    // 127: a pyenv shim for a Python that does not have it.
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "warning: kubernetes-validate not found, the manifest was not checked against the \
             Kubernetes schema (pip install kubernetes-validate==1.37.0)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("job.yaml");
    std::fs::write(&file, text).unwrap();
    for k8s in ["1.29.0", "1.37.0"] {
        let out = Command::new("kubernetes-validate")
            .args(["--strict", "-k", k8s])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "Kubernetes {k8s} schema: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_manifest_is_an_indexed_job_of_the_shards_with_keys_from_secrets() {
    let before = SystemTime::now();
    let (text, job) = manifest(
        &[
            "--shards",
            "4",
            "--image",
            "registry.example/llm-loadtest:0.1",
            "--namespace",
            "load",
            "--results-pvc",
            "loadtest-results",
            "--api-key-secret",
            "target-key",
        ],
        &RUN,
    );
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], "llm-loadtest");
    assert_eq!(job["metadata"]["namespace"], "load");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], 4);
    assert_eq!(spec["parallelism"], 4);
    assert_eq!(
        spec["backoffLimitPerIndex"], 0,
        "a failed shard is not retried"
    );
    assert!(spec["ttlSecondsAfterFinished"].as_u64().unwrap() > 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let anti =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    assert_eq!(
        anti[0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    assert_eq!(
        anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"],
        spec["template"]["metadata"]["labels"],
        "the anti-affinity selects this Job's own pods"
    );

    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example/llm-loadtest:0.1");
    assert_eq!(c["resources"]["requests"], c["resources"]["limits"]);
    assert_eq!(c["resources"]["requests"]["cpu"], "2");
    assert_eq!(c["resources"]["requests"]["memory"], "2Gi");
    let args = strings(&c["args"]);
    assert_eq!(
        args[..RUN.len()],
        RUN,
        "the user's run arguments come first"
    );
    assert_eq!(after(&args, "--shards"), Some("4"));
    assert!(args.contains(&"--save-requests"));
    assert_eq!(
        after(&args, "--output"),
        Some("/results/shard-$(JOB_COMPLETION_INDEX).json")
    );
    let start = after(&args, "--start-at").expect("--start-at");
    let start = humantime::parse_rfc3339(start).unwrap_or_else(|e| panic!("{start}: {e}"));
    let from_now = start.duration_since(before).unwrap();
    assert!(
        from_now >= Duration::from_secs(120) && from_now <= Duration::from_secs(185),
        "the default start is 2m ahead, rounded up to a minute: {from_now:?}"
    );
    let whole = start.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(whole.as_secs() % 60, 0, "a whole minute");
    assert_eq!(whole.subsec_nanos(), 0);

    let key = env_of(c, "OPENAI_API_KEY");
    assert!(key.get("value").is_none());
    assert_eq!(key["valueFrom"]["secretKeyRef"]["name"], "target-key");
    assert_eq!(key["valueFrom"]["secretKeyRef"]["key"], "OPENAI_API_KEY");
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/results");
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "loadtest-results"
    );

    // The header says how to follow, fetch and merge, with this Job's names.
    for line in [
        "kubectl -n load wait --for=condition=complete job/llm-loadtest --timeout=",
        "kubectl -n load cp llm-loadtest-fetch:/results",
        "llm-loadtest merge shard-*.json --save",
        "ReadWriteMany",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
    schema_valid(&text);
}

#[test]
fn with_remote_the_shards_submit_to_serve_with_its_key_from_a_secret() {
    let (text, job) = manifest(
        &[
            "--shards",
            "2",
            "--image",
            "llm-loadtest",
            "--name",
            "sweep-1",
            "--level-interval",
            "90s",
            "--remote",
            "http://serve.tools:8080",
            "--remote-key-secret",
            "serve-key:runner",
            "--cpu",
            "500m",
            "--memory",
            "1Gi",
        ],
        &[
            "run",
            "--server",
            "http://x:8000",
            "--concurrency",
            "1,8,32",
        ],
    );
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&c["args"]);
    assert_eq!(after(&args, "--level-interval"), Some("90s"));
    assert_eq!(after(&args, "--tag"), Some("k8s-job=sweep-1"));
    assert!(!args.contains(&"--remote"), "the shard runs in the pod");
    // `run` must not see LLM_LOADTEST_REMOTE (it would send the load from serve's machine):
    // the script imports the result there after the run.
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "LLM_LOADTEST_REMOTE")
    );
    assert_eq!(
        env_of(c, "LLM_LOADTEST_RESULTS_URL")["value"],
        "http://serve.tools:8080"
    );
    let command = strings(&c["command"]);
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    assert!(command[2].contains("llm-loadtest \"$@\""), "{}", command[2]);
    assert!(
        command[2].contains("import \"$out\" --remote \"$LLM_LOADTEST_RESULTS_URL\""),
        "{}",
        command[2]
    );
    let key = &env_of(c, "LLM_LOADTEST_API_KEY")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        (&key["name"], &key["key"]),
        (&"serve-key".into(), &"runner".into())
    );
    assert!(
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["name"] != "OPENAI_API_KEY")
    );
    assert!(job["spec"]["template"]["spec"]["volumes"][0]["emptyDir"].is_object());
    assert_eq!(c["resources"]["limits"]["cpu"], "500m");
    assert!(
        text.contains(
            "llm-loadtest history --remote http://serve.tools:8080 --tag k8s-job=sweep-1"
        )
    );
    schema_valid(&text);
}

/// The flags of a good request, with `changes` made (a flag replaced, or added).
fn flags<'a>(changes: &[(&'a str, &'a str)]) -> Vec<&'a str> {
    let mut pairs = vec![
        ("--shards", "4"),
        ("--image", "img"),
        ("--results-pvc", "r"),
    ];
    for (flag, value) in changes {
        match pairs.iter_mut().find(|(f, _)| f == flag) {
            Some(pair) => pair.1 = value,
            None => pairs.push((flag, value)),
        }
    }
    pairs.into_iter().flat_map(|(f, v)| [f, v]).collect()
}

#[test]
fn refusals_name_the_problem_and_exit_2() {
    let ok = flags(&[]);
    let run_plus = |extra: &[&'static str]| [&RUN[..], extra].concat();
    let key_eq = format!("--api-key={KEY}");
    let cases: Vec<(Vec<&str>, Vec<&str>, &str)> = vec![
        (
            ok.clone(),
            run_plus(&["--api-key", KEY]),
            "--api-key-secret",
        ),
        (
            ok.clone(),
            [&RUN[..], &[key_eq.as_str()]].concat(),
            "--api-key-secret",
        ),
        (
            flags(&[("--shards", "0")]),
            RUN.to_vec(),
            "--shards 0: give 1 to 1000",
        ),
        (
            flags(&[("--shards", "1001")]),
            RUN.to_vec(),
            "--shards 1001",
        ),
        (
            flags(&[("--name", "Load_Test")]),
            RUN.to_vec(),
            "--name `Load_Test` is not a valid DNS-1123 label",
        ),
        (
            flags(&[("--namespace", "a.b")]),
            RUN.to_vec(),
            "--namespace `a.b`",
        ),
        (flags(&[("--image", "")]), RUN.to_vec(), "--image"),
        (
            flags(&[("--memory", "2GB")]),
            RUN.to_vec(),
            "--memory `2GB` is not a Kubernetes quantity",
        ),
        (
            ok.clone(),
            run_plus(&["--output", "x.json"]),
            "`--output` among the run arguments",
        ),
        (
            ok.clone(),
            run_plus(&["--shards", "2"]),
            "`--shards` among the run arguments",
        ),
        (
            ok.clone(),
            run_plus(&["--shard=0/2"]),
            "`--shard` among the run arguments",
        ),
        (
            ok.clone(),
            run_plus(&["--start-at", "2030-01-01T00:00:00Z"]),
            "`--start-at` among the run arguments",
        ),
        (
            ok.clone(),
            run_plus(&["--remote", "http://s"]),
            "`--remote` among the run arguments",
        ),
        (
            ok.clone(),
            run_plus(&["--concurrency", "8"]),
            "give --level-interval",
        ),
        (ok.clone(), vec!["show", "x"], "must start with `run`"),
        (
            flags(&[("--level-interval", "5m")]),
            vec!["run", "--server", "http://x:8000", "--stages", "1m:10"],
            "leave out --level-interval",
        ),
        (
            vec!["--shards", "4", "--image", "img"],
            RUN.to_vec(),
            "give --results-pvc CLAIM or --remote URL",
        ),
        (
            flags(&[("--remote", "http://s:1"), ("--remote-key-secret", "k")]),
            RUN.to_vec(),
            "--results-pvc and --remote",
        ),
        (
            flags(&[("--api-key-secret", "Key:x")]),
            RUN.to_vec(),
            "--api-key-secret `Key:x`",
        ),
    ];
    for (flags, run, message) in cases {
        let out = k8s_job(&flags, &run);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?} -- {run:?}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{flags:?} -- {run:?} printed a manifest"
        );
        assert!(
            err.contains(message),
            "{flags:?} -- {run:?}: `{message}` not in {err}"
        );
        assert!(!err.contains(KEY), "the refusal repeats the key: {err}");
    }
}

/// A staged run needs no level interval, and the wait it prints outlasts its stages.
#[test]
fn a_staged_runs_wait_outlasts_its_stages() {
    let run = [
        "run",
        "--server",
        "http://x:8000",
        "--model",
        "m",
        "--stages",
        "30m:100,3h:100",
    ];
    let (text, _) = manifest(&flags(&[]), &run);
    let minutes: u64 = text
        .split("--timeout=")
        .nth(1)
        .and_then(|t| t.split('m').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no wait timeout in {text}"));
    assert!(
        minutes >= 210 + 30,
        "{minutes} min for 3 h 30 min of stages"
    );
}
