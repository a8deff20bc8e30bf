//! A plugin failure inside a real run: one stream's bytes make the adapter spin past its
//! deadline, which replaces the instance that also held the other streams' parsers. The
//! level's error line must name the cause and its limit first, and count the other streams
//! as lost with it, not lead with their collateral "instance was replaced" message.
use llm_loadtest::metrics::ErrorClass;
use llm_loadtest::report::table;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::plugin_support::{DEADLINE, misbehave_wasm, runtime_with};
use crate::support::{read_request, spec_at};

const STREAMS: usize = 4;

/// Holds every stream open until all have arrived, makes the last one's adapter spin, waits
/// for the client to give that one up, then lets the others go on, which finds their parsers
/// gone with the instance.
async fn server(listener: TcpListener) {
    let mut conns = Vec::new();
    for _ in 0..STREAMS {
        let (mut c, _) = listener.accept().await.expect("a connection");
        read_request(&mut c).await;
        c.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("the head is written");
        conns.push(c);
    }
    let mut spinner = conns.pop().expect("four connections");
    spinner.write_all(b"data: loop\n\n").await.expect("written");
    // The client closes the stream whose plugin call failed.
    let mut rest = Vec::new();
    let _ = spinner.read_to_end(&mut rest).await;
    for mut c in conns {
        let _ = c.write_all(b"data: ok\n\n").await;
        let _ = c.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cause_of_a_plugin_failure_leads_the_error_line_and_the_rest_count_as_collateral() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(server(listener));
    let mut spec = spec_at(&url, STREAMS as u32, STREAMS as u64, 4);
    spec.adapter = misbehave_wasm();
    spec.ignore_eos = false;
    // One instance: every stream's parser lives in the one the spinning call destroys.
    let runtime = runtime_with(1, 64 * 1024 * 1024, DEADLINE);
    let (tx, _rx) = broadcast::channel(64);
    let out = llm_loadtest::runner::execute(&spec, &runtime, tx, CancellationToken::new())
        .await
        .expect("the run starts");
    server.await.expect("the server saw every stream through");

    let s = &out.result.levels[0].summary;
    assert_eq!((s.requests, s.failed), (4, 4), "{:?}", s.errors);
    let e = &s.errors[&ErrorClass::Plugin];
    assert_eq!((e.count, e.collateral), (4, 3), "{e:?}");
    let cause = format!("misbehave.wasm ran past its {DEADLINE:?} deadline in feed");
    assert_eq!(e.first_messages[0], cause, "{e:?}");
    assert!(
        e.first_messages[1].contains("was replaced after a trap"),
        "{e:?}"
    );
    let line = table::notes(&out.result)
        .into_iter()
        .find(|l| l.contains("plugin error"))
        .expect("an error line");
    assert_eq!(
        line,
        format!(
            "c=4: 4 plugin error(s), first: {cause} (3 of them lost with the plugin instance \
             that failure replaced)"
        )
    );
    assert!(
        table::untrusted(s).is_some(),
        "a level with every request failed is not shown as if it could be trusted"
    );
}
