//! What the battery found, case by case, and how it prints.

use std::fmt;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// The case was not run; the case's detail says why (an unknown
    /// protocol, or a protocol without the feature the case tests).
    NotApplicable,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The dialect the case was written in, or `unknown`.
    pub protocol: String,
    /// The case's short name (`normal-stream`, `split-every-byte`, ...).
    pub name: &'static str,
    pub outcome: Outcome,
    /// One line: what was seen, or why it failed or was not run.
    pub detail: String,
}

/// The detail of a case that needs protocol knowledge the battery lacks.
pub const UNKNOWN_PROTOCOL: &str = "not run: unknown protocol";

/// The battery's findings for one adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// `name version` as the adapter describes itself.
    pub adapter: String,
    /// One line per probe request: which protocol it showed, and how.
    pub protocols: Vec<String>,
    pub cases: Vec<CaseResult>,
}

impl ConformanceReport {
    pub fn count(&self, outcome: &Outcome) -> usize {
        self.cases.iter().filter(|c| &c.outcome == outcome).count()
    }

    /// True when no case failed.
    pub fn passed(&self) -> bool {
        self.count(&Outcome::Fail) == 0
    }

    /// Cases not run because the protocol is unknown.
    pub fn unknown_protocol_cases(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| c.outcome == Outcome::NotApplicable && c.detail == UNKNOWN_PROTOCOL)
            .count()
    }

    /// The case `name` in `protocol`.
    pub fn case(&self, protocol: &str, name: &str) -> Option<&CaseResult> {
        self.cases
            .iter()
            .find(|c| c.protocol == protocol && c.name == name)
    }
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance battery: {}", self.adapter)?;
        for p in &self.protocols {
            writeln!(f, "  {p}")?;
        }
        let proto_w = self
            .cases
            .iter()
            .map(|c| c.protocol.len())
            .max()
            .unwrap_or(0);
        let name_w = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.cases {
            writeln!(
                f,
                "  {:<4}  {:<proto_w$}  {:<name_w$}  {}",
                c.outcome.label(),
                c.protocol,
                c.name,
                c.detail
            )?;
        }
        write!(
            f,
            "result: {} passed, {} failed, {} not applicable",
            self.count(&Outcome::Pass),
            self.count(&Outcome::Fail),
            self.count(&Outcome::NotApplicable)
        )?;
        let unknown = self.unknown_protocol_cases();
        if unknown > 0 {
            write!(
                f,
                "\nwarning: {unknown} cases were not run because the battery does not know this \
                 adapter's protocol; only protocol-free cases ran, so passing them says little"
            )?;
        }
        Ok(())
    }
}
