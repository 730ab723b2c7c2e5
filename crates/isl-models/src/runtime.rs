//! tract execution: one ONNX model, optimised once, run from any thread.
//!
//! Three ways to run a model with symbolic dimensions (batch, sequence):
//! - [`PlanMode::Symbolic`]: one optimised plan; tract resolves the symbols at each run.
//! - [`PlanMode::PerShape`]: a plan optimised for each concrete input shape seen (the symbols
//!   substituted before optimisation, so tract picks kernels and folds shapes for it), kept in
//!   a small cache. Each plan holds its own packed copy of the weights (about the model's
//!   size), and making one takes a few hundred milliseconds.
//! - [`PlanMode::Adaptive`]: the symbolic plan, plus concrete plans for the few shapes that
//!   recur (made in a background thread once a shape has been seen often enough, never
//!   evicted): the speed of fixed shapes for hot shapes, bounded memory, no compile on the
//!   request path. Callers bucket shapes (sequence rounded up to a multiple of 8).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tract_onnx::prelude::*;

use crate::error::ModelError;

/// How a model with symbolic input dimensions is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// One plan for every shape.
    Symbolic,
    /// One plan per concrete input shape, at most this many kept (least recently used dropped).
    PerShape(usize),
    /// The symbolic plan, and a concrete plan for a shape once it has been run `after` times,
    /// at most `max_plans` of them.
    Adaptive {
        /// Runs of a shape before its plan is made.
        after: u32,
        /// Most concrete plans.
        max_plans: usize,
    },
}

impl PlanMode {
    /// Whether concrete-shape plans are made (callers then round sequence lengths up).
    pub fn concrete(&self) -> bool {
        !matches!(self, PlanMode::Symbolic)
    }
}

type Plan = Arc<TypedSimplePlan>;

/// An ONNX model ready to run.
pub struct OnnxModel {
    name: String,
    /// The decluttered model with its symbols, the source of per-shape plans.
    decluttered: Arc<TypedModel>,
    symbolic: Plan,
    mode: PlanMode,
    plans: Arc<Mutex<PlanCache>>,
    input_names: Vec<String>,
    weight_bytes: usize,
}

#[derive(Default)]
struct PlanCache {
    tick: u64,
    plans: HashMap<Vec<usize>, (Plan, u64)>,
    /// Adaptive mode: runs per shape without a plan, and shapes whose plan is being made.
    seen: HashMap<Vec<usize>, u32>,
    making: usize,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel").field("name", &self.name).field("inputs", &self.input_names).finish()
    }
}

impl OnnxModel {
    /// Parses and optimises an ONNX model from its bytes. Input dimensions keep the symbols the
    /// exporter gave them.
    pub fn from_bytes(name: &str, bytes: &[u8], mode: PlanMode) -> Result<Self, ModelError> {
        let mut reader = bytes;
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_read(&mut reader)
            .map_err(|e| ModelError::load(name, e))?;
        let typed = model.into_typed().map_err(|e| ModelError::load(name, e))?;
        let decluttered = typed.into_decluttered().map_err(|e| ModelError::load(name, e))?;
        let input_names = decluttered
            .input_outlets()
            .map_err(|e| ModelError::load(name, e))?
            .iter()
            .map(|o| decluttered.node(o.node).name.clone())
            .collect();
        let weight_bytes = const_bytes(&decluttered);
        let symbolic = decluttered
            .clone()
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| ModelError::load(name, e))?;
        Ok(OnnxModel {
            name: name.to_string(),
            decluttered: Arc::new(decluttered),
            symbolic,
            mode,
            plans: Arc::default(),
            input_names,
            weight_bytes,
        })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Names of the inputs, in order.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// Bytes of constant tensors (weights) in the model.
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// Position of the input called `name`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.input_names.iter().position(|n| n == name)
    }

    /// Runs the model on `inputs` (in input order).
    pub fn run(&self, inputs: TVec<TValue>) -> Result<TVec<TValue>, ModelError> {
        let plan = match self.mode {
            PlanMode::Symbolic => self.symbolic.clone(),
            PlanMode::PerShape(cap) => self.plan_for(&inputs, cap)?,
            PlanMode::Adaptive { after, max_plans } => self.adaptive_plan(&inputs, after, max_plans),
        };
        plan.run(inputs).map_err(|e| ModelError::inference(&self.name, e))
    }

    fn shape_key(inputs: &TVec<TValue>) -> Vec<usize> {
        inputs.iter().flat_map(|t| t.shape().iter().copied().chain([usize::MAX])).collect()
    }

    /// The concrete plan of this shape if made, else the symbolic plan (starting the concrete
    /// plan's making in the background when the shape has recurred enough).
    fn adaptive_plan(&self, inputs: &TVec<TValue>, after: u32, max_plans: usize) -> Plan {
        let key = Self::shape_key(inputs);
        let mut cache = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((plan, _)) = cache.plans.get(&key) {
            return plan.clone();
        }
        if cache.plans.len() + cache.making >= max_plans {
            return self.symbolic.clone();
        }
        if cache.seen.len() > 4096 {
            cache.seen.clear();
        }
        let runs = cache.seen.entry(key.clone()).or_insert(0);
        *runs += 1;
        if *runs != after.max(1) {
            return self.symbolic.clone();
        }
        cache.making += 1;
        drop(cache);
        let subs = match self.substitutions(inputs) {
            Ok(s) => s,
            Err(_) => return self.symbolic.clone(),
        };
        let (model, plans) = (self.decluttered.clone(), self.plans.clone());
        let make = move || {
            let plan = model.set_symbols(&subs).and_then(|m| m.into_optimized()).and_then(|m| m.into_runnable());
            let mut cache = plans.lock().unwrap_or_else(|p| p.into_inner());
            cache.making -= 1;
            if let Ok(plan) = plan {
                cache.seen.remove(&key);
                cache.plans.insert(key, (plan, 0));
            }
        };
        #[cfg(not(target_family = "wasm"))]
        {
            let _ = std::thread::Builder::new().name("isl-plan".into()).spawn(make);
        }
        #[cfg(target_family = "wasm")]
        make();
        self.symbolic.clone()
    }

    /// Every symbolic input dimension with the value it has in `inputs`.
    fn substitutions(&self, inputs: &TVec<TValue>) -> Result<HashMap<Symbol, TDim>, ModelError> {
        let mut subs: HashMap<Symbol, TDim> = HashMap::new();
        let outlets = self.decluttered.input_outlets().map_err(|e| ModelError::inference(&self.name, e))?;
        for (outlet, value) in outlets.iter().zip(inputs.iter()) {
            let fact = self.decluttered.outlet_fact(*outlet).map_err(|e| ModelError::inference(&self.name, e))?;
            for (dim, &actual) in fact.shape.iter().zip(value.shape()) {
                if let TDim::Sym(s) = dim {
                    subs.insert(s.clone(), (actual as i64).into());
                }
            }
        }
        Ok(subs)
    }

    /// Waits (up to `timeout`) until no concrete plan is being made; for tests and benchmarks.
    pub fn wait_for_plans(&self, timeout: std::time::Duration) {
        let step = std::time::Duration::from_millis(5);
        let mut waited = std::time::Duration::ZERO;
        while waited < timeout && self.plans.lock().map(|c| c.making > 0).unwrap_or(false) {
            std::thread::sleep(step);
            waited += step;
        }
    }

    fn plan_for(&self, inputs: &TVec<TValue>, cap: usize) -> Result<Plan, ModelError> {
        let key = Self::shape_key(inputs);
        {
            let mut cache = self.plans.lock().unwrap_or_else(|p| p.into_inner());
            cache.tick += 1;
            let tick = cache.tick;
            if let Some((plan, used)) = cache.plans.get_mut(&key) {
                *used = tick;
                return Ok(plan.clone());
            }
        }
        let subs = self.substitutions(inputs)?;
        let plan = self
            .decluttered
            .set_symbols(&subs)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| ModelError::inference(&self.name, e))?;
        let mut cache = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if cache.plans.len() >= cap.max(1)
            && let Some(oldest) = cache.plans.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            cache.plans.remove(&oldest);
        }
        let tick = cache.tick;
        cache.plans.insert(key, (plan.clone(), tick));
        Ok(plan)
    }

    /// Number of per-shape plans currently cached.
    pub fn cached_plans(&self) -> usize {
        self.plans.lock().map(|c| c.plans.len()).unwrap_or(0)
    }
}

fn const_bytes(model: &TypedModel) -> usize {
    model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<tract_onnx::tract_core::ops::konst::Const>())
        .filter_map(|n| n.outputs.first())
        .filter_map(|o| o.fact.konst.as_ref())
        .map(|t| t.len() * t.datum_type().size_of())
        .sum()
}

/// An int64 tensor of `shape` from `data`.
pub(crate) fn i64_tensor(model: &str, shape: &[usize], data: &[i64]) -> Result<TValue, ModelError> {
    Tensor::from_shape(shape, data).map(|t| t.into()).map_err(|e| ModelError::inference(model, e))
}

/// An f32 tensor of `shape` from `data`.
pub(crate) fn f32_tensor(model: &str, shape: &[usize], data: &[f32]) -> Result<TValue, ModelError> {
    Tensor::from_shape(shape, data).map(|t| t.into()).map_err(|e| ModelError::inference(model, e))
}

/// The f32 contents and shape of an output.
pub(crate) fn f32_output<'a>(model: &str, value: &'a TValue) -> Result<(&'a [f32], Vec<usize>), ModelError> {
    let view = value.try_as_plain_ram().map_err(|e| ModelError::inference(model, e))?;
    let slice = view.as_slice::<f32>().map_err(|e| ModelError::inference(model, e))?;
    Ok((slice, value.shape().to_vec()))
}

/// Makes tract's matrix products use `threads` threads (process-wide; 1 turns it off).
#[cfg(not(target_family = "wasm"))]
pub fn set_matmul_threads(threads: usize) {
    use tract_linalg::multithread::{Executor, set_default_executor};
    if threads > 1 {
        set_default_executor(Executor::multithread(threads));
    } else {
        set_default_executor(Executor::SingleThread);
    }
}
