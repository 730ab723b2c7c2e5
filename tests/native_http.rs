//! End-to-end tests of the `isl` binary: a real server on an ephemeral port, real HTTP.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use isl::client::ClientResponse;
use serde_json::{Value, json};
use tokio::net::TcpStream;

mod common;
use common::{BIN, Server, finish_slow_request, hold_the_only_permit};

const VALIDATE: &str = "/v1/causal/validate";

impl Server {
    fn start(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[])
    }

    fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Server::spawn(&args, env)
    }

    async fn post(&self, path: &str, body: &Value) -> ClientResponse {
        self.send("POST", path, &[("content-type", "application/json")], serde_json::to_vec(body).unwrap()).await
    }

    async fn assert_healthy(&self) {
        let r = self.send("GET", "/health", &[], Bytes::new()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json().unwrap()["status"], "ok");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(start.elapsed() < within, "server did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn assert_error(r: &ClientResponse, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json().expect("JSON error body");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string() && v["error"]["details"].is_object(), "{v}");
    v["error"].clone()
}

fn q(body: &[u8]) -> String {
    format!("{VALIDATE}?q={}", isl_service::encode_query(body))
}

/// Method, target, headers, body, expected status, expected error code.
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], Bytes, u16, &'a str);

#[tokio::test]
async fn bad_input_over_http_gets_the_right_error_and_the_server_keeps_serving() {
    let server = Server::start(&[
        "--max-nodes",
        "50",
        "--max-queries",
        "10",
        "--max-body-bytes",
        "4096",
        "--admin-token",
        "tok",
    ]);
    let json_ct: &[(&str, &str)] = &[("content-type", "application/json")];
    let dag = json!({"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]});
    let cyclic = json!({"edges": [["A","B"], ["B","A"]]});
    let body = |v: Value| Bytes::from(serde_json::to_vec(&v).unwrap());
    let mut non_utf8 = br#"{"dag": {"nodes": [""#.to_vec();
    non_utf8.extend([0xc3, 0x28]);
    non_utf8.extend(br#""]}}"#);
    let too_many_nodes: Vec<String> = (0..51).map(|i| format!("N{i}")).collect();
    let queries: Vec<Value> = (0..11).map(|_| json!({"x": "X", "y": "Y"})).collect();
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        ("POST", VALIDATE.into(), json_ct, Bytes::from_static(b"{\"dag\": "), 400, "malformed_json"),
        ("GET", format!("{VALIDATE}?q=%%%"), &[], Bytes::new(), 400, "invalid_base64"),
        ("GET", format!("{VALIDATE}?q=not*base64"), &[], Bytes::new(), 400, "invalid_base64"),
        ("POST", VALIDATE.into(), &[("content-type", "text/plain")], body(json!({"dag": dag})), 415, "unsupported_media_type"),
        ("POST", VALIDATE.into(), &[], body(json!({"dag": dag})), 415, "unsupported_media_type"),
        ("POST", VALIDATE.into(), json_ct, Bytes::from(vec![b' '; 5000]), 413, "payload_too_large"),
        ("GET", q(&vec![b' '; 5000]), &[], Bytes::new(), 413, "payload_too_large"),
        ("POST", VALIDATE.into(), json_ct, body(json!({"dag": dag, "treatment": "X", "outcome": "Nope"})), 422, "unknown_node"),
        ("POST", "/v1/causal/backdoor".into(), json_ct, body(json!({"dag": dag, "treatment": "X", "outcome": "Y", "adjustment": ["Q"]})), 422, "unknown_node"),
        ("POST", "/v1/causal/d-separation".into(), json_ct, body(json!({"dag": cyclic, "x": "A", "y": "B"})), 422, "cyclic_graph"),
        ("POST", "/v1/causal/backdoor".into(), json_ct, body(json!({"dag": cyclic, "treatment": "A", "outcome": "B"})), 422, "cyclic_graph"),
        ("POST", "/v1/causal/frontdoor".into(), json_ct, body(json!({"dag": {"edges": [["A","A"], ["A","B"]]}, "treatment": "A", "outcome": "B", "mediators": []})), 422, "cyclic_graph"),
        ("POST", VALIDATE.into(), json_ct, body(json!({"dag": {"nodes": too_many_nodes}})), 422, "too_many_nodes"),
        ("POST", VALIDATE.into(), json_ct, body(json!({"dag": dag, "treatment": "X", "outcome": "X"})), 422, "overlapping_sets"),
        ("POST", "/v1/causal/d-separation".into(), json_ct, body(json!({"dag": dag, "queries": queries})), 422, "over_limit"),
        ("POST", VALIDATE.into(), json_ct, body(json!({"dag": dag, "unknown_field": 1})), 422, "invalid_request"),
        ("POST", VALIDATE.into(), json_ct, Bytes::from(non_utf8.clone()), 400, "invalid_utf8"),
        ("GET", q(&non_utf8), &[], Bytes::new(), 400, "invalid_utf8"),
        ("GET", "/v1/nothing".into(), &[], Bytes::new(), 404, "not_found"),
        ("DELETE", VALIDATE.into(), &[], Bytes::new(), 405, "method_not_allowed"),
        ("POST", "/admin/cache/clear".into(), &[], Bytes::new(), 401, "unauthorized"),
        ("POST", "/admin/cache/clear".into(), &[("authorization", "Bearer wrong")], Bytes::new(), 401, "unauthorized"),
    ];
    for (method, target, headers, body, status, code) in cases {
        let r = server.send(method, &target, headers, body).await;
        let e = assert_error(&r, status, code);
        if code == "unknown_node" {
            let names = e["details"]["nodes"].as_array().unwrap();
            assert!(names == &[json!("Nope")] || names == &[json!("Q")], "{e}");
        }
        if status == 405 {
            assert_eq!(r.header("allow"), Some("GET, HEAD, POST"));
        }
        server.assert_healthy().await;
    }

    // Answers that are 200 for odd graphs.
    let v = server.post(VALIDATE, &json!({"dag": cyclic})).await.json().unwrap();
    assert_eq!((v["acyclic"].clone(), v["cycle"].clone()), (json!(false), json!(["A", "B", "A"])));
    let v = server.post(VALIDATE, &json!({"dag": {"edges": [["A","A"]]}})).await.json().unwrap();
    assert_eq!(v["cycle"], json!(["A", "A"]));
    let v = server.post(VALIDATE, &json!({"dag": {"edges": [["A","B"], ["A","B"]]}})).await.json().unwrap();
    assert_eq!(v["warnings"].as_array().map(Vec::len), Some(1), "{v}");
    let v = server.post(VALIDATE, &json!({"dag": {}})).await.json().unwrap();
    assert_eq!(v["node_count"], 0);

    // The admin token works, and the metrics saw it all.
    let r = server.send("POST", "/admin/cache/clear", &[("authorization", "Bearer tok")], Bytes::new()).await;
    assert_eq!(r.status, 200);
    assert!(r.json().unwrap()["cleared"].as_u64().unwrap() >= 4);
    let metrics = server.send("GET", "/metrics", &[], Bytes::new()).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("isl_requests_total{route=\"/v1/causal/validate\",status=\"413\"} 2"), "{text}");
    assert!(text.contains("isl_requests_total{route=\"unmatched\",status=\"404\"} 1"), "{text}");
}

#[tokio::test]
async fn get_post_etag_and_304_over_http() {
    let server = Server::start(&[]);
    let body = json!({"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"});
    let mut conn = server.conn().await;
    let json_ct = [("content-type", "application/json")];
    let p = conn.send("POST", VALIDATE, &json_ct, serde_json::to_vec(&body).unwrap().into()).await.unwrap();
    assert_eq!((p.status, p.header("x-cache")), (200, Some("miss")));
    let target = q(&serde_json::to_vec(&body).unwrap());
    let g = conn.send("GET", &target, &[], Bytes::new()).await.unwrap();
    assert_eq!((g.status, g.header("x-cache")), (200, Some("hit")));
    assert_eq!(p.body, g.body);
    let etag = p.header("etag").unwrap();
    assert_eq!(g.header("etag"), Some(etag));
    assert!(g.header("cache-control").unwrap().starts_with("public, max-age="));
    assert!(g.header("server-timing").unwrap().contains("compute;dur="));
    let r = conn.send("GET", &target, &[("if-none-match", etag)], Bytes::new()).await.unwrap();
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag));
    let r = conn.send("GET", "/openapi.json", &[], Bytes::new()).await.unwrap();
    assert_eq!(r.json().unwrap()["openapi"], "3.1.0");
}

#[tokio::test]
async fn over_the_concurrency_limit_answers_429_with_retry_after() {
    let server = Server::start(&["--max-concurrency", "1"]);
    let (stream, rest, r) = hold_the_only_permit(&server).await;
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_error(&r, 429, "overloaded");
    let (status, v) = finish_slow_request(stream, &rest).await;
    assert_eq!(status, 200);
    assert_eq!(v["identification"]["backdoor_sets"], json!([["Z"]]));
    // The permit is back: the server serves again, and counted the 429s.
    server.assert_healthy().await;
    let text = server.send("GET", "/metrics", &[], Bytes::new()).await;
    assert!(String::from_utf8_lossy(&text.body).contains("isl_requests_total{route=\"/health\",status=\"429\"}"));
}

/// A small valid request on an open connection (what a client sends after its 413).
fn next_validate_request(addr: &str) -> Vec<u8> {
    let body = br#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#;
    let mut req = format!(
        "POST {VALIDATE} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

#[test]
fn a_client_that_writes_a_large_body_first_reads_the_413_json() {
    let server = Server::start(&[]);
    common::check_oversized_bodies_get_their_413(&server.addr, VALIDATE, &next_validate_request(&server.addr));
    // The control: a server that answers without draining (`--drain-body-bytes 0`) resets the
    // same client, so the check above can fail.
    let early = Server::start(&["--drain-body-bytes", "0"]);
    let r = common::write_oversized_body_first(&early.addr, VALIDATE);
    assert!(r.is_err(), "expected a reset or broken pipe, got status {:?}", r.map(|r| r.status).ok());
    let drained = common::write_oversized_body_first(&server.addr, VALIDATE).expect("the 413");
    assert_eq!(drained.status, 413);
}

#[test]
fn a_stalled_oversized_body_is_drained_for_at_most_the_drain_time_then_closed() {
    use std::io::{Read, Write};
    let server = Server::start(&["--drain-body-ms", "300"]);
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    let head = format!(
        "POST {VALIDATE} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n",
        server.addr
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&[b' '; 10_000]).unwrap();
    let started = Instant::now();
    let r = common::read_raw_response(&mut s);
    let waited = started.elapsed();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert_eq!(r.header("connection"), Some("close"), "the rest of the body never came");
    assert!(waited >= Duration::from_millis(250) && waited < Duration::from_secs(10), "{waited:?}");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the 413: {rest:?}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_then_exits() {
    let mut server = Server::start(&["--max-concurrency", "1"]);
    let (stream, rest, _) = hold_the_only_permit(&server).await;
    server.signal("-TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused once shutdown began...
    assert!(TcpStream::connect(&server.addr).await.is_err(), "still accepting after SIGTERM");
    // ...but the request in flight completes.
    let (status, _) = finish_slow_request(stream, &rest).await;
    assert_eq!(status, 200);
    let exit = server.wait_exit(Duration::from_secs(10));
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn sigint_on_an_idle_server_exits_cleanly() {
    let mut server = Server::start(&[]);
    server.assert_healthy().await;
    server.signal("-INT");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("isl-test-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn validate_command_prints_the_route_body() {
    let good = temp_file(
        "good.json",
        br#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#,
    );
    let out = Command::new(BIN).args(["validate"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["identification"]["backdoor_sets"], json!([["Z"]]));

    let bad = temp_file("bad.json", br#"{"dag": {"edges": [["A","B"]]}, "treatment": "A", "outcome": "Q"}"#);
    let out = Command::new(BIN).args(["validate"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "unknown_node");

    let mut child =
        Command::new(BIN).args(["validate", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(br#"{"dag": {"edges": [["A","B"], ["B","A"]]}}"#).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["acyclic"], false);

    let out = Command::new(BIN).args(["validate", "/nonexistent/isl.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading /nonexistent/isl.json"));
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

fn bench(server: &Server, args: &[&str]) -> (std::process::ExitStatus, Value) {
    let url = format!("http://{}", server.addr);
    let out = Command::new(BIN).args(["bench", "--url", &url, "--json", "--seed", "7"]).args(args).output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {} / {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    });
    (out.status, report)
}

#[test]
fn bench_command_reports_json() {
    let server = Server::start(&[]);
    let (status, r) =
        bench(&server, &["--scenario", "concurrent", "--concurrency", "2", "--requests", "8", "--warmup", "2"]);
    assert!(status.success(), "{r}");
    assert_eq!((r["requests"].clone(), r["ok"].clone(), r["errors"].clone()), (json!(8), json!(8), json!(0)));
    assert_eq!(r["cache"]["miss"], 8);
    for k in ["mean", "p50", "p95", "p99", "max"] {
        assert!(r["latency_ms"][k].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(r["throughput_rps"].as_f64().unwrap() > 0.0);

    let (status, r) =
        bench(&server, &["--scenario", "sequential-cached", "--method", "get", "--requests", "10", "--warmup", "1"]);
    assert!(status.success(), "{r}");
    assert_eq!(r["cache"]["hit_rate"], 1.0);
    assert_eq!(r["method"], "GET");

    let (status, r) =
        bench(&server, &["--scenario", "sequential-cached", "--requests", "3", "--sla-p95-ms", "0.000001"]);
    assert!(!status.success());
    assert_eq!(r["sla_ok"], false);
}

/// `isl serve --backend gpu` on whatever Vulkan adapter the machine has (lavapipe in CI, which
/// `scripts/test.sh` installs): requests run on the GPU (evidence included) and agree with the
/// CPU; what the GPU cannot run (a model past the shader's registers) comes from the CPU with a
/// warning; both are counted. Skips, saying why,
/// where no adapter exists (`ISL_REQUIRE_GPU=1` makes that a failure).
#[tokio::test]
async fn the_gpu_backend_answers_like_the_cpu_and_falls_back_with_a_warning() {
    let server =
        Server::start_with_env(&["--backend", "gpu", "--gpu-min-samples", "1000000000"], &[("ISL_BACKEND", "gpu")]);
    // The device opens in the background; /health says when it is there.
    let mut accelerator = Value::Null;
    for _ in 0..200 {
        let health = server.send("GET", "/health", &[], Bytes::new()).await.json().unwrap();
        accelerator = health["mc_backends"]["accelerator"].clone();
        if accelerator["available"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if accelerator["available"] != true {
        assert!(std::env::var("ISL_REQUIRE_GPU").is_err(), "no GPU adapter: {accelerator}");
        eprintln!("SKIP the_gpu_backend_answers_like_the_cpu: no Vulkan adapter ({accelerator})");
        return;
    }
    let model = json!({"nodes": [
        {"name": "X", "noise": {"dist": "normal", "mean": 1, "std": 2}},
        {"name": "Y", "intercept": 3, "parents": {"X": {"dist": "normal", "mean": 2, "std": 0.1}},
         "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "Z", "expr": "exp(Y / 10) + max(X, 0)"}
    ]});
    let ask = |backend: &str| json!({"model": model, "outcome": "Z", "samples": 50_000, "threshold": 3.0, "backend": backend});
    let gpu = server.post("/v1/counterfactual", &ask("gpu")).await.json().unwrap();
    let cpu = server.post("/v1/counterfactual", &ask("cpu")).await.json().unwrap();
    assert_eq!((gpu["backend"].as_str(), cpu["backend"].as_str()), (Some("gpu"), Some("cpu")), "{gpu}");
    assert_eq!(gpu["seed"], cpu["seed"]);
    let close = |a: &Value, b: &Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() <= 1e-4 * b.as_f64().unwrap().abs().max(1.0)
    };
    for field in ["mean", "std"] {
        assert!(close(&gpu[field], &cpu[field]), "{field}: {gpu} vs {cpu}");
    }
    assert!(close(&gpu["quantiles"]["0.5"], &cpu["quantiles"]["0.5"]), "{gpu} vs {cpu}");
    assert!((gpu["probability_above"].as_f64().unwrap() - cpu["probability_above"].as_f64().unwrap()).abs() < 1e-3);
    // With the server's default (`--backend gpu`), a request that names no backend goes there too.
    let default = server.post("/v1/counterfactual", &json!({"model": model, "outcome": "Z", "samples": 5000})).await;
    assert_eq!(default.json().unwrap()["backend"], "gpu");
    // Evidence (likelihood weighting) runs on the GPU too, and agrees with the CPU.
    let ask_weighted = |backend: &str| json!({"model": model, "outcome": "Z", "evidence": {"X": 1.5}, "samples": 20_000, "backend": backend});
    let weighted = server.post("/v1/counterfactual", &ask_weighted("gpu")).await.json().unwrap();
    let weighted_cpu = server.post("/v1/counterfactual", &ask_weighted("cpu")).await.json().unwrap();
    assert_eq!(weighted["backend"], "gpu", "{weighted}");
    for field in ["mean", "std", "effective_sample_size"] {
        assert!(close(&weighted[field], &weighted_cpu[field]), "{field}: {weighted} vs {weighted_cpu}");
    }
    // What the GPU cannot run (more registers than a shader allows) comes from the CPU, saying so.
    let mut nodes: Vec<Value> =
        (0..600).map(|i| json!({"name": format!("N{i}"), "noise": {"dist": "normal", "mean": 0, "std": 1}})).collect();
    let sum: Vec<String> = (0..600).map(|i| format!("N{i}")).collect();
    nodes.push(json!({"name": "Total", "expr": sum.join("+")}));
    let big = server
        .post("/v1/counterfactual", &json!({"model": {"nodes": nodes}, "outcome": "Total", "samples": 2000}))
        .await
        .json()
        .unwrap();
    assert_eq!(big["backend"], "cpu");
    assert!(big["warnings"][0].as_str().unwrap().contains("registers"), "{big}");
    let metrics = String::from_utf8(server.send("GET", "/metrics", &[], Bytes::new()).await.body.to_vec()).unwrap();
    assert!(metrics.contains("isl_mc_backend_runs_total{backend=\"gpu\",outcome=\"answered\"} 3"), "{metrics}");
    assert!(metrics.contains("isl_mc_backend_runs_total{backend=\"gpu\",outcome=\"unsupported\"} 1"), "{metrics}");
}

/// `/v1/batch` with `Accept: application/x-ndjson` streams: each item's line is sent as the item
/// finishes (chunked), so a fast item's line arrives while a slow one still computes.
#[tokio::test]
async fn an_ndjson_batch_streams_each_item_as_it_finishes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(&[]);
    let slow = json!({
        "model": {"nodes": [{"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}},
                            {"name": "Y", "parents": {"X": 2}, "noise": {"dist": "normal", "mean": 0, "std": 1}}]},
        "intervention": {"X": 1}, "outcome": "Y", "samples": 1_000_000, "seed": 3});
    let body = serde_json::to_vec(&json!({"items": [
        {"id": "slow", "route": "/v1/counterfactual", "body": slow},
        {"id": "fast", "route": "/v1/causal/validate", "body": {"dag": {"edges": [["A", "B"]]}}},
    ]}))
    .unwrap();
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    let head = format!(
        "POST /v1/batch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\naccept: application/x-ndjson\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    let mut first_line_at = None;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        if first_line_at.is_none() && String::from_utf8_lossy(&received).contains("\"id\":\"fast\"") {
            first_line_at = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let text = String::from_utf8_lossy(&received).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/x-ndjson"), "{head}");
    assert!(head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    let lines: Vec<Value> = rest
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{rest}");
    assert_eq!((lines[0]["id"].as_str(), lines[0]["status"].as_u64()), (Some("fast"), Some(200)));
    assert_eq!((lines[1]["id"].as_str(), lines[1]["status"].as_u64()), (Some("slow"), Some(200)));
    let first = first_line_at.unwrap();
    assert!(
        total.saturating_sub(first) > Duration::from_millis(100),
        "the fast line came at {first:?}, the end at {total:?}: not streamed"
    );
    // A refused batch is a plain error response, not a stream.
    let r = server
        .send(
            "POST",
            "/v1/batch",
            &[("content-type", "application/json"), ("accept", "application/x-ndjson")],
            Bytes::from_static(
                br#"{"items": [{"id": "a", "route": "/v1/causal/validate", "body": {}, "after": ["a"]}]}"#,
            ),
        )
        .await;
    assert_error(&r, 422, "dependency_cycle");
    let metrics = server.send("GET", "/metrics", &[], Bytes::new()).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("isl_requests_total{route=\"/v1/batch\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("isl_requests_total{route=\"/v1/batch\",status=\"422\"} 1"), "{text}");
}
