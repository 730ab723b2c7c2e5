//! Every bad input of the issue gives its error (never a panic): checks on the request come
//! before the model (they answer even without fetched models); models missing on disk and
//! corrupted files give 503-class errors naming the fetch command; a failed load is retried.

mod common;

use isl_models::api::{self, EmbedRequest, ForecastRequest, ModelLimits, NliRequest, VerifyRequest};
use isl_models::{ErrorClass, ModelError, Registry, RegistryConfig};
use serde_json::json;

fn empty_registry() -> Registry {
    Registry::new(RegistryConfig::new(std::env::temp_dir().join("isl-models-no-such-dir")))
}

fn code(r: Result<impl std::fmt::Debug, ModelError>) -> (&'static str, ErrorClass) {
    let e = r.expect_err("expected an error");
    // Every error has a message and JSON details.
    assert!(!e.to_string().is_empty());
    assert!(e.details().is_object());
    (e.code(), e.class())
}

fn embed_req(v: serde_json::Value) -> EmbedRequest {
    serde_json::from_value(v).unwrap()
}

fn series(n: usize) -> (Vec<serde_json::Value>, Vec<f64>) {
    ((0..n).map(|i| json!(1_700_000_000 + 3600 * i as i64)).collect(), (0..n).map(|i| (i as f64).sin()).collect())
}

fn forecast_req(ts: Vec<serde_json::Value>, values: Vec<f64>, horizon: usize) -> ForecastRequest {
    ForecastRequest { timestamps: serde_json::from_value(json!(ts)).unwrap(), values, horizon, model: None }
}

#[test]
fn request_checks_answer_without_models() {
    let reg = empty_registry();
    let l = ModelLimits { max_texts: 4, max_text_bytes: 100, max_pairs: 3, max_claims: 2, ..Default::default() };
    use ErrorClass::BadInput as B;
    // /v1/embed
    assert_eq!(code(api::embed(&reg, &embed_req(json!({"texts": []})), &l)), ("empty_input", B));
    assert_eq!(code(api::embed(&reg, &embed_req(json!({"texts": ["a", "  "]})), &l)), ("empty_text", B));
    assert_eq!(code(api::embed(&reg, &embed_req(json!({"texts": vec!["a"; 5]})), &l)), ("too_many_items", B));
    assert_eq!(code(api::embed(&reg, &embed_req(json!({"texts": ["x".repeat(101)]})), &l)), ("text_too_large", B));
    // /v1/nli
    let nli = |v| api::nli(&reg, &serde_json::from_value::<NliRequest>(v).unwrap(), &l);
    assert_eq!(code(nli(json!({"pairs": []}))), ("empty_input", B));
    assert_eq!(code(nli(json!({"premises": ["a", "b"], "hypotheses": ["c"]}))), ("mismatched_lengths", B));
    assert_eq!(code(nli(json!({"premises": ["a"]}))), ("mismatched_lengths", B));
    assert_eq!(code(nli(json!({"pairs": [{"premise": "", "hypothesis": "h"}]}))), ("empty_text", B));
    assert_eq!(code(nli(json!({"pairs": vec![json!({"premise": "p", "hypothesis": "h"}); 4]}))), ("too_many_items", B));
    assert_eq!(
        code(nli(json!({"pairs": [{"premise": "p", "hypothesis": "h"}], "premises": ["p"], "hypotheses": ["h"]}))),
        ("invalid_request", B)
    );
    // /v1/verify
    let verify = |v| api::verify(&reg, &serde_json::from_value::<VerifyRequest>(v).unwrap(), &l, None);
    assert_eq!(code(verify(json!({"claims": [], "evidence": ["e"]}))), ("empty_input", B));
    assert_eq!(code(verify(json!({"claims": ["c"], "evidence": []}))), ("empty_input", B));
    assert_eq!(code(verify(json!({"claims": ["c", "d", "e"], "evidence": ["e"]}))), ("too_many_items", B));
    assert_eq!(code(verify(json!({"claims": ["c"], "evidence": ["e", ""]}))), ("empty_text", B));
    assert_eq!(code(verify(json!({"claims": ["c"], "evidence": ["e"], "top_k": 0}))), ("invalid_request", B));
    assert_eq!(code(verify(json!({"claims": ["c"], "evidence": ["e"], "top_k": 1000}))), ("invalid_request", B));
    assert_eq!(code(verify(json!({"claims": ["c"], "corpus": "nope"}))), ("invalid_request", B));
    // unknown model names
    assert_eq!(code(api::embed(&reg, &embed_req(json!({"texts": ["a"], "model": "gpt-5"})), &l)), ("unknown_model", B));
    assert_eq!(
        code(nli(json!({"pairs": [{"premise": "p", "hypothesis": "h"}], "model": "all-MiniLM-L6-v2"}))),
        ("unknown_model", B)
    );
}

#[test]
fn forecast_checks() {
    let reg = empty_registry();
    let l = ModelLimits { max_series_points: 1000, ..Default::default() };
    use ErrorClass::BadInput as B;
    let f = |r: ForecastRequest| api::forecast(&reg, &r, &l);
    let (ts, v) = series(100);
    assert_eq!(code(f(forecast_req(vec![], vec![], 10))), ("empty_input", B));
    assert_eq!(code(f(forecast_req(ts[..99].to_vec(), v.clone(), 10))), ("mismatched_lengths", B));
    let (short_ts, short_v) = series(47);
    assert_eq!(code(f(forecast_req(short_ts, short_v, 10))), ("series_too_short", B));
    let mut unsorted = ts.clone();
    unsorted.swap(10, 11);
    assert_eq!(code(f(forecast_req(unsorted, v.clone(), 10))), ("unsorted_timestamps", B));
    let mut dup = ts.clone();
    dup[50] = dup[49].clone();
    assert_eq!(code(f(forecast_req(dup, v.clone(), 10))), ("duplicate_timestamps", B));
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut vv = v.clone();
        vv[3] = bad;
        assert_eq!(code(f(forecast_req(ts.clone(), vv, 10))), ("non_finite_value", B));
    }
    for h in [0, 49, usize::MAX] {
        assert_eq!(code(f(forecast_req(ts.clone(), v.clone(), h))), ("invalid_horizon", B));
    }
    let mut bad_ts = ts.clone();
    bad_ts[7] = json!("not a date");
    assert_eq!(code(f(forecast_req(bad_ts, v.clone(), 10))), ("invalid_timestamp", B));
    let mut bad_date = ts.clone();
    bad_date[0] = json!("2023-02-30T00:00:00Z");
    assert_eq!(code(f(forecast_req(bad_date, v.clone(), 10))), ("invalid_timestamp", B));
    let (long_ts, long_v) = series(1001);
    assert_eq!(code(f(forecast_req(long_ts, long_v, 10))), ("too_many_items", B));
    let mut r = forecast_req(ts.clone(), v.clone(), 10);
    r.model = Some("prophet".into());
    assert_eq!(code(f(r)), ("unknown_model", B));
    // A constant series (zero spread) and mixed timestamp formats are fine.
    let mixed: Vec<serde_json::Value> = ts
        .iter()
        .enumerate()
        .map(
            |(i, t)| {
                if i % 2 == 0 { t.clone() } else { json!(isl_models::forecast::format_rfc3339(t.as_f64().unwrap())) }
            },
        )
        .collect();
    let out = f(forecast_req(mixed, vec![5.0; 100], 12)).unwrap();
    assert!(out.forecast.iter().all(|x| x.is_finite()));
    // Requests with unknown fields are refused by serde (the service's 400).
    assert!(
        serde_json::from_value::<ForecastRequest>(json!({"timestamps": [], "values": [], "horizon": 1, "x": 1}))
            .is_err()
    );
}

#[test]
fn missing_models_name_the_fetch_command() {
    let reg = empty_registry();
    for e in [reg.embedding(None).unwrap_err(), reg.nli(None).unwrap_err()] {
        assert_eq!((e.code(), e.class()), ("model_missing", ErrorClass::Unavailable));
        assert!(e.to_string().contains("scripts/fetch-models.sh"), "{e}");
        assert_eq!(e.details()["files"], json!(["model.onnx", "tokenizer.json"]));
    }
    // A request that passes the checks gets the 503-class error, and the status says failed.
    let e = api::embed(&reg, &embed_req(json!({"texts": ["ok"]})), &ModelLimits::default()).unwrap_err();
    assert_eq!(e.code(), "model_missing");
    let status = reg.status();
    let s = status.iter().find(|s| s.name == "all-MiniLM-L6-v2").unwrap();
    assert_eq!((s.state.as_str(), s.error.as_ref().map(|e| e.code.as_str())), ("failed", Some("model_missing")));
}

#[test]
fn a_corrupted_file_is_refused_at_load_and_a_repaired_one_loads() {
    let Some(good) = common::registry() else { return };
    let spec = good.specs().into_iter().find(|s| s.name == "contract-nli-da").unwrap().clone();
    let src = good.config().dir.join(&spec.dir);
    let root = std::env::temp_dir().join(format!("isl-models-corrupt-{}", std::process::id()));
    let dir = root.join(&spec.dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let reg = Registry::new(RegistryConfig::new(&root));
    // Missing one file.
    let e = reg.nli(None).unwrap_err();
    assert_eq!(e.code(), "model_missing");
    assert_eq!(e.details()["files"], json!(["model.onnx"]));
    // One flipped byte.
    let mut bytes = std::fs::read(src.join("model.onnx")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(dir.join("model.onnx"), &bytes).unwrap();
    let e = reg.nli(None).unwrap_err();
    assert_eq!((e.code(), e.class()), ("model_corrupt", ErrorClass::Unavailable));
    assert!(e.to_string().contains("sha256"), "{e}");
    assert_eq!(e.details()["expected_sha256"], json!(spec.files["model.onnx"].sha256));
    // Repaired: the next use loads it.
    std::fs::copy(src.join("model.onnx"), dir.join("model.onnx")).unwrap();
    let m = reg.nli(None).unwrap();
    assert_eq!(m.name(), "contract-nli-da");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn over_long_texts_are_truncated_and_listed_or_refused() {
    let Some(reg) = common::registry() else { return };
    let long = "word ".repeat(400);
    let l = ModelLimits::default();
    let resp = api::embed(&reg, &embed_req(json!({"texts": ["short", long]})), &l).unwrap();
    assert_eq!(resp.truncated, vec![1]);
    let e = api::embed(&reg, &embed_req(json!({"texts": ["short", long], "truncate": false})), &l).unwrap_err();
    assert_eq!(e.code(), "text_too_long");
    assert_eq!(e.details()["index"], json!(1));
    assert_eq!(e.details()["limit"], json!(256));
    assert_eq!(e.details()["tokens"], json!(402));
    let nli =
        api::nli(&reg, &serde_json::from_value(json!({"pairs": [{"premise": long, "hypothesis": "h"}]})).unwrap(), &l)
            .unwrap();
    assert_eq!(nli.truncated, vec![0]);
}
