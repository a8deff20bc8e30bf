//! The bridge between the author's traits and the wit-bindgen traits, used
//! by the `register_*!` macros. Nothing here is part of the public API.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::adapter::{Adapter, StreamParser, Tokenize};
use crate::bindings::adapter_world::exports::llm_loadtest::plugin0_2_0::adapter as wit_adapter;
use crate::bindings::recommend_world::exports::llm_loadtest::plugin::recommend_policy as wit_rec;
use crate::bindings::slo_world::exports::llm_loadtest::plugin::slo_policy as wit_slo;
use crate::bindings::tokenizer_world::exports::llm_loadtest::plugin::tokenizer as wit_tokenizer;
use crate::bindings::tokenizer_world::llm_loadtest::plugin::types as wit;
use crate::framing::Framing;
use crate::recommend::{Goal, Outcome, ProbeResult, RecommendPolicy, Step};
use crate::slo::{Measurement, Objective, PolicyInfo, SloPolicy, Verdict};
use crate::types::{
    AdapterInfo, Event, GenerationRequest, Header, HttpRequest, Message, Prompt, TokenDelta,
    TokenizeQuery, TokenizeStep, Usage,
};

/// Implements the generated `adapter` traits for the author's `A`.
pub struct AdapterExport<A>(PhantomData<A>);

/// Implements the generated `tokenizer` trait for the author's `A`.
pub struct TokenizerExport<A>(PhantomData<A>);

/// The generated resource trait takes `&self`; the author's parser takes
/// `&mut self`, so its state lives in a `RefCell`.
pub struct ParserGlue<P>(RefCell<P>);

impl<A: Adapter> wit_adapter::Guest for AdapterExport<A> {
    type StreamParser = ParserGlue<A::Parser>;

    fn info() -> wit::AdapterInfo {
        info_to_wit(A::info())
    }

    fn build_request(req: wit::GenerationRequest) -> Result<wit::HttpRequest, String> {
        A::build_request(&request_from_wit(req)).map(http_request_to_wit)
    }
}

impl<P: StreamParser> wit_adapter::GuestStreamParser for ParserGlue<P> {
    fn new() -> Self {
        ParserGlue(RefCell::new(P::default()))
    }

    fn feed(&self, message: Vec<u8>) -> Result<Vec<wit::Event>, String> {
        let mut parser = self
            .0
            .try_borrow_mut()
            .map_err(|_| "stream parser re-entered while busy".to_string())?;
        parser.feed(&message).map(events_to_wit)
    }

    fn feed_batch(&self, messages: Vec<u8>, ends: Vec<u32>) -> wit_adapter::Fed {
        let mut events = Vec::new();
        let mut read = Vec::with_capacity(ends.len());
        let error = match self.0.try_borrow_mut() {
            Ok(mut parser) => feed_each(&mut *parser, &messages, &ends, &mut events, &mut read),
            Err(_) => Some("stream parser re-entered while busy".to_string()),
        };
        wit_adapter::Fed {
            events: events_to_wit(events),
            ends: read,
            error,
        }
    }

    fn finish(&self) -> Result<Vec<wit::Event>, String> {
        let mut parser = self
            .0
            .try_borrow_mut()
            .map_err(|_| "stream parser re-entered while busy".to_string())?;
        parser.finish().map(events_to_wit)
    }
}

/// Feed every message of a batch in order into one list of events, recording after each how
/// many there are; the first error stops the batch and is returned.
fn feed_each(
    parser: &mut impl StreamParser,
    messages: &[u8],
    ends: &[u32],
    events: &mut Vec<Event>,
    read: &mut Vec<u32>,
) -> Option<String> {
    let mut start = 0usize;
    for &end in ends {
        let Some(message) = messages.get(start..end as usize) else {
            return Some(format!(
                "the host sent message ends {ends:?} over {} bytes",
                messages.len()
            ));
        };
        if let Err(e) = parser.feed_into(message, events) {
            return Some(e);
        }
        // Events of one batch are bounded by the host's per-call limit, far below u32::MAX.
        read.push(u32::try_from(events.len()).unwrap_or(u32::MAX));
        start = end as usize;
    }
    None
}

impl<A: Tokenize> wit_tokenizer::Guest for TokenizerExport<A> {
    fn build_tokenize_request(
        query: wit_tokenizer::TokenizeQuery,
    ) -> Result<wit::HttpRequest, String> {
        A::build_tokenize_request(&query_from_wit(query)).map(http_request_to_wit)
    }

    fn parse_tokenize_response(
        query: wit_tokenizer::TokenizeQuery,
        step: u32,
        status: u16,
        body: Vec<u8>,
    ) -> Result<wit_tokenizer::TokenizeStep, String> {
        A::parse_tokenize_response(&query_from_wit(query), step, status, &body).map(|s| match s {
            TokenizeStep::Count(n) => wit_tokenizer::TokenizeStep::Count(n),
            TokenizeStep::Then(r) => wit_tokenizer::TokenizeStep::Then(http_request_to_wit(r)),
        })
    }
}

fn query_from_wit(q: wit_tokenizer::TokenizeQuery) -> TokenizeQuery {
    TokenizeQuery {
        model: q.model,
        prompt: prompt_from_wit(q.prompt),
    }
}

/// Implements the generated `slo-policy` trait for the author's `P`.
pub struct SloExport<P>(PhantomData<P>);

impl<P: SloPolicy> wit_slo::Guest for SloExport<P> {
    fn info() -> wit_slo::PolicyInfo {
        let PolicyInfo {
            name,
            version,
            description,
        } = P::info();
        wit_slo::PolicyInfo {
            name,
            version,
            description,
        }
    }

    fn check_objectives(objectives: Vec<wit_slo::Objective>) -> Result<(), String> {
        P::check_objectives(&objectives_from_wit(objectives))
    }

    fn evaluate(m: wit_slo::Measurement, objectives: Vec<wit_slo::Objective>) -> wit_slo::Verdict {
        let m = Measurement {
            succeeded: m.succeeded,
            error_class: m.error_class,
            ttft_ms: m.ttft_ms,
            tpot_ms: m.tpot_ms,
            e2el_ms: m.e2el_ms,
            itl_ms: m.itl_ms,
            input_tokens: m.input_tokens,
            output_tokens: m.output_tokens,
        };
        let Verdict { good, reasons } = P::evaluate(&m, &objectives_from_wit(objectives));
        wit_slo::Verdict { good, reasons }
    }
}

/// Implements the generated `recommend-policy` trait for the author's `P`.
pub struct RecommendExport<P>(PhantomData<P>);

impl<P: RecommendPolicy> wit_rec::Guest for RecommendExport<P> {
    fn info() -> wit_rec::PolicyInfo {
        let PolicyInfo {
            name,
            version,
            description,
        } = P::info();
        wit_rec::PolicyInfo {
            name,
            version,
            description,
        }
    }

    fn next(
        goal: wit_rec::Goal,
        probes: Vec<wit_rec::ProbeResult>,
    ) -> Result<wit_rec::Step, String> {
        let step = P::next(&goal_from_wit(goal), &probes_from_wit(probes))?;
        Ok(match step {
            Step::Probe {
                concurrency,
                requests,
            } => wit_rec::Step::Probe(wit_rec::ProbePlan {
                concurrency,
                requests,
            }),
            Step::Done(o) => wit_rec::Step::Done(outcome_to_wit(o)),
        })
    }

    fn decide(goal: wit_rec::Goal, probes: Vec<wit_rec::ProbeResult>) -> Option<wit_rec::Outcome> {
        P::decide(&goal_from_wit(goal), &probes_from_wit(probes)).map(outcome_to_wit)
    }
}

fn goal_from_wit(g: wit_rec::Goal) -> Goal {
    Goal {
        target: g.target,
        max_concurrency: g.max_concurrency,
        peak_concurrency: g.peak_concurrency,
        options: g.options,
    }
}

fn probes_from_wit(probes: Vec<wit_rec::ProbeResult>) -> Vec<ProbeResult> {
    probes
        .into_iter()
        .map(|p| ProbeResult {
            concurrency: p.concurrency,
            requests: p.requests,
            good: p.good,
            failed: p.failed,
            request_throughput: p.request_throughput,
            output_throughput: p.output_throughput,
            ttft_p50_ms: p.ttft_p50_ms,
            ttft_p99_ms: p.ttft_p99_ms,
            tpot_p50_ms: p.tpot_p50_ms,
            tpot_p99_ms: p.tpot_p99_ms,
            e2el_p50_ms: p.e2el_p50_ms,
            e2el_p99_ms: p.e2el_p99_ms,
        })
        .collect()
}

fn outcome_to_wit(o: Outcome) -> wit_rec::Outcome {
    match o {
        Outcome::Found { lo, hi } => wit_rec::Outcome::Found(wit_rec::Bracket { lo, hi }),
        Outcome::None => wit_rec::Outcome::None,
        Outcome::AtLeast(c) => wit_rec::Outcome::AtLeast(c),
    }
}

fn objectives_from_wit(objectives: Vec<wit_slo::Objective>) -> Vec<Objective> {
    objectives
        .into_iter()
        .map(|o| Objective {
            metric: o.metric,
            threshold_ms: o.threshold_ms,
        })
        .collect()
}

fn framing_to_wit(f: Framing) -> wit::Framing {
    match f {
        Framing::Sse => wit::Framing::Sse,
        Framing::Ndjson => wit::Framing::Ndjson,
        Framing::WholeBody => wit::Framing::WholeBody,
    }
}

fn info_to_wit(i: AdapterInfo) -> wit::AdapterInfo {
    wit::AdapterInfo {
        name: i.name,
        version: i.version,
        description: i.description,
        framing: framing_to_wit(i.framing),
        default_path: i.default_path,
        capabilities: i.capabilities,
    }
}

fn request_from_wit(r: wit::GenerationRequest) -> GenerationRequest {
    GenerationRequest {
        model: r.model,
        prompt: prompt_from_wit(r.prompt),
        max_tokens: r.max_tokens,
        min_tokens: r.min_tokens,
        ignore_eos: r.ignore_eos,
        temperature: r.temperature,
        stream: r.stream,
        extra_body: r.extra_body,
    }
}

fn prompt_from_wit(p: wit::Prompt) -> Prompt {
    match p {
        wit::Prompt::Text(t) => Prompt::Text(t),
        wit::Prompt::Chat(msgs) => Prompt::Chat(
            msgs.into_iter()
                .map(|m| Message {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
        ),
    }
}

fn http_request_to_wit(r: HttpRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: r.method,
        path: r.path,
        headers: r
            .headers
            .into_iter()
            .map(|Header { name, value }| wit::Header { name, value })
            .collect(),
        body: r.body,
        framing: framing_to_wit(r.framing),
    }
}

fn delta_to_wit(d: TokenDelta) -> wit::TokenDelta {
    wit::TokenDelta {
        text: d.text,
        tokens: d.tokens,
    }
}

fn usage_to_wit(u: Usage) -> wit::Usage {
    wit::Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u.cached_tokens,
    }
}

fn events_to_wit(events: Vec<Event>) -> Vec<wit::Event> {
    events
        .into_iter()
        .map(|e| match e {
            Event::Token(d) => wit::Event::Token(delta_to_wit(d)),
            Event::Reasoning(d) => wit::Event::Reasoning(delta_to_wit(d)),
            Event::Usage(u) => wit::Event::Usage(usage_to_wit(u)),
            Event::Finish(r) => wit::Event::Finish(r),
            Event::Error(e) => wit::Event::Error(e),
            Event::Done => wit::Event::Done,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `n:K` as K tokens; anything else is an error.
    #[derive(Default)]
    struct Counting;

    impl StreamParser for Counting {
        fn feed(&mut self, message: &[u8]) -> Result<Vec<Event>, String> {
            let text = std::str::from_utf8(message).map_err(|e| e.to_string())?;
            let n: usize = text
                .strip_prefix("n:")
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| format!("not a count: {text}"))?;
            Ok((0..n)
                .map(|_| {
                    Event::Token(TokenDelta {
                        text: "t".into(),
                        tokens: None,
                    })
                })
                .collect())
        }
    }

    fn batch(messages: &[&str]) -> (Vec<u8>, Vec<u32>) {
        let mut bytes = Vec::new();
        let mut ends = Vec::new();
        for m in messages {
            bytes.extend_from_slice(m.as_bytes());
            ends.push(bytes.len() as u32);
        }
        (bytes, ends)
    }

    #[test]
    fn a_batch_records_where_each_message_ends() {
        let (bytes, ends) = batch(&["n:2", "n:0", "n:3"]);
        let (mut events, mut read) = (Vec::new(), Vec::new());
        let error = feed_each(&mut Counting, &bytes, &ends, &mut events, &mut read);
        assert_eq!(error, None);
        assert_eq!(read, [2, 2, 5]);
        assert_eq!(events.len(), 5);
    }

    #[test]
    fn the_first_bad_message_stops_the_batch() {
        let (bytes, ends) = batch(&["n:1", "nope", "n:4"]);
        let (mut events, mut read) = (Vec::new(), Vec::new());
        let error = feed_each(&mut Counting, &bytes, &ends, &mut events, &mut read);
        assert_eq!(error.as_deref(), Some("not a count: nope"));
        assert_eq!((&read[..], events.len()), (&[1][..], 1));
        // Ends past the bytes are the host's mistake, said as such, not a panic.
        let error = feed_each(&mut Counting, b"n:1", &[9], &mut events, &mut read);
        assert!(error.unwrap().contains("message ends [9] over 3 bytes"));
    }
}
