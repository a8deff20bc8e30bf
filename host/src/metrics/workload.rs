//! What the workload asked for beside what the server counted.
//!
//! Prompts are sized with the client's tokenizer and outputs asked for with `max_tokens`; the
//! server counts both in its own tokens (usage). When the two differ — prompts sized with
//! cl100k for a model with another vocabulary came out 65 % longer on a real vLLM server, and
//! outputs stop short without `--ignore-eos` — the run answered a different question than the
//! one asked, so every level compares them over the same requests and says so above
//! [`WorkloadCheck::WARN_RELATIVE_DIFF`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::record::RequestRecord;

/// Requested against server-counted tokens, over the completed requests whose responses
/// carried the server's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkloadCheck {
    /// Requests with a server prompt-token count.
    pub input_requests: u64,
    /// Their prompt tokens as sized by the client tokenizer.
    pub requested_input_tokens: u64,
    /// Their prompt tokens as the server counted them.
    pub server_input_tokens: u64,
    /// Requests whose usage said how many prompt tokens came from the server's prefix cache.
    #[serde(default)]
    pub cache_requests: u64,
    /// Their prompt tokens, and how many of those the server served from its prefix cache.
    #[serde(default)]
    pub cache_prompt_tokens: u64,
    #[serde(default)]
    pub cached_prompt_tokens: u64,
    /// Requests with a server output-token count and a known `max_tokens`.
    pub output_requests: u64,
    /// Output tokens they asked for (`max_tokens`).
    pub requested_output_tokens: u64,
    /// Output tokens the server generated for them.
    pub server_output_tokens: u64,
}

impl WorkloadCheck {
    /// A difference above this share of the requested total is reported.
    pub const WARN_RELATIVE_DIFF: f64 = 0.02;

    /// Compares the completed requests `ok`; `None` when no response carried usage.
    pub fn of(ok: &[&RequestRecord]) -> Option<WorkloadCheck> {
        let mut c = WorkloadCheck::default();
        for r in ok {
            if let Some(server) = r.prompt_tokens_server {
                c.input_requests += 1;
                c.requested_input_tokens += u64::from(r.input_tokens);
                c.server_input_tokens += u64::from(server);
            }
            if let (Some(prompt), Some(cached)) =
                (r.prompt_tokens_server, r.cached_prompt_tokens_server)
            {
                c.cache_requests += 1;
                c.cache_prompt_tokens += u64::from(prompt);
                c.cached_prompt_tokens += u64::from(cached);
            }
            if let (Some(server), Some(asked)) = (r.output_tokens_server, r.requested_output_tokens)
            {
                c.output_requests += 1;
                c.requested_output_tokens += u64::from(asked);
                c.server_output_tokens += u64::from(server);
            }
        }
        (c.input_requests + c.output_requests > 0).then_some(c)
    }

    /// (server − requested) / requested prompt tokens, when both are known.
    pub fn input_diff(&self) -> Option<f64> {
        relative(self.server_input_tokens, self.requested_input_tokens)
    }

    /// (server − requested) / requested output tokens, when both are known.
    pub fn output_diff(&self) -> Option<f64> {
        relative(self.server_output_tokens, self.requested_output_tokens)
    }

    /// Share of prompt tokens the server served from its prefix cache, where it said.
    pub fn cached_share(&self) -> Option<f64> {
        (self.cache_prompt_tokens > 0)
            .then(|| self.cached_prompt_tokens as f64 / self.cache_prompt_tokens as f64)
    }

    /// Whether a difference is above the reporting threshold.
    pub fn off(diff: Option<f64>) -> bool {
        diff.is_some_and(|d| d.abs() > Self::WARN_RELATIVE_DIFF)
    }
}

fn relative(server: u64, requested: u64) -> Option<f64> {
    (requested > 0).then(|| (server as f64 - requested as f64) / requested as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        input: u32,
        server_in: Option<u32>,
        asked: u32,
        server_out: Option<u32>,
    ) -> RequestRecord {
        RequestRecord {
            input_tokens: input,
            prompt_tokens_server: server_in,
            requested_output_tokens: Some(asked),
            output_tokens_server: server_out,
            ..Default::default()
        }
    }

    #[test]
    fn compares_over_the_requests_the_server_counted() {
        let mut recs = [
            rec(128, Some(212), 128, Some(128)),
            rec(128, Some(212), 128, Some(100)),
            // No usage: left out of both sides, not counted as zero.
            rec(128, None, 128, None),
        ];
        recs[1].cached_prompt_tokens_server = Some(53);
        let ok: Vec<&RequestRecord> = recs.iter().collect();
        let c = WorkloadCheck::of(&ok).unwrap();
        assert_eq!((c.input_requests, c.output_requests), (2, 2));
        assert_eq!(
            (c.requested_input_tokens, c.server_input_tokens),
            (256, 424)
        );
        assert_eq!(
            (c.requested_output_tokens, c.server_output_tokens),
            (256, 228)
        );
        let input = c.input_diff().unwrap();
        assert!((input - 168.0 / 256.0).abs() < 1e-12, "{input}");
        assert!(WorkloadCheck::off(Some(input)));
        let output = c.output_diff().unwrap();
        assert!((output + 28.0 / 256.0).abs() < 1e-12, "{output}");
        assert!(WorkloadCheck::off(Some(output)));
        // Only the request whose usage named its cached tokens counts for the cache share.
        assert_eq!(
            (
                c.cache_requests,
                c.cache_prompt_tokens,
                c.cached_prompt_tokens
            ),
            (1, 212, 53)
        );
        assert_eq!(c.cached_share(), Some(0.25));
    }

    #[test]
    fn within_two_percent_is_quiet_and_no_usage_is_none() {
        let recs = [rec(100, Some(102), 10, Some(10))];
        let ok: Vec<&RequestRecord> = recs.iter().collect();
        let c = WorkloadCheck::of(&ok).unwrap();
        assert!(!WorkloadCheck::off(c.input_diff()));
        assert!(!WorkloadCheck::off(c.output_diff()));
        let bare = [rec(100, None, 10, None)];
        let ok: Vec<&RequestRecord> = bare.iter().collect();
        assert_eq!(WorkloadCheck::of(&ok), None);
    }
}
