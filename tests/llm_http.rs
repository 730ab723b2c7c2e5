//! End-to-end tests of text generation on a real `isl serve` with the real default model
//! (SmolLM2-135M-Instruct, fetched by `scripts/fetch-models.sh` when missing): the OpenAI
//! routes, streaming, the response cache, errors, metrics, disconnects and load shedding.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use isl::client::ClientResponse;
use isl_llm::prelude::*;
use isl_models::fetch::FetchOutcome;
use serde_json::{Value, json};

mod common;
use common::Server;

fn models_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    DIR.get_or_init(|| {
        let dir = isl_models::default_models_dir();
        let registry = isl_models::Registry::new(isl_models::RegistryConfig::new(&dir));
        match isl_models::fetch::fetch_missing(&registry) {
            FetchOutcome::Present | FetchOutcome::Fetched { .. } => dir,
            FetchOutcome::Offline { message } | FetchOutcome::Failed { message } => {
                panic!("the default language model cannot be fetched:\n{message}")
            }
        }
    })
    .clone()
}

/// A server with the default model, ready (its `/v1/models` says so).
async fn serve(extra: &[&str]) -> Server {
    let dir = models_dir().to_string_lossy().into_owned();
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Server::spawn(&args, &[("ISL_MODELS_DIR", dir.as_str())]);
    let t = Instant::now();
    loop {
        let r = server.send("GET", "/v1/models", &[], Vec::new()).await;
        let v = r.json().expect("models JSON");
        if v["data"][0]["status"] == "ready" {
            return server;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the model did not load: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(server: &Server, path: &str, body: &Value) -> ClientResponse {
    server.send("POST", path, &[("content-type", "application/json")], serde_json::to_vec(body).expect("json")).await
}

fn local_model() -> &'static LanguageModel {
    static M: OnceLock<LanguageModel> = OnceLock::new();
    M.get_or_init(|| {
        let path = models_dir().join("smollm2-135m-instruct/model.gguf");
        LanguageModel::load("smollm2-135m-instruct", &mut std::fs::File::open(path).expect("gguf")).expect("load")
    })
}

/// The `data:` payloads of an SSE body.
fn sse_events(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body).split("\n\n").filter_map(|e| e.strip_prefix("data: ").map(str::to_string)).collect()
}

fn stream_text(events: &[String]) -> (String, Option<String>, Option<Value>) {
    let mut text = String::new();
    let mut finish = None;
    let mut usage = None;
    for e in events.iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).expect("chunk JSON");
        if let Some(c) = v["choices"].get(0) {
            text.push_str(c["delta"]["content"].as_str().or(c["text"].as_str()).unwrap_or(""));
            if let Some(f) = c["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
        if v["usage"].is_object() {
            usage = Some(v["usage"].clone());
        }
    }
    (text, finish, usage)
}

#[tokio::test]
async fn chat_completions_answer_as_the_openai_api_with_the_engines_text() {
    let server = serve(&[]).await;
    let user = "What is the capital of France?";
    let r = post(
        &server,
        "/v1/chat/completions",
        &json!({
            "model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": user}],
            "temperature": 0, "max_tokens": 24,
        }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().expect("json");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "smollm2-135m-instruct");
    assert!(v["id"].as_str().is_some_and(|s| s.starts_with("chatcmpl-")));
    let c = &v["choices"][0];
    assert_eq!(c["message"]["role"], "assistant");
    // The same text as the engine run in this process.
    let m = local_model();
    let prompt = m.chat_prompt(&[ChatMessage { role: "user".into(), content: user.into() }]).expect("prompt");
    let want = m
        .generate(GenerationSpec {
            prompt: prompt.clone(),
            max_tokens: 24,
            sampling: SamplingParams::greedy(),
            stop: vec![],
            logprobs: false,
            top_logprobs: 0,
            stop_at_eos: true,
        })
        .expect("generate");
    assert_eq!(c["message"]["content"], want.text);
    assert_eq!(c["finish_reason"], want.finish.as_str());
    assert_eq!(v["usage"]["prompt_tokens"], prompt.len());
    assert_eq!(v["usage"]["completion_tokens"], want.tokens.len());
    assert_eq!(v["usage"]["total_tokens"], prompt.len() + want.tokens.len());
}

#[tokio::test]
async fn a_stream_concatenates_to_the_whole_answer_and_ends_with_done() {
    let server = serve(&[]).await;
    for (path, body) in [
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "Tell me about cats."}], "seed": 11, "max_tokens": 30}),
        ),
        ("/v1/completions", json!({"prompt": "Once upon a time", "seed": 5, "temperature": 0.7, "max_tokens": 30})),
    ] {
        let whole = post(&server, path, &body).await;
        assert_eq!(whole.status, 200);
        let whole = whole.json().expect("json");
        let mut sbody = body.clone();
        sbody["stream"] = json!(true);
        sbody["stream_options"] = json!({"include_usage": true});
        // The cached answer would replay; a fresh one must stream from the engine: another seed
        // for the whole answer would differ, so clear the cache tier by changing nothing but
        // asking on a second server.
        let other = serve(&[]).await;
        let s = post(&other, path, &sbody).await;
        assert_eq!(s.status, 200);
        assert_eq!(s.header("content-type"), Some("text/event-stream"));
        assert_eq!(s.header("x-cache"), Some("miss"));
        let events = sse_events(&s.body);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
        let (text, finish, usage) = stream_text(&events);
        let c = &whole["choices"][0];
        assert_eq!(text, c["message"]["content"].as_str().or(c["text"].as_str()).expect("text"), "{path}");
        assert_eq!(finish.as_deref(), c["finish_reason"].as_str());
        assert_eq!(usage.expect("usage chunk")["completion_tokens"], whole["usage"]["completion_tokens"]);
    }
}

#[tokio::test]
async fn deterministic_answers_come_from_the_cache_with_their_etag_and_replay_as_sse() {
    let server = serve(&[]).await;
    let body =
        json!({"messages": [{"role": "user", "content": "Name three colours."}], "temperature": 0, "max_tokens": 16});
    let first = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(first.header("x-cache"), Some("miss"));
    let etag = first.header("etag").expect("etag").to_string();
    let second = post(&server, "/v1/chat/completions", &body).await;
    assert_eq!(second.header("x-cache"), Some("hit"));
    assert_eq!(second.header("etag"), Some(etag.as_str()));
    assert_eq!(second.body, first.body);
    let not_modified = server
        .send(
            "POST",
            "/v1/chat/completions",
            &[("if-none-match", etag.as_str())],
            serde_json::to_vec(&body).expect("json"),
        )
        .await;
    assert_eq!(not_modified.status, 304);
    let mut sbody = body.clone();
    sbody["stream"] = json!(true);
    let replay = post(&server, "/v1/chat/completions", &sbody).await;
    assert_eq!(replay.header("x-cache"), Some("hit"));
    let (text, finish, _) = stream_text(&sse_events(&replay.body));
    let v = first.json().expect("json");
    assert_eq!(text, v["choices"][0]["message"]["content"].as_str().expect("content"));
    assert_eq!(finish.as_deref(), v["choices"][0]["finish_reason"].as_str());
    // The key is the whole request: another message, another max_tokens, another route miss.
    let other =
        json!({"messages": [{"role": "user", "content": "Name three colors."}], "temperature": 0, "max_tokens": 16});
    assert_eq!(post(&server, "/v1/chat/completions", &other).await.header("x-cache"), Some("miss"));
    let mut longer = body.clone();
    longer["max_tokens"] = json!(17);
    assert_eq!(post(&server, "/v1/chat/completions", &longer).await.header("x-cache"), Some("miss"));
    let completion = json!({"prompt": "Name three colours.", "temperature": 0, "max_tokens": 16});
    let c1 = post(&server, "/v1/completions", &completion).await;
    assert_eq!(c1.header("x-cache"), Some("miss"));
    let c2 = post(&server, "/v1/completions", &completion).await;
    assert_eq!((c2.header("x-cache"), &c2.body), (Some("hit"), &c1.body));
    // Sampling without a seed is not cached.
    let sampled = post(
        &server,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}),
    )
    .await;
    assert_eq!(sampled.header("x-cache"), Some("bypass"));
    assert!(sampled.header("etag").is_none());
}

#[tokio::test]
async fn bad_requests_get_openai_errors_and_the_server_keeps_serving() {
    let server = serve(&[]).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let long = "hello ".repeat(9000);
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        ("/v1/chat/completions", json!({"messages": []}), 400, "invalid_value"),
        ("/v1/chat/completions", json!({"messages": hi, "model": "no-such-model"}), 404, "model_not_found"),
        ("/v1/chat/completions", json!({"messages": hi, "temperature": 2.5}), 400, "invalid_value"),
        ("/v1/chat/completions", json!({"messages": hi, "top_p": 0}), 400, "invalid_value"),
        ("/v1/chat/completions", json!({"messages": hi, "max_tokens": 0}), 400, "invalid_value"),
        ("/v1/chat/completions", json!({"messages": hi, "max_tokens": 1_000_000}), 400, "invalid_value"),
        (
            "/v1/chat/completions",
            json!({"messages": hi, "max_tokens": 4000, "stop": ["a", "b", "c", "d", "e"]}),
            400,
            "invalid_value",
        ),
        ("/v1/chat/completions", json!({"messages": hi, "n": 3}), 400, "invalid_value"),
        ("/v1/chat/completions", json!({"messages": [{"role": "robot", "content": "x"}]}), 400, "invalid_value"),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": long}]}),
            400,
            "context_length_exceeded",
        ),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4096, "top_logprobs": 50}),
            400,
            "invalid_value",
        ),
        ("/v1/completions", json!({"prompt": ""}), 400, "invalid_value"),
        ("/v1/completions", json!({"prompt": "x", "frequency_penalty": 3}), 400, "invalid_value"),
        ("/v1/completions", json!({"nothing": 1}), 400, "invalid_value"),
    ];
    for (path, body, status, code) in cases {
        let r = post(&server, path, &body).await;
        assert_eq!(r.status, status, "{path} {body}: {}", String::from_utf8_lossy(&r.body));
        let v = r.json().expect("JSON error");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string(), "{v}");
    }
    let r = server.send("POST", "/v1/chat/completions", &[], b"{not json".to_vec()).await;
    assert_eq!(r.status, 400);
    let r = server.send("GET", "/v1/chat/completions", &[], Vec::new()).await;
    assert_eq!(r.status, 405);
    let ok = post(&server, "/v1/chat/completions", &json!({"messages": hi, "max_tokens": 3, "temperature": 0})).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn models_health_and_metrics_describe_the_language_models() {
    let server = serve(&["--warmup"]).await;
    let m = server.send("GET", "/v1/models", &[], Vec::new()).await.json().expect("json");
    assert_eq!(m["object"], "list");
    assert_eq!(m["data"][0]["id"], "smollm2-135m-instruct");
    let t = Instant::now();
    loop {
        let h = server.send("GET", "/health", &[], Vec::new()).await;
        let v = h.json().expect("health");
        let lm = &v["language_models"]["models"][0];
        if lm["warm"] == true {
            assert_eq!(lm["loaded"], true);
            assert_eq!(lm["architecture"], "llama");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = post(
        &server,
        "/v1/completions",
        &json!({"prompt": "The sky is", "max_tokens": 6, "temperature": 0, "ignore_eos": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(server.send("GET", "/metrics", &[], Vec::new()).await.body.to_vec()).expect("utf8");
    for name in [
        "isl_llm_time_to_first_token_seconds_count{model=\"smollm2-135m-instruct\"} ",
        "isl_llm_inter_token_seconds_count",
        "isl_llm_queue_depth",
        "isl_llm_batch_size",
        "isl_llm_kv_cache_bytes",
        "isl_llm_tokens_per_second",
        "isl_llm_generated_tokens_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let generated = text
        .lines()
        .find(|l| l.starts_with("isl_llm_generated_tokens_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("generated tokens");
    assert!(generated >= 6, "{generated}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Sends a long generation over a raw connection, closes the connection once the sequence
/// runs (after five SSE events when streamed), and waits for the engine to cancel it.
async fn a_disconnect_frees_the_sequence(stream: bool) {
    let server = serve(&[]).await;
    let body = serde_json::to_vec(&json!({
        "messages": [{"role": "user", "content": "Write a very long story."}],
        "stream": stream, "max_tokens": 2000, "ignore_eos": true, "seed": 1,
    }))
    .expect("json");
    let mut s = std::net::TcpStream::connect(&server.addr).expect("connect");
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .expect("head");
    s.write_all(&body).expect("body");
    if stream {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.windows(6).filter(|w| w == b"data: ").count() < 5 {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "the stream ended early");
            got.extend_from_slice(&buf[..n]);
        }
    }
    let t = Instant::now();
    loop {
        let m = String::from_utf8(server.send("GET", "/metrics", &[], Vec::new()).await.body.to_vec()).expect("utf8");
        if metric(&m, "isl_llm_batch_size") == 1.0 && metric(&m, "isl_llm_generated_tokens_total") >= 5.0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the sequence did not start:\n{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(s);
    let t = Instant::now();
    loop {
        let m = String::from_utf8(server.send("GET", "/metrics", &[], Vec::new()).await.body.to_vec()).expect("utf8");
        if metric(&m, "isl_llm_cancelled_total") >= 1.0 && metric(&m, "isl_llm_batch_size") == 0.0 {
            let generated = metric(&m, "isl_llm_generated_tokens_total");
            assert!(generated < 2000.0, "the sequence ran on: {generated}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the sequence was not freed:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_frees_its_sequence() {
    a_disconnect_frees_the_sequence(true).await;
}

#[tokio::test]
async fn a_client_that_disconnects_before_a_whole_answer_frees_its_sequence() {
    a_disconnect_frees_the_sequence(false).await;
}

#[tokio::test]
async fn a_burst_past_the_queue_gets_429_and_the_server_keeps_answering() {
    let server = serve(&["--llm-max-batch", "1", "--llm-queue", "1"]).await;
    let body = json!({"messages": [{"role": "user", "content": "Count to ten."}], "max_tokens": 40, "ignore_eos": true, "seed": 3});
    let mut tasks = Vec::new();
    for i in 0..6 {
        let addr = server.addr.clone();
        let mut b = body.clone();
        b["seed"] = json!(i);
        tasks.push(tokio::spawn(async move {
            let mut c = isl::client::Connection::connect(&addr).await.expect("connect");
            c.send("POST", "/v1/chat/completions", &[], serde_json::to_vec(&b).expect("json").into())
                .await
                .expect("send")
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        let r = t.await.expect("task");
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            assert_eq!(r.json().expect("json")["error"]["code"], "queue_full");
        }
        statuses.push(r.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    let after = post(
        &server,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
    )
    .await;
    assert_eq!(after.status, 200);
}
