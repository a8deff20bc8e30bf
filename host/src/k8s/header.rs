//! The comment above the manifest: the commands that take a user from this file to one merged
//! result, with this Job's own names filled in, so the file says how to use itself.
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use super::{JobRequest, Results, SecretRef, rfc3339, shard_args};

/// Slack on `kubectl wait` beyond the start and the levels' intervals: a last level's own
/// length, which the arguments do not say.
const WAIT_SLACK: Duration = Duration::from_secs(30 * 60);

/// `# `-prefixed lines ending in a blank line.
pub fn text(req: &JobRequest, now: SystemTime) -> String {
    let kubectl = match &req.namespace {
        Some(ns) => format!("kubectl -n {ns}"),
        None => "kubectl".to_string(),
    };
    let name = &req.name;
    let mut t = String::new();
    let mut line = |s: &str| {
        let _ = writeln!(t, "#{}{s}", if s.is_empty() { "" } else { " " });
    };
    line(&format!(
        "llm-loadtest k8s job: one load test as {} shards, level 0 at {} on every shard.",
        req.shards,
        rfc3339(req.start_at)
    ));
    line("");
    let secrets: Vec<&SecretRef> = req
        .api_key_secret
        .iter()
        .chain(match &req.results {
            Results::Remote { key, .. } => Some(key),
            Results::Claim(_) => None,
        })
        .collect();
    if !secrets.is_empty() {
        line("0. The keys stay in Secrets; create them once (no key is written in this file):");
        for s in secrets {
            line(&format!(
                "     {kubectl} create secret generic {} --from-literal={}=...",
                s.name, s.key
            ));
        }
    }
    line(&format!(
        "1. Apply it before {} (every pod must be running by then), then wait:",
        rfc3339(req.start_at)
    ));
    line(&format!("     {kubectl} apply -f job.yaml"));
    line(&format!(
        "     {kubectl} wait --for=condition=complete job/{name} --timeout={}m",
        wait_timeout(req, now).as_secs() / 60
    ));
    line("   A failed shard is not retried and the Job ends Failed (the wait then times out):");
    line(&format!(
        "     {kubectl} get job {name} -o jsonpath='{{.status.failedIndexes}}'"
    ));
    line(&format!(
        "     {kubectl} logs -l app.kubernetes.io/instance={name} --prefix --tail=-1"
    ));
    line("2. Fetch the shard results:");
    match &req.results {
        Results::Claim(claim) => {
            let overrides = format!(
                r#"{{"spec":{{"volumes":[{{"name":"r","persistentVolumeClaim":{{"claimName":"{claim}"}}}}],"containers":[{{"name":"f","image":"{image}","command":["sleep","3600"],"volumeMounts":[{{"name":"r","mountPath":"/results"}}]}}]}}}}"#,
                image = req.image,
            );
            line("   (a finished pod cannot be copied from: start one that mounts the claim)");
            line(&format!(
                "     {kubectl} run {name}-fetch --restart=Never --image={} --overrides='{overrides}'",
                req.image
            ));
            line(&format!(
                "     {kubectl} wait --for=condition=Ready pod/{name}-fetch"
            ));
            line(&format!("     {kubectl} cp {name}-fetch:/results ./{name}"));
            line(&format!("     {kubectl} delete pod {name}-fetch"));
            line(&format!("     cd {name}"));
            line("   (files are named by shard index: a later Job on the claim overwrites them)");
        }
        Results::Remote { url, .. } => {
            line(&format!(
                "     llm-loadtest history --remote {url} --tag k8s-job={name}"
            ));
            line("   and for each shard's run ID (LLM_LOADTEST_API_KEY set):");
            line(&format!(
                "     llm-loadtest export ID --remote {url} --format json --out shard-INDEX.json"
            ));
        }
    }
    line("3. Merge them into one run (exact percentiles: every shard kept its requests):");
    line("     llm-loadtest merge shard-*.json --save");
    t.push('\n');
    t
}

/// From now to the start, every level's interval (or the stages' length), and [`WAIT_SLACK`], in
/// whole minutes.
fn wait_timeout(req: &JobRequest, now: SystemTime) -> Duration {
    let to_start = req.start_at.duration_since(now).unwrap_or_default();
    let levels = shard_args::level_count(&req.run_args).max(1);
    let levels_time = req
        .level_interval
        .map(|d| d.saturating_mul(u32::try_from(levels).unwrap_or(u32::MAX)))
        .unwrap_or_default()
        // A staged run says its own length.
        .max(
            shard_args::staged_seconds(&req.run_args)
                .map(|s| Duration::from_secs_f64(s.clamp(0.0, 1e9)))
                .unwrap_or_default(),
        );
    let total = to_start
        .saturating_add(levels_time)
        .saturating_add(WAIT_SLACK);
    Duration::from_secs(total.as_secs().div_ceil(60) * 60)
}
