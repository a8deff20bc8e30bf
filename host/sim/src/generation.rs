//! One request's life: how long its answer is, which fault strikes, and how it is answered.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use tokio::sync::mpsc;

use crate::app::App;
use crate::config::Timing;
use crate::faults::{self, Fault, FaultKind};
use crate::protocol::{Done, Finish, Wire, json_response};
use crate::scheduler::Submit;
use crate::stream::{Aborted, ActiveGuard, Driver, Stage, Ticker};
use crate::tokens::{TokenText, mix};

/// What a protocol handler extracted from a generation request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GenRequest {
    pub prompt_tokens: u32,
    /// Hash of the prompt's bytes: the same prompt gets the same answer.
    pub prompt_hash: u64,
    pub max_tokens: Option<u32>,
    pub min_tokens: u32,
    pub ignore_eos: bool,
    pub stream: bool,
}

/// The decided shape of one answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub output_tokens: u32,
    pub finish: Finish,
    pub text: TokenText,
    pub fault: Option<Fault>,
}

impl App {
    /// Decides the answer's length, text and fault.
    ///
    /// Length: `max_tokens` under `ignore_eos`; otherwise the simulated model stops after each
    /// token with probability 1 / `--eos-mean-tokens` (a geometric length, drawn from the
    /// text seed and the prompt), raised to `min_tokens` and capped at `max_tokens`.
    pub(crate) fn plan(&self, seq: u64, req: &GenRequest) -> Plan {
        let cfg = &self.config;
        let max = req.max_tokens.unwrap_or(cfg.default_max_tokens).max(1);
        let floor = req.min_tokens.clamp(1, max);
        let draw = mix(cfg.seed ^ mix(req.prompt_hash));
        let (output_tokens, finish) = if req.ignore_eos {
            (max, Finish::Length)
        } else {
            let p = 1.0 / cfg.eos_mean_tokens;
            let uniform = ((draw >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let natural = if p >= 1.0 {
                1.0
            } else {
                1.0 + (uniform.ln() / (1.0 - p).ln()).floor()
            };
            if natural >= f64::from(max) {
                (max, Finish::Length)
            } else {
                ((natural as u32).max(floor), Finish::Stop)
            }
        };
        let fault = faults::decide(
            cfg.fault_seed,
            seq,
            cfg.fault_rate,
            &cfg.faults,
            output_tokens,
        );
        Plan {
            output_tokens,
            finish: if output_tokens == max {
                Finish::Length
            } else {
                finish
            },
            text: TokenText::new((mix(draw) >> 40) as u32),
            fault,
        }
    }

    /// Answers a planned request: an early error, a stream, or a whole body.
    pub(crate) async fn generate<W: Wire>(
        &self,
        arrival: Instant,
        req: GenRequest,
        plan: Plan,
        wire: W,
    ) -> Response {
        self.stats
            .prompt_tokens
            .fetch_add(u64::from(req.prompt_tokens), Relaxed);
        if let Timing::Batching(params) = self.timing {
            let need = u64::from(req.prompt_tokens) + u64::from(plan.output_tokens);
            if need > params.kv_tokens {
                let message = format!(
                    "This model's maximum context length is {} tokens. However, you requested {need} tokens ({} in the prompt, {} for the completion). Please reduce the length of the prompt or the completion.",
                    params.kv_tokens, req.prompt_tokens, plan.output_tokens
                );
                return self.reject(
                    StatusCode::BAD_REQUEST,
                    wire.error_body(StatusCode::BAD_REQUEST, &message),
                );
            }
        }
        if let Some(f) = plan.fault.filter(|f| f.kind == FaultKind::Http500) {
            self.count_fault(f.kind);
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                wire.error_body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "simulated internal error",
                ),
            );
        }
        let ticker = match self.timing {
            Timing::Fixed { ttft, itl } => Ticker::Fixed { arrival, ttft, itl },
            Timing::Batching(_) => {
                let Some(inbox) = &self.scheduler else {
                    return self.server_error(&wire, "the batch scheduler is not running");
                };
                let (tx, rx) = mpsc::unbounded_channel();
                let submit = Submit {
                    arrival,
                    input_tokens: req.prompt_tokens,
                    output_tokens: plan.output_tokens,
                    tokens: tx,
                };
                if inbox.send(submit).is_err() {
                    return self.server_error(&wire, "the batch scheduler has stopped");
                }
                Ticker::Batch(rx)
            }
        };
        let active = ActiveGuard::new(&self.stats);
        let done = |first_token, end| Done {
            prompt_tokens: req.prompt_tokens,
            completion_tokens: plan.output_tokens,
            finish: plan.finish,
            arrival,
            first_token,
            end,
        };
        if req.stream {
            let driver = Driver {
                app: self.clone(),
                wire,
                ticker,
                plan,
                prompt_tokens: req.prompt_tokens,
                arrival,
                first_token: None,
                last_sent: None,
                sent: 0,
                stage: Stage::Tokens,
                active: Some(active),
            };
            let frames = futures::stream::unfold(driver, |mut d| async move {
                let frame = d.next_frame().await?;
                Some((frame, d))
            });
            let mut r = Response::new(Body::from_stream(frames));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(W::STREAM_CONTENT_TYPE),
            );
            return r;
        }

        let mut ticker = ticker;
        let Some(first) = ticker
            .wait_all(plan.output_tokens, &self.clock, &self.stats)
            .await
        else {
            return self.server_error(&wire, "the batch scheduler has stopped");
        };
        let body = wire.whole(
            &plan.text.text(plan.output_tokens),
            &done(first, Instant::now()),
        );
        match plan.fault {
            Some(f) if f.kind == FaultKind::ErrorAfter200 => {
                self.count_fault(f.kind);
                json_response(
                    StatusCode::OK,
                    wire.error_body(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "simulated error after 200",
                    ),
                )
            }
            Some(f) if f.kind == FaultKind::MalformedChunk => {
                self.count_fault(f.kind);
                let mut cut = body.len() / 2;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                json_response(StatusCode::OK, body[..cut].to_owned())
            }
            Some(f) if matches!(f.kind, FaultKind::DropMidStream | FaultKind::Stall) => {
                self.count_fault(f.kind);
                let wait = if f.kind == FaultKind::Stall {
                    self.config.stall
                } else {
                    Duration::ZERO
                };
                let clock = self.clock.clone();
                let cut = futures::stream::once(async move {
                    clock.sleep(wait).await;
                    drop(active);
                    Err::<Bytes, Aborted>(Aborted)
                });
                let mut r = Response::new(Body::from_stream(cut));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                r
            }
            _ => {
                self.stats.requests_completed.fetch_add(1, Relaxed);
                self.count_finish(plan.finish);
                json_response(StatusCode::OK, body)
            }
        }
    }

    fn server_error<W: Wire>(&self, wire: &W, message: &str) -> Response {
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            wire.error_body(StatusCode::INTERNAL_SERVER_ERROR, message),
        )
    }

    pub(crate) fn count_fault(&self, kind: FaultKind) {
        self.stats.faults_by_kind[kind.index()].fetch_add(1, Relaxed);
    }

    pub(crate) fn count_finish(&self, finish: Finish) {
        match finish {
            Finish::Length => self.stats.finished_length.fetch_add(1, Relaxed),
            Finish::Stop => self.stats.finished_stop.fetch_add(1, Relaxed),
        };
    }
}
