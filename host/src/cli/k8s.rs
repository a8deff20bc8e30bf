//! `k8s job`: print a Kubernetes Indexed Job that runs one load test as N shards, for more
//! load than one machine can send. It prints and never applies: see [`crate::k8s`].
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use crate::k8s::{self, JobRequest, Results, SecretRef};

#[derive(Debug, Args)]
pub struct K8sArgs {
    #[command(subcommand)]
    pub command: K8sCommand,
}

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print (to stdout) an Indexed Job whose N pods each run one shard of
    /// `llm-loadtest run ARGS...`, all starting together; `merge` joins their results.
    Job(Box<JobArgs>),
}

#[derive(Debug, Args)]
pub struct JobArgs {
    /// How many shards (pods), 1 to 1000.
    #[arg(long)]
    pub shards: u32,
    /// The llm-loadtest image the pods run (see host/Dockerfile).
    #[arg(long)]
    pub image: String,
    /// The Job's namespace [default: kubectl's current one].
    #[arg(long)]
    pub namespace: Option<String>,
    /// The Job's name (a DNS-1123 label).
    #[arg(long, default_value = "llm-loadtest")]
    pub name: String,
    /// Level 0 starts this long from now, rounded up to a whole minute: time to apply the
    /// Job, schedule its pods and pull the image.
    #[arg(long, default_value = "2m", value_parser = crate::duration::parse_arg)]
    pub start_in: Duration,
    /// Level k starts at the start + k x this on every shard (needed with several levels).
    #[arg(long, value_parser = crate::duration::parse_arg)]
    pub level_interval: Option<Duration>,
    /// CPU each pod requests and is limited to.
    #[arg(long, default_value = "2")]
    pub cpu: String,
    /// Memory each pod requests and is limited to.
    #[arg(long, default_value = "2Gi")]
    pub memory: String,
    /// A PersistentVolumeClaim the shards write their results to (ReadWriteMany when the pods
    /// are on several nodes).
    #[arg(long, value_name = "CLAIM")]
    pub results_pvc: Option<String>,
    /// A `serve` instance, as the pods reach it, that keeps every shard's result: each pod runs
    /// its shard, then imports its result there (not read from LLM_LOADTEST_REMOTE: the
    /// cluster's address for it may not be yours).
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// The Secret (and key in it, default OPENAI_API_KEY) with the load target's API key.
    #[arg(long, value_name = "NAME[:KEY]")]
    pub api_key_secret: Option<String>,
    /// With --remote: the Secret (and key, default LLM_LOADTEST_API_KEY) with the serve key.
    #[arg(long, value_name = "NAME[:KEY]")]
    pub remote_key_secret: Option<String>,
    /// After `--`: `run` and its arguments, as for `llm-loadtest run` (without --api-key,
    /// --shards, --start-at, --level-interval, --output or --remote, which this sets).
    #[arg(last = true, required = true, value_name = "run ARGS")]
    pub run: Vec<String>,
}

pub fn run(args: K8sArgs) -> anyhow::Result<ExitCode> {
    let K8sCommand::Job(job) = args.command;
    match job_yaml(*job, SystemTime::now()) {
        Ok(yaml) => {
            print!("{yaml}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(super::EXIT_USAGE))
        }
    }
}

fn job_yaml(a: JobArgs, now: SystemTime) -> Result<String, k8s::K8sError> {
    let results = Results::from_flags(a.results_pvc, a.remote, a.remote_key_secret.as_deref())?;
    let api_key_secret = a
        .api_key_secret
        .as_deref()
        .map(|s| SecretRef::parse("--api-key-secret", s, "OPENAI_API_KEY"))
        .transpose()?;
    let req = JobRequest {
        name: a.name,
        namespace: a.namespace,
        shards: a.shards,
        image: a.image,
        start_at: k8s::start_at(now, a.start_in),
        level_interval: a.level_interval,
        cpu: a.cpu,
        memory: a.memory,
        results,
        api_key_secret,
        run_args: a.run,
    };
    k8s::job_yaml(&req, now)
}
