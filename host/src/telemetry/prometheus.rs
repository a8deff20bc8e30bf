//! Prometheus text exposition, read with openmetrics-parser and flattened to what the readers
//! here need: each family's value summed over its series (several engines or GPUs of one
//! server add up), or, per label value, for exporters that list one series per GPU.

use std::collections::BTreeMap;
use std::time::Duration;

use openmetrics_parser::{MetricNumber, PrometheusValue};

use crate::engine::{HyperClient, Target};

/// The most bytes one scrape reads (vLLM's `/metrics` is ~60 KB).
const MAX_SCRAPE: usize = 8 << 20;

/// One Prometheus endpoint, fetched and parsed on the calling thread with a runtime of its own:
/// for readers that run on a thread of their own, off the runtime that times requests.
pub struct Endpoint {
    rt: tokio::runtime::Runtime,
    client: HyperClient,
    target: Target,
    path: String,
    timeout: Duration,
}

impl Endpoint {
    /// `path` under `target`, each scrape given at most `timeout`.
    pub fn new(target: Target, path: String, timeout: Duration) -> std::io::Result<Endpoint> {
        Ok(Endpoint {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: crate::engine::new_client(&target, 1).map_err(std::io::Error::other)?,
            target,
            path,
            timeout,
        })
    }

    /// The endpoint's metrics now, or why not (unreachable, an HTTP error, not Prometheus text).
    pub fn scrape(&self) -> Result<Exposition, String> {
        let text = self.rt.block_on(crate::engine::client::get_text(
            &self.client,
            &self.target,
            &self.path,
            MAX_SCRAPE,
            self.timeout,
        ))?;
        parse(&text)
    }
}

/// One family's value: a number, or a histogram's sum, count and cumulative buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(Histogram),
}

/// A histogram as Prometheus exposes it: cumulative counts by upper bound (`le`), ascending,
/// the last usually `+Inf`. Summaries have no buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub sum: f64,
    pub count: f64,
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Series of one family add up bucket by bucket; bounds one series lacks are dropped, as a
    /// sum over them would be wrong.
    fn add(mut self, other: Histogram) -> Histogram {
        self.sum += other.sum;
        self.count += other.count;
        self.buckets = self
            .buckets
            .iter()
            .filter_map(|&(le, n)| {
                let m = other.buckets.iter().find(|b| b.0 == le)?.1;
                Some((le, n + m))
            })
            .collect();
        self
    }
}

impl Value {
    fn add(self, other: Value) -> Value {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) => Value::Number(a + b),
            (Value::Histogram(a), Value::Histogram(b)) => Value::Histogram(a.add(b)),
            (a, _) => a,
        }
    }
}

/// Every family of one scrape: `(family, its series' labels, value)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    series: Vec<(String, BTreeMap<String, String>, Value)>,
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

/// Reads Prometheus text; `Err` says why it is not.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let parsed = openmetrics_parser::prometheus::parse_prometheus(text)
        .map_err(|e| format!("not Prometheus text: {e:?}"))?;
    let mut series = Vec::new();
    for (name, family) in &parsed.families {
        for sample in family.iter_samples() {
            let value = match &sample.value {
                PrometheusValue::Unknown(n) | PrometheusValue::Gauge(n) => Value::Number(number(n)),
                PrometheusValue::Counter(c) => Value::Number(number(&c.value)),
                PrometheusValue::Histogram(h) => {
                    let mut buckets: Vec<(f64, f64)> = h
                        .buckets
                        .iter()
                        .map(|b| (b.upper_bound, number(&b.count)))
                        .collect();
                    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Value::Histogram(Histogram {
                        sum: h.sum.as_ref().map_or(0.0, number),
                        count: h.count.unwrap_or(0) as f64,
                        buckets,
                    })
                }
                PrometheusValue::Summary(s) => Value::Histogram(Histogram {
                    sum: s.sum.as_ref().map_or(0.0, number),
                    count: s.count.unwrap_or(0) as f64,
                    buckets: Vec::new(),
                }),
            };
            let labels = sample
                .get_labelset()
                .map(|l| {
                    l.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            series.push((name.clone(), labels, value));
        }
    }
    Ok(Exposition { series })
}

impl Exposition {
    /// The family's value summed over its series; a counter's family may be named with or
    /// without its `_total`.
    pub fn total(&self, family: &str) -> Option<Value> {
        let bare = family.strip_suffix("_total");
        self.series
            .iter()
            .filter(|(n, _, _)| n == family || Some(n.as_str()) == bare)
            .map(|(_, _, v)| v.clone())
            .reduce(Value::add)
    }

    /// The family's number summed over its series.
    pub fn number(&self, family: &str) -> Option<f64> {
        match self.total(family)? {
            Value::Number(n) => Some(n),
            Value::Histogram(_) => None,
        }
    }

    /// The family's numbers by the value of `label` (e.g. DCGM's `gpu`).
    pub fn by_label(&self, family: &str, label: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (n, labels, v) in &self.series {
            if let (true, Some(key), Value::Number(x)) = (n == family, labels.get(label), v) {
                *out.entry(key.clone()).or_insert(0.0) += x;
            }
        }
        out
    }

    /// For each value of `key` among the family's series, the value of its label `label`
    /// (e.g. DCGM's `modelName` by `gpu`).
    pub fn labels_by(&self, family: &str, key: &str, label: &str) -> BTreeMap<String, String> {
        self.series
            .iter()
            .filter(|(n, _, _)| n == family)
            .filter_map(|(_, labels, _)| {
                Some((labels.get(key)?.clone(), labels.get(label)?.clone()))
            })
            .collect()
    }

    /// Whether any family's name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.series.iter().any(|(n, _, _)| n.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_series_and_reads_histograms_and_counters() {
        let text = "# TYPE vllm:num_requests_running gauge\n\
vllm:num_requests_running{engine=\"0\"} 3.0\n\
vllm:num_requests_running{engine=\"1\"} 2.0\n\
# TYPE vllm:num_preemptions_total counter\n\
vllm:num_preemptions_total{engine=\"0\"} 7.0\n\
# TYPE vllm:time_to_first_token_seconds histogram\n\
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.1\"} 2.0\n\
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"+Inf\"} 4.0\n\
vllm:time_to_first_token_seconds_sum{engine=\"0\"} 0.5\n\
vllm:time_to_first_token_seconds_count{engine=\"0\"} 4.0\n";
        let e = parse(text).unwrap();
        assert_eq!(e.number("vllm:num_requests_running"), Some(5.0));
        assert_eq!(e.number("vllm:num_preemptions_total"), Some(7.0));
        assert_eq!(
            e.total("vllm:time_to_first_token_seconds"),
            Some(Value::Histogram(Histogram {
                sum: 0.5,
                count: 4.0,
                buckets: vec![(0.1, 2.0), (f64::INFINITY, 4.0)],
            }))
        );
        assert_eq!(e.number("vllm:absent"), None);
        assert!(e.has_prefix("vllm:"));
        assert!(parse("this is { not metrics").is_err());
    }
}
