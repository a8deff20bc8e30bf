//! The web UI against an open server (loopback, no keys) and the simulator, in headless
//! Chromium through chromedriver, at desktop and phone widths: the history lists runs, a
//! finished run's live page shows its end with the link to its report, a report page frames
//! the HTML report with its charts, a comparison opens — each waited for as an element on the
//! page, with no script error. Screenshots are kept in target/tmp/ for a person.
//! `api_browser.rs` drives the page as a person would against a closed server.
use fantoccini::Locator;
use serde_json::json;

use crate::api_support;
use crate::browser::{self, errors, find, shot, watch_errors};
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_runs_live_pages_reports_and_comparisons() {
    if !browser::driver_present() {
        return;
    }
    let sim = support::sim(support::fixed(20, 10)).await;
    let s = api_support::open_server().await;
    let mut ids = Vec::new();
    for tag in ["ui-a", "ui-b"] {
        let body = json!({
            "server": format!("http://{}", sim.local_addr()),
            "model": "sim-llama",
            "concurrency": [2],
            "num-prompts": 12,
            "output-len": 8,
            "tokenizer": "cl100k_base",
            "tags": [tag],
        })
        .to_string();
        let id = s.submit(&body).await;
        let end = s.frames(&id, "").await;
        assert_eq!(end.last().unwrap()["status"], "complete", "{end:?}");
        ids.push(id);
    }
    let (c, d) = browser::session(1280, 900).await;
    c.goto(&format!("{}/#/history", s.url)).await.unwrap();
    watch_errors(&c).await;
    for (width, height, name) in [
        (1280, 900, "ui-history.png"),
        (390, 844, "ui-history-phone.png"),
    ] {
        c.set_window_size(width, height).await.unwrap();
        c.goto(&format!("{}/#/history", s.url)).await.unwrap();
        for id in &ids {
            find(&c, &format!("a[href='#/report/{id}']")).await;
        }
        let rows = c.find_all(Locator::Css("tbody tr")).await.unwrap();
        assert_eq!(rows.len(), 2, "the history lists both runs at {width} px");
        let badge = find(&c, "tbody .badge").await.text().await.unwrap();
        assert_eq!(badge, "complete");
        shot(&c, name).await;
    }
    c.set_window_size(1280, 900).await.unwrap();

    // A finished run's live page: the snapshot, then its end, which links to the report.
    c.goto(&format!("{}/#/live/{}", s.url, ids[0]))
        .await
        .unwrap();
    find(&c, "#open-report").await;
    let state = find(&c, "#live-state").await.text().await.unwrap();
    assert!(state.contains("complete"), "{state}");
    // Throughput, TTFT p99 and ITL p99.
    assert_eq!(
        c.find_all(Locator::Css("svg.chart")).await.unwrap().len(),
        3
    );

    c.goto(&format!("{}/#/report/{}", s.url, ids[0]))
        .await
        .unwrap();
    find(&c, "iframe.report").await.enter_frame().await.unwrap();
    find(&c, "svg").await;
    c.enter_parent_frame().await.unwrap();
    shot(&c, "ui-report.png").await;

    c.goto(&format!("{}/#/compare?ids={},{}", s.url, ids[0], ids[1]))
        .await
        .unwrap();
    find(&c, "iframe.report").await.enter_frame().await.unwrap();
    find(&c, "svg").await;
    c.enter_parent_frame().await.unwrap();

    let errs = errors(&c).await;
    assert!(errs.is_empty(), "script errors: {errs:?}");
    c.close().await.unwrap();
    drop(d);
}
