//! The HTML reports open in headless Chromium without console errors and
//! show their charts. A screenshot is kept in target/tmp/ for a person.
use std::path::Path;
use std::process::Command;

use crate::store_support::{cmd, ok, saved_id};
use crate::support::{fixed, sim};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's DOM dump and its log (console messages go to the log).
fn chromium(page: &Path, profile: &Path, screenshot: Option<&Path>) -> (String, String) {
    // A guard against a hung browser only: a page takes seconds, even on a
    // loaded machine, and only a hang comes near 10 minutes.
    let mut c = Command::new("timeout");
    c.args([
        "600",
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1200,2400",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some(p) => c.arg(format!("--screenshot={}", p.display())),
        None => c.arg("--dump-dom"),
    };
    c.arg(format!("file://{}", page.display()));
    let out = c.output().expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_page(page: &Path, want_charts: &[&str]) {
    let profile = tempfile::tempdir().unwrap();
    let (dom, log) = chromium(page, profile.path(), None);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
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
    if !Path::new(CHROMIUM).exists() {
        println!("skipping: {CHROMIUM} is absent (CI installs Debian's chromium package)");
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
