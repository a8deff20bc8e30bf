//! The part of the `batch/v1` Job API this command writes, as typed structs whose serde names
//! are the API's own (camelCase), with the fields it always sets and no others. Comments that
//! explain a choice are attached to its value ([`Commented`]), so they sit on its line.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_saphyr::Commented;

use super::{INDEX_ENV, JobRequest, RESULTS_DIR, Results, SecretRef, TTL_AFTER_FINISHED_S};

/// The user the image runs as (`host/Dockerfile`); the pods ask for it by number, so
/// `runAsNonRoot` can be checked, and make the results volume writable by its group.
pub const RUN_AS: u32 = 10001;
const CONTAINER: &str = "llm-loadtest";
const VOLUME: &str = "results";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: JobSpec,
}

#[derive(Serialize)]
struct ObjectMeta {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JobSpec {
    completion_mode: Commented<&'static str>,
    completions: u32,
    parallelism: u32,
    backoff_limit_per_index: Commented<u32>,
    ttl_seconds_after_finished: Commented<u32>,
    template: PodTemplate,
}

#[derive(Serialize)]
struct PodTemplate {
    metadata: Labels,
    spec: PodSpec,
}

#[derive(Serialize)]
struct Labels {
    labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    restart_policy: &'static str,
    automount_service_account_token: Commented<bool>,
    security_context: PodSecurity,
    affinity: Affinity,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodSecurity {
    run_as_non_root: bool,
    run_as_user: u32,
    run_as_group: u32,
    fs_group: u32,
    seccomp_profile: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Affinity {
    pod_anti_affinity: PodAntiAffinity,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PodAntiAffinity {
    preferred_during_scheduling_ignored_during_execution: Vec<WeightedTerm>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WeightedTerm {
    weight: Commented<u32>,
    pod_affinity_term: AffinityTerm,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AffinityTerm {
    label_selector: MatchLabels,
    topology_key: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatchLabels {
    match_labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Container {
    name: &'static str,
    image: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Commented<Vec<String>>>,
    args: Vec<Commented<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    env: Vec<EnvVar>,
    resources: Resources,
    volume_mounts: Vec<VolumeMount>,
    security_context: ContainerSecurity,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvVar {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_from: Option<EnvSource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvSource {
    secret_key_ref: SecretKeyRef,
}

#[derive(Serialize)]
struct SecretKeyRef {
    name: String,
    key: String,
}

#[derive(Serialize)]
struct Resources {
    requests: Quantities,
    limits: Quantities,
}

#[derive(Serialize, Clone)]
struct Quantities {
    cpu: String,
    memory: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeMount {
    name: &'static str,
    mount_path: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ContainerSecurity {
    allow_privilege_escalation: bool,
    capabilities: BTreeMap<&'static str, Vec<&'static str>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Volume {
    name: Commented<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    persistent_volume_claim: Option<ClaimSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    empty_dir: Option<Empty>,
}

/// `{}`: a volume source with every field at its default.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimSource {
    claim_name: Commented<String>,
}

fn plain<T>(v: T) -> Commented<T> {
    Commented(v, String::new())
}

fn secret_env(name: &'static str, secret: &SecretRef) -> EnvVar {
    EnvVar {
        name,
        value: None,
        value_from: Some(EnvSource {
            secret_key_ref: SecretKeyRef {
                name: secret.name.clone(),
                key: secret.key.clone(),
            },
        }),
    }
}

/// Where a `--remote` Job's pods send their results (`import --remote`).
pub const RESULTS_URL_ENV: &str = "LLM_LOADTEST_RESULTS_URL";

/// With `--remote`: the shard's `run` (its arguments are the script's, `"$@"`), then its result
/// imported into the serve instance, whatever the run's exit code (a shard that missed an SLO
/// gate still measured); the pod exits as the run did, or 1 when the upload failed. The key
/// comes from LLM_LOADTEST_API_KEY, which `import` reads.
fn upload_script() -> String {
    format!(
        "out=\"{RESULTS_DIR}/shard-${{{INDEX_ENV}}}.json\"; llm-loadtest \"$@\"; code=$?; \
         if [ -f \"$out\" ]; then llm-loadtest import \"$out\" --remote \"${RESULTS_URL_ENV}\" \
         || exit 1; fi; exit $code"
    )
}

/// The Job for a checked request, its pods running `args`.
pub fn job(req: &JobRequest, args: Vec<String>) -> Job {
    let labels = BTreeMap::from([
        ("app.kubernetes.io/name", "llm-loadtest".to_string()),
        ("app.kubernetes.io/instance", req.name.clone()),
    ]);
    let output = super::shard_args::output_path();
    let args = args
        .into_iter()
        .map(|a| {
            let why = if a == output {
                // kubernetes/kubernetes pkg/controller/job/indexed_job_utils.go
                // (addCompletionIndexEnvVariable) adds JOB_COMPLETION_INDEX to every container
                // of an Indexed Job's pods, and the Container API's `args` expands $(VAR) from
                // the container's environment ("Variable references $(VAR_NAME) are expanded
                // using the container's environment").
                "$(JOB_COMPLETION_INDEX): the pod's index, from the env the Job controller adds"
            } else {
                ""
            };
            Commented(a, why.to_string())
        })
        .collect();
    let mut env = Vec::new();
    if let Some(secret) = &req.api_key_secret {
        env.push(secret_env("OPENAI_API_KEY", secret));
    }
    let volume = match &req.results {
        Results::Claim(claim) => Volume {
            name: plain(VOLUME),
            persistent_volume_claim: Some(ClaimSource {
                claim_name: Commented(
                    claim.clone(),
                    format!(
                        "ReadWriteMany when the shards land on different nodes (as the \
                         anti-affinity asks); writable by group {RUN_AS}"
                    ),
                ),
            }),
            empty_dir: None,
        },
        Results::Remote { url, key } => {
            // Not LLM_LOADTEST_REMOTE: `run` would read it and send the whole load from the
            // serve instance's machine. The shard runs here; only its result goes there.
            env.push(EnvVar {
                name: RESULTS_URL_ENV,
                value: Some(url.clone()),
                value_from: None,
            });
            env.push(secret_env(crate::remote::KEY_ENV, key));
            Volume {
                name: Commented(
                    VOLUME,
                    "scratch for --output: the serve instance keeps each shard's result"
                        .to_string(),
                ),
                persistent_volume_claim: None,
                empty_dir: Some(Empty {}),
            }
        }
    };
    let quantities = Quantities {
        cpu: req.cpu.clone(),
        memory: req.memory.clone(),
    };
    let pod = PodSpec {
        restart_policy: "Never",
        automount_service_account_token: Commented(
            false,
            "the shards never call the Kubernetes API".to_string(),
        ),
        security_context: PodSecurity {
            run_as_non_root: true,
            run_as_user: RUN_AS,
            run_as_group: RUN_AS,
            fs_group: RUN_AS,
            seccomp_profile: BTreeMap::from([("type", "RuntimeDefault")]),
        },
        affinity: Affinity {
            pod_anti_affinity: PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: vec![WeightedTerm {
                    weight: Commented(
                        100,
                        "one shard per node where there are nodes enough: shards sharing a \
                         node's CPUs would slow each other's clocks and sends"
                            .to_string(),
                    ),
                    pod_affinity_term: AffinityTerm {
                        label_selector: MatchLabels {
                            match_labels: labels.clone(),
                        },
                        topology_key: "kubernetes.io/hostname",
                    },
                }],
            },
        },
        containers: vec![Container {
            name: CONTAINER,
            image: req.image.clone(),
            command: matches!(req.results, Results::Remote { .. }).then(|| {
                Commented(
                    vec![
                        "/bin/sh".to_owned(),
                        "-c".to_owned(),
                        upload_script(),
                        "sh".to_owned(),
                    ],
                    "run the shard here (the args below), then import its result into serve"
                        .to_string(),
                )
            }),
            args,
            env,
            // Requests = limits: Guaranteed QoS, the last class evicted under node pressure;
            // with whole CPUs and the kubelet's static CPU manager, cores of its own.
            resources: Resources {
                requests: quantities.clone(),
                limits: quantities,
            },
            volume_mounts: vec![VolumeMount {
                name: VOLUME,
                mount_path: RESULTS_DIR,
            }],
            security_context: ContainerSecurity {
                allow_privilege_escalation: false,
                capabilities: BTreeMap::from([("drop", vec!["ALL"])]),
            },
        }],
        volumes: vec![volume],
    };
    Job {
        api_version: "batch/v1",
        kind: "Job",
        metadata: ObjectMeta {
            name: req.name.clone(),
            namespace: req.namespace.clone(),
            labels: labels.clone(),
        },
        spec: JobSpec {
            completion_mode: Commented(
                "Indexed",
                "each pod gets its shard index in JOB_COMPLETION_INDEX".to_string(),
            ),
            completions: req.shards,
            parallelism: req.shards,
            backoff_limit_per_index: Commented(
                0,
                "a failed shard is not retried (it would start late and skew the merged run), \
                 the others run on; merge names the missing one"
                    .to_string(),
            ),
            ttl_seconds_after_finished: Commented(
                TTL_AFTER_FINISHED_S,
                "a day to wait, read the logs and fetch the results".to_string(),
            ),
            template: PodTemplate {
                metadata: Labels { labels },
                spec: pod,
            },
        },
    }
}
