//! Fetching the models: which of the manifest's models are missing from a directory, and
//! running `scripts/fetch-models.sh` (of the checkout this crate was built from) to get them.
//! Shared by the server's first-use fetch and the tests. Native only (it runs a process).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::registry::Registry;

/// What a fetch gave.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutcome {
    /// Nothing was missing; the script did not run.
    Present,
    /// The script fetched and prepared the missing models.
    Fetched {
        /// Seconds it took.
        seconds: f64,
    },
    /// The script reported that the package index is out of reach (exit status 3).
    Offline {
        /// Its last words (what is missing).
        message: String,
    },
    /// The script failed otherwise, or could not be run.
    Failed {
        /// Its last words, or why it could not run.
        message: String,
    },
}

/// `scripts/fetch-models.sh` of the checkout this crate was built from (it may not exist where
/// the binary runs: check with `is_file`).
pub fn fetch_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-models.sh")
}

/// Names of the registry's fetched models (not the built-in ones) and of the manifest's language
/// models with a file missing from the directory. Presence only: sha256s are checked at load.
pub fn missing_models(registry: &Registry) -> Vec<String> {
    let dir = &registry.config().dir;
    // The manifest's language models come with the same script (isl-llm runs them).
    let llms = crate::manifest::language_models();
    registry
        .specs()
        .into_iter()
        .chain(llms.iter())
        .filter(|s| s.files.keys().any(|f| !dir.join(&s.dir).join(f).is_file()))
        .map(|s| s.name.clone())
        .collect()
}

/// Runs the fetch script into the registry's directory when a model is missing.
pub fn fetch_missing(registry: &Registry) -> FetchOutcome {
    if missing_models(registry).is_empty() {
        return FetchOutcome::Present;
    }
    let script = fetch_script();
    let started = Instant::now();
    let out = match Command::new("bash").arg(&script).env("ISL_MODELS_DIR", &registry.config().dir).output() {
        Ok(out) => out,
        Err(e) => return FetchOutcome::Failed { message: format!("cannot run {}: {e}", script.display()) },
    };
    let text = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().rev().take(8).collect();
    let message = tail.into_iter().rev().collect::<Vec<_>>().join("\n");
    match out.status.code() {
        Some(0) => FetchOutcome::Fetched { seconds: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0 },
        Some(3) => FetchOutcome::Offline { message },
        _ => FetchOutcome::Failed { message },
    }
}
