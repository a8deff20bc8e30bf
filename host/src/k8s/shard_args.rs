//! The `run` command line each pod gets: the user's arguments, checked, and then what makes
//! the pods one sharded run (`--shards`, a shared `--start-at`, records for an exact merge,
//! and a result file named by the pod's index).
use super::{INDEX_ENV, JobRequest, K8sError, RESULTS_DIR, format_duration, rfc3339};
use crate::plan::{StageUnit, stages};

/// Flags this command sets on every shard, and why a user's own would be wrong.
const SET_BY_JOB: [(&str, &str); 7] = [
    (
        "--shards",
        "from --shards; each pod reads its index from JOB_COMPLETION_INDEX",
    ),
    (
        "--shard",
        "each pod reads its index from JOB_COMPLETION_INDEX",
    ),
    (
        "--start-at",
        "from --start-in, the same instant for every shard",
    ),
    (
        "--level-interval",
        "give it to `k8s job` as --level-interval",
    ),
    ("--output", "each shard writes /results/shard-INDEX.json"),
    ("--output-format", "merge reads the native result format"),
    (
        "--remote",
        "give it to `k8s job` as --remote, with --remote-key-secret",
    ),
];

/// Closed-loop and open-loop level lists: `--concurrency 1,8,32`, repeatable.
const LEVEL_FLAGS: [&str; 2] = ["--concurrency", "--request-rate"];

/// `run ARGS... --shards N --start-at T [--level-interval D] --save-requests --tag k8s-job=NAME
/// --output /results/shard-$(JOB_COMPLETION_INDEX).json`.
pub fn build(req: &JobRequest) -> Result<Vec<String>, K8sError> {
    let user = &req.run_args;
    match user.first().map(String::as_str) {
        Some("run") => {}
        Some(other) => return Err(K8sError::NotRun(format!("`{other}`"))),
        None => return Err(K8sError::NotRun("nothing".to_string())),
    }
    for arg in user {
        if is_flag(arg, "--api-key") {
            // Only the flag is echoed: what follows `=` may be the key itself.
            return Err(K8sError::KeyInArgs("--api-key".to_string()));
        }
        if let Some((flag, why)) = SET_BY_JOB.iter().find(|(f, _)| is_flag(arg, f)) {
            return Err(K8sError::SetByJob {
                flag: flag.to_string(),
                why,
            });
        }
    }
    let levels = level_count(user);
    if levels > 1 && req.level_interval.is_none() {
        return Err(K8sError::NeedsLevelInterval(levels));
    }
    if staged_seconds(user).is_some() && req.level_interval.is_some() {
        return Err(K8sError::StagesTakeNoInterval);
    }

    let mut args = user.clone();
    args.extend([
        "--shards".to_string(),
        req.shards.to_string(),
        "--start-at".to_string(),
        rfc3339(req.start_at),
    ]);
    if let Some(d) = req.level_interval {
        args.extend(["--level-interval".to_string(), format_duration(d)]);
    }
    // Records in every shard's result, so `merge` computes percentiles over all requests
    // rather than averaging the shards' own.
    if !user.iter().any(|a| is_flag(a, "--save-requests")) {
        args.push("--save-requests".to_string());
    }
    // A tag finds the shards among a shared `serve` instance's other runs.
    args.extend(["--tag".to_string(), format!("k8s-job={}", req.name)]);
    args.extend(["--output".to_string(), output_path()]);
    Ok(args)
}

/// The result file of the pod whose index Kubernetes substitutes for `$(JOB_COMPLETION_INDEX)`.
pub fn output_path() -> String {
    format!("{RESULTS_DIR}/shard-$({INDEX_ENV}).json")
}

/// `--flag` or `--flag=value` (clap takes both), and not `--flag-longer`.
fn is_flag(arg: &str, flag: &str) -> bool {
    arg.strip_prefix(flag)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
}

/// How many levels the arguments ask for, counting every `--concurrency` and
/// `--request-rate` value, comma-separated or repeated.
pub(super) fn level_count(args: &[String]) -> usize {
    let mut count = 0;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        for flag in LEVEL_FLAGS {
            let value = match arg.strip_prefix(flag) {
                Some("") => it.next().map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some(v) = value {
                count += v.split(',').filter(|s| !s.trim().is_empty()).count();
            }
        }
    }
    count
}

/// How long the stages of `--stages` or `--rate-stages` last, when the arguments give them
/// and they parse (a bad list is `run`'s to refuse, with its own message).
pub(super) fn staged_seconds(args: &[String]) -> Option<f64> {
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        for (flag, unit) in [
            ("--stages", StageUnit::Clients),
            ("--rate-stages", StageUnit::Rate),
        ] {
            let value = match arg.strip_prefix(flag) {
                Some("") => it.clone().next().map(String::as_str),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            if let Some(profile) = value.and_then(|v| stages::parse(v, unit).ok()) {
                return Some(profile.total_s());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stage_lists_are_timed() {
        let s = |a: &[&str]| staged_seconds(&strings(a));
        assert_eq!(s(&["run", "--stages", "30s:10,1m:10"]), Some(90.0));
        assert_eq!(s(&["run", "--rate-stages=2m:5"]), Some(120.0));
        assert_eq!(s(&["run", "--concurrency", "4"]), None);
        assert_eq!(s(&["run", "--stages", "nonsense"]), None);
    }

    #[test]
    fn flags_match_whole_names_only() {
        assert!(is_flag("--output", "--output"));
        assert!(is_flag("--output=x.json", "--output"));
        assert!(!is_flag("--output-len", "--output"));
        assert!(!is_flag("--shards", "--shard"));
    }

    #[test]
    fn levels_are_counted_in_every_form() {
        assert_eq!(level_count(&strings(&["run", "--concurrency", "64"])), 1);
        assert_eq!(level_count(&strings(&["run", "--concurrency=1,8,32"])), 3);
        assert_eq!(
            level_count(&strings(&[
                "run",
                "--request-rate",
                "1",
                "--request-rate",
                "2"
            ])),
            2
        );
        assert_eq!(level_count(&strings(&["run", "--model", "m"])), 0);
    }
}
