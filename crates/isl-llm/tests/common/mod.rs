//! Shared by the integration tests: the default GGUF model, fetched by
//! `scripts/fetch-models.sh` when missing, loaded once.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use isl_llm::LanguageModel;

/// The default model's file in the models directory (`$ISL_MODELS_DIR`, else
/// `~/.cache/isl/models`).
pub fn gguf_path() -> PathBuf {
    let dir = std::env::var_os("ISL_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/isl/models"));
    dir.join("smollm2-135m-instruct/model.gguf")
}

/// The default model, fetched first when missing.
pub fn model() -> Arc<LanguageModel> {
    static MODEL: OnceLock<Arc<LanguageModel>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    MODEL
        .get_or_init(|| {
            let path = gguf_path();
            if !path.is_file() {
                let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-models.sh");
                let status = std::process::Command::new(script).status().expect("run scripts/fetch-models.sh");
                assert!(status.success(), "scripts/fetch-models.sh failed ({status})");
            }
            let mut f = std::fs::File::open(&path).expect("open the GGUF");
            Arc::new(LanguageModel::load("smollm2-135m-instruct", &mut f).expect("load the GGUF"))
        })
        .clone()
}

/// The llama.cpp fixture (tests/make_fixtures.py).
pub fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/llama_cpp.json"))
        .expect("tests/data/llama_cpp.json");
    serde_json::from_str(&text).expect("fixture JSON")
}
