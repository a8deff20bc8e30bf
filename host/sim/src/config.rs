//! The simulator's options (`llm-loadtest sim ...`) and their resolution into a timing mode.

use std::time::Duration;

use crate::SimError;
use crate::duration::parse_duration;
use crate::faults::FaultKind;
use crate::profile::{BatchParams, profile};

/// How the simulator behaves: timing model, generated text and injected faults.
///
/// With no profile and no batching parameter it runs in fixed mode (`--ttft`, `--itl`, default
/// 50 ms and 10 ms). `--profile` or any of the five batching parameters selects the
/// continuous-batching model; explicit parameters override the profile's.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SimConfig {
    /// Fixed mode: delay from a request's arrival to its first token [default: 50ms].
    #[arg(long, value_parser = parse_duration, help_heading = "Fixed timing")]
    pub ttft: Option<Duration>,
    /// Fixed mode: delay between successive tokens of one stream [default: 10ms].
    #[arg(long, value_parser = parse_duration, help_heading = "Fixed timing")]
    pub itl: Option<Duration>,

    /// Continuous-batching model from a named GPU × model profile (h100-llama3-8b, a100-llama3-8b, l4-llama3-8b).
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub profile: Option<String>,
    /// Most sequences decoding at once (the rest queue, FIFO).
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub max_batch: Option<u32>,
    /// Prefill cost per input token, in microseconds.
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub prefill_us_per_token: Option<f64>,
    /// Fixed cost of one decode step, in microseconds.
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub step_base_us: Option<f64>,
    /// Added cost of one decode step per running sequence, in microseconds.
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub step_per_seq_us: Option<f64>,
    /// KV-cache budget in tokens (input + output of every admitted sequence).
    #[arg(long, help_heading = "Batching model", conflicts_with_all = ["ttft", "itl"])]
    pub kv_tokens: Option<u64>,
    /// Multiply every serving time by K (fixed delays, prefill and step costs): 0.1 serves a
    /// profile ten times faster. Scaling every time and the SLO thresholds alike leaves each
    /// request's attainment, and so C*, unchanged (see `BatchParams::scaled`).
    #[arg(long, value_name = "K", help_heading = "Timing scale")]
    pub time_scale: Option<f64>,

    /// Model name reported by /v1/models, /api/tags, /info (requests may name any model).
    #[arg(
        long = "served-model-name",
        default_value = "sim-llama",
        help_heading = "Output"
    )]
    pub model: String,
    /// Seed of the generated text and of the output lengths.
    #[arg(long = "text-seed", default_value_t = 0, help_heading = "Output")]
    pub seed: u64,
    /// Output limit for requests that give none.
    #[arg(long, default_value_t = 128, help_heading = "Output")]
    pub default_max_tokens: u32,
    /// Mean output length when the simulated model may stop early (no ignore_eos).
    #[arg(long, default_value_t = 200.0, help_heading = "Output")]
    pub eos_mean_tokens: f64,

    /// Fraction of requests that get a fault, 0 to 1.
    #[arg(long, default_value_t = 0.0, help_heading = "Faults")]
    pub fault_rate: f64,
    /// Kinds of fault to draw from, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "http500,error-after-200,drop-mid-stream,stall,malformed-chunk",
        help_heading = "Faults"
    )]
    pub faults: Vec<FaultKind>,
    /// Seed of the per-request fault decisions.
    #[arg(long, default_value_t = 0, help_heading = "Faults")]
    pub fault_seed: u64,
    /// How long a `stall` fault holds a stream silent before dropping the connection.
    #[arg(long, value_parser = parse_duration, default_value = "30s", help_heading = "Faults")]
    pub stall: Duration,

    /// Close the connection right after every streamed response while advertising
    /// keep-alive, as llama.cpp's server does (a client that reuses it loses the request).
    #[arg(long, help_heading = "Server behaviour")]
    pub close_after_stream: bool,
    /// Answer with --served-model-name whatever model a request names, as llama.cpp does
    /// (by default responses echo the requested name, as a single-model vLLM would accept).
    #[arg(long, help_heading = "Server behaviour")]
    pub own_model_name: bool,
    /// Close a connection that has carried no request for this long, as uvicorn (vLLM's HTTP
    /// server) does after 5 s; a request written as it closes is lost, which the server never
    /// sees. Off by default.
    #[arg(long, value_parser = parse_duration, help_heading = "Server behaviour")]
    pub keep_alive_idle: Option<Duration>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, requires = "tls_key", help_heading = "Server behaviour")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert", help_heading = "Server behaviour")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for SimConfig {
    /// The command line's defaults (fixed mode, 50 ms / 10 ms, no faults).
    fn default() -> Self {
        // Going through clap keeps the defaults in one place: the attributes above.
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: SimConfig,
        }
        <Defaults as clap::Parser>::parse_from(["sim"]).config
    }
}

impl SimConfig {
    /// Fixed mode with the given delays, otherwise defaults.
    pub fn fixed(ttft: Duration, itl: Duration) -> Self {
        Self {
            ttft: Some(ttft),
            itl: Some(itl),
            ..Self::default()
        }
    }

    /// The batching model with explicit parameters, otherwise defaults.
    pub fn batching(params: BatchParams) -> Self {
        Self {
            max_batch: Some(params.max_batch),
            prefill_us_per_token: Some(params.prefill_us_per_token),
            step_base_us: Some(params.step_base_us),
            step_per_seq_us: Some(params.step_per_seq_us),
            kv_tokens: Some(params.kv_tokens),
            ..Self::default()
        }
    }

    /// The batching model of a named profile, otherwise defaults.
    pub fn with_profile(name: &str) -> Self {
        Self {
            profile: Some(name.to_owned()),
            ..Self::default()
        }
    }

    /// Decides the timing mode and checks every option.
    pub fn timing(&self) -> Result<Timing, SimError> {
        let explicit = [
            self.max_batch.is_some(),
            self.prefill_us_per_token.is_some(),
            self.step_base_us.is_some(),
            self.step_per_seq_us.is_some(),
            self.kv_tokens.is_some(),
        ];
        let k = self.time_scale.unwrap_or(1.0);
        if !(k.is_finite() && (0.01..=100.0).contains(&k)) {
            return Err(SimError::Config(format!(
                "--time-scale must be between 0.01 and 100, got {k}"
            )));
        }
        let timing = if self.profile.is_none() && !explicit.iter().any(|&b| b) {
            Timing::Fixed {
                ttft: self.ttft.unwrap_or(Duration::from_millis(50)).mul_f64(k),
                itl: self.itl.unwrap_or(Duration::from_millis(10)).mul_f64(k),
            }
        } else {
            if self.ttft.is_some() || self.itl.is_some() {
                return Err(SimError::Config(
                    "--ttft/--itl (fixed mode) cannot be combined with the batching model".into(),
                ));
            }
            let base = match &self.profile {
                Some(name) => Some(profile(name)?.params),
                None => None,
            };
            let missing = |flag: &str| {
                SimError::Config(format!(
                    "the batching model needs {flag} (or a --profile to take it from)"
                ))
            };
            let params = BatchParams {
                max_batch: self
                    .max_batch
                    .or(base.map(|b| b.max_batch))
                    .ok_or_else(|| missing("--max-batch"))?,
                prefill_us_per_token: self
                    .prefill_us_per_token
                    .or(base.map(|b| b.prefill_us_per_token))
                    .ok_or_else(|| missing("--prefill-us-per-token"))?,
                step_base_us: self
                    .step_base_us
                    .or(base.map(|b| b.step_base_us))
                    .ok_or_else(|| missing("--step-base-us"))?,
                step_per_seq_us: self
                    .step_per_seq_us
                    .or(base.map(|b| b.step_per_seq_us))
                    .ok_or_else(|| missing("--step-per-seq-us"))?,
                kv_tokens: self
                    .kv_tokens
                    .or(base.map(|b| b.kv_tokens))
                    .ok_or_else(|| missing("--kv-tokens"))?,
            };
            params.validate()?;
            Timing::Batching(params.scaled(k))
        };
        if !(0.0..=1.0).contains(&self.fault_rate) {
            return Err(SimError::Config(format!(
                "--fault-rate must be between 0 and 1, got {}",
                self.fault_rate
            )));
        }
        if self.fault_rate > 0.0 && self.faults.is_empty() {
            return Err(SimError::Config(
                "--fault-rate is above 0 but --faults lists no kind".into(),
            ));
        }
        if !self.eos_mean_tokens.is_finite() || self.eos_mean_tokens < 1.0 {
            return Err(SimError::Config(format!(
                "--eos-mean-tokens must be at least 1, got {}",
                self.eos_mean_tokens
            )));
        }
        if self.default_max_tokens == 0 {
            return Err(SimError::Config(
                "--default-max-tokens must be at least 1".into(),
            ));
        }
        Ok(timing)
    }
}

/// The timing model a configuration resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Timing {
    /// Every stream on its own exact clock: first token at arrival + ttft, token i at + i·itl.
    Fixed {
        /// Arrival → first token.
        ttft: Duration,
        /// Token → next token.
        itl: Duration,
    },
    /// One scheduler drives decode steps for the whole batch.
    Batching(BatchParams),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: SimConfig,
    }

    fn parse(args: &[&str]) -> Result<SimConfig, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(args.iter().copied())).map(|c| c.config)
    }

    #[test]
    fn defaults_to_fixed_mode() {
        let c = SimConfig::default();
        assert_eq!(
            c.timing().unwrap(),
            Timing::Fixed {
                ttft: Duration::from_millis(50),
                itl: Duration::from_millis(10)
            }
        );
        assert_eq!(c.faults.len(), 5);
    }

    #[test]
    fn time_scale_multiplies_every_serving_time() {
        let fixed = parse(&["--ttft", "100ms", "--itl", "10ms", "--time-scale", "0.5"]).unwrap();
        assert_eq!(
            fixed.timing().unwrap(),
            Timing::Fixed {
                ttft: Duration::from_millis(50),
                itl: Duration::from_millis(5)
            }
        );
        let l4 = parse(&["--profile", "l4-llama3-8b", "--time-scale", "0.1"]).unwrap();
        let base = crate::profile("l4-llama3-8b").unwrap().params;
        assert_eq!(l4.timing().unwrap(), Timing::Batching(base.scaled(0.1)));
        for bad in ["0", "-1", "1000", "NaN"] {
            let c = parse(&[&format!("--time-scale={bad}")]).unwrap();
            assert!(c.timing().is_err(), "{bad}");
        }
    }

    #[test]
    fn explicit_parameters_override_a_profile() {
        let c = parse(&["--profile", "h100-llama3-8b", "--max-batch", "8"]).unwrap();
        let Timing::Batching(p) = c.timing().unwrap() else {
            panic!("expected the batching model")
        };
        assert_eq!(p.max_batch, 8);
        assert_eq!(p.step_base_us, 6_000.0);
    }

    #[test]
    fn refuses_incomplete_or_mixed_options() {
        assert!(parse(&["--profile", "h100-llama3-8b", "--ttft", "5ms"]).is_err());
        let partial = parse(&["--max-batch", "8"]).unwrap();
        assert!(matches!(partial.timing(), Err(SimError::Config(_))));
        let unknown = parse(&["--profile", "nope"]).unwrap();
        assert!(matches!(
            unknown.timing(),
            Err(SimError::UnknownProfile { .. })
        ));
        let rate = parse(&["--fault-rate", "1.5"]).unwrap();
        assert!(rate.timing().is_err());
        assert!(parse(&["--faults", "gremlins"]).is_err());
    }

    #[test]
    fn parses_fault_list() {
        let c = parse(&[
            "--fault-rate",
            "0.05",
            "--faults",
            "http500,stall",
            "--stall",
            "2s",
        ])
        .unwrap();
        assert_eq!(c.faults, vec![FaultKind::Http500, FaultKind::Stall]);
        assert_eq!(c.stall, Duration::from_secs(2));
    }
}
