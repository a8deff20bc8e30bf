//! Hostile servers (the simulator's `hostile` module: broken HTTP, not engine faults): each
//! request ends as a classified error with its words, the level and the run go on, and a
//! valid but unusual response (HTTP/1.0, the close ending the body) is read whole.
use std::time::Duration;

use llm_loadtest::metrics::ErrorClass;
use llm_loadtest::runner::RunOutput;
use llm_loadtest_sim::hostile::{Hostile, serve};

use crate::support::{run, spec_at};

/// Two requests at concurrency 2 against `kind`, each given at most 1 s.
async fn against(kind: Hostile) -> RunOutput {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let _server = serve(kind, listener);
    let mut sp = spec_at(&url, 2, 2, 4);
    sp.timeout = Duration::from_secs(1);
    run(&sp).await
}

/// The one error class of a level where every request failed, and its first message.
fn failed_with(out: &RunOutput) -> (ErrorClass, String) {
    assert_eq!(out.result.levels.len(), 1, "the run went on to its end");
    let s = &out.result.levels[0].summary;
    assert_eq!((s.requests, s.failed), (2, 2), "{:?}", s.errors);
    assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
    let (class, e) = s.errors.iter().next().unwrap();
    (*class, e.first_messages[0].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_response_is_a_classified_error() {
    // A timeout can only fire where the server holds the stream: a valid response trickled
    // a byte per 20 ms needs over 5 s, silence and a socket never read never end.
    for kind in [
        Hostile::TrickleHeaders,
        Hostile::SilentBody,
        Hostile::NeverRead,
    ] {
        let (class, m) = failed_with(&against(kind).await);
        assert_eq!(class, ErrorClass::Timeout, "{kind:?}: {m}");
    }
    let (class, m) = failed_with(&against(Hostile::Redirect).await);
    assert_eq!(class, ErrorClass::HttpStatus, "{m}");
    assert!(m.starts_with("HTTP 307"), "redirects are not followed: {m}");

    let (class, m) = failed_with(&against(Hostile::Gzip).await);
    assert_eq!(class, ErrorClass::StreamError, "{m}");
    assert!(m.contains("encoded the response as `gzip`"), "{m}");

    let (class, m) = failed_with(&against(Hostile::BrokenChunked).await);
    assert_eq!(class, ErrorClass::StreamError, "{m}");
    assert!(m.contains("broke mid-stream"), "{m}");

    // 20 MB in one SSE line: refused at the decoder's 16 MiB message limit, so a stream's
    // memory stays bounded.
    let (class, m) = failed_with(&against(Hostile::HugeLine).await);
    assert_eq!(class, ErrorClass::StreamError, "{m}");
    assert!(m.contains("exceeded 16777216 bytes"), "{m}");

    // A 10 MB header: an answer the client cannot read, said so.
    let (class, m) = failed_with(&against(Hostile::HugeHeader).await);
    assert_eq!(class, ErrorClass::StreamError, "{m}");
    assert!(
        m.contains("response head that cannot be read: message head is too large"),
        "{m}"
    );

    // A reset in the headers: no response, the request's own failure.
    let (class, m) = failed_with(&against(Hostile::ResetInHeaders).await);
    assert_eq!(class, ErrorClass::Send, "{m}");
    assert!(m.contains("reset"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_delimited_http_1_0_stream_is_read_whole() {
    let out = against(Hostile::Http10CloseDelimited).await;
    let s = &out.result.levels[0].summary;
    assert_eq!((s.completed, s.failed), (2, 0), "{:?}", s.errors);
    let r = &out.records[0][0];
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(r.content_events, 2);
    // The close ended the body: that connection is not reused.
    assert_eq!(s.connections.reused, 0);
}
