//! Which resource most likely held a level back, from what the server and the GPUs said during
//! it: a full KV cache with requests waiting, preemptions, a full batch with a queue, or the
//! GPUs' compute. A guess from readings, never from latency alone, and named as such; `None`
//! when no reading points anywhere.

use crate::gpu::LevelGpu;
use crate::telemetry::server::ServerLevel;

/// KV-cache use, %, from which a cache counts as full.
pub const KV_FULL_PCT: f64 = 90.0;
/// Mean SM utilisation, %, from which the GPUs count as saturated.
pub const SM_SATURATED_PCT: f64 = 95.0;
/// Requests waiting on average from which the batch counts as full. A request can wait for the
/// next step to be admitted even with free slots, so a moment's queue says nothing: a queue
/// half the time does.
pub const QUEUED_MEAN: f64 = 0.5;

/// The likely binding resource of one level, in words.
pub fn resource(gpu: Option<&LevelGpu>, server: Option<&ServerLevel>) -> Option<String> {
    let waiting = server.and_then(|s| s.max_waiting).unwrap_or(0.0);
    if let Some(kv) = server.and_then(|s| s.peak_kv_usage_pct)
        && kv >= KV_FULL_PCT
    {
        return Some(if waiting > 0.0 {
            format!("KV cache {kv:.0} % full and up to {waiting:.0} requests waiting")
        } else {
            format!("KV cache {kv:.0} % full")
        });
    }
    if let Some(p) = server.and_then(|s| s.preemptions)
        && p > 0.0
    {
        return Some(format!("{p:.0} preemptions (the KV cache ran out)"));
    }
    let sm = gpu.and_then(|g| {
        let u: Vec<f64> = g
            .gpus
            .iter()
            .filter_map(|x| x.mean_sm_utilization_pct)
            .collect();
        (!u.is_empty()).then(|| u.iter().sum::<f64>() / u.len() as f64)
    });
    if let Some(sm) = sm
        && sm >= SM_SATURATED_PCT
    {
        return Some(format!("GPU compute saturated (SM {sm:.0} %)"));
    }
    if server.and_then(|s| s.mean_waiting).unwrap_or(0.0) >= QUEUED_MEAN {
        let running = server.and_then(|s| s.max_running).unwrap_or(0.0);
        return Some(format!(
            "the server's batch: {running:.0} running, up to {waiting:.0} waiting"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(kv: f64, waiting: f64, preemptions: f64) -> ServerLevel {
        ServerLevel {
            scrapes: 10,
            failed_scrapes: 0,
            max_running: Some(64.0),
            mean_running: Some(60.0),
            max_waiting: Some(waiting),
            mean_waiting: Some(waiting / 2.0),
            peak_kv_usage_pct: Some(kv),
            preemptions: Some(preemptions),
            prefix_cache_hit_pct: None,
            cached_prompt_tokens: None,
            server_mean_ttft_ms: None,
            server_mean_itl_ms: None,
            server_ttft_ms: None,
            server_itl_ms: None,
        }
    }

    #[test]
    fn names_the_resource_the_readings_point_to() {
        assert_eq!(
            resource(None, Some(&server(98.0, 40.0, 0.0))).as_deref(),
            Some("KV cache 98 % full and up to 40 requests waiting")
        );
        assert_eq!(
            resource(None, Some(&server(50.0, 0.0, 3.0))).as_deref(),
            Some("3 preemptions (the KV cache ran out)")
        );
        assert_eq!(
            resource(None, Some(&server(50.0, 12.0, 0.0))).as_deref(),
            Some("the server's batch: 64 running, up to 12 waiting")
        );
        assert_eq!(resource(None, Some(&server(50.0, 0.0, 0.0))), None);
        // A moment's queue (mean 0.4) is not a full batch.
        assert_eq!(resource(None, Some(&server(50.0, 0.8, 0.0))), None);
        assert_eq!(resource(None, None), None);
    }
}
