//! The HTML reports open in headless Chromium without console errors and
//! show their charts. A screenshot is kept in target/tmp/ for a person.
use std::path::Path;

use crate::browser;
use crate::store_support::{cmd, ok, saved_id};
use crate::support::{fixed, sim};

/// Chromium's DOM dump of a report file and its log.
fn chromium(page: &Path, profile: &Path, screenshot: Option<&Path>) -> (String, String) {
    let url = format!("file://{}", page.display());
    browser::open(&url, "1200,2400", profile, screenshot)
}

fn check_page(page: &Path, want_charts: &[&str]) {
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = chromium(page, profile.path(), None);
    let console = browser::console(&log);
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(
        !log.contains("Failed to load resource"),
        "the page asked for something: {log}"
    );
    assert!(dom.matches("<svg").count() >= want_charts.len(), "{dom}");
    for id in want_charts {
        let at = dom
            .find(&format!("id=\"chart-{id}\""))
            .unwrap_or_else(|| panic!("chart {id} missing"));
        let figure = &dom[at..];
        let end = figure.find("</figure>").unwrap();
        let figure = &figure[..end];
        assert!(figure.contains("<svg"), "{id}: no svg");
        assert!(figure.contains("<polyline"), "{id}: no line drawn");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_reports_render_in_chromium() {
    if !browser::present() {
        return;
    }
    let server = sim(fixed(4, 2)).await;
    let url = format!("http://{}", server.local_addr());
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let mut ids = Vec::new();
    for tag in ["a", "b"] {
        let stdout = ok(cmd(
            d,
            &[
                "run",
                "--server",
                &url,
                "--adapter",
                "vllm",
                "--concurrency",
                "1,2,4",
                "--num-prompts",
                "12",
                "--input-len",
                "16",
                "--output-len",
                "5",
                "--ignore-eos",
                "--slo",
                "ttft:1s",
                "--no-progress",
                "--tag",
                tag,
            ],
        ))
        .await;
        ids.push(saved_id(&stdout));
    }
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("run.html");
    let comparison = out.path().join("compare.html");
    ok({
        let mut c = cmd(d, &["export", &ids[0], "--format", "html", "--out"]);
        c.arg(&report);
        c
    })
    .await;
    ok({
        let mut c = cmd(
            d,
            &["compare", &ids[0], &ids[1], "--format", "html", "--out"],
        );
        c.arg(&comparison);
        c
    })
    .await;
    server.shutdown().await.unwrap();

    tokio::task::spawn_blocking(move || {
        check_page(
            &report,
            &[
                "ttft-percentiles",
                "itl-percentiles",
                "token-throughput",
                "request-throughput",
                "attainment",
                "ttft-cdf",
                "itl-cdf",
            ],
        );
        check_page(
            &comparison,
            &["ttft-p99", "output-throughput", "attainment", "ttft-cdf-0"],
        );
        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("store-html-report.png");
        let _ = std::fs::remove_file(&shot);
        let profile = tempfile::tempdir().unwrap();
        chromium(&report, profile.path(), Some(&shot));
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 10_000,
            "screenshot {} is {size} bytes",
            shot.display()
        );
        println!("screenshot: {}", shot.display());
    })
    .await
    .unwrap();
}
