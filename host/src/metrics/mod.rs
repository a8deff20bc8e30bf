//! Measurements: per-request records, exact level summaries, SLO goodput,
//! and HdrHistograms for live progress and for merging shards losslessly.
pub mod histogram;
pub mod mode;
pub mod phase;
pub mod record;
pub mod series;
pub mod slo;
pub mod stats;
pub mod summary;
pub mod workload;

pub use mode::MetricMode;
pub use phase::PhaseCheck;
pub use record::{ConnectionUse, ErrorClass, RequestError, RequestRecord};
pub use series::{LoadSeries, SeriesPoint, load_series};
pub use slo::{Objective, SloMetric, Unmeasured, check_measurable, parse_objectives};
pub use stats::Distribution;
pub use summary::{ConnectionCounts, Goodput, Judged, LevelSummary, TokenCountCheck};
pub use workload::WorkloadCheck;
