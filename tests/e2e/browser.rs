//! Headless Chromium for the page tests: a page's DOM after its scripts ran, or a
//! screenshot, and Chromium's log (console messages go to the log).
use std::path::Path;
use std::process::Command;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; CI installs Debian's package.
pub fn present() -> bool {
    let here = Path::new(CHROMIUM).exists();
    if !here {
        println!("skipping: {CHROMIUM} is absent (CI installs Debian's chromium package)");
    }
    here
}

/// Opens `url` in a window of `size` (`1280,900`): its DOM, or a screenshot into `screenshot`,
/// after `wait_ms` of the page's own time (its fetches and sockets included); and the log.
pub fn open(
    url: &str,
    size: &str,
    wait_ms: u32,
    profile: &Path,
    screenshot: Option<&Path>,
) -> (String, String) {
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
    ])
    .arg(format!("--window-size={size}"))
    .arg(format!("--user-data-dir={}", profile.display()));
    if wait_ms > 0 {
        // The page's clock, which waits for its network: its fetches finish inside it.
        c.arg(format!("--virtual-time-budget={wait_ms}"));
    }
    match screenshot {
        Some(p) => c.arg(format!("--screenshot={}", p.display())),
        None => c.arg("--dump-dom"),
    };
    c.arg(url);
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

/// The console messages in a log.
pub fn console(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE")).collect()
}
