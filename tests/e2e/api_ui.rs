//! The web UI in headless Chromium against an open server (loopback, no keys) and the
//! simulator: the history lists runs, a live page draws, a report page frames the HTML
//! report, a comparison opens — with no console messages at load, at desktop and phone
//! widths. Screenshots are kept in target/tmp/ for a person. `api_browser.rs` drives the
//! page as a person would.
use std::path::Path;

use serde_json::json;

use crate::api_support;
use crate::browser;
use crate::support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_shows_runs_live_pages_reports_and_comparisons() {
    if !browser::present() {
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
    let base = s.url.clone();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).to_path_buf();
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let page = |route: &str, size: &str| {
            let (dom, log) = browser::open(
                &format!("{base}/#/{route}"),
                size,
                3000,
                profile.path(),
                None,
            );
            let console = browser::console(&log);
            assert!(
                console.is_empty(),
                "#/{route}: console messages: {console:#?}"
            );
            dom
        };
        let history = page("history", "1280,900");
        for id in &ids {
            assert!(history.contains(id), "the history lists {id}: {history}");
        }
        assert!(history.contains("ui-a") && history.contains("complete"));
        // The page's clock does not wait for socket frames, so the end of the run may or may
        // not be in this dump; api_browser.rs waits for it.
        let live = page(&format!("live/{}", ids[0]), "1280,900");
        assert!(live.contains(&format!("Run {}", ids[0])), "{live}");
        assert!(live.contains("<svg"), "the live charts are drawn: {live}");
        let report = page(&format!("report/{}", ids[0]), "1280,900");
        assert!(report.contains("<iframe class=\"report\""), "{report}");
        let compare = page(&format!("compare?ids={},{}", ids[0], ids[1]), "1280,900");
        assert!(compare.contains("<iframe class=\"report\""), "{compare}");
        let phone = page("history", "390,844");
        assert!(phone.contains(&ids[0]));
        for (route, size, name) in [
            ("history", "1280,900", "ui-history.png"),
            ("history", "390,844", "ui-history-phone.png"),
            (&*format!("report/{}", ids[0]), "1280,1400", "ui-report.png"),
        ] {
            let shot = shots.join(name);
            let _ = std::fs::remove_file(&shot);
            browser::open(
                &format!("{base}/#/{route}"),
                size,
                3000,
                profile.path(),
                Some(&shot),
            );
            let bytes = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            assert!(
                bytes > 5_000,
                "screenshot {} is {bytes} bytes",
                shot.display()
            );
        }
    })
    .await
    .unwrap();
}
