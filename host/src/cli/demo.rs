//! `llm-loadtest demo`: the simulator in-process on a free port, and a short
//! multi-level load test against it. Needs nothing but this binary.
use std::process::ExitCode;

use clap::Args;

use super::run::RunArgs;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Simulator profile (GPU × model) to test against.
    #[arg(long, default_value = "h100-llama3-8b")]
    pub profile: String,
    /// Concurrency levels to run.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    pub concurrency: Vec<u32>,
    /// Measured requests per level.
    #[arg(long, default_value_t = 48)]
    pub num_prompts: u64,
    /// SLOs judged for goodput.
    #[arg(long, default_value = "ttft:200ms,tpot:25ms")]
    pub slo: String,
    /// Write the result JSON here.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sim = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let config = llm_loadtest_sim::SimConfig::with_profile(&args.profile);
        anyhow::Ok(llm_loadtest_sim::start(config, listener).await?)
    })?;
    let addr = sim.local_addr();
    println!(
        "simulator ({}) on http://{addr}; running levels {:?}, {} requests each",
        args.profile, args.concurrency, args.num_prompts
    );
    let run_args = RunArgs {
        server: Some(format!("http://{addr}")),
        model: Some("sim-llama".to_string()),
        adapter: Some("vllm".to_string()),
        concurrency: args.concurrency.clone(),
        num_prompts: Some(args.num_prompts),
        input_len: Some(256),
        output_len: Some(64),
        ignore_eos: true,
        slo: Some(args.slo.clone()),
        output: args.output.clone(),
        warmup: Some("2".to_string()),
        ..RunArgs::default()
    };
    let code = super::run::run_on(&rt, run_args);
    rt.block_on(async { sim.shutdown().await })?;
    code
}
