//! `k8s job`: a Kubernetes Indexed Job that runs one load test as N shards on N pods.
//!
//! Why it is shaped so:
//! - It prints a manifest and never talks to a cluster: the user reads it, keeps it with the
//!   run, and applies it with their own credentials, so this crate needs no Kubernetes client.
//! - The manifest is typed structs ([`manifest`]) serialised by a YAML library, never text
//!   pasted together, so every value a user gives (an image, a model name with a colon, a
//!   `yes`) is quoted by the serialiser, not by us; the why-comments ride on the values.
//! - Everything a user gives is checked before anything is written ([`check`], [`shard_args`]),
//!   and each refusal is a typed error naming the flag and the value, so a manifest the API
//!   server or the pods would reject minutes later is refused here at once.
//! - Keys never enter the manifest: the pods read them from Secrets by reference.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod check;
mod header;
pub mod manifest;
mod shard_args;

pub use check::SecretRef;

/// Most shards one Job may have: what `run --shards` accepts — far more pods than a load test
/// needs, and a bound on the manifest and on what one typo in `--shards` can ask of a cluster.
pub use crate::plan::MAX_SHARDS;
/// Where a shard writes its result in its pod.
pub const RESULTS_DIR: &str = "/results";
/// The variable the Job controller gives each pod of an Indexed Job its index in.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// How long a finished Job and its pods stay, so `kubectl wait`, `logs` and the fetch of the
/// results still find them the next day, and are then collected.
pub const TTL_AFTER_FINISHED_S: u32 = 86_400;

/// What the Job's pods keep their results in.
#[derive(Debug, Clone, PartialEq)]
pub enum Results {
    /// A PersistentVolumeClaim mounted at [`RESULTS_DIR`] in every pod.
    Claim(String),
    /// A `serve` instance at this URL keeps each shard's result: the shard runs in its pod and
    /// then imports its result there.
    Remote { url: String, key: SecretRef },
}

impl Results {
    /// From `--results-pvc`, `--remote` and `--remote-key-secret`: one place to keep the
    /// results is needed, and the `serve` key only goes with `--remote`.
    pub fn from_flags(
        claim: Option<String>,
        remote: Option<String>,
        remote_key: Option<&str>,
    ) -> Result<Self, K8sError> {
        match (claim, remote, remote_key) {
            (Some(_), Some(_), _) => Err(K8sError::ClaimAndRemote),
            (_, None, Some(_)) => Err(K8sError::KeyWithoutRemote),
            (Some(claim), None, None) => Ok(Results::Claim(claim)),
            (None, Some(_), None) => Err(K8sError::RemoteWithoutKey),
            (None, Some(url), Some(key)) => Ok(Results::Remote {
                url,
                key: SecretRef::parse("--remote-key-secret", key, crate::remote::KEY_ENV)?,
            }),
            (None, None, None) => Err(K8sError::NoResults),
        }
    }
}

/// Everything `k8s job` was given.
#[derive(Debug, Clone)]
pub struct JobRequest {
    pub name: String,
    pub namespace: Option<String>,
    pub shards: u32,
    pub image: String,
    /// When level 0 starts on every shard.
    pub start_at: SystemTime,
    pub level_interval: Option<Duration>,
    pub cpu: String,
    pub memory: String,
    pub results: Results,
    /// The Secret holding the load target's key (`OPENAI_API_KEY` in the pod).
    pub api_key_secret: Option<SecretRef>,
    /// `run` and its arguments, as given after `--`.
    pub run_args: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum K8sError {
    #[error("--shards {0}: give 1 to {MAX_SHARDS}")]
    Shards(u32),
    #[error("--image `{0}` is not an image reference (empty, or with spaces)")]
    Image(String),
    #[error(
        "{flag} `{value}` is not a valid DNS-1123 label: lower-case letters, digits and '-', \
         starting and ending with a letter or digit, at most 63 characters"
    )]
    NotLabel { flag: &'static str, value: String },
    #[error(
        "{flag} `{value}` is not a valid DNS-1123 subdomain: lower-case letters, digits, '-' and \
         '.', starting and ending with a letter or digit, at most 253 characters"
    )]
    NotSubdomain { flag: &'static str, value: String },
    #[error("{flag} `{value}`: `{key}` is not a Secret key (letters, digits, '-', '_' and '.')")]
    SecretKey {
        flag: &'static str,
        value: String,
        key: String,
    },
    #[error("{flag} `{value}` is not a Kubernetes quantity (e.g. 2, 500m, 2Gi)")]
    Quantity { flag: &'static str, value: String },
    #[error("--remote `{0}` is not an http:// or https:// URL")]
    RemoteUrl(String),
    #[error("--level-interval must be above zero")]
    ZeroInterval,
    #[error(
        "the arguments after -- must start with `run` (the pods run `llm-loadtest run`), \
         found {0}"
    )]
    NotRun(String),
    #[error(
        "`{0}` among the run arguments would write the key into the manifest: put it in a \
         Secret (kubectl create secret generic NAME --from-literal=OPENAI_API_KEY=...) and pass \
         --api-key-secret NAME[:KEY]"
    )]
    KeyInArgs(String),
    #[error("`{flag}` among the run arguments: `k8s job` sets it ({why})")]
    SetByJob { flag: String, why: &'static str },
    #[error(
        "the run arguments give {0} levels: give --level-interval DURATION too, so every shard \
         starts level k at the same instant (start-at + k x interval)"
    )]
    NeedsLevelInterval(usize),
    #[error(
        "the run arguments give stages, which run as one schedule from the start: leave out \
         --level-interval"
    )]
    StagesTakeNoInterval,
    #[error(
        "give --results-pvc CLAIM or --remote URL: the shard results are written in the pods, \
         and a finished pod's own files cannot be copied out"
    )]
    NoResults,
    #[error("--results-pvc and --remote: give one (with --remote, serve keeps the results)")]
    ClaimAndRemote,
    #[error("--remote-key-secret is only for --remote")]
    KeyWithoutRemote,
    #[error(
        "--remote needs --remote-key-secret NAME[:KEY]: the Secret with the `serve` key (runner \
         role) the shards submit with"
    )]
    RemoteWithoutKey,
    #[error("writing the manifest as YAML: {0}")]
    Yaml(String),
}

/// `now + start_in`, rounded up to the next whole minute: an instant a person can read and
/// type, far enough ahead for the pods to be scheduled and their image pulled.
pub fn start_at(now: SystemTime, start_in: Duration) -> SystemTime {
    let t = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(start_in);
    let whole = t.as_secs() + u64::from(t.subsec_nanos() > 0);
    UNIX_EPOCH + Duration::from_secs(whole.div_ceil(60) * 60)
}

/// The manifest: a header comment saying how to follow, fetch and merge, then the Job.
pub fn job_yaml(req: &JobRequest, now: SystemTime) -> Result<String, K8sError> {
    check::request(req)?;
    let args = shard_args::build(req)?;
    let job = manifest::job(req, args);
    let body = serde_saphyr::to_string(&job).map_err(|e| K8sError::Yaml(e.to_string()))?;
    Ok(format!("{}{body}", header::text(req, now)))
}

/// A duration as `run` reads it back (`90s`, `1500ms`): exact for whole milliseconds.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

/// An instant in RFC 3339, UTC, to the second (what `--start-at` takes).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_rounded_up_to_a_whole_minute() {
        let at = |s: u64, n: u32| UNIX_EPOCH + Duration::new(s, n);
        assert_eq!(start_at(at(60, 0), Duration::ZERO), at(60, 0));
        assert_eq!(start_at(at(60, 1), Duration::ZERO), at(120, 0));
        assert_eq!(start_at(at(61, 0), Duration::from_secs(120)), at(240, 0));
        assert_eq!(rfc3339(at(240, 0)), "1970-01-01T00:04:00Z");
    }

    #[test]
    fn durations_read_back_as_given() {
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(
            format_duration(Duration::from_micros(1_000_250)),
            "1000250us"
        );
        for d in ["90s", "1500ms", "250us"] {
            let parsed = crate::duration::parse(d).unwrap();
            assert_eq!(crate::duration::parse(&format_duration(parsed)), Ok(parsed));
        }
    }
}
