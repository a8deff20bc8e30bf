//! The checks the API server would make later (names, Secret keys, quantities), made before
//! a manifest is printed, so a mistake is named here with its flag rather than by `kubectl
//! apply` or a pod that never starts.
use super::{JobRequest, K8sError, MAX_SHARDS, Results};

/// A Secret and the key in it that holds a value, from `NAME[:KEY]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

impl SecretRef {
    /// `NAME[:KEY]`; without a key, `default_key` (the variable the pod reads, so
    /// `kubectl create secret generic NAME --from-literal=VAR=...` needs no `:KEY`).
    pub fn parse(flag: &'static str, value: &str, default_key: &str) -> Result<Self, K8sError> {
        let (name, key) = value.split_once(':').unwrap_or((value, default_key));
        if !is_subdomain(name) {
            return Err(K8sError::NotSubdomain {
                flag,
                value: value.to_string(),
            });
        }
        // What the API server accepts as a Secret's data key.
        let key_ok = !key.is_empty()
            && key.len() <= 253
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !key_ok {
            return Err(K8sError::SecretKey {
                flag,
                value: value.to_string(),
                key: key.to_string(),
            });
        }
        Ok(SecretRef {
            name: name.to_string(),
            key: key.to_string(),
        })
    }
}

/// A DNS-1123 label: what a namespace is, and a Job name whose pods' labels carry it whole.
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

/// A DNS-1123 subdomain: dot-separated labels (Secret and claim names).
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

/// A Kubernetes quantity in its usual forms: a decimal number and an optional SI (`m`, `k`,
/// `M`, `G` ...) or binary (`Ki`, `Mi`, `Gi` ...) suffix.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 14] = [
        "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
    ];
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let digits = num.chars().filter(char::is_ascii_digit).count();
    digits > 0 && num.matches('.').count() <= 1 && SUFFIXES.contains(&suffix)
}

/// Every flag of the request, in the order they were documented.
pub fn request(req: &JobRequest) -> Result<(), K8sError> {
    if !(1..=MAX_SHARDS).contains(&req.shards) {
        return Err(K8sError::Shards(req.shards));
    }
    if req.image.trim().is_empty() || req.image.contains(char::is_whitespace) {
        return Err(K8sError::Image(req.image.clone()));
    }
    if !is_label(&req.name) {
        return Err(K8sError::NotLabel {
            flag: "--name",
            value: req.name.clone(),
        });
    }
    if let Some(ns) = req.namespace.as_ref().filter(|ns| !is_label(ns)) {
        return Err(K8sError::NotLabel {
            flag: "--namespace",
            value: ns.clone(),
        });
    }
    if req.level_interval.is_some_and(|d| d.is_zero()) {
        return Err(K8sError::ZeroInterval);
    }
    for (flag, value) in [("--cpu", &req.cpu), ("--memory", &req.memory)] {
        if !is_quantity(value) {
            return Err(K8sError::Quantity {
                flag,
                value: value.clone(),
            });
        }
    }
    match &req.results {
        Results::Claim(claim) if !is_subdomain(claim) => Err(K8sError::NotSubdomain {
            flag: "--results-pvc",
            value: claim.clone(),
        }),
        Results::Remote { url, .. } if !is_http_url(url) => Err(K8sError::RemoteUrl(url.clone())),
        _ => Ok(()),
    }
}

/// `http://` or `https://` and a host, nothing a YAML or shell reader could split.
fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    rest.is_some_and(|r| {
        !r.is_empty() && !r.starts_with('/') && !url.contains(|c: char| c.is_whitespace())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_label("llm-loadtest"));
        assert!(is_label("a"));
        assert!(!is_label("Load"));
        assert!(!is_label("-a"));
        assert!(!is_label("a-"));
        assert!(!is_label("a.b"));
        assert!(!is_label(""));
        assert!(!is_label(&"a".repeat(64)));
        assert!(is_subdomain("keys.team-a"));
        assert!(!is_subdomain("keys..a"));
    }

    #[test]
    fn secret_refs() {
        let r = SecretRef::parse("--api-key-secret", "target", "OPENAI_API_KEY").unwrap();
        assert_eq!(
            (r.name.as_str(), r.key.as_str()),
            ("target", "OPENAI_API_KEY")
        );
        let r = SecretRef::parse("--api-key-secret", "target:token", "X").unwrap();
        assert_eq!(r.key, "token");
        assert!(SecretRef::parse("--api-key-secret", "target:", "X").is_err());
        assert!(SecretRef::parse("--api-key-secret", "Target", "X").is_err());
        assert!(SecretRef::parse("--api-key-secret", "t:a b", "X").is_err());
    }

    #[test]
    fn quantities() {
        for q in ["2", "500m", "2Gi", "1.5", "512Mi", "1G"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", "two", "2 Gi", "2GB", "1.2.3", "m", "-1"] {
            assert!(!is_quantity(q), "{q}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_http_url("http://serve.tools:8080"));
        assert!(is_http_url("https://serve.example.com/"));
        assert!(!is_http_url("serve:8080"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("http://a b"));
    }
}
