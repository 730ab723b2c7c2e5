//! The browser demo in a real browser: `tests/browser/run.mjs` drives headless Chromium
//! (playwright-core) against the page that `isl serve` serves, and compares what the page computes
//! with what the same server answers — byte for byte — for the URL contract's requests on every
//! causal and Monte Carlo route, valid and invalid; it also types the front-door example, runs and
//! cancels Monte Carlo, and saves a screenshot under `target/browser-artifacts/`.
//!
//! Needs Node, `tests/browser/node_modules` (`npm ci --prefix tests/browser`) and Chromium
//! (`chromium` on PATH, or `ISL_CHROMIUM`); `scripts/test.sh` installs them. Without one of them
//! the test prints why and passes — unless `ISL_BROWSER_TEST=require` (which `scripts/test.sh`
//! sets once it has installed them), when it fails.
//!
//! `ISL_BROWSER_BENCH=1` also measures the page for BENCHMARKS.md (time to interactive, validate
//! on 200-node DAGs, a 10⁵-sample counterfactual of a 10-node model) and prints the figures.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;
use isl::bench::MixKind;
use serde_json::json;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ISL_CHROMIUM").map(PathBuf::from).filter(|p| p.is_file()) {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].iter().find_map(|n| on_path(n))
}

/// What is missing for the browser test, if anything.
fn missing() -> Option<String> {
    if on_path("node").is_none() {
        return Some("node is not installed".into());
    }
    if !repo().join("tests/browser/node_modules/playwright-core").is_dir() {
        return Some("tests/browser/node_modules is missing (npm ci --prefix tests/browser)".into());
    }
    if chromium().is_none() {
        return Some("no Chromium (install Debian's chromium, or set ISL_CHROMIUM)".into());
    }
    None
}

#[test]
fn the_page_computes_what_the_server_answers() {
    if let Some(why) = missing() {
        let required = std::env::var("ISL_BROWSER_TEST").is_ok_and(|v| v == "require");
        assert!(!required, "the browser test cannot run: {why}");
        eprintln!("SKIPPED the browser test: {why}");
        return;
    }
    let chromium = chromium().unwrap_or_default();
    let artifacts = repo().join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).expect("create target/browser-artifacts");

    // The workloads of `isl bench` (validate-200, counterfactual-10), for the measurements.
    let mixes = |kind: MixKind, seeds: std::ops::Range<u64>| {
        let mix = kind.mix();
        seeds.map(|s| mix.request(s)).collect::<Vec<_>>()
    };
    let workloads = json!({
        "validate200": mixes(MixKind::Validate200, 1..51),
        "counterfactual10": mixes(MixKind::Counterfactual10, 1..11),
    });
    let workloads_path = artifacts.join("workloads.json");
    std::fs::write(&workloads_path, serde_json::to_vec(&workloads).expect("encode")).expect("write workloads");

    let server = Server::spawn(&["serve", "--addr", "127.0.0.1:0"], &[]);
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/browser/run.mjs"))
        .arg("--url")
        .arg(format!("http://{}", server.addr))
        .arg("--chromium")
        .arg(&chromium)
        .arg("--out")
        .arg(&artifacts)
        .arg("--workloads")
        .arg(&workloads_path);
    if std::env::var("ISL_BROWSER_BENCH").is_ok_and(|v| v == "1") {
        cmd.arg("--bench");
    }
    let status = cmd.status().expect("run node tests/browser/run.mjs");
    assert!(status.success(), "the browser test failed ({status}); see its output above");
}

/// `isl serve` answers the page's files from the binary (no browser needed): `/` is
/// `web/page/index.html`, `/pkg/...` the built module in `web/dist/pkg`, each file with its content type and an ETag that revalidates to 304;
/// other methods and paths are the service's.
#[tokio::test]
async fn the_page_is_served_from_the_binary() {
    let server = Server::spawn(&["serve", "--addr", "127.0.0.1:0"], &[]);
    let web = repo().join("web");
    for (path, file, content_type) in [
        ("/", "page/index.html", "text/html; charset=utf-8"),
        ("/app.js", "page/app.js", "text/javascript; charset=utf-8"),
        ("/style.css", "page/style.css", "text/css; charset=utf-8"),
        ("/pkg/isl_web_bg.wasm", "dist/pkg/isl_web_bg.wasm", "application/wasm"),
    ] {
        let r = server.send("GET", path, &[], bytes::Bytes::new()).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(content_type), "{path}");
        assert_eq!(r.body, std::fs::read(web.join(file)).expect("read web/"), "{path}");
        let etag = r.header("etag").expect("etag").to_string();
        let again = server.send("GET", path, &[("if-none-match", &etag)], bytes::Bytes::new()).await;
        assert_eq!((again.status, again.body.len()), (304, 0), "{path}");
        let head = server.send("HEAD", path, &[], bytes::Bytes::new()).await;
        assert_eq!((head.status, head.body.len()), (200, 0), "{path}");
    }
    // Not a file of the page: the service answers (404 JSON), also for a POST to `/`.
    for (method, path) in [("GET", "/SOURCES.sha256"), ("GET", "/nope.js"), ("POST", "/")] {
        let r = server.send(method, path, &[("content-type", "application/json")], bytes::Bytes::from("{}")).await;
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{method} {path}");
    }
}
