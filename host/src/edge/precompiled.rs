//! Compiling the component once per machine: the native code wasmtime makes from the component
//! is kept beside it (`NAME-HASH.cwasm`) and mapped back in on the next start, which takes
//! milliseconds instead of the hundreds that compiling takes.
//!
//! The file name carries a hash of the component's bytes and of everything in the engine's
//! configuration that the compiled code depends on (wasmtime's
//! `precompile_compatibility_hash`: its version, target, tunables and features), so a rebuilt
//! component or a changed engine never maps stale code: it misses and compiles afresh.

use std::hash::Hash as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, warn};
use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::Xxh3;

use crate::error::HostError;

/// How the component came to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Mapped from a `.cwasm` this host wrote earlier.
    Precompiled,
    /// Compiled now (and, where the directory is writable, saved for the next start).
    Compiled,
}

impl Loaded {
    /// `precompiled` or `compiled`, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Loaded::Precompiled => "precompiled",
            Loaded::Compiled => "compiled",
        }
    }
}

/// Where the compiled form of `component_bytes` (read from `path`) lives in `dir`.
pub fn cache_path(engine: &Engine, path: &Path, component_bytes: &[u8], dir: &Path) -> PathBuf {
    let mut h = Xxh3::new();
    h.update(component_bytes);
    engine.precompile_compatibility_hash().hash(&mut h);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("component");
    dir.join(format!("{stem}-{:032x}.cwasm", h.digest128()))
}

/// Loads the component at `path`: from its compiled form in `dir` when one matches, otherwise
/// by compiling it and saving the compiled form there (`dir = None`: always compile, save
/// nothing). A compiled file that cannot be read or saved is logged and never fatal.
pub fn load(engine: &Engine, path: &Path, dir: Option<&Path>) -> Result<(Component, Loaded), HostError> {
    let started = Instant::now();
    let bytes =
        std::fs::read(path).map_err(|e| HostError::io(format!("reading the component {}", path.display()), e))?;
    let cached = dir.map(|dir| cache_path(engine, path, &bytes, dir));
    if let Some(file) = cached.as_deref().filter(|f| f.is_file()) {
        // SAFETY: `deserialize_file` maps native code and runs it; it is sound only for bytes
        // that wasmtime's `serialize` produced and nobody altered. This file is one this host
        // wrote (below, by an atomic rename) under a name derived from the component's bytes and
        // the engine's compatibility hash, in a directory the operator chose for it; wasmtime
        // itself also refuses files from another version or configuration.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => {
                info!(file = %file.display(), load_ms = started.elapsed().as_secs_f64() * 1e3, "component mapped from its compiled form");
                return Ok((component, Loaded::Precompiled));
            }
            Err(e) => {
                warn!(file = %file.display(), error = %format!("{e:#}"), "compiled component unusable; compiling")
            }
        }
    }
    let component = Component::new(engine, &bytes)
        .map_err(|e| HostError::Edge(format!("compiling the component {}: {e:#}", path.display())))?;
    info!(component = %path.display(), compile_ms = started.elapsed().as_millis() as u64, "component compiled");
    if let Some(file) = cached {
        match save(&component, &file) {
            Ok(()) => info!(file = %file.display(), "compiled component saved for the next start"),
            Err(e) => warn!(file = %file.display(), error = %e, "could not save the compiled component"),
        }
    }
    Ok((component, Loaded::Compiled))
}

/// Writes the compiled component to `file` atomically (a temporary file, then a rename), and
/// removes older compiled forms of the same component beside it.
fn save(component: &Component, file: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| format!("{e:#}"))?;
    let tmp = file.with_extension(format!("cwasm.tmp{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })?;
    remove_stale_siblings(file);
    Ok(())
}

/// Removes `STEM-OTHERHASH.cwasm` files beside `file` (compiled forms of older builds).
fn remove_stale_siblings(file: &Path) {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name().and_then(|n| n.to_str())) else { return };
    let Some((stem, _)) = name.rsplit_once('-') else { return };
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let other = entry.file_name();
        let Some(other) = other.to_str() else { continue };
        let stale = other != name
            && other.ends_with(".cwasm")
            && other.rsplit_once('-').is_some_and(|(s, hash)| s == stem && hash.len() == 32 + ".cwasm".len());
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
