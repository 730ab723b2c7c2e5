//! Embeddings: tract against stored onnxruntime vectors (always) and live onnxruntime (when
//! the Python package is present); batching and plan modes do not change answers.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use isl_models::prelude::*;
use isl_models::{EmbeddingModel, PlanMode};

fn texts(r: &serde_json::Value) -> Vec<String> {
    r["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

fn vectors(v: &serde_json::Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
        .collect()
}

#[test]
fn embeddings_match_the_stored_onnxruntime_vectors() {
    let Some(reg) = common::registry() else { return };
    let r = common::reference();
    let texts = texts(&r);
    let want = vectors(&r["embeddings"]);
    let model = reg.embedding(None).unwrap();
    assert_eq!(model.name(), "all-MiniLM-L6-v2");
    // One call with every text: sorted by length, padded per chunk, answered in order.
    let got = model.embed(&texts, Overflow::Truncate).unwrap();
    let mut worst: f64 = 1.0;
    for (i, (g, w)) in got.vectors.iter().zip(&want).enumerate() {
        assert_eq!(g.len(), 384);
        let c = common::cosine(g, w);
        worst = worst.min(c);
        assert!(c >= 0.999, "text {i}: cosine {c}");
        let norm: f32 = g.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "text {i}: norm {norm}");
    }
    eprintln!("worst cosine to the stored onnxruntime vectors: {worst:.7}");
    // The last reference text is over the limit: truncated, and said so.
    assert_eq!(got.truncated, vec![texts.len() - 1]);
    let counts: Vec<usize> =
        r["token_counts"].as_array().unwrap().iter().map(|c| c.as_u64().unwrap() as usize).collect();
    assert_eq!(got.tokens, counts.iter().sum::<usize>());
}

#[test]
fn batch_size_chunking_and_plan_mode_do_not_change_embeddings() {
    let Some(reg) = common::registry() else { return };
    let texts = texts(&common::reference());
    let model = reg.embedding(None).unwrap();
    let one_by_one: Vec<Vec<f32>> =
        texts.iter().map(|t| model.embed(&[t], Overflow::Truncate).unwrap().vectors.remove(0)).collect();
    for chunk in [2, 5, 64] {
        let got = model.embed_chunked(&texts, Overflow::Truncate, chunk).unwrap();
        for (a, b) in got.vectors.iter().zip(&one_by_one) {
            assert!(common::cosine(a, b) > 0.99999, "chunk {chunk}");
        }
    }
    // The symbolic plan gives the same vectors as the per-shape plans.
    let spec = reg.specs().into_iter().find(|s| s.name == "all-MiniLM-L6-v2").unwrap().clone();
    let dir = reg.config().dir.join(&spec.dir);
    let symbolic = EmbeddingModel::from_bytes(
        &spec,
        &std::fs::read(dir.join("model.onnx")).unwrap(),
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
        PlanMode::Symbolic,
    )
    .unwrap();
    let got = symbolic.embed(&texts, Overflow::Truncate).unwrap();
    for (a, b) in got.vectors.iter().zip(&one_by_one) {
        assert!(common::cosine(a, b) > 0.99999);
    }
    // Adaptive: a shape run three times gets its concrete plan (made in the background), and
    // the answers do not change when it starts being used; a cap bounds the plans.
    let adaptive = EmbeddingModel::from_bytes(
        &spec,
        &std::fs::read(dir.join("model.onnx")).unwrap(),
        &std::fs::read(dir.join("tokenizer.json")).unwrap(),
        PlanMode::Adaptive { after: 3, max_plans: 2 },
    )
    .unwrap();
    let first = adaptive.embed(&texts[..4], Overflow::Truncate).unwrap();
    for _ in 0..3 {
        adaptive.embed(&texts[..4], Overflow::Truncate).unwrap();
    }
    adaptive.onnx().wait_for_plans(std::time::Duration::from_secs(60));
    assert_eq!(adaptive.onnx().cached_plans(), 1);
    let later = adaptive.embed(&texts[..4], Overflow::Truncate).unwrap();
    for (a, b) in first.vectors.iter().zip(&later.vectors) {
        assert!(common::cosine(a, b) > 0.99999);
    }
    for t in &texts {
        for _ in 0..3 {
            adaptive.embed(&[t], Overflow::Truncate).unwrap();
        }
    }
    adaptive.onnx().wait_for_plans(std::time::Duration::from_secs(60));
    assert_eq!(adaptive.onnx().cached_plans(), 2);
}

#[test]
fn embeddings_match_live_onnxruntime_when_present() {
    let Some(reg) = common::registry() else { return };
    let Some(py) = common::python_with_onnxruntime() else {
        eprintln!("SKIPPED: no .models-venv with onnxruntime (scripts/fetch-models.sh makes it)");
        return;
    };
    let texts = vec![
        "Live comparison with onnxruntime.".to_string(),
        "Counterfactual revenue under a price of twelve.".to_string(),
        "Ein deutscher Satz mit Umlauten: Größe, Übermut.".to_string(),
    ];
    let mut child = Command::new(py)
        .arg(common::repo().join("models/make_references.py"))
        .args(["--live", "--dir"])
        .arg(&reg.config().dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(serde_json::json!({"texts": texts}).to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = vectors(&v["embeddings"]);
    let got = reg.embedding(None).unwrap().embed(&texts, Overflow::Truncate).unwrap();
    for (g, w) in got.vectors.iter().zip(&want) {
        let c = common::cosine(g, w);
        assert!(c >= 0.999, "cosine {c}");
    }
}

#[test]
fn the_embed_route_answers_in_the_issue_shape() {
    let Some(reg) = common::registry() else { return };
    let req: EmbedRequest = serde_json::from_str(r#"{"texts": ["one", "two words"]}"#).unwrap();
    let resp = isl_models::api::embed(&reg, &req, &ModelLimits::default()).unwrap();
    let json = serde_json::to_value(&resp).unwrap();
    assert_eq!(json["model"], "all-MiniLM-L6-v2");
    assert_eq!(json["dimensions"], 384);
    assert_eq!(json["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(json["truncated"], serde_json::json!([]));
}
