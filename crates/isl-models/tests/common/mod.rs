//! Shared by the integration tests: the fetched models (fetched here when missing).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use isl_models::fetch::FetchOutcome;
use isl_models::{Registry, RegistryConfig, default_models_dir};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A registry over the fetched models, running `scripts/fetch-models.sh` first when files are
/// missing. `None` (after printing why) only when the fetch reports that it is offline.
pub fn registry() -> Option<Arc<Registry>> {
    static REG: OnceLock<Option<Arc<Registry>>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    REG.get_or_init(|| {
        let reg = Registry::new(RegistryConfig::new(default_models_dir()));
        match isl_models::fetch::fetch_missing(&reg) {
            FetchOutcome::Present | FetchOutcome::Fetched { .. } => {}
            FetchOutcome::Offline { message } => {
                eprintln!("SKIPPED: offline, the models cannot be fetched:\n{message}");
                return None;
            }
            FetchOutcome::Failed { message } => panic!("scripts/fetch-models.sh failed:\n{message}"),
        }
        Some(Arc::new(Registry::new(RegistryConfig::new(default_models_dir()))))
    })
    .clone()
}

/// The reference file written by models/make_references.py.
pub fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/reference.json"))
        .expect("tests/data/reference.json");
    serde_json::from_str(&text).expect("reference.json")
}

/// The Python of the models venv, when it has onnxruntime and tokenizers.
pub fn python_with_onnxruntime() -> Option<PathBuf> {
    let py = repo().join(".models-venv/bin/python");
    let ok = Command::new(&py)
        .args(["-c", "import onnxruntime, tokenizers"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then_some(py)
}

/// Cosine of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
