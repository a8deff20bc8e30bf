//! What the flags ask a request to carry, against what the adapter can and does send.
//!
//! A flag an adapter quietly drops changes the workload without a word: `--ignore-eos`
//! through an adapter that does not send `ignore_eos` lets outputs stop short, and the run
//! measures shorter requests than asked. So before a run, each request-shaping flag is checked
//! against the capabilities the adapter declares (`adapter-info.capabilities`); a missing one
//! refuses the run, naming the adapters that have it, unless the user overrides. And what is
//! recorded is what the adapter's first request actually carried, read from its body.

use serde_json::Value;

use crate::plugin::{AdapterInfo, GenerationRequest, Prompt, Runtime, embedded_plugins};

/// A flag the adapter does not declare it can send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The flag as the user typed it.
    pub flag: &'static str,
    /// The capability name an adapter declares for it.
    pub capability: &'static str,
}

/// The request-shaping flags of `req` whose capability `info` does not declare.
pub fn unsupported(info: &AdapterInfo, req: &GenerationRequest) -> Vec<Unsupported> {
    let asked = [
        (req.ignore_eos, "--ignore-eos", "ignore-eos"),
        (req.min_tokens.is_some(), "--min-tokens", "min-tokens"),
        (
            matches!(req.prompt, Prompt::Chat(_)),
            "--endpoint chat",
            "chat",
        ),
        (
            matches!(req.prompt, Prompt::Text(_)),
            "--endpoint completions",
            "completions",
        ),
    ];
    asked
        .into_iter()
        .filter(|(on, _, cap)| *on && !declares(info, cap))
        .map(|(_, flag, capability)| Unsupported { flag, capability })
        .collect()
}

fn declares(info: &AdapterInfo, capability: &str) -> bool {
    info.capabilities.iter().any(|c| c == capability)
}

/// The embedded adapters that declare `capability`, for the refusal's advice. Loading them
/// costs a few milliseconds each from the plugin cache; this runs only on that error path.
pub fn adapters_with(runtime: &Runtime, capability: &str) -> Vec<String> {
    embedded_plugins()
        .iter()
        .filter_map(|p| runtime.load_adapter(p.name).ok())
        .filter(|a| declares(a.info(), capability))
        .map(|a| a.info().name.clone())
        .collect()
}

/// The one-line refusal for `missing`, with the adapters that could send each flag.
pub fn refusal(adapter: &str, missing: &[Unsupported], runtime: &Runtime) -> String {
    let parts: Vec<String> = missing
        .iter()
        .map(|u| {
            let others = adapters_with(runtime, u.capability);
            let advice = if others.is_empty() {
                "no embedded adapter does".to_string()
            } else {
                format!(
                    "adapters that can: {}",
                    others
                        .iter()
                        .map(|a| format!("--adapter {a}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!(
                "{} (adapter `{adapter}` does not declare `{}`; {advice})",
                u.flag, u.capability
            )
        })
        .collect();
    format!(
        "the adapter cannot send what was asked: {}. Pass --allow-unsupported to run without it \
         (the result records what was actually sent)",
        parts.join("; ")
    )
}

/// Generation fields found in a request body, wherever the adapter nested them
/// (`ignore_eos` at the top for OpenAI servers, under `sampling_params` for SGLang, ...).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sent {
    /// `ignore_eos: true` appears in the body.
    pub ignore_eos: bool,
    /// A `min_tokens` (or `min_new_tokens`) value in the body.
    pub min_tokens: Option<u32>,
}

/// Reads what a request body carries; a body that is not JSON carries none of them.
pub fn sent(body: &[u8]) -> Sent {
    let mut out = Sent::default();
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        visit(&v, &mut out);
    }
    out
}

fn visit(v: &Value, out: &mut Sent) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("ignore_eos", Value::Bool(true)) => out.ignore_eos = true,
                    ("min_tokens" | "min_new_tokens", Value::Number(n)) => {
                        out.min_tokens = n.as_u64().and_then(|n| u32::try_from(n).ok());
                    }
                    _ => visit(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| visit(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Framing;

    fn info(caps: &[&str]) -> AdapterInfo {
        AdapterInfo {
            name: "x".into(),
            version: "0".into(),
            description: String::new(),
            framing: Framing::Sse,
            default_path: "/".into(),
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn request(ignore_eos: bool, min_tokens: Option<u32>) -> GenerationRequest {
        GenerationRequest {
            model: "m".into(),
            prompt: Prompt::Text("hi".into()),
            max_tokens: 8,
            min_tokens,
            ignore_eos,
            temperature: None,
            stream: true,
            extra_body: None,
        }
    }

    #[test]
    fn flags_without_a_declared_capability_are_named() {
        let got = unsupported(&info(&["completions"]), &request(true, Some(4)));
        let flags: Vec<&str> = got.iter().map(|u| u.flag).collect();
        assert_eq!(flags, ["--ignore-eos", "--min-tokens"]);
        let ok = unsupported(
            &info(&["completions", "ignore-eos", "min-tokens"]),
            &request(true, Some(4)),
        );
        assert!(ok.is_empty());
        assert!(unsupported(&info(&["completions"]), &request(false, None)).is_empty());
        let chat = GenerationRequest {
            prompt: Prompt::Chat(vec![]),
            ..request(false, None)
        };
        assert_eq!(
            unsupported(&info(&["completions"]), &chat)[0].flag,
            "--endpoint chat"
        );
    }

    #[test]
    fn sent_fields_are_found_wherever_they_are_nested() {
        assert_eq!(
            sent(br#"{"prompt":"a","ignore_eos":true,"min_tokens":3}"#),
            Sent {
                ignore_eos: true,
                min_tokens: Some(3)
            }
        );
        let sglang = sent(br#"{"sampling_params":{"ignore_eos":true,"min_new_tokens":5}}"#);
        assert!(sglang.ignore_eos);
        assert_eq!(sglang.min_tokens, Some(5));
        assert_eq!(sent(br#"{"ignore_eos":false}"#), Sent::default());
        assert_eq!(sent(b"not json"), Sent::default());
        // Text that merely mentions the field is not the field.
        assert_eq!(sent(br#"{"prompt":"ignore_eos true"}"#), Sent::default());
    }
}
