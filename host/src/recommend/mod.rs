//! `recommend`: how many replicas (and GPUs) a peak concurrency needs at an SLO attainment
//! target, found by measuring one replica.
//!
//! Split so the decisions can be checked without a server: [`search`] picks each next probe
//! from the probes so far and says where the boundary is (a pure function; it is shaped to move
//! behind a policy interface unchanged), [`answer`] turns the boundary into replicas, GPUs, the
//! binding constraint and a sentence, and [`probe`] runs one probe as a one-level run.

pub mod answer;
pub mod probe;
pub mod search;

pub use answer::{Ask, Recommendation, recommend};
pub use search::{Outcome, Probe, SearchConfig, Step};
