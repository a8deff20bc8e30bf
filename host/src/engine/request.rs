//! One request from send to last byte, timed on byte arrival.
use std::time::Instant;

use llm_loadtest_sdk::framing::{Decoder, Frame};
use tokio::time::Instant as TokioInstant;

use super::client::Target;
use super::connection::{ConnectionPool, Lease, SendError};
use super::h1::Head;
use crate::metrics::{ErrorClass, MetricMode, RequestError, RequestRecord};
use crate::plugin::{Adapter, Batch, Event, GenerationRequest, PluginError, StreamParser};

/// How much of an error body is kept in a message.
const ERROR_BODY_EXCERPT: usize = 300;

/// What a request needs from its run.
pub struct RequestContext<'a> {
    pub pool: &'a ConnectionPool,
    /// Set from the first response message that names its model.
    pub served_model: &'a std::sync::OnceLock<String>,
    pub target: &'a Target,
    pub adapter: &'a Adapter,
    /// Zero point of the level's clock.
    pub level_start: Instant,
    /// Give up on the request after this long from send.
    pub timeout: std::time::Duration,
    /// Which chunks are token arrivals.
    pub metric_mode: MetricMode,
}

/// Timing and content state of one response, fed events in arrival order.
#[derive(Default)]
struct Progress {
    mode: MetricMode,
    /// Messages begun so far; events of one message share its number.
    message: u64,
    /// The message of the last arrival.
    last_message: Option<u64>,
    first: Option<Instant>,
    last: Option<Instant>,
    itl_ms: Vec<f64>,
    content_events: u32,
    delta_tokens: Option<u32>,
    text: String,
    usage_completion: Option<u32>,
    usage_prompt: Option<u32>,
    usage_cached: Option<u32>,
    finish: Option<String>,
    done: bool,
    error: Option<String>,
}

impl Progress {
    fn apply(&mut self, event: Event, at: Instant) {
        match event {
            Event::Token(d) | Event::Reasoning(d) => {
                // An empty delta marks a chunk with a choice but no text (a byte-level token
                // that completes no character, a role-only chat chunk): an arrival only as
                // vLLM's client counts them.
                let tokens = d.tokens.unwrap_or(0);
                if d.text.is_empty() && tokens == 0 && self.mode == MetricMode::Content {
                    return;
                }
                // vLLM's client takes one timestamp per chunk, however many events the
                // adapter made of it (chunks that came in one read are still separate).
                let same_chunk =
                    self.mode == MetricMode::Vllm && self.last_message == Some(self.message);
                if !same_chunk {
                    if let Some(prev) = self.last {
                        self.itl_ms.push(ms(at - prev));
                    } else {
                        self.first = Some(at);
                    }
                    self.last = Some(at);
                    self.last_message = Some(self.message);
                    self.content_events += 1;
                }
                if let Some(t) = d.tokens {
                    *self.delta_tokens.get_or_insert(0) += t;
                }
                self.text.push_str(&d.text);
            }
            Event::Usage(u) => {
                // Continuous usage repeats running totals: keep the last.
                if u.completion_tokens.is_some() {
                    self.usage_completion = u.completion_tokens;
                }
                if u.prompt_tokens.is_some() {
                    self.usage_prompt = u.prompt_tokens;
                }
                if u.cached_tokens.is_some() {
                    self.usage_cached = u.cached_tokens;
                }
            }
            Event::Finish(reason) => self.finish = Some(reason),
            Event::Error(msg) => {
                if self.error.is_none() {
                    self.error = Some(msg);
                }
            }
            Event::Done => self.done = true,
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn plugin_error(e: &PluginError) -> RequestError {
    let class = if e.class() == "parse" {
        ErrorClass::Parse
    } else {
        ErrorClass::Plugin
    };
    RequestError {
        class,
        message: e.to_string(),
        collateral: matches!(e, PluginError::InstanceLost { .. }),
    }
}

fn err(class: ErrorClass, message: impl Into<String>) -> Option<RequestError> {
    Some(RequestError {
        class,
        message: message.into(),
        collateral: false,
    })
}

/// Send one generation and measure it. Never fails: every problem becomes a
/// classified error in the record, with what was measured before it.
pub async fn execute(
    ctx: &RequestContext<'_>,
    gen_req: &GenerationRequest,
    mut record: RequestRecord,
) -> RequestRecord {
    record.requested_output_tokens = Some(gen_req.max_tokens);
    let built = ctx.adapter.build_request(gen_req);
    let http_req = match built {
        Ok(r) => r,
        Err(e) => {
            record.send_s = ms(ctx.level_start.elapsed()) / 1e3;
            record.error = Some(plugin_error(&e));
            return record;
        }
    };
    let framing = http_req.framing;
    let request = match ctx.target.build_bytes(http_req) {
        Ok(r) => r,
        Err(e) => {
            record.send_s = ms(ctx.level_start.elapsed()) / 1e3;
            record.error = err(ErrorClass::Plugin, e.to_string());
            return record;
        }
    };
    let mut parser = match ctx.adapter.new_parser() {
        Ok(p) => p,
        Err(e) => {
            record.send_s = ms(ctx.level_start.elapsed()) / 1e3;
            record.error = Some(plugin_error(&e));
            return record;
        }
    };

    // A whole body arrives at once: when its first token was generated is not observable, so
    // TTFT, ITL and TPOT stay unmeasured rather than read as TTFT = E2EL and TPOT = 0.
    let streamed = !matches!(framing, crate::plugin::Framing::WholeBody);
    let t_send = Instant::now();
    record.send_s = (t_send - ctx.level_start).as_secs_f64();
    let deadline = TokioInstant::from_std(t_send + ctx.timeout);
    // Sized for the tokens asked for, so the steady path appends without reallocating (a
    // server that sends more only grows them).
    let expected = usize::try_from(gen_req.max_tokens)
        .unwrap_or(0)
        .min(64 * 1024);
    let mut progress = Progress {
        mode: ctx.metric_mode,
        itl_ms: Vec::with_capacity(expected),
        text: String::with_capacity(expected * 4),
        ..Progress::default()
    };
    let outcome = tokio::time::timeout_at(
        deadline,
        stream(
            ctx,
            request,
            framing,
            &mut parser,
            &mut progress,
            &mut record,
        ),
    )
    .await;
    let t_end = Instant::now();
    let transport_error = match outcome {
        Ok(e) => e,
        Err(_) => err(
            ErrorClass::Timeout,
            format!("no complete response within {:?}", ctx.timeout),
        ),
    };

    record.latency_ms = ms(t_end - t_send);
    record.ttft_ms = progress.first.filter(|_| streamed).map(|t| ms(t - t_send));
    record.e2el_ms = progress.last.map(|t| ms(t - t_send));
    record.itl_ms = if streamed {
        progress.itl_ms
    } else {
        Vec::new()
    };
    record.content_events = progress.content_events;
    record.output_tokens_server = progress.usage_completion.or(progress.delta_tokens);
    record.prompt_tokens_server = progress.usage_prompt;
    record.cached_prompt_tokens_server = progress.usage_cached;
    record.finish_reason = progress.finish;
    record.text = progress.text;
    record.error = transport_error
        .or_else(|| progress.error.and_then(|m| err(ErrorClass::StreamError, m)))
        .or_else(|| {
            if progress.done || record.finish_reason.is_some() {
                None
            } else {
                err(
                    ErrorClass::StreamError,
                    "the stream ended without a completion marker (no finish reason or done)",
                )
            }
        });
    record.settle_output_tokens();
    if let Some(e) = &record.error {
        tracing::debug!(
            index = record.index,
            class = %e.class,
            message = %e.message,
            status = ?record.http_status,
            reused_connection = record.connection.reused,
            retries = record.connection.retries,
            "request failed"
        );
    }
    record
}

/// Send and read the response, applying events as bytes arrive. Returns a
/// transport, status, parse or plugin error; stream error events are left in
/// `progress`.
async fn stream(
    ctx: &RequestContext<'_>,
    request: http::Request<bytes::Bytes>,
    framing: crate::plugin::Framing,
    parser: &mut StreamParser,
    progress: &mut Progress,
    record: &mut RequestRecord,
) -> Option<RequestError> {
    let (mut head, mut lease) = match ctx.pool.send(request, &mut record.connection).await {
        Ok(r) => r,
        Err(e) => {
            let class = match e {
                SendError::Connect { .. } => ErrorClass::Connect,
                SendError::Send { .. } => ErrorClass::Send,
                SendError::Malformed { .. } => ErrorClass::StreamError,
            };
            return err(class, e.to_string());
        }
    };
    let (whole, error) = read_body(
        ctx, &mut head, &mut lease, framing, parser, progress, record,
    )
    .await;
    if whole {
        // Read to its end: the connection can carry the next request.
        ctx.pool.give_back(lease, &head);
    } else {
        ctx.pool.count_reads(&mut lease.conn);
    }
    error
}

/// Reads `head`'s body from `lease` through the decoder and the parser: whether it was read to
/// its end (so the connection can carry another request), and the request's error, if any.
async fn read_body(
    ctx: &RequestContext<'_>,
    head: &mut Head,
    lease: &mut Lease,
    framing: crate::plugin::Framing,
    parser: &mut StreamParser,
    progress: &mut Progress,
    record: &mut RequestRecord,
) -> (bool, Option<RequestError>) {
    let status = head.status;
    record.http_status = Some(status);
    let encoding = head
        .headers
        .get(http::header::CONTENT_ENCODING)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .filter(|v| !v.eq_ignore_ascii_case("identity"));
    if !(200..300).contains(&status) {
        let mut excerpt = Vec::new();
        while let Some(Ok((data, _))) = lease.conn.body_part(head).await {
            excerpt.extend_from_slice(data);
            if excerpt.len() >= ERROR_BODY_EXCERPT {
                break;
            }
        }
        excerpt.truncate(ERROR_BODY_EXCERPT);
        let text = String::from_utf8_lossy(&excerpt);
        return (
            false,
            err(
                ErrorClass::HttpStatus,
                format!("HTTP {status}: {}", text.trim()),
            ),
        );
    }

    // The request asks for no encoding; a compressed stream cannot be timed token by token
    // (and an adapter would read binary), so it is the server's error, said plainly.
    if let Some(enc) = encoding {
        return (
            false,
            err(
                ErrorClass::StreamError,
                format!(
                    "the server encoded the response as `{enc}`, which the request did not \
                     ask for; an encoded stream cannot be read or timed event by event"
                ),
            ),
        );
    }
    let mut decoder = Decoder::new(framing);
    let mut batch = Batch::default();
    let mut model = ModelPeek {
        into: ctx.served_model,
        looking: ctx.served_model.get().is_none(),
    };
    // The arrival time is the read's that brought the bytes, taken before any framing or
    // parsing (from the kernel where it can be, see `h1::socket`).
    while let Some(part) = lease.conn.body_part(head).await {
        let (data, at) = match part {
            Ok(p) => p,
            Err(e) => {
                return (
                    false,
                    err(
                        ErrorClass::StreamError,
                        format!("the connection broke mid-stream: {e}"),
                    ),
                );
            }
        };
        if let Err(e) = decoder.push(data) {
            return (false, err(ErrorClass::StreamError, e.to_string()));
        }
        if let Some(e) = drain(&mut decoder, parser, progress, at, &mut model, &mut batch) {
            return (false, Some(e));
        }
        if progress.error.is_some() {
            return (false, None);
        }
    }
    // The end is when the read that ended the body arrived.
    let at = lease.conn.last_arrival();
    if let Err(e) = decoder.finish() {
        return (true, err(ErrorClass::StreamError, e.to_string()));
    }
    if let Some(e) = drain(&mut decoder, parser, progress, at, &mut model, &mut batch) {
        return (true, Some(e));
    }
    match parser.finish() {
        Ok(events) => {
            progress.message += 1;
            for ev in events {
                progress.apply(ev, at);
            }
            (true, None)
        }
        Err(e) => (true, Some(plugin_error(&e))),
    }
}

/// Reads the served model's name from the first message of a response, until a run has one.
///
/// The name is not part of the 0.1 plugin contract's events, so the host reads it where the
/// JSON protocols put it (`model` in OpenAI's and Ollama's messages, `model_name` in
/// Triton's); a protocol without it leaves the result without a served model. One small
/// parse per response until the first hit, after the message's arrival time was taken.
struct ModelPeek<'a> {
    into: &'a std::sync::OnceLock<String>,
    looking: bool,
}

impl ModelPeek<'_> {
    fn look(&mut self, message: &[u8]) {
        if !self.looking {
            return;
        }
        self.looking = false;
        #[derive(serde::Deserialize)]
        struct Named {
            model: Option<String>,
            model_name: Option<String>,
        }
        if let Ok(Named { model, model_name }) = serde_json::from_slice::<Named>(message)
            && let Some(name) = model.or(model_name).filter(|m| !m.is_empty())
        {
            let _ = self.into.set(name);
        }
    }
}

/// Every whole message the decoder holds, through the adapter in one batch (one plugin call for
/// a 0.2 adapter): they arrived with the same read, so they share its arrival time.
fn drain(
    decoder: &mut Decoder,
    parser: &mut StreamParser,
    progress: &mut Progress,
    at: Instant,
    model: &mut ModelPeek<'_>,
    batch: &mut Batch,
) -> Option<RequestError> {
    batch.clear();
    while let Some(frame) = decoder.next_frame() {
        match frame {
            Frame::Done => progress.done = true,
            Frame::Message(m) => {
                model.look(&m);
                batch.push(&m);
            }
        }
    }
    if batch.is_empty() {
        return None;
    }
    let fed = match parser.feed_batch(batch) {
        Ok(fed) => fed,
        Err(e) => return Some(plugin_error(&e)),
    };
    let mut events = fed.events.into_iter();
    let mut start = 0;
    for end in fed.ends {
        progress.message += 1;
        for ev in events.by_ref().take((end - start) as usize) {
            progress.apply(ev, at);
        }
        start = end;
    }
    fed.error.map(|e| plugin_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::TokenDelta;

    fn token(text: &str) -> Event {
        Event::Token(TokenDelta {
            text: text.to_string(),
            tokens: None,
        })
    }

    /// Three messages that came in one read (one arrival instant): a role-only chunk marked
    /// with an empty token, then a chunk the adapter split into reasoning and text, then an
    /// empty-text token chunk.
    fn feed(mode: MetricMode) -> Progress {
        let mut p = Progress {
            mode,
            ..Progress::default()
        };
        let at = Instant::now();
        let messages = [
            vec![token("")],
            vec![
                Event::Reasoning(TokenDelta {
                    text: "hm".into(),
                    tokens: None,
                }),
                token("Hi"),
            ],
            vec![token("")],
        ];
        for events in messages {
            p.message += 1;
            for e in events {
                p.apply(e, at);
            }
        }
        p
    }

    #[test]
    fn vllm_mode_takes_one_arrival_per_message_with_a_choice() {
        let p = feed(MetricMode::Vllm);
        // Three chunks, three arrivals, even in one read; two events of one chunk are one.
        assert_eq!(p.content_events, 3);
        assert_eq!(p.itl_ms, [0.0, 0.0]);
        assert_eq!(p.text, "hmHi");
    }

    #[test]
    fn content_mode_takes_every_event_with_text() {
        let p = feed(MetricMode::Content);
        assert_eq!(p.content_events, 2);
        assert_eq!(p.itl_ms, [0.0]);
        assert_eq!(p.text, "hmHi");
    }
}
