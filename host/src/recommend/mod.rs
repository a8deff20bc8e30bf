//! `recommend`: how many replicas (and GPUs) a peak concurrency needs at an SLO attainment
//! target, found by measuring one replica.
//!
//! Split so the decisions can be checked without a server: a recommendation policy component
//! (`plugins/recommend` by default, `--policy FILE.wasm` to replace it) picks each next probe
//! from the probes so far and says where the boundary is, [`answer`] turns the boundary into
//! replicas, GPUs, the binding constraint and a sentence, and [`probe`] runs what the policy asks
//! for, each probe a one-level run.

pub mod answer;
pub mod gpu_type;
pub mod probe;
pub mod search;

pub use crate::plugin::Outcome;
pub use answer::{Ask, Recommendation, recommend};
