//! The web UI driven as a person uses it, in headless Chromium through chromedriver
//! (WebDriver, fantoccini): a closed server asks for a key, the key is typed in, a run is
//! started from the form (a refused setting is shown at its field first), its live numbers
//! change while it goes, its report opens with its charts, and two runs are compared from the
//! history; an adapter uploaded on the plugins page is offered by the run form. No script
//! error on the way; screenshots kept in target/tmp/.
use fantoccini::{Client, Locator};
use serde_json::json;

use crate::api_support;
use crate::browser::{self, errors, find, shot, watch_errors};
use crate::support;

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = find(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_starts_a_run_watches_it_opens_its_report_and_compares() {
    if !browser::driver_present() {
        return;
    }
    let sim = support::sim(support::fixed(20, 10)).await;
    let s = api_support::server(1, 64).await;
    let (c, d) = browser::session(1280, 900).await;

    c.goto(&format!("{}/#/run", s.url)).await.unwrap();
    watch_errors(&c).await;
    // A closed server: the page asks for a key.
    find(&c, "#key-dialog[open]").await;
    type_into(&c, "#key-input", &s.runner).await;
    find(&c, "#key-form button[value=save]")
        .await
        .click()
        .await
        .unwrap();
    let sim_url = format!("http://{}", sim.local_addr());
    type_into(&c, "#f-server", &sim_url).await;
    type_into(&c, "#f-concurrency", "4,5000").await;
    find(&c, "#start-run").await.click().await.unwrap();
    let refused = find(&c, "#f-concurrency[aria-invalid=true]").await;
    assert_eq!(
        refused.attr("aria-describedby").await.unwrap().as_deref(),
        Some("f-concurrency-error")
    );
    let why = find(&c, "#f-concurrency-error").await.text().await.unwrap();
    assert!(why.contains("over this service's limit of 64"), "{why}");
    type_into(&c, "#f-concurrency", "4").await;
    type_into(&c, "#f-duration", "6s").await;
    type_into(&c, "#f-output-len", "32").await;
    type_into(&c, "#f-tags", "driven").await;
    find(&c, "#start-run").await.click().await.unwrap();

    // Live: the completed count changes while the run goes.
    find(&c, "#cancel").await;
    let seen = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const cell = document.getElementById('c-completed');
             const seen = [cell.textContent];
             new MutationObserver(() => {
               if (cell.textContent !== seen[seen.length - 1]) seen.push(cell.textContent);
               if (seen.length >= 3) done(seen);
             }).observe(cell, { childList: true, characterData: true, subtree: true });",
            vec![],
        )
        .await
        .expect("the live numbers change");
    let seen: Vec<String> = serde_json::from_value(seen).unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    shot(&c, "ui-driven-live.png").await;
    let tps = find(&c, "#c-tps").await.text().await.unwrap();
    assert_ne!(tps, "–", "throughput is shown");

    // The end, then the report with its charts.
    find(&c, "#open-report").await.click().await.unwrap();
    find(&c, "iframe.report").await.enter_frame().await.unwrap();
    let charts = c.find_all(Locator::Css("svg")).await.unwrap();
    assert!(charts.len() >= 4, "{} charts in the report", charts.len());
    c.enter_parent_frame().await.unwrap();
    shot(&c, "ui-driven-report.png").await;

    // A second run (through the API), then both compared from the history.
    let body = json!({
        "server": sim_url, "model": "sim-llama", "concurrency": [2], "num-prompts": 12,
        "output-len": 8, "tokenizer": "cl100k_base", "tags": ["driven"],
    })
    .to_string();
    let second = s.submit(&body).await;
    let end = s.frames(&second, &s.viewer).await;
    assert_eq!(end.last().unwrap()["status"], "complete");
    c.goto(&format!("{}/#/history?tag=driven", s.url))
        .await
        .unwrap();
    watch_errors(&c).await;
    find(&c, "tbody tr:nth-child(2)").await;
    for b in c
        .find_all(Locator::Css("tbody input[type=checkbox]"))
        .await
        .unwrap()
    {
        b.click().await.unwrap();
    }
    find(&c, "#compare:not([disabled])")
        .await
        .click()
        .await
        .unwrap();
    find(&c, "iframe.report").await.enter_frame().await.unwrap();
    let charts = c.find_all(Locator::Css("svg")).await.unwrap();
    assert!(!charts.is_empty(), "the comparison has charts");
    c.enter_parent_frame().await.unwrap();
    shot(&c, "ui-driven-compare.png").await;

    // An adapter uploaded from the plugins page is offered by the run form.
    let wasm = s.dir.path().join("team.wasm");
    let openai = llm_loadtest::plugin::embedded_plugins()
        .iter()
        .find(|p| p.name == "openai")
        .unwrap();
    std::fs::write(&wasm, openai.bytes).unwrap();
    c.goto(&format!("{}/#/plugins", s.url)).await.unwrap();
    watch_errors(&c).await;
    find(&c, "tbody tr").await;
    find(&c, "#p-file")
        .await
        .send_keys(&wasm.display().to_string())
        .await
        .unwrap();
    type_into(&c, "#p-name", "team-openai").await;
    find(&c, "#upload").await.click().await.unwrap();
    let verdict = find(&c, "#upload-verdict:not([hidden])").await;
    assert!(
        verdict.text().await.unwrap().contains("pass"),
        "the conformance report is shown"
    );
    let row = find(&c, "tbody tr:last-child th").await;
    assert_eq!(row.text().await.unwrap(), "team-openai");
    shot(&c, "ui-driven-plugins.png").await;
    c.goto(&format!("{}/#/run", s.url)).await.unwrap();
    find(&c, "#f-adapter option[value=team-openai]").await;
    let errs = errors(&c).await;
    assert!(errs.is_empty(), "script errors: {errs:?}");
    c.close().await.unwrap();
    drop(d);
}
