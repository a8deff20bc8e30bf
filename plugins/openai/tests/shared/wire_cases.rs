//! Replays of every OpenAI-protocol capture in tests/fixtures/wire through an
//! adapter. Shared by the openai and vllm plugins (they parse alike), so the
//! cases are a macro over the adapter type. Expected values were read from
//! the captures themselves.

/// The bytes of one capture in tests/fixtures/wire.
macro_rules! capture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/wire/",
            $name
        ))
    };
}

macro_rules! wire_tests {
    ($adapter:ty) => {
        use llm_loadtest_sdk::testing::{Replay, Summary, replay, replay_split_everywhere};
        use llm_loadtest_sdk::{Event, Framing, Usage};

        /// Replays `body` whole, split at every byte and byte by byte, and
        /// checks all agree.
        fn stream(body: &[u8]) -> Replay {
            replay_split_everywhere::<$adapter>(Framing::Sse, body).unwrap()
        }

        fn whole(body: &[u8]) -> Replay {
            replay::<$adapter>(Framing::WholeBody, body).unwrap()
        }

        fn usage(prompt: u32, completion: u32, cached: Option<u32>) -> Option<Usage> {
            Some(Usage {
                prompt_tokens: Some(prompt),
                completion_tokens: Some(completion),
                cached_tokens: cached,
            })
        }

        fn streamed(content: &str, content_events: usize, usage: Option<Usage>, finish: &str) -> Summary {
            Summary {
                content: content.into(),
                content_events,
                usage,
                usage_events: usize::from(usage.is_some()),
                finish_reason: Some(finish.into()),
                done: true,
                ..Summary::default()
            }
        }

        fn nonstreamed(content: &str, usage: Option<Usage>, finish: &str) -> Summary {
            Summary {
                done: false,
                ..streamed(content, 1, usage, finish)
            }
        }

        fn error_only(r: &Replay) -> &str {
            assert_eq!(r.events.len(), 1, "{:?}", r.events);
            match &r.events[0] {
                Event::Error(e) => e,
                other => panic!("expected an error event, got {other:?}"),
            }
        }

        #[test]
        fn vllm_completions_stream() {
            let r = stream(capture!("vllm-tiny-completions-stream.sse"));
            // 16 tokens in 16 chunks, but one chunk holds back half a UTF-8
            // character as "": it is not a token.
            assert_eq!(
                r.summary,
                streamed(
                    "\u{e9}sist Bosttesting Zkeywordsive\u{fffd}phoenixmentogram12 impprovidedlatedimplementation",
                    15,
                    usage(9, 16, None),
                    "length",
                )
            );
            assert_eq!(r.events[0], Event::token("\u{e9}"));
            // vLLM: the finish chunk, then a separate `choices: []` usage chunk.
            let n = r.events.len();
            assert_eq!(r.events[n - 2], Event::Finish("length".into()));
            assert!(matches!(r.events[n - 1], Event::Usage(_)));
        }

        #[test]
        fn vllm_completions_stream_continuous_usage_is_not_double_counted() {
            let r = stream(capture!("vllm-tiny-completions-stream-continuous-usage.sse"));
            let want = Summary {
                usage_events: 5,
                ..streamed(" https WilstarBSTITUTE", 4, usage(9, 4, None), "length")
            };
            assert_eq!(r.summary, want);
            // Each usage event carries the running total, so keeping the last
            // one counts every token once.
            let totals: Vec<Option<u32>> = r
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Usage(u) => Some(u.completion_tokens),
                    _ => None,
                })
                .collect();
            assert_eq!(totals, vec![Some(1), Some(2), Some(3), Some(4), Some(4)]);
        }

        #[test]
        fn vllm_completions_nostream() {
            let r = whole(capture!("vllm-tiny-completions-nostream.json"));
            assert_eq!(
                r.summary,
                nonstreamed(
                    "coding NOTICE Reservedworld\u{fffd} SOFTWARE 2019own",
                    usage(9, 8, None),
                    "length"
                )
            );
        }

        #[test]
        fn vllm_error_bodies_become_error_events() {
            let r = whole(capture!("vllm-tiny-err-ctx-overflow.body"));
            assert_eq!(
                error_only(&r),
                "This model's maximum context length is 2048 tokens. However, your prompt \
                 contains at least 2049 input tokens, which exceeds this limit even without any \
                 output tokens. Please reduce the length of the input prompt. \
                 (parameter=input_tokens, value=2049) (type BadRequestError, code 400)"
            );
            let r = whole(capture!("vllm-tiny-err-wrong-model.body"));
            assert_eq!(
                error_only(&r),
                "The model `no-such-model` does not exist. Valid aliases: tiny-llama. \
                 (type NotFoundError, code 404)"
            );
            let r = whole(capture!("vllm-tiny-err-badjson.json"));
            let e = error_only(&r);
            assert!(e.starts_with("1 validation error:\n  {'type': 'json_invalid'"), "{e}");
            assert!(e.ends_with("(type Bad Request, code 400)"), "{e}");
        }

        #[test]
        fn llama_cpp_chat_stream() {
            let r = stream(capture!("llama-tiny-chat-stream.sse"));
            assert_eq!(
                r.summary,
                streamed(
                    "crivarits deemedcrivaritscrivarits INCIDENTALunder', youmb****",
                    16,
                    usage(15, 16, Some(0)),
                    "length",
                )
            );
            // The role-only first chunk (`"content": null`) carries no text: it is marked
            // with an empty token, timed only as vLLM's client times it.
            assert_eq!(r.events[0], Event::token(""));
            assert_eq!(r.events[1], Event::token("cri"));
        }

        #[test]
        fn llama_cpp_completions_stream_usage_beside_finish() {
            let r = stream(capture!("llama-tiny-completions-stream.sse"));
            assert_eq!(
                r.summary,
                streamed(
                    "icalmann upcompati lawsenvel15tilINESS 2008 2008 2008 2008 2008 herebycompati",
                    16,
                    usage(9, 16, Some(0)),
                    "length",
                )
            );
            let n = r.events.len();
            assert_eq!(r.events[n - 2], Event::Finish("length".into()));
            assert_eq!(r.events[n - 1], Event::Usage(usage(9, 16, Some(0)).unwrap()));
        }

        #[test]
        fn llama_cpp_nostream_bodies() {
            let r = whole(capture!("llama-tiny-chat-nostream.json"));
            assert_eq!(
                r.summary,
                nonstreamed(
                    " expressly deemedSOR expresslyquiomicthistest",
                    usage(11, 8, Some(3)),
                    "length"
                )
            );
            let r = whole(capture!("llama-tiny-completions-nostream.json"));
            assert_eq!(
                r.summary,
                nonstreamed(
                    "ical thentransform used herebycompatimanuenvel",
                    usage(9, 8, Some(8)),
                    "length"
                )
            );
        }

        #[test]
        fn llama_cpp_error_bodies_become_error_events() {
            let r = whole(capture!("llama-tiny-err-ctx-overflow.body"));
            assert_eq!(
                error_only(&r),
                "request (9000 tokens) exceeds the available context size (1024 tokens), try \
                 increasing it (type exceed_context_size_error, code 400)"
            );
            let r = whole(capture!("llama-tiny-err-badjson.json"));
            let e = error_only(&r);
            assert!(e.starts_with("[json.exception.parse_error.101] parse error"), "{e}");
            assert!(e.ends_with("(type server_error, code 500)"), "{e}");
        }

        #[test]
        fn llama_cpp_python_stream_without_usage() {
            let r = stream(capture!("llamacpppy-tiny-completions-stream.sse"));
            assert_eq!(
                r.summary,
                streamed("manu LIMITEDthermplob As upcompati", 8, None, "length")
            );
        }

        #[test]
        fn guidellm_mock_streams() {
            let r = stream(capture!("guidellm-mock-chat-stream.sse"));
            assert_eq!(
                r.summary,
                streamed("Score each cause. Quality", 8, usage(3, 8, None), "stop")
            );
            let r = stream(capture!("guidellm-mock-completions-stream.sse"));
            assert_eq!(
                r.summary,
                streamed("Score each cause. Quality", 8, usage(7, 8, None), "stop")
            );
        }

        #[test]
        fn reasoning_deltas_are_reasoning_events() {
            let body = concat!(
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"think\"}}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"ing\",\"content\":null}}]}\n\n",
                "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
                "data: [DONE]\n\n",
            );
            let r = stream(body.as_bytes());
            assert_eq!(
                r.events,
                vec![
                    // The role-only first chunk, no text.
                    Event::token(""),
                    Event::reasoning("think"),
                    Event::reasoning("ing"),
                    Event::token("Hi"),
                    Event::Finish("stop".into()),
                ]
            );
        }

        #[test]
        fn vllm_empty_text_token_chunks_are_marked_not_dropped() {
            // vLLM 0.32, 128 tokens with ignore_eos: 5 token chunks carry `"text": ""`
            // (a byte-level token that completes no character yet).
            // Whole: splitting 48 kB at every byte is quadratic, and the smaller captures
            // already check that splits change nothing.
            let r = replay::<$adapter>(Framing::Sse, capture!("vllm-tiny-completions-128.sse"))
                .unwrap();
            let empty = r
                .events
                .iter()
                .filter(|e| **e == Event::token(""))
                .count();
            assert_eq!(empty, 5);
            assert_eq!(r.summary.content_events, 123, "tokens with text");
            assert_eq!(
                r.summary.usage.and_then(|u| u.completion_tokens),
                Some(128)
            );
        }

        #[test]
        fn error_event_after_200_is_an_error_event() {
            let body = concat!(
                "data: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\n\n",
                "data: {\"error\":{\"message\":\"engine died\",\"type\":\"InternalServerError\",\"code\":500}}\n\n",
                "data: {\"error\":\"plain text error\"}\n\n",
            );
            let r = stream(body.as_bytes());
            assert_eq!(r.summary.content, "a");
            assert_eq!(
                r.summary.errors,
                vec![
                    "engine died (type InternalServerError, code 500)",
                    "plain text error"
                ]
            );
            assert!(!r.summary.done);
        }

        #[test]
        fn a_message_that_is_not_json_is_a_parser_error() {
            let e = replay::<$adapter>(Framing::Sse, b"data: {\"choices\": [\n\n").unwrap_err();
            let e = e.to_string();
            assert!(e.contains("not an OpenAI response chunk"), "{e}");
            assert!(e.contains("message #0"), "{e}");
        }
    };
}
