//! Response bodies written in a dialect's wire format, with what each message
//! should mean.
//!
//! A case describes a stream in protocol-free steps (a role, some text, the
//! end, an error, garbage); [`Writer`] turns them into the messages that
//! dialect's server would send, the shapes taken from real captures and the
//! built-in simulator, and records for every message the text and usage it
//! carries so the case can check each message's events, not only the totals.

use serde_json::{Value, json};

use super::protocol::{Dialect, MODEL};
use crate::plugin::Framing;

/// Prompt tokens every crafted stream reports.
pub const PROMPT_TOKENS: u32 = 9;

/// One message of a crafted stream.
#[derive(Debug, Clone)]
pub struct Msg {
    pub payload: Payload,
    /// The new text the message carries (empty: none).
    pub text: String,
    /// `(prompt, completion)` tokens the message reports, if any.
    pub usage: Option<(u32, u32)>,
    /// A chat message that carries only the assistant's role.
    pub role_only: bool,
    /// The message reports a server error.
    pub error: bool,
    /// The message is not valid in any protocol.
    pub garbage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Json(Vec<u8>),
    /// The OpenAI-style `[DONE]` sentinel, which the host consumes.
    Sentinel,
}

/// A crafted stream in one dialect.
#[derive(Debug, Clone)]
pub struct Script {
    pub dialect: Dialect,
    pub msgs: Vec<Msg>,
}

impl Script {
    /// All the new text, in order.
    pub fn text(&self) -> String {
        self.msgs.iter().map(|m| m.text.as_str()).collect()
    }

    /// Messages that carry new text: the content events a run should count.
    pub fn content_messages(&self) -> usize {
        self.msgs.iter().filter(|m| !m.text.is_empty()).count()
    }

    /// The last usage reported.
    pub fn usage(&self) -> Option<(u32, u32)> {
        self.msgs.iter().rev().find_map(|m| m.usage)
    }

    /// The body a server would send, framed as `framing`.
    pub fn body(&self, framing: Framing) -> Vec<u8> {
        let sse_prefix: &[u8] = if self.dialect == Dialect::Tgi {
            // TGI's router writes `data:` without the space.
            b"data:"
        } else {
            b"data: "
        };
        let mut out = Vec::new();
        for m in &self.msgs {
            let bytes: &[u8] = match &m.payload {
                Payload::Json(b) => b,
                Payload::Sentinel => b"[DONE]",
            };
            match framing {
                Framing::Sse => {
                    out.extend_from_slice(sse_prefix);
                    out.extend_from_slice(bytes);
                    out.extend_from_slice(b"\n\n");
                }
                Framing::Ndjson => {
                    out.extend_from_slice(bytes);
                    out.push(b'\n');
                }
                Framing::WholeBody => out.extend_from_slice(bytes),
            }
        }
        out
    }
}

/// A body that is no protocol's JSON: a proxy's error page sent with a 200.
pub const GARBAGE: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>";

/// The message the crafted server errors carry.
pub const SERVER_ERROR: &str = "conformance: the engine failed mid-stream (simulated)";

/// Writes one stream in a dialect, keeping the state its server keeps
/// (SGLang's cumulative text, token counts).
pub struct Writer {
    dialect: Dialect,
    msgs: Vec<Msg>,
    so_far: String,
    tokens: u32,
}

const CREATED: u64 = 1_700_000_000;
const CREATED_AT: &str = "2024-01-01T00:00:00.000000Z";

impl Writer {
    pub fn new(dialect: Dialect) -> Self {
        Writer {
            dialect,
            msgs: Vec::new(),
            so_far: String::new(),
            tokens: 0,
        }
    }

    pub fn finish(self) -> Script {
        Script {
            dialect: self.dialect,
            msgs: self.msgs,
        }
    }

    fn push(&mut self, value: &Value, text: &str, usage: Option<(u32, u32)>) -> &mut Msg {
        self.msgs.push(Msg {
            payload: Payload::Json(value.to_string().into_bytes()),
            text: text.to_owned(),
            usage,
            role_only: false,
            error: false,
            garbage: false,
        });
        self.msgs.last_mut().expect("just pushed")
    }

    fn sentinel(&mut self) {
        self.msgs.push(Msg {
            payload: Payload::Sentinel,
            text: String::new(),
            usage: None,
            role_only: false,
            error: false,
            garbage: false,
        });
    }

    fn openai_chunk(&self, choices: Value) -> Value {
        let (id, object) = if self.dialect == Dialect::OpenAiChat {
            ("chatcmpl-conformance", "chat.completion.chunk")
        } else {
            ("cmpl-conformance", "text_completion")
        };
        json!({"id": id, "object": object, "created": CREATED, "model": MODEL, "choices": choices})
    }

    fn sglang_message(&self, finish: Value) -> Value {
        json!({"text": self.so_far, "meta_info": {
            "id": "conformance", "finish_reason": finish, "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": self.tokens, "cached_tokens": 0,
        }})
    }

    fn ollama_line(&self, content: &str) -> Value {
        let mut v = json!({"model": MODEL, "created_at": CREATED_AT});
        if self.dialect == Dialect::OllamaChat {
            v["message"] = json!({"role": "assistant", "content": content});
        } else {
            v["response"] = json!(content);
        }
        v
    }

    /// A chat's opening message with the role and no content (as llama.cpp
    /// sends it, `content: null`). Only for dialects with role messages.
    pub fn role(&mut self) {
        let value = match self.dialect {
            Dialect::OpenAiChat => self.openai_chunk(json!([{"index": 0,
                "delta": {"role": "assistant", "content": null},
                "logprobs": null, "finish_reason": null}])),
            Dialect::OllamaChat => {
                let mut v = self.ollama_line("");
                v["done"] = json!(false);
                v
            }
            _ => return,
        };
        self.push(&value, "", None).role_only = true;
    }

    /// Role messages where the dialect has them.
    pub fn role_if_chat(&mut self) {
        if self.dialect.has_role_message() {
            self.role();
        }
    }

    /// One message with new text `text` (may be empty: an empty delta).
    pub fn text(&mut self, text: &str) {
        self.text_escaped(text, false);
    }

    /// As [`Writer::text`]; with `escape`, non-ASCII characters are written
    /// as `\u` escapes (surrogate pairs beyond the BMP), as Python's
    /// `json.dumps` does by default.
    pub fn text_escaped(&mut self, text: &str, escape: bool) {
        if !text.is_empty() {
            self.tokens += 1;
        }
        self.so_far.push_str(text);
        let k = self.tokens;
        let (value, usage) = match self.dialect {
            Dialect::OpenAiCompletions => (
                self.openai_chunk(json!([{"index": 0, "text": text, "logprobs": null,
                    "finish_reason": null, "stop_reason": null}])),
                None,
            ),
            Dialect::OpenAiChat => (
                self.openai_chunk(json!([{"index": 0, "delta": {"content": text},
                    "logprobs": null, "finish_reason": null}])),
                None,
            ),
            // Every SGLang message repeats the text so far and the counts.
            Dialect::Sglang => (self.sglang_message(Value::Null), Some((PROMPT_TOKENS, k))),
            Dialect::OllamaGenerate | Dialect::OllamaChat => {
                let mut v = self.ollama_line(text);
                v["done"] = json!(false);
                (v, None)
            }
            Dialect::Triton => (
                json!({"model_name": MODEL, "model_version": "1", "text_output": text}),
                None,
            ),
            Dialect::Tgi => (
                json!({"index": k, "token": {"id": 1000 + k, "text": text, "logprob": -0.25,
                    "special": false}, "generated_text": null, "details": null,
                    "top_tokens": null}),
                None,
            ),
        };
        let msg = self.push(&value, text, usage);
        if escape && let Payload::Json(bytes) = &mut msg.payload {
            let escaped = escape_non_ascii(&String::from_utf8_lossy(bytes));
            *bytes = escaped.into_bytes();
        }
    }

    /// The end of a complete stream: finish reason, usage and end marker, as
    /// the dialect's server sends them.
    pub fn end(&mut self) {
        let n = self.tokens;
        match self.dialect {
            Dialect::OpenAiCompletions | Dialect::OpenAiChat => {
                let choice = if self.dialect == Dialect::OpenAiChat {
                    json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "length"})
                } else {
                    json!({"index": 0, "text": "", "logprobs": null, "finish_reason": "length",
                        "stop_reason": null})
                };
                let finish = self.openai_chunk(json!([choice]));
                self.push(&finish, "", None);
                let mut usage = self.openai_chunk(json!([]));
                usage["usage"] = json!({"prompt_tokens": PROMPT_TOKENS,
                    "total_tokens": PROMPT_TOKENS + n, "completion_tokens": n});
                self.push(&usage, "", Some((PROMPT_TOKENS, n)));
                self.sentinel();
            }
            Dialect::Sglang => {
                let last = self.sglang_message(json!({"type": "length", "length": n}));
                self.push(&last, "", Some((PROMPT_TOKENS, n)));
                self.sentinel();
            }
            Dialect::OllamaGenerate | Dialect::OllamaChat => {
                let mut v = self.ollama_line("");
                for (k, val) in [
                    ("done", json!(true)),
                    ("done_reason", json!("length")),
                    ("total_duration", json!(123_456_789)),
                    ("load_duration", json!(1_000)),
                    ("prompt_eval_count", json!(PROMPT_TOKENS)),
                    ("prompt_eval_duration", json!(1_000_000)),
                    ("eval_count", json!(n)),
                    ("eval_duration", json!(100_000_000)),
                ] {
                    v[k] = val;
                }
                self.push(&v, "", Some((PROMPT_TOKENS, n)));
            }
            // Triton's stream simply ends.
            Dialect::Triton => {}
            Dialect::Tgi => {
                // The end-of-sequence token: special, so not output text,
                // but counted in generated_tokens.
                let v = json!({"index": n + 1, "token": {"id": 2, "text": "</s>",
                    "logprob": -0.01, "special": true}, "generated_text": self.so_far,
                    "details": {"finish_reason": "eos_token", "generated_tokens": n + 1,
                        "input_length": PROMPT_TOKENS, "seed": null},
                    "top_tokens": null});
                self.push(&v, "", Some((PROMPT_TOKENS, n + 1)));
            }
        }
    }

    /// A server error after the 200, in the dialect's error shape, followed
    /// by whatever the server sends next.
    pub fn error(&mut self) {
        let value = match self.dialect {
            Dialect::OpenAiCompletions | Dialect::OpenAiChat => {
                json!({"error": {"message": SERVER_ERROR, "type": "InternalServerError",
                    "param": null, "code": 500}})
            }
            Dialect::Sglang => json!({"error": {"message": SERVER_ERROR}}),
            Dialect::OllamaGenerate | Dialect::OllamaChat | Dialect::Triton => {
                json!({"error": SERVER_ERROR})
            }
            Dialect::Tgi => json!({"error": SERVER_ERROR, "error_type": "generation"}),
        };
        self.push(&value, "", None).error = true;
        if matches!(
            self.dialect,
            Dialect::OpenAiCompletions | Dialect::OpenAiChat | Dialect::Sglang
        ) {
            self.sentinel();
        }
    }

    /// A message that is not JSON.
    pub fn garbage(&mut self) {
        self.msgs.push(Msg {
            payload: Payload::Json(GARBAGE.as_bytes().to_vec()),
            text: String::new(),
            usage: None,
            role_only: false,
            error: false,
            garbage: true,
        });
    }
}

/// JSON text with every non-ASCII character as a `\u` escape. Non-ASCII can
/// only occur inside JSON strings, so this keeps the document's meaning.
pub fn escape_non_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use llm_loadtest_sdk::framing::{Frame, split_all};

    use super::*;

    const ALL: [Dialect; 7] = [
        Dialect::OpenAiCompletions,
        Dialect::OpenAiChat,
        Dialect::Sglang,
        Dialect::OllamaGenerate,
        Dialect::OllamaChat,
        Dialect::Triton,
        Dialect::Tgi,
    ];

    fn full(dialect: Dialect) -> Script {
        let mut w = Writer::new(dialect);
        w.role_if_chat();
        w.text("Hello");
        w.text("");
        w.text_escaped(" caf\u{e9} \u{1f389}", true);
        w.error();
        w.end();
        w.garbage();
        w.finish()
    }

    #[test]
    fn framing_the_body_gives_back_every_message() {
        for d in ALL {
            let script = full(d);
            let frames = split_all(d.framing(), &script.body(d.framing())).unwrap();
            let want: Vec<Frame> = script
                .msgs
                .iter()
                .map(|m| match &m.payload {
                    Payload::Json(b) => Frame::Message(b.clone()),
                    Payload::Sentinel => Frame::Done,
                })
                .collect();
            assert_eq!(frames, want, "{}", d.name());
        }
    }

    #[test]
    fn messages_are_json_except_garbage() {
        for d in ALL {
            for m in full(d).msgs {
                if let Payload::Json(b) = &m.payload {
                    let parsed = serde_json::from_slice::<Value>(b);
                    assert_eq!(parsed.is_err(), m.garbage, "{}", String::from_utf8_lossy(b));
                }
            }
        }
    }

    #[test]
    fn escaped_text_decodes_to_the_same_characters() {
        let escaped = escape_non_ascii(r#"{"t":"é 日本 🎉"}"#);
        assert!(escaped.is_ascii());
        assert!(escaped.contains(r"\ud83c\udf89"), "{escaped}");
        let v: Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(v["t"], "é 日本 🎉");
    }

    #[test]
    fn sglang_repeats_the_text_so_far() {
        let mut w = Writer::new(Dialect::Sglang);
        w.text("a");
        w.text("b");
        w.end();
        let s = w.finish();
        let Payload::Json(b) = &s.msgs[1].payload else {
            panic!()
        };
        let v: Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["text"], "ab");
        assert_eq!(s.usage(), Some((PROMPT_TOKENS, 2)));
        assert_eq!(s.text(), "ab");
        assert_eq!(s.content_messages(), 2);
    }
}
