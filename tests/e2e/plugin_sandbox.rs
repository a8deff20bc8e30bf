//! Misbehaving guests end in classified errors, and the host goes on.

use llm_loadtest::plugin::{Event, PluginError, TokenDelta};

use crate::plugin_support::{
    DEADLINE, ROOMY_DEADLINE, bounded, misbehave, misbehave_with, request,
};

fn ok_token() -> Vec<Event> {
    vec![Event::Token(TokenDelta {
        text: "ok".into(),
        tokens: None,
    })]
}

#[test]
fn loop_in_feed_times_out_and_the_adapter_works_after() {
    let adapter = misbehave(2);
    let a = adapter.clone();
    let err = bounded(move || a.new_parser().unwrap().feed(b"loop").unwrap_err());
    match &err {
        PluginError::Timeout { deadline, call, .. } => {
            assert_eq!(*deadline, DEADLINE);
            assert_eq!(*call, "feed");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    assert_eq!(err.class(), "plugin");
    let mut parser = adapter.new_parser().unwrap();
    assert_eq!(parser.feed(b"ok").unwrap(), ok_token());
    assert!(adapter.build_request(&request("ok")).is_ok());
}

#[test]
fn loop_in_build_request_times_out_and_the_next_request_builds() {
    let adapter = misbehave(1);
    let a = adapter.clone();
    let err = bounded(move || a.build_request(&request("loop")).unwrap_err());
    assert!(
        matches!(
            err,
            PluginError::Timeout {
                call: "build-request",
                ..
            }
        ),
        "{err}"
    );
    let req = adapter.build_request(&request("ok")).unwrap();
    assert_eq!(req.path, "/v1/completions");
    assert_eq!(req.body, br#"{"model": "ok"}"#);
}

#[test]
fn unbounded_allocation_hits_the_memory_cap_and_the_adapter_works_after() {
    let adapter = misbehave_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let a = adapter.clone();
    let err = bounded(move || a.new_parser().unwrap().feed(b"alloc").unwrap_err());
    match &err {
        PluginError::MemoryLimit { limit, .. } => assert_eq!(*limit, 64 * 1024 * 1024),
        other => panic!("expected the memory cap, got {other}"),
    }
    let a = adapter.clone();
    let err = bounded(move || a.build_request(&request("alloc")).unwrap_err());
    assert!(matches!(err, PluginError::MemoryLimit { .. }), "{err}");
    assert_eq!(
        adapter.new_parser().unwrap().feed(b"ok").unwrap(),
        ok_token()
    );
}

#[test]
fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let adapter = misbehave(1);
    let a = adapter.clone();
    let err = bounded(move || a.new_parser().unwrap().feed(b"panic").unwrap_err());
    match &err {
        PluginError::Trap { call, message, .. } => {
            assert_eq!(*call, "feed");
            assert!(message.contains("panic requested in feed"), "{message}");
        }
        other => panic!("expected a trap, got {other}"),
    }
    assert!(err.killed_instance());
    assert_eq!(
        adapter.new_parser().unwrap().feed(b"ok").unwrap(),
        ok_token()
    );
}

#[test]
fn oversized_feed_output_is_refused_and_the_parser_goes_on() {
    let adapter = misbehave_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let mut parser = adapter.new_parser().unwrap();
    let over = llm_loadtest::plugin::MAX_EVENTS_PER_CALL + 10;
    let err = parser.feed(format!("huge:{over}").as_bytes()).unwrap_err();
    match &err {
        PluginError::OutputTooLarge { call, limit, .. } => {
            assert_eq!(*call, "feed");
            assert_eq!(*limit, llm_loadtest::plugin::MAX_EVENTS_PER_CALL);
        }
        other => panic!("expected output too large, got {other}"),
    }
    // Refusing output is not a trap: the instance and this parser live on.
    assert!(!err.killed_instance());
    assert_eq!(parser.feed(b"ok").unwrap(), ok_token());
}

#[test]
fn default_huge_outputs_fail_cleanly() {
    let adapter = misbehave_with(1, 64 * 1024 * 1024, ROOMY_DEADLINE);
    let a = adapter.clone();
    let (feed, build) = bounded(move || {
        let feed = a.new_parser().unwrap().feed(b"huge").unwrap_err();
        let build = a.build_request(&request("huge")).unwrap_err();
        (feed, build)
    });
    for err in [&feed, &build] {
        assert!(
            matches!(
                err,
                PluginError::OutputTooLarge { .. } | PluginError::MemoryLimit { .. }
            ),
            "{err}"
        );
    }
    assert_eq!(
        adapter.new_parser().unwrap().feed(b"ok").unwrap(),
        ok_token()
    );
}

#[test]
fn an_oversized_request_body_is_refused() {
    // Room for the guest to build the body, so the host's cap is what stops it.
    let adapter = misbehave_with(1, 256 * 1024 * 1024, ROOMY_DEADLINE);
    let over = llm_loadtest::plugin::MAX_REQUEST_BODY + 1;
    let err = adapter
        .build_request(&request(&format!("huge:{over}")))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PluginError::OutputTooLarge {
                call: "build-request",
                ..
            }
        ),
        "{err}"
    );
    assert!(adapter.build_request(&request("ok")).is_ok());
}

#[test]
fn a_guest_error_is_a_parse_error_and_keeps_the_parser() {
    let adapter = misbehave(1);
    let mut parser = adapter.new_parser().unwrap();
    let err = parser.feed(b"not a keyword").unwrap_err();
    match &err {
        PluginError::Guest { call, message, .. } => {
            assert_eq!(*call, "feed");
            assert!(message.contains("unknown keyword"), "{message}");
        }
        other => panic!("expected a guest error, got {other}"),
    }
    assert_eq!(err.class(), "parse");
    assert_eq!(parser.feed(b"ok").unwrap(), ok_token());
    assert_eq!(parser.finish().unwrap(), vec![Event::Done]);
}

#[test]
fn many_parsers_live_in_one_instance() {
    let adapter = misbehave(1);
    let mut parsers: Vec<_> = (0..300).map(|_| adapter.new_parser().unwrap()).collect();
    assert_eq!(adapter.slot_stats(), vec![(300, 0)]);
    for round in 0..3 {
        for p in parsers.iter_mut() {
            assert_eq!(p.feed(b"ok").unwrap(), ok_token(), "round {round}");
        }
    }
    for p in parsers.iter_mut() {
        assert_eq!(p.finish().unwrap(), vec![Event::Done]);
    }
    drop(parsers);
    assert_eq!(adapter.slot_stats(), vec![(0, 0)]);
}

#[test]
fn parsers_spread_over_the_pool() {
    let adapter = misbehave(3);
    let parsers: Vec<_> = (0..9).map(|_| adapter.new_parser().unwrap()).collect();
    let counts: Vec<usize> = adapter.slot_stats().iter().map(|(n, _)| *n).collect();
    assert_eq!(counts, vec![3, 3, 3]);
    drop(parsers);
}

#[test]
fn a_trap_loses_the_other_parsers_of_its_instance_only() {
    let adapter = misbehave(2);
    let mut parsers: Vec<_> = (0..6).map(|_| adapter.new_parser().unwrap()).collect();
    let victim_slot = parsers[0].slot();
    let err = parsers[0].feed(b"panic").unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    for p in parsers.iter_mut().skip(1) {
        let result = p.feed(b"ok");
        if p.slot() == victim_slot {
            assert!(
                matches!(result, Err(PluginError::InstanceLost { .. })),
                "{result:?}"
            );
        } else {
            assert_eq!(result.unwrap(), ok_token());
        }
    }
    // The trapped parser itself is lost too; new parsers work everywhere.
    assert!(matches!(
        parsers[0].finish(),
        Err(PluginError::InstanceLost { .. })
    ));
    let stats = adapter.slot_stats();
    assert_eq!(
        stats[victim_slot].1, 1,
        "the slot's instance was replaced once"
    );
    assert_eq!(stats[1 - victim_slot].1, 0);
    drop(parsers);
    for _ in 0..4 {
        assert_eq!(
            adapter.new_parser().unwrap().feed(b"ok").unwrap(),
            ok_token()
        );
    }
}

#[test]
fn traps_inside_tokio_tasks_do_not_take_the_host_down() {
    // A panicking guest writes its message to stderr through WASI; that must
    // not need (or fight with) the caller's tokio runtime.
    let adapter = misbehave(1);
    let current = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let a = adapter.clone();
    let err = current.block_on(async move { a.new_parser().unwrap().feed(b"panic").unwrap_err() });
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");

    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let a = adapter.clone();
    let (trap, ok) = multi.block_on(async move {
        tokio::spawn(async move {
            let trap = a.new_parser().unwrap().feed(b"panic").unwrap_err();
            let ok = a.new_parser().unwrap().feed(b"ok").unwrap();
            (trap, ok)
        })
        .await
        .unwrap()
    });
    assert!(matches!(trap, PluginError::Trap { .. }), "{trap}");
    assert_eq!(ok, ok_token());
}
