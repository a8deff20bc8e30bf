//! One saved run as a line of the history: what `history` prints and the API's history
//! answers, so a remote `history` reads as a local one.
use serde::{Deserialize, Serialize};

use super::RunEntry;

/// One row of the history: what `history` prints.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunRow {
    pub id: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: String,
    pub model: String,
    pub server: String,
    pub adapter: String,
    pub levels: Vec<String>,
    pub completed: u64,
    pub failed: u64,
    pub best_output_throughput: Option<f64>,
    pub tags: Vec<String>,
}

impl RunRow {
    /// The row of a saved run.
    pub fn of(e: &RunEntry) -> RunRow {
        let r = &e.result;
        let levels = if r.levels.is_empty() {
            e.plans.iter().map(|p| p.label.clone()).collect()
        } else {
            r.levels.iter().map(|l| l.label.clone()).collect()
        };
        RunRow {
            id: e.id.clone(),
            status: e.status.name().to_string(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            model: r.settings.model.clone(),
            server: r.settings.server.clone(),
            adapter: r.adapter.name.clone(),
            levels,
            completed: r.levels.iter().map(|l| l.summary.completed).sum(),
            failed: r.levels.iter().map(|l| l.summary.failed).sum(),
            best_output_throughput: r
                .levels
                .iter()
                .map(|l| l.summary.output_throughput)
                .filter(|t| t.is_finite())
                .reduce(f64::max),
            tags: r.settings.tags.clone(),
        }
    }
}
