//! Which wire protocol an adapter speaks, read from the requests it builds.
//!
//! The battery cannot know a custom adapter's protocol, so it asks the
//! adapter to build a streaming request for a text prompt and for a chat, and
//! reads the endpoint off each: `/v1/completions` is OpenAI completions,
//! `/api/chat` is Ollama's chat, and so on. The path is what a server routes
//! on, so it is the strongest evidence; the body decides only where two
//! servers share a path (`/generate`: SGLang's `text`, TGI's `inputs`).

use serde_json::Value;

use crate::plugin::{
    Adapter, Framing, GenerationRequest, HttpRequest, Message, PluginError, Prompt,
};

/// One wire dialect the battery can write responses in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `POST /v1/completions`: SSE chunks with `choices[0].text`.
    OpenAiCompletions,
    /// `POST /v1/chat/completions`: SSE chunks with `choices[0].delta`.
    OpenAiChat,
    /// SGLang's `POST /generate`: SSE messages with cumulative `text` and
    /// `meta_info`.
    Sglang,
    /// Ollama's `POST /api/generate`: NDJSON lines with `response`.
    OllamaGenerate,
    /// Ollama's `POST /api/chat`: NDJSON lines with `message.content`.
    OllamaChat,
    /// Triton's `POST /v2/models/{m}/generate_stream`: SSE `text_output`.
    Triton,
    /// TGI's `POST /generate_stream`: SSE events with one `token` each.
    Tgi,
}

impl Dialect {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::OpenAiCompletions => "openai-completions",
            Dialect::OpenAiChat => "openai-chat",
            Dialect::Sglang => "sglang",
            Dialect::OllamaGenerate => "ollama-generate",
            Dialect::OllamaChat => "ollama-chat",
            Dialect::Triton => "triton",
            Dialect::Tgi => "tgi",
        }
    }

    /// How the server frames a streamed response.
    pub fn framing(self) -> Framing {
        match self {
            Dialect::OllamaGenerate | Dialect::OllamaChat => Framing::Ndjson,
            _ => Framing::Sse,
        }
    }

    /// Chat dialects can open with a message that carries only a role.
    pub fn has_role_message(self) -> bool {
        matches!(self, Dialect::OpenAiChat | Dialect::OllamaChat)
    }

    /// Whether the server reports token counts in the stream.
    pub fn has_usage(self) -> bool {
        !matches!(self, Dialect::Triton)
    }

    /// The finish reason the battery's complete streams end with, where the
    /// protocol carries one.
    pub fn finish_reason(self) -> Option<&'static str> {
        match self {
            Dialect::Triton => None,
            // TGI's last event is the end-of-sequence token.
            Dialect::Tgi => Some("eos_token"),
            _ => Some("length"),
        }
    }

    /// Whether a complete stream says so (a finish reason, a `done` line, a
    /// `[DONE]`). Triton's stream simply ends, so a cut one looks the same
    /// as a complete one and its adapter may call any clean end complete.
    pub fn has_end_marker(self) -> bool {
        !matches!(self, Dialect::Triton)
    }
}

/// What one probe request showed.
#[derive(Debug, Clone)]
pub struct Probe {
    /// `text prompt` or `chat prompt`.
    pub prompt_kind: &'static str,
    pub result: ProbeResult,
}

#[derive(Debug, Clone)]
pub enum ProbeResult {
    /// A recognised dialect, framed as that protocol streams.
    Known {
        dialect: Dialect,
        path: String,
        framing: Framing,
    },
    /// A request the battery cannot place; `why` says what it saw.
    Unknown { why: String, framing: Framing },
    /// `build-request` failed; `trapped` when the guest trapped.
    Failed { message: String, trapped: bool },
}

/// The protocol findings for one adapter.
#[derive(Debug, Clone)]
pub struct Detection {
    pub probes: Vec<Probe>,
}

impl Detection {
    /// The distinct dialects found, text prompt's first.
    pub fn dialects(&self) -> Vec<(Dialect, Framing)> {
        let mut out: Vec<(Dialect, Framing)> = Vec::new();
        for p in &self.probes {
            if let ProbeResult::Known {
                dialect, framing, ..
            } = &p.result
                && !out.iter().any(|(d, _)| d == dialect)
            {
                out.push((*dialect, *framing));
            }
        }
        out
    }

    /// The framing to send protocol-free cases in when no dialect is known:
    /// the first request's, or the adapter's declared default.
    pub fn fallback_framing(&self, declared: Framing) -> Framing {
        self.probes
            .iter()
            .find_map(|p| match &p.result {
                ProbeResult::Known { framing, .. } | ProbeResult::Unknown { framing, .. } => {
                    Some(*framing)
                }
                ProbeResult::Failed { .. } => None,
            })
            .unwrap_or(declared)
    }
}

/// The model name the probes (and the crafted responses) use.
pub const MODEL: &str = "conformance-model";

fn probe_request(prompt: Prompt) -> GenerationRequest {
    GenerationRequest {
        model: MODEL.into(),
        prompt,
        max_tokens: 16,
        min_tokens: None,
        ignore_eos: false,
        temperature: None,
        stream: true,
        extra_body: None,
    }
}

/// Build a streaming request for a text prompt and for a chat, and place each.
pub fn detect(adapter: &Adapter) -> Detection {
    let text = Prompt::Text("Say hello.".into());
    let chat = Prompt::Chat(vec![
        Message {
            role: "system".into(),
            content: "You are terse.".into(),
        },
        Message {
            role: "user".into(),
            content: "Say hello.".into(),
        },
    ]);
    let probes = [("text prompt", text), ("chat prompt", chat)]
        .into_iter()
        .map(|(prompt_kind, prompt)| Probe {
            prompt_kind,
            result: match adapter.build_request(&probe_request(prompt)) {
                Ok(req) => classify(&req),
                Err(e) => failed(&e),
            },
        })
        .collect();
    Detection { probes }
}

fn failed(e: &PluginError) -> ProbeResult {
    ProbeResult::Failed {
        message: e.to_string(),
        trapped: e.killed_instance(),
    }
}

/// Place one request by its path (and, for `/generate`, its body).
pub fn classify(req: &HttpRequest) -> ProbeResult {
    let path = req.path.split('?').next().unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&req.body).ok();
    let has = |field: &str| body.as_ref().is_some_and(|b| b.get(field).is_some());
    let dialect = if path.ends_with("/chat/completions") {
        Some(Dialect::OpenAiChat)
    } else if path.ends_with("/completions") {
        Some(Dialect::OpenAiCompletions)
    } else if path.ends_with("/api/chat") {
        Some(Dialect::OllamaChat)
    } else if path.ends_with("/api/generate") {
        Some(Dialect::OllamaGenerate)
    } else if path.starts_with("/v2/models/") && path.ends_with("/generate_stream") {
        Some(Dialect::Triton)
    } else if path.ends_with("/generate_stream") {
        Some(Dialect::Tgi)
    } else if path.ends_with("/generate") && has("text") && !has("inputs") {
        Some(Dialect::Sglang)
    } else {
        None
    };
    let Some(dialect) = dialect else {
        return ProbeResult::Unknown {
            why: format!(
                "{} {} is none of the endpoints the battery knows (OpenAI /v1/completions and \
                 /v1/chat/completions, SGLang /generate, Ollama /api/generate and /api/chat, \
                 Triton /v2/models/{{model}}/generate_stream, TGI /generate_stream)",
                req.method, req.path
            ),
            framing: req.framing,
        };
    };
    if req.framing != dialect.framing() {
        return ProbeResult::Unknown {
            why: format!(
                "{} {} is {}, which streams {}, but the request says its response is framed \
                 as {}",
                req.method,
                req.path,
                dialect.name(),
                dialect.framing().name(),
                req.framing.name()
            ),
            framing: req.framing,
        };
    }
    ProbeResult::Known {
        dialect,
        path: req.path.clone(),
        framing: req.framing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, body: &str, framing: Framing) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            path: path.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            framing,
        }
    }

    fn dialect(r: &HttpRequest) -> Option<Dialect> {
        match classify(r) {
            ProbeResult::Known { dialect, .. } => Some(dialect),
            _ => None,
        }
    }

    #[test]
    fn paths_name_the_protocol() {
        let sse = Framing::Sse;
        let cases = [
            ("/v1/completions", "{}", sse, Dialect::OpenAiCompletions),
            ("/v1/chat/completions", "{}", sse, Dialect::OpenAiChat),
            ("/generate", r#"{"text":"x"}"#, sse, Dialect::Sglang),
            (
                "/api/generate",
                "{}",
                Framing::Ndjson,
                Dialect::OllamaGenerate,
            ),
            ("/api/chat", "{}", Framing::Ndjson, Dialect::OllamaChat),
            ("/v2/models/m/generate_stream", "{}", sse, Dialect::Triton),
            ("/generate_stream", "{}", sse, Dialect::Tgi),
            (
                "/openai/v1/completions?x=1",
                "{}",
                sse,
                Dialect::OpenAiCompletions,
            ),
        ];
        for (path, body, framing, want) in cases {
            assert_eq!(dialect(&req(path, body, framing)), Some(want), "{path}");
        }
    }

    #[test]
    fn unknown_paths_and_wrong_framing_are_unknown() {
        // TGI's non-streaming /generate takes `inputs`: not SGLang.
        let tgi_generate = req("/generate", r#"{"inputs":"x"}"#, Framing::Sse);
        let tiny = req("/api/complete", "{}", Framing::Ndjson);
        let ndjson_openai = req("/v1/completions", "{}", Framing::Ndjson);
        for r in [tgi_generate, tiny, ndjson_openai] {
            match classify(&r) {
                ProbeResult::Unknown { why, .. } => assert!(why.contains(&r.path), "{why}"),
                other => panic!("{} placed as {other:?}", r.path),
            }
        }
        match classify(&req("/v1/completions", "{}", Framing::Ndjson)) {
            ProbeResult::Unknown { why, .. } => assert!(why.contains("framed as ndjson"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dialects_are_listed_once_text_first() {
        let d = Detection {
            probes: vec![
                Probe {
                    prompt_kind: "text prompt",
                    result: classify(&req("/generate", r#"{"text":"a"}"#, Framing::Sse)),
                },
                Probe {
                    prompt_kind: "chat prompt",
                    result: classify(&req("/generate", r#"{"text":"b"}"#, Framing::Sse)),
                },
            ],
        };
        assert_eq!(d.dialects(), [(Dialect::Sglang, Framing::Sse)]);
    }
}
