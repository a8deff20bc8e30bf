//! The continuous-batching model's parameters and the named GPU × model profiles.
//!
//! The figures are approximations derived from each GPU's published memory bandwidth and dense
//! BF16 throughput and Llama-3-8B's size (16 GB of weights, 128 KiB of KV cache per token); see
//! host/sim/README.md for the derivation. They give a server of the right order of magnitude,
//! not a measurement of any real deployment.

use std::time::Duration;

use crate::SimError;

/// Parameters of the continuous-batching model.
///
/// One decode step of the whole batch takes `step_base_us + step_per_seq_us · batch +
/// prefill_us_per_token · (input tokens of the sequences admitted in this step)`, and releases one
/// token to every running sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchParams {
    /// Most sequences decoding at once; later requests wait in a FIFO queue.
    pub max_batch: u32,
    /// Prefill cost per input token, paid in the step that admits the sequence.
    pub prefill_us_per_token: f64,
    /// Fixed cost of one decode step (reading the weights).
    pub step_base_us: f64,
    /// Added cost of one decode step per running sequence.
    pub step_per_seq_us: f64,
    /// KV-cache budget in tokens: a sequence reserves input + output tokens when admitted.
    pub kv_tokens: u64,
}

impl BatchParams {
    /// Duration of one step with `batch` running sequences that admits `prefill_tokens` new input tokens.
    pub fn step_time(&self, batch: u32, prefill_tokens: u64) -> Duration {
        Duration::from_secs_f64(self.step_us(batch as f64, prefill_tokens as f64) * 1e-6)
    }

    /// Same as [`BatchParams::step_time`] in microseconds, for fractional (averaged) loads.
    pub fn step_us(&self, batch: f64, prefill_tokens: f64) -> f64 {
        self.step_base_us
            + self.step_per_seq_us * batch
            + self.prefill_us_per_token * prefill_tokens
    }

    /// The same server with every time multiplied by `k`. The model is a deterministic schedule
    /// of steps whose lengths are linear in these costs, so every request's TTFT, TPOT and E2EL
    /// are multiplied by `k` too, queueing and batching unchanged: attainment against an SLO
    /// whose thresholds are multiplied by `k` is the same at every concurrency, and so is C*
    /// (checked for every profile in `capacity`'s tests). What does not scale is the client: its
    /// own delays weigh `1/k` times more against a faster server.
    pub fn scaled(self, k: f64) -> BatchParams {
        BatchParams {
            prefill_us_per_token: self.prefill_us_per_token * k,
            step_base_us: self.step_base_us * k,
            step_per_seq_us: self.step_per_seq_us * k,
            ..self
        }
    }

    /// Refuses parameters that describe no server (zero batch, negative or non-finite costs).
    pub fn validate(&self) -> Result<(), SimError> {
        if self.max_batch == 0 {
            return Err(SimError::Config("--max-batch must be at least 1".into()));
        }
        if self.kv_tokens == 0 {
            return Err(SimError::Config("--kv-tokens must be at least 1".into()));
        }
        for (name, v) in [
            ("--prefill-us-per-token", self.prefill_us_per_token),
            ("--step-base-us", self.step_base_us),
            ("--step-per-seq-us", self.step_per_seq_us),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(SimError::Config(format!(
                    "{name} must be a finite number ≥ 0, got {v}"
                )));
            }
        }
        if self.step_us(self.max_batch as f64, 0.0) <= 0.0 {
            return Err(SimError::Config(
                "a decode step must take some time: --step-base-us or --step-per-seq-us must be > 0"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A named GPU × model pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// The name given to `--profile`.
    pub name: &'static str,
    /// One line saying what it stands for.
    pub description: &'static str,
    /// The batching model's parameters.
    pub params: BatchParams,
}

/// The built-in profiles (see host/sim/README.md for where the numbers come from).
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "h100-llama3-8b",
        description: "H100 SXM 80 GB (3.35 TB/s, ~990 TFLOPS BF16), Llama-3-8B BF16, vLLM-like",
        params: BatchParams {
            max_batch: 256,
            prefill_us_per_token: 32.0,
            step_base_us: 6_000.0,
            step_per_seq_us: 55.0,
            kv_tokens: 400_000,
        },
    },
    Profile {
        name: "a100-llama3-8b",
        description: "A100 SXM 80 GB (2.0 TB/s, 312 TFLOPS BF16), Llama-3-8B BF16, vLLM-like",
        params: BatchParams {
            max_batch: 256,
            prefill_us_per_token: 103.0,
            step_base_us: 9_800.0,
            step_per_seq_us: 140.0,
            kv_tokens: 400_000,
        },
    },
    Profile {
        name: "l4-llama3-8b",
        description: "L4 24 GB (300 GB/s, 121 TFLOPS BF16), Llama-3-8B BF16, vLLM-like",
        params: BatchParams {
            max_batch: 256,
            prefill_us_per_token: 265.0,
            step_base_us: 67_000.0,
            step_per_seq_us: 515.0,
            kv_tokens: 31_000,
        },
    },
];

/// Looks a profile up by name.
pub fn profile(name: &str) -> Result<&'static Profile, SimError> {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| SimError::UnknownProfile {
            name: name.to_owned(),
            known: PROFILES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_is_valid_and_found_by_name() {
        for p in PROFILES {
            p.params.validate().unwrap();
            assert_eq!(profile(p.name).unwrap(), p);
        }
        assert!(matches!(
            profile("tpu"),
            Err(SimError::UnknownProfile { .. })
        ));
    }

    #[test]
    fn step_time_grows_with_batch_and_prefill() {
        let p = profile("h100-llama3-8b").unwrap().params;
        assert!(p.step_time(2, 0) > p.step_time(1, 0));
        assert!(p.step_time(1, 512) > p.step_time(1, 0));
        assert_eq!(p.step_time(1, 0), Duration::from_micros(6_055));
    }
}
