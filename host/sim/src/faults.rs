//! Fault injection: which requests fail, how, and after how many tokens.
//!
//! Each decision is a pure function of `--fault-seed` and the request's arrival number, so
//! the same seed and the same order of requests give the same faults.

use crate::tokens::mix;

/// A kind of failure the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum FaultKind {
    /// HTTP 500 with an error body before any stream starts.
    #[value(name = "http500")]
    Http500,
    /// HTTP 200, some tokens, then an error event in the protocol's style.
    #[value(name = "error-after-200")]
    ErrorAfter200,
    /// HTTP 200, some tokens, then the connection is cut (no end of body).
    #[value(name = "drop-mid-stream")]
    DropMidStream,
    /// HTTP 200, some tokens, then silence for `--stall`, then the connection is cut.
    #[value(name = "stall")]
    Stall,
    /// HTTP 200 and a stream with one event that is not valid JSON; the stream goes on.
    #[value(name = "malformed-chunk")]
    MalformedChunk,
}

impl FaultKind {
    /// Every kind, in the order of [`crate::StatsSnapshot::faults_by_kind`].
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Http500,
        FaultKind::ErrorAfter200,
        FaultKind::DropMidStream,
        FaultKind::Stall,
        FaultKind::MalformedChunk,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Http500 => "http500",
            FaultKind::ErrorAfter200 => "error-after-200",
            FaultKind::DropMidStream => "drop-mid-stream",
            FaultKind::Stall => "stall",
            FaultKind::MalformedChunk => "malformed-chunk",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A fault chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    /// The fault strikes after this many tokens were sent (1 ..= output tokens).
    pub after_tokens: u32,
}

/// Decides whether request number `seq` gets a fault.
pub(crate) fn decide(
    seed: u64,
    seq: u64,
    rate: f64,
    kinds: &[FaultKind],
    output_tokens: u32,
) -> Option<Fault> {
    if rate <= 0.0 || kinds.is_empty() {
        return None;
    }
    let draw = mix(seed ^ mix(seq));
    // The top 53 bits give a uniform number in [0, 1).
    let uniform = (draw >> 11) as f64 / (1u64 << 53) as f64;
    if uniform >= rate {
        return None;
    }
    let detail = mix(draw);
    let kind = kinds[(detail % kinds.len() as u64) as usize];
    let after_tokens = 1 + ((detail >> 32) % u64::from(output_tokens.max(1))) as u32;
    Some(Fault { kind, after_tokens })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_zero_and_one() {
        let kinds = FaultKind::ALL;
        assert!((0..1000).all(|s| decide(1, s, 0.0, &kinds, 10).is_none()));
        assert!((0..1000).all(|s| decide(1, s, 1.0, &kinds, 10).is_some()));
    }

    #[test]
    fn strikes_within_the_stream() {
        for s in 0..1000 {
            let f = decide(3, s, 1.0, &FaultKind::ALL, 7).unwrap();
            assert!((1..=7).contains(&f.after_tokens));
        }
    }
}
