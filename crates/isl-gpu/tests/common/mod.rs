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

/// Another engine with `opts` (a fresh device), once [`engine`] found an adapter; `None`
/// otherwise.
pub fn engine_with(opts: GpuOptions) -> Option<GpuEngine> {
    engine()?;
    GpuEngine::with_options(opts).ok().flatten()
}

/// Asserts that `req` gets the same answer in small dispatches ([`engine`]) and in one large one.
pub fn assert_independent_of_dispatch_size(req: &CounterfactualRequest) {
    let Some(small) = engine() else { return };
    let Some(large) = engine_with(GpuOptions { chunk_samples: 1 << 20, ..GpuOptions::default() }) else { return };
    let opts = McOptions::default();
    let a = small.counterfactual(req, &opts, &|| false).expect("small chunks");
    let b = large.counterfactual(req, &opts, &|| false).expect("large chunks");
    assert_eq!(a, b);
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
