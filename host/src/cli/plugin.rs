//! `llm-loadtest plugin ...`: list the embedded plugins, check a component,
//! replay a recorded response through an adapter, start a new adapter crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::plugin::{
    Framing, LoadedPlugin, ReplayReport, ReplayStep, Runtime, RuntimeConfig, Usage,
    default_cache_dir, embedded_plugins, replay,
};

/// Work with plugins: adapters and SLO policies.
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// List the plugins built into this binary.
    List,
    /// Check that a .wasm file is a plugin this host can load, and describe it.
    Check(CheckArgs),
    /// Replay a recorded response body through an adapter, as a run would parse it.
    Test(TestArgs),
    /// Create a new adapter crate from the SDK template.
    New(NewArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component to check (a path, or an embedded plugin's name).
    pub file: String,
    /// Also run the adapter conformance battery: pass / fail per case, and a
    /// failing exit code when any case fails.
    #[arg(long)]
    pub conformance: bool,
    /// With --conformance: also run the protocol-free cases (every split, a 1 MiB message,
    /// truncation, garbage) on this response body recorded from your own server
    /// (`curl -N ... > body.sse`), for protocols the battery cannot write.
    #[arg(long, requires = "conformance", value_name = "BODY")]
    pub sample: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The adapter: an embedded name (`openai`, `vllm`, ...) or a .wasm path.
    pub adapter: String,
    /// A recorded response body (e.g. `curl -N ... > body.sse`).
    #[arg(long)]
    pub replay: PathBuf,
    /// How the body is framed; by default the adapter's own framing.
    #[arg(long, value_enum)]
    pub framing: Option<FramingArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FramingArg {
    Sse,
    Ndjson,
    WholeBody,
}

impl From<FramingArg> for Framing {
    fn from(f: FramingArg) -> Self {
        match f {
            FramingArg::Sse => Framing::Sse,
            FramingArg::Ndjson => Framing::Ndjson,
            FramingArg::WholeBody => Framing::WholeBody,
        }
    }
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name (letters, digits, `-` and `_`).
    pub name: String,
    /// Where to create it (default: ./NAME). Must not exist or be empty.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Depend on the SDK at this path (default: this source tree's sdk/).
    #[arg(long, conflicts_with = "sdk_git")]
    pub sdk_path: Option<PathBuf>,
    /// Depend on the SDK from this git repository.
    #[arg(long)]
    pub sdk_git: Option<String>,
}

/// Run a `plugin` subcommand.
pub fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PluginCommand::List => list(),
        PluginCommand::Check(a) => check(&a),
        PluginCommand::Test(a) => test(&a),
        PluginCommand::New(a) => new(&a),
    }
}

fn runtime(cache_dir: Option<PathBuf>) -> anyhow::Result<std::sync::Arc<Runtime>> {
    // One instance is all a CLI command uses.
    Ok(Runtime::new(RuntimeConfig {
        cache_dir,
        pool_size: 1,
        ..RuntimeConfig::default()
    })?)
}

fn list() -> anyhow::Result<ExitCode> {
    let rt = runtime(default_cache_dir())?;
    println!(
        "{:<12} {:<10} {:<10} {:<6} {:>9}",
        "NAME", "KIND", "VERSION", "WIT", "SIZE"
    );
    let mut failed = false;
    for p in embedded_plugins() {
        let identity = rt.load_any(p.name).map(|l| l.identity().clone());
        match identity {
            Ok(id) => println!(
                "{:<12} {:<10} {:<10} {:<6} {:>9}",
                p.name,
                p.kind.name(),
                id.version,
                id.wit_version,
                human_size(p.bytes.len()),
            ),
            Err(e) => {
                failed = true;
                println!("{:<12} {:<10} error: {e}", p.name, p.kind.name());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn human_size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", (bytes as f64 / 1024.0).ceil())
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    // A file under inspection is not cached: it may never be used again.
    let rt = runtime(None)?;
    let loaded = match rt.load_any(&args.file) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if let Err(e) = loaded.probe() {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let (identity, imports, exports) = match &loaded {
        LoadedPlugin::Adapter(a) => (a.identity(), a.imports(), a.exports()),
        LoadedPlugin::Slo(s) => (s.identity(), s.imports(), s.exports()),
        LoadedPlugin::Recommend(r) => (r.identity(), r.imports(), r.exports()),
    };
    let kind = match &loaded {
        LoadedPlugin::Adapter(_) => "adapter",
        LoadedPlugin::Slo(_) => "slo policy",
        LoadedPlugin::Recommend(_) => "recommendation policy",
    };
    println!("ok: {} {} ({kind})", identity.name, identity.version);
    println!("  source:       {}", identity.source);
    println!("  sha256:       {}", identity.sha256);
    println!(
        "  WIT:          llm-loadtest:plugin@{}",
        identity.wit_version
    );
    println!("  description:  {}", loaded.description());
    if let LoadedPlugin::Adapter(a) = &loaded {
        let info = a.info();
        println!("  framing:      {}", info.framing.name());
        println!("  default path: {}", info.default_path);
        println!("  capabilities: {}", info.capabilities.join(", "));
        println!(
            "  tokenizer:    {}",
            if a.can_tokenize() {
                "yes: asks its server to count tokens (--tokenizer auto/server)"
            } else {
                "no: prompts are sized with a local tokenizer"
            }
        );
    }
    println!("  exports:      {}", exports.join(", "));
    println!("  imports:      {}", imports.join(", "));
    if args.conformance {
        let LoadedPlugin::Adapter(adapter) = &loaded else {
            eprintln!("error: --conformance applies to adapters; this is a {kind}");
            return Ok(ExitCode::FAILURE);
        };
        let report = match &args.sample {
            Some(path) => {
                let body = std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                crate::conformance::run_battery_with_sample(adapter, &body)
            }
            None => crate::conformance::run_battery(adapter),
        };
        println!("{report}");
        if !report.passed() {
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn test(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(&args.replay)
        .with_context(|| format!("cannot read {}", args.replay.display()))?;
    let rt = runtime(default_cache_dir())?;
    let adapter = rt.load_adapter(&args.adapter)?;
    let framing = args
        .framing
        .map(Framing::from)
        .unwrap_or(adapter.info().framing);
    println!(
        "replaying {} ({} bytes, {} framing) through {} {}",
        args.replay.display(),
        body.len(),
        framing.name(),
        adapter.identity().name,
        adapter.identity().version
    );
    let (report, err) = replay(&adapter, framing, &body);
    for step in &report.steps {
        println!("{}", describe_step(step));
    }
    print_summary(&report);
    match err {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn describe_step(step: &ReplayStep) -> String {
    use crate::plugin::Event;
    match step {
        ReplayStep::DoneSentinel { frame } => {
            format!("[message {frame}] [DONE] (handled by the host)")
        }
        ReplayStep::Event { frame, event } => {
            let at = match frame {
                Some(f) => format!("[message {f}]"),
                None => "[finish]".to_owned(),
            };
            let what = match event {
                Event::Token(d) => format!("token {:?}{}", d.text, tokens(d.tokens)),
                Event::Reasoning(d) => format!("reasoning {:?}{}", d.text, tokens(d.tokens)),
                Event::Usage(u) => format!("usage {}", usage(u)),
                Event::Finish(r) => format!("finish {r:?}"),
                Event::Error(e) => format!("error {e:?}"),
                Event::Done => "done".to_owned(),
            };
            format!("{at} {what}")
        }
    }
}

fn tokens(t: Option<u32>) -> String {
    t.map(|t| format!(" ({t} tokens)")).unwrap_or_default()
}

fn usage(u: &Usage) -> String {
    let n = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
    format!(
        "prompt {}, completion {}, cached {}",
        n(u.prompt_tokens),
        n(u.completion_tokens),
        n(u.cached_tokens)
    )
}

fn print_summary(r: &ReplayReport) {
    println!("---");
    println!("content:        {:?}", r.content);
    println!("content events: {}", r.content_events);
    println!(
        "usage:          {}",
        r.usage.as_ref().map_or("none".to_owned(), usage)
    );
    println!(
        "finish reason:  {}",
        r.finish_reason.as_deref().unwrap_or("none")
    );
    println!(
        "stream errors:  {}",
        if r.stream_errors.is_empty() {
            "none".to_owned()
        } else {
            r.stream_errors.join(" | ")
        }
    );
    println!("messages:       {}", r.frames);
    println!("done:           {}", if r.done { "yes" } else { "no" });
}

/// The SDK template, compiled in so `plugin new` works from any directory.
const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../sdk/template/Cargo.toml.tmpl"),
    ),
    ("README.md", include_str!("../../../sdk/template/README.md")),
    (
        "src/lib.rs",
        include_str!("../../../sdk/template/src/lib.rs"),
    ),
    (
        "src/tests.rs",
        include_str!("../../../sdk/template/src/tests.rs"),
    ),
];

/// The SDK in the source tree this binary was built from, if still there.
fn source_tree_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

fn valid_crate_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A string as a TOML basic string, quotes included.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    if !valid_crate_name(&args.name) {
        bail!(
            "`{}` is not a valid crate name: use letters, digits, `-` and `_`, starting with a letter",
            args.name
        );
    }
    let sdk_dep = match (&args.sdk_path, &args.sdk_git) {
        (_, Some(url)) => format!("{{ git = {} }}", toml_string(url)),
        (Some(path), None) => {
            let path = path
                .canonicalize()
                .with_context(|| format!("--sdk-path {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk-path {}: no Cargo.toml there", path.display());
            }
            format!("{{ path = {} }}", toml_string(&path.to_string_lossy()))
        }
        (None, None) => match source_tree_sdk() {
            Some(path) => format!("{{ path = {} }}", toml_string(&path.to_string_lossy())),
            None => bail!(
                "this binary was not built from a source tree that still has sdk/: \
                 pass --sdk-path PATH (a checkout's sdk folder) or --sdk-git URL"
            ),
        },
    };
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    for (rel, text) in TEMPLATE {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = text
            .replace("{{name}}", &args.name)
            .replace("{{sdk_dep}}", &sdk_dep);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("created {} in {}", args.name, dir.display());
    println!("  build: cargo build --release --target wasm32-wasip2");
    println!("  test:  cargo test");
    println!(
        "  use:   llm-loadtest plugin check target/wasm32-wasip2/release/{}.wasm",
        args.name.replace('-', "_")
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crate_names_and_toml_strings() {
        assert!(valid_crate_name("my-adapter_2"));
        assert!(!valid_crate_name("2fast"));
        assert!(!valid_crate_name("a/b"));
        assert!(!valid_crate_name(""));
        assert_eq!(toml_string(r#"C:\x "y""#), r#""C:\\x \"y\"""#);
    }

    #[test]
    fn template_has_the_placeholders_it_fills() {
        let all: String = TEMPLATE.iter().map(|(_, t)| *t).collect();
        assert!(all.contains("{{name}}") && all.contains("{{sdk_dep}}"));
    }
}
