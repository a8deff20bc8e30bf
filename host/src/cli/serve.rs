//! `llm-loadtest serve`: the API server (see [`crate::api`]), and `serve keys` to manage
//! its API keys.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::api::guard::{self, Limits, TargetPattern};
use crate::api::keys::{self, Keys, Role};
use crate::api::{self, Api, auth, jobs};
use crate::store;

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on. Any address but loopback needs API keys (`serve keys create`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Where runs are saved [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Hosts submitted runs may load: `host`, `*.domain` or `*`, each with an optional
    /// `:port` (repeatable) [default: localhost, 127.0.0.1 and ::1].
    #[arg(long = "allow-target", value_name = "PATTERN")]
    pub allow_target: Vec<TargetPattern>,
    /// Most requests in flight in any level of a submitted run.
    #[arg(long, default_value_t = 1024)]
    pub max_concurrency: u32,
    /// Runs at once; later ones queue.
    #[arg(long, default_value_t = 1)]
    pub max_runs: usize,
    /// Longest a run may take (it is stopped there and saved as interrupted).
    #[arg(long, default_value = "1h")]
    pub max_run_time: String,
    /// Directory for cached compiled plugins [default: the user's cache dir].
    #[arg(long, env = "LLM_LOADTEST_PLUGIN_CACHE")]
    pub plugin_cache: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ServeCommand {
    /// Create, list and revoke the server's API keys.
    Keys(KeysArgs),
}

#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    /// The server's data directory [default: the user's data directory].
    #[arg(long, env = "LLM_LOADTEST_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Make a key; it is printed once and only its hash is kept.
    Create {
        /// A name for the key (who or what uses it: ci, alice).
        #[arg(long)]
        name: String,
        /// What it may do: viewer reads, runner also starts and cancels runs, admin also
        /// deletes.
        #[arg(long, value_enum)]
        role: Role,
    },
    /// The keys, without their secrets.
    List,
    /// Revoke a key by its ID or name; a running server refuses it at once.
    Revoke { key: String },
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let dir = store::data_dir_or_default(args.data_dir.as_deref())?;
    match args.command {
        Some(ServeCommand::Keys(k)) => {
            let dir = store::data_dir_or_default(k.data_dir.as_deref().or(Some(&dir)))?;
            manage_keys(&dir, k.command)
        }
        None => serve(args, dir),
    }
}

fn manage_keys(dir: &std::path::Path, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Create { name, role } => {
            let (key, entry) = keys::create(dir, &name, role)?;
            println!("{key}");
            eprintln!(
                "created {} key `{}` (id {}): shown this once, only its hash is kept",
                role.name(),
                entry.name,
                entry.id
            );
        }
        KeysCommand::List => {
            let all = keys::load(dir)?;
            if all.is_empty() {
                println!("no API keys in {}", dir.display());
            }
            for k in all {
                let state = match &k.revoked_at {
                    Some(t) => format!("revoked {t}"),
                    None => "live".into(),
                };
                println!(
                    "{}  {:<7} {:<24} created {}  {state}",
                    k.id,
                    k.role.name(),
                    k.name,
                    k.created_at
                );
            }
        }
        KeysCommand::Revoke { key } => {
            let e = keys::revoke(dir, &key)?;
            println!("revoked key `{}` (id {})", e.name, e.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs, dir: PathBuf) -> anyhow::Result<ExitCode> {
    let keys = Keys::new(&dir)?;
    let loopback = args.bind.ip().is_loopback();
    if !loopback && !keys.required() {
        eprintln!(
            "error: --bind {} is reachable from other machines and this server has no API \
             keys; create one first (llm-loadtest serve keys create --name NAME --role \
             runner) or bind to 127.0.0.1",
            args.bind
        );
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let max_run_time = match crate::duration::parse(&args.max_run_time) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => {
            eprintln!("error: --max-run-time must be above zero");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        Err(e) => {
            eprintln!("error: --max-run-time: {e}");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
    };
    let targets = if args.allow_target.is_empty() {
        guard::loopback()
    } else {
        args.allow_target.clone()
    };
    let runtime = crate::plugin::Runtime::new(crate::plugin::RuntimeConfig {
        cache_dir: args
            .plugin_cache
            .clone()
            .or_else(crate::plugin::default_cache_dir),
        ..crate::plugin::RuntimeConfig::default()
    })?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        super::run::raise_fd_limit();
        // Runs interrupted when a previous server died are marked so before any request.
        store::with_store(&dir, |_| Ok(())).await?;
        let listener = tokio::net::TcpListener::bind(args.bind).await?;
        let addr = listener.local_addr()?;
        let gate = auth::Gate::new(keys, loopback);
        let jobs = Arc::new(jobs::Jobs::new(
            dir.clone(),
            runtime,
            args.max_runs,
            max_run_time,
        ));
        let open = !gate.closed();
        let limits = Limits {
            targets,
            max_concurrency: args.max_concurrency,
            max_run_time,
        };
        println!("serving on http://{addr}");
        eprintln!(
            "data in {}; {} at once, at most {} in flight per level, {} per run; targets: {}",
            dir.display(),
            args.max_runs,
            limits.max_concurrency,
            humantime::format_duration(max_run_time),
            limits
                .targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if open {
            eprintln!(
                "WARNING: no API keys: anyone on this machine can start runs. Create one with \
                 `llm-loadtest serve keys create --name NAME --role admin`; the server \
                 requires keys from then on"
            );
        }
        let api = Arc::new(Api::new(gate, limits, jobs));
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("\nstopping: runs in progress are saved as interrupted");
        };
        api::serve(listener, api, shutdown).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
