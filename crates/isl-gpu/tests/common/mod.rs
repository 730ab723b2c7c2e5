//! Shared by the GPU tests: the engine (or a printed reason to skip), models, CPU references.
#![allow(dead_code)]

use std::sync::OnceLock;

use isl_gpu::{GpuEngine, GpuOptions};
use isl_mc::prelude::*;
use isl_mc::program::Program;

/// The engine on the first Vulkan adapter (lavapipe in CI), or `None` with the reason printed.
/// Small chunks, so that the tests cross dispatch boundaries.
pub fn engine() -> Option<&'static GpuEngine> {
    static ENGINE: OnceLock<Option<GpuEngine>> = OnceLock::new();
    let e = ENGINE.get_or_init(|| {
        let opts = GpuOptions { chunk_samples: 1 << 16, ..GpuOptions::default() };
        match GpuEngine::with_options(opts) {
            Ok(Some(e)) => {
                eprintln!("GPU adapter: {:?}", e.adapter());
                Some(e)
            }
            Ok(None) => {
                eprintln!("SKIP: no Vulkan adapter (install mesa-vulkan-drivers and libvulkan1: scripts/setup-gpu.sh)");
                None
            }
            Err(err) => {
                eprintln!("SKIP: the Vulkan adapter could not be opened: {err}");
                None
            }
        }
    });
    if e.is_none() && std::env::var_os("ISL_REQUIRE_GPU").is_some() {
        panic!("ISL_REQUIRE_GPU is set but no GPU adapter could be opened");
    }
    e.as_ref()
}

/// A compiled program of `model` (JSON) for `outcome` under `intervention`.
pub fn program(model: serde_json::Value, outcome: &str, intervention: &[(&str, f64)]) -> Program {
    let spec: ModelSpec = serde_json::from_value(model).expect("model");
    let m = CheckedModel::new(&spec, &McOptions::default()).expect("check");
    let query = Query {
        outcome: m.id(outcome).expect("outcome"),
        intervention: intervention.iter().map(|(n, v)| (m.id(n).expect("node"), *v)).collect(),
        evidence: vec![],
    };
    Program::compile(&m, &query).expect("compile")
}
