//! What a submitted run may do on a shared service: which hosts it may load, how hard, for
//! how long, and nothing that reaches the service machine's own files.
//!
//! Targets are checked by the name or address the run gives, before any request: a pattern
//! list (`--allow-target`), loopback only by default, so a service reachable by many cannot be
//! turned against arbitrary hosts. A name is matched as written, not resolved: allowing
//! `*.internal` trusts whoever controls that DNS zone. Server and GPU metric URLs a run asks
//! to scrape are targets too.
use std::time::Duration;

use crate::cli::run::RunArgs;
use crate::plan::{Load, StageUnit};
use crate::runner::RunSpec;

/// One `--allow-target` pattern: `host`, `*.domain`, `*`, each with an optional `:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPattern {
    host: String,
    port: Option<u16>,
}

impl std::str::FromStr for TargetPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let (host, port) = match t.rsplit_once(':') {
            // An IPv6 address in brackets keeps its colons.
            Some((h, p)) if !h.is_empty() && (!h.contains(':') || h.ends_with(']')) => {
                let port = p
                    .parse()
                    .map_err(|_| format!("`{s}`: `{p}` is not a port"))?;
                (h.to_string(), Some(port))
            }
            _ => (t.clone(), None),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() || (host.contains('*') && host != "*" && !host.starts_with("*.")) {
            return Err(format!(
                "`{s}` is not a target pattern: a host (gpu-1.lab), `*.domain`, or `*`, each \
                 with an optional :port"
            ));
        }
        Ok(TargetPattern { host, port })
    }
}

impl std::fmt::Display for TargetPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl TargetPattern {
    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = match self.host.strip_prefix("*.") {
            _ if self.host == "*" => true,
            Some(domain) => host.ends_with(&format!(".{domain}")),
            None => host == self.host,
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The default: this machine only.
pub fn loopback() -> Vec<TargetPattern> {
    ["localhost", "127.0.0.1", "::1"]
        .iter()
        .map(|h| TargetPattern {
            host: (*h).to_string(),
            port: None,
        })
        .collect()
}

/// The service's limits on one run.
#[derive(Debug, Clone)]
pub struct Limits {
    pub targets: Vec<TargetPattern>,
    /// Most requests in flight in any level.
    pub max_concurrency: u32,
    /// Longest a run may take, queue excluded; it is stopped there and kept as interrupted.
    pub max_run_time: Duration,
}

/// A refused submission: the setting (as in the scenario file) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Refusal {
    pub field: String,
    pub reason: String,
}

pub fn refuse(field: &str, reason: impl Into<String>) -> Refusal {
    Refusal {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Settings that would read or write the service machine's files, or load code from it.
pub fn check_args(args: &RunArgs) -> Result<(), Refusal> {
    let local = "names a file on the service's machine; not accepted through the API";
    if args.output.is_some() {
        return Err(refuse(
            "output",
            format!("{local} (fetch the result instead)"),
        ));
    }
    if args.data_dir.is_some() {
        return Err(refuse("data-dir", local));
    }
    if args.plugin_cache.is_some() {
        return Err(refuse("plugin-cache", local));
    }
    if args.dataset_path.is_some() {
        return Err(refuse("dataset-path", local));
    }
    if args.ca_cert.is_some() {
        return Err(refuse("ca-cert", local));
    }
    let is_path = |s: &str| s.contains('/') || s.contains('\\') || s.ends_with(".wasm");
    if args.adapter.as_deref().is_some_and(is_path) {
        return Err(refuse(
            "adapter",
            format!("{local}: give an embedded adapter's name"),
        ));
    }
    if args.slo_policy.as_deref().is_some_and(is_path) {
        return Err(refuse(
            "slo-policy",
            format!("{local}: give an embedded policy's name"),
        ));
    }
    if let Some(t) = &args.tokenizer
        && t.is_path()
    {
        return Err(refuse("tokenizer", local));
    }
    if args.no_save {
        return Err(refuse("no-save", "runs through the API are always saved"));
    }
    Ok(())
}

/// `url` names a host this service may send requests to.
pub fn check_url(field: &str, url: &str, targets: &[TargetPattern]) -> Result<(), Refusal> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| refuse(field, format!("`{url}` is not a URL: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| refuse(field, format!("`{url}` names no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    if targets.iter().any(|p| p.matches(&host, port)) {
        Ok(())
    } else {
        Err(refuse(
            field,
            format!(
                "{host}:{port} is not a target this service may load (its --allow-target \
                 patterns)"
            ),
        ))
    }
}

/// A validated run against the service's limits.
/// A `recommend` search: its workload as a run's, its probes and its time within the limits.
pub fn check_search(plan: &crate::recommend::search::Plan, limits: &Limits) -> Result<(), Refusal> {
    check_spec(&plan.spec, limits).map_err(|r| refuse(&format!("run.{}", r.field), r.reason))?;
    if plan.goal.max_concurrency > limits.max_concurrency {
        return Err(refuse(
            "max-probe-concurrency",
            format!(
                "probes up to {} clients, over this service's limit of {}: lower \
                 max-probe-concurrency",
                plan.goal.max_concurrency, limits.max_concurrency
            ),
        ));
    }
    if plan.budget > limits.max_run_time {
        return Err(refuse(
            "max-duration",
            format!(
                "{} is over this service's run-time limit of {}",
                humantime::format_duration(plan.budget),
                humantime::format_duration(limits.max_run_time)
            ),
        ));
    }
    Ok(())
}

pub fn check_spec(spec: &RunSpec, limits: &Limits) -> Result<(), Refusal> {
    check_url("server", &spec.server, &limits.targets)?;
    for (field, url) in spec.telemetry.urls() {
        check_url(field, url, &limits.targets)?;
    }
    for level in &spec.levels {
        let (field, in_flight) = match level.load {
            Load::Concurrency { concurrency } => ("concurrency", Some(concurrency)),
            Load::Stage {
                unit: StageUnit::Clients,
                from,
                to,
                ..
            } => (
                "stages",
                Some(from.max(to).ceil().min(f64::from(u32::MAX)) as u32),
            ),
            Load::Rate {
                max_concurrency, ..
            }
            | Load::Stage {
                max_concurrency, ..
            } => ("max-concurrency", max_concurrency),
        };
        match in_flight {
            Some(n) if n <= limits.max_concurrency => {}
            Some(n) => {
                return Err(refuse(
                    field,
                    format!(
                        "{n} is over this service's limit of {}",
                        limits.max_concurrency
                    ),
                ));
            }
            None => {
                return Err(refuse(
                    "max-concurrency",
                    format!(
                        "an open-loop level needs a bound on requests in flight here (at most {})",
                        limits.max_concurrency
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<TargetPattern> {
        p.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn patterns_match_hosts_and_ports_as_written() {
        let t = pats(&["gpu-1.lab:8000", "*.internal", "[::1]"]);
        assert!(check_url("server", "http://gpu-1.lab:8000", &t).is_ok());
        assert!(check_url("server", "http://gpu-1.lab:8001", &t).is_err());
        assert!(check_url("server", "https://a.b.internal/v1", &t).is_ok());
        assert!(check_url("server", "http://internal", &t).is_err());
        assert!(check_url("server", "http://evil-internal", &t).is_err());
        assert!(check_url("server", "http://[::1]:9", &t).is_ok());
        let e = check_url("server", "http://10.0.0.1:80", &loopback()).unwrap_err();
        assert_eq!(e.field, "server");
        assert!(e.reason.contains("10.0.0.1:80 is not a target"), "{e}");
        assert!(check_url("server", "http://127.0.0.1:8000", &loopback()).is_ok());
        assert!(check_url("server", "http://LOCALHOST:1", &loopback()).is_ok());
        assert!(check_url("server", "http://1.2.3.4", &pats(&["*"])).is_ok());
        for bad in ["a*.b", "", "host:port"] {
            assert!(bad.parse::<TargetPattern>().is_err(), "{bad}");
        }
    }

    #[test]
    fn files_of_the_service_machine_are_out_of_reach() {
        let ok = RunArgs::default();
        assert!(check_args(&ok).is_ok());
        type Set = fn(&mut RunArgs);
        let cases: [(&str, Set); 5] = [
            ("output", |a| a.output = Some("/etc/x".into())),
            ("adapter", |a| a.adapter = Some("/tmp/evil.wasm".into())),
            ("dataset-path", |a| {
                a.dataset_path = Some("/etc/passwd".into())
            }),
            ("data-dir", |a| a.data_dir = Some("/".into())),
            ("no-save", |a| a.no_save = true),
        ];
        for (field, set) in cases {
            let mut a = RunArgs::default();
            set(&mut a);
            assert_eq!(check_args(&a).unwrap_err().field, field);
        }
        let named = RunArgs {
            adapter: Some("vllm".into()),
            ..RunArgs::default()
        };
        assert!(check_args(&named).is_ok());
    }
}
