//! The pinned model manifest (`models/manifest.json`, compiled in): names, files, sha256s,
//! limits and licences of the fetched models.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The manifest's text, as committed in `models/manifest.json`.
pub const MANIFEST_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/manifest.json"));

/// The command that fetches missing models, run from the repository root.
pub const FETCH_COMMAND: &str = "scripts/fetch-models.sh";

/// What a model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Sentence embeddings (`/v1/embed`).
    Embedding,
    /// Natural-language inference: entailment / neutral / contradiction (`/v1/nli`).
    Nli,
    /// Time-series forecasting (`/v1/forecast`).
    Forecast,
    /// A GGUF language model for text generation (isl-llm runs it; the ONNX registry skips it).
    Llm,
}

impl ModelKind {
    /// The kind as written in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Embedding => "embedding",
            ModelKind::Nli => "nli",
            ModelKind::Forecast => "forecast",
            ModelKind::Llm => "llm",
        }
    }
}

/// One pinned file of a model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSpec {
    /// sha256 of the prepared file, lowercase hex.
    pub sha256: String,
}

/// One model of the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The name requests use.
    pub name: String,
    /// What it does.
    pub kind: ModelKind,
    /// Its directory under the models directory.
    pub dir: String,
    /// Its licence.
    pub licence: String,
    /// The text it was trained on and is reliable for, in words (the NLI and verify answers
    /// carry it, so that a user sees when a model is outside its domain).
    #[serde(default)]
    pub domain: String,
    /// Longest input in tokens (longer texts are truncated or refused).
    pub max_tokens: usize,
    /// The one sequence length the model was trained on, when it was (every input is padded
    /// or cut to it); otherwise inputs are padded to the longest of their batch.
    #[serde(default)]
    pub fixed_length: Option<usize>,
    /// Embedding size (embedding models).
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Output labels in the model's order (NLI models).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Files by name (`model.onnx`, `tokenizer.json`).
    pub files: BTreeMap<String, FileSpec>,
}

#[derive(Deserialize)]
struct Manifest {
    models: Vec<ModelSpec>,
}

/// The models of the compiled-in manifest.
pub fn manifest_models() -> &'static [ModelSpec] {
    static MODELS: OnceLock<Vec<ModelSpec>> = OnceLock::new();
    MODELS.get_or_init(|| match serde_json::from_str::<Manifest>(MANIFEST_JSON) {
        Ok(m) => m.models,
        // The manifest is compiled in and checked by a unit test; an unreadable one means no
        // fetched models, never a panic.
        Err(_) => Vec::new(),
    })
}

/// The manifest's GGUF language models (kind `llm`): fetched like the others, run by isl-llm.
pub fn language_models() -> Vec<ModelSpec> {
    manifest_models().iter().filter(|m| m.kind == ModelKind::Llm).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_names_one_model_of_each_fetched_kind() {
        let m: Manifest = serde_json::from_str(MANIFEST_JSON).unwrap();
        assert!(m.models.iter().any(|s| s.kind == ModelKind::Embedding));
        assert!(m.models.iter().any(|s| s.kind == ModelKind::Nli));
        assert!(m.models.iter().any(|s| s.kind == ModelKind::Llm));
        for s in &m.models {
            if s.kind == ModelKind::Llm {
                assert!(s.files.contains_key("model.gguf"), "{}", s.name);
            } else {
                assert!(s.files.contains_key("model.onnx") && s.files.contains_key("tokenizer.json"), "{}", s.name);
            }
            assert!(!s.domain.is_empty(), "{}: every model says what text it covers", s.name);
            for f in s.files.values() {
                assert_eq!(f.sha256.len(), 64);
            }
        }
    }
}
