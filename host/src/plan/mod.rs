//! The vocabulary of a run's plan — what load each level offers, when it stops, what is warm-up,
//! and which share of it this process runs — kept apart from the engine that carries it out, so
//! that results, the store, `recommend` and `merge` name a level's shape without depending on how
//! requests are sent.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod arrivals;
pub mod stages;

pub use stages::{Profile, StageError, StageUnit};

/// The offered load of one level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Load {
    /// Closed loop: this many clients, each sending its next request when
    /// the previous one ends.
    Concurrency { concurrency: u32 },
    /// Open loop: requests arrive on a schedule of gamma-distributed gaps.
    Rate {
        /// Requests per second; infinite sends everything at once.
        rate: f64,
        /// Gamma shape: 1 is Poisson, below 1 burstier, above 1 smoother.
        burstiness: f64,
        /// At most this many in flight; a held-back request's wait is its queue time.
        max_concurrency: Option<u32>,
    },
    /// One stage of a staged run (`--stages`, `--rate-stages`): the load moves linearly from
    /// `from` to `to` over the level's bound (seconds), continuing the stage before it with no
    /// pause between (see [`stages`]).
    Stage {
        unit: StageUnit,
        /// Clients or requests per second at the stage's start (the previous stage's end).
        from: f64,
        /// … and at its end.
        to: f64,
        /// Gamma shape of an open loop's arrivals, as for `Rate`.
        burstiness: f64,
        /// An open loop's in-flight limit, as for `Rate`.
        max_concurrency: Option<u32>,
    },
}

impl Load {
    /// A short label (`c=8`, `rate=2.5`, `clients 0→100`).
    pub fn label(&self) -> String {
        match self {
            Load::Concurrency { concurrency } => format!("c={concurrency}"),
            Load::Rate { rate, .. } if rate.is_infinite() => "rate=inf".to_string(),
            Load::Rate { rate, .. } => format!("rate={rate}"),
            Load::Stage { unit, from, to, .. } => stages::label(*unit, *from, *to),
        }
    }
}

/// When a level stops issuing requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// This many measured requests.
    Requests(u64),
    /// Issue measured requests for this long (seconds).
    Seconds(f64),
}

/// Requests at the start of each level that are excluded from statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Warmup {
    None,
    Requests(u64),
    Seconds(f64),
}

/// One level to run.
#[derive(Debug, Clone, Copy)]
pub struct LevelPlan {
    pub load: Load,
    pub bound: Bound,
    pub warmup: Warmup,
    /// Seeds the arrival schedule.
    pub seed: u64,
}

/// Which share of every level this process runs: shard `index` of `count` (`0 of 1` is the whole
/// run). Requests are dealt round-robin by their index in the level — shard `i` sends the ones
/// whose index is `i` modulo `count`, each with the prompt a single machine would send under that
/// index — and closed-loop clients the same way, so the union of the shards' requests is the
/// single-machine run's workload, request for request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl Shard {
    /// The whole run, unsharded.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether this is one shard of several.
    pub fn is_sharded(self) -> bool {
        self.count > 1
    }

    /// This shard's part of `total` things dealt round-robin (clients, an in-flight limit).
    pub fn share(self, total: u64) -> u64 {
        let (count, index) = (u64::from(self.count), u64::from(self.index));
        total / count + u64::from(index < total % count)
    }

    /// Whether the request (or client) with this index in the level is this shard's.
    pub fn owns(self, index: u64) -> bool {
        index % u64::from(self.count) == u64::from(self.index)
    }

    /// The index in the level of this shard's `k`-th request (or client).
    pub fn global(self, k: u64) -> u64 {
        k * u64::from(self.count) + u64::from(self.index)
    }

    /// How many of the indices `from..to` are this shard's.
    pub fn owned_in(self, from: u64, to: u64) -> u64 {
        let below = |n: u64| self.share(n);
        below(to.max(from)) - below(from)
    }

    /// `2/8` (one-based, as people count shards).
    pub fn label(self) -> String {
        format!("{}/{}", self.index + 1, self.count)
    }

    /// `I/N` as people write it, counting from 1: `2/8` is the second of eight.
    pub fn parse(spec: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::Form(spec.to_owned());
        let (i, n) = spec.trim().split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if i == 0 {
            return Err(ShardError::FromOne(spec.to_owned()));
        }
        Shard::checked(i - 1, count)
    }

    /// A Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` (from 0) of `count` shards.
    pub fn from_job_index(index: &str, count: u32) -> Result<Shard, ShardError> {
        let i = index
            .trim()
            .parse()
            .map_err(|_| ShardError::JobIndex(index.to_owned()))?;
        Shard::checked(i, count)
    }

    fn checked(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count(count));
        }
        if index >= count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Shard { index, count })
    }
}

/// Most shards a run may be split into.
pub const MAX_SHARDS: u32 = 1000;

/// Why a shard cannot be named so.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShardError {
    #[error("`{0}` is not I/N (e.g. 2/8: the second of eight shards)")]
    Form(String),
    #[error("`{0}`: shards count from 1 (1/8 is the first)")]
    FromOne(String),
    #[error("JOB_COMPLETION_INDEX `{0}` is not a number")]
    JobIndex(String),
    #[error("{0} shards: give 1 to {MAX_SHARDS}")]
    Count(u32),
    #[error("shard index {index} (from 0) is not below the shard count {count}")]
    Range { index: u32, count: u32 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_deal_every_index_once() {
        for count in 1..=5u32 {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            for total in 0..=23u64 {
                assert_eq!(shards.iter().map(|s| s.share(total)).sum::<u64>(), total);
                for (from, to) in [(0, total), (3.min(total), total), (total / 2, total)] {
                    let owned: u64 = shards.iter().map(|s| s.owned_in(from, to)).sum();
                    assert_eq!(owned, to - from, "{count} shards, {from}..{to}");
                    for s in &shards {
                        let by_hand = (from..to).filter(|&i| s.owns(i)).count() as u64;
                        assert_eq!(s.owned_in(from, to), by_hand);
                    }
                }
            }
            for s in &shards {
                assert!((0..10).all(|k| s.owns(s.global(k))));
            }
        }
        assert_eq!(Shard { index: 1, count: 8 }.label(), "2/8");
    }

    #[test]
    fn shards_are_named_as_people_count_them() {
        assert_eq!(Shard::parse(" 2/8 "), Ok(Shard { index: 1, count: 8 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard::WHOLE));
        assert_eq!(
            Shard::from_job_index("7", 8),
            Ok(Shard { index: 7, count: 8 })
        );
        assert!(matches!(Shard::parse("0/8"), Err(ShardError::FromOne(_))));
        assert!(matches!(Shard::parse("9/8"), Err(ShardError::Range { .. })));
        assert!(matches!(Shard::parse("2-8"), Err(ShardError::Form(_))));
        assert!(matches!(Shard::parse("1/0"), Err(ShardError::Count(0))));
        assert!(matches!(
            Shard::from_job_index("8", 8),
            Err(ShardError::Range { index: 8, count: 8 })
        ));
        assert!(matches!(
            Shard::from_job_index("x", 8),
            Err(ShardError::JobIndex(_))
        ));
    }
}

/// When levels start on the wall clock, so that shards on different machines load the server
/// together rather than one after another: level `k` at `at + k × interval`. A level that has
/// not ended by the next one's instant delays it (the lateness is recorded with the level).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartSchedule {
    pub at: std::time::SystemTime,
    pub interval: Option<std::time::Duration>,
}

impl StartSchedule {
    /// When level `k` is due.
    pub fn level(&self, k: usize) -> std::time::SystemTime {
        let steps = u32::try_from(k).unwrap_or(u32::MAX);
        self.at + self.interval.unwrap_or_default().saturating_mul(steps)
    }
}
