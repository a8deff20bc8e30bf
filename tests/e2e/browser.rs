//! Headless Chromium for the page tests: a static page's DOM or a screenshot with Chromium's
//! log (console messages go to the log); and, for pages that fetch and listen, Chromium driven
//! through chromedriver (WebDriver), whose waits are for elements, not for time.
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; CI installs Debian's package.
pub fn present() -> bool {
    let here = Path::new(CHROMIUM).exists();
    if !here {
        println!("skipping: {CHROMIUM} is absent (CI installs Debian's chromium package)");
    }
    here
}

/// Opens `url` (a page that draws itself at load, no fetch or socket) in a window of `size`
/// (`1280,900`): its DOM, or a screenshot into `screenshot`; and the log.
pub fn open(url: &str, size: &str, profile: &Path, screenshot: Option<&Path>) -> (String, String) {
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

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether chromedriver is here too; CI installs Debian's chromium-driver.
pub fn driver_present() -> bool {
    let here = present() && Path::new(CHROMEDRIVER).exists();
    if !here {
        println!("skipping: {CHROMEDRIVER} is absent (CI installs chromium-driver)");
    }
    here
}

/// chromedriver on a port of its choosing, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn driver() -> Driver {
    let mut child = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let out = child.stdout.take().unwrap();
    let mut port = None;
    for line in std::io::BufReader::new(out).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            port = rest.trim_end_matches('.').trim().parse::<u16>().ok();
            break;
        }
    }
    let port = port.expect("chromedriver says its port");
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless Chromium session at `width` x `height`, and its driver (keep both alive).
pub async fn session(width: u32, height: u32) -> (Client, Driver) {
    let d = tokio::task::spawn_blocking(driver).await.unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", format!("--window-size={width},{height}")],
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a WebDriver session");
    (c, d)
}

/// The element `css` once it is on the page (a bound only against a hang).
pub async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(90))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Saves a screenshot as `target/tmp/NAME` for a person.
pub async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, png).unwrap();
}

/// Starts collecting the page's script errors (see [`errors`]).
pub async fn watch_errors(c: &Client) {
    c.execute(
        "window.__errors = window.__errors || [];
         window.addEventListener('error', e => window.__errors.push(String(e.message)));
         window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));",
        vec![],
    )
    .await
    .unwrap();
}

/// Script errors since [`watch_errors`].
pub async fn errors(c: &Client) -> Vec<String> {
    let v = c
        .execute("return window.__errors || [];", vec![])
        .await
        .unwrap();
    serde_json::from_value(v).unwrap_or_default()
}
