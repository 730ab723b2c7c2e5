//! GPU Monte Carlo for isl-mc: a compiled [`isl_mc::Program`] becomes a WGSL compute shader
//! ([`codegen`]), run with wgpu on a Vulkan adapter; statistics are reduced on the device and only
//! the reductions come back ([`reduce`]). Native only.
//!
//! ```no_run
//! use isl_gpu::{GpuAnswer, GpuEngine};
//! use isl_mc::{CounterfactualRequest, McOptions, counterfactual, CpuBackend};
//!
//! let req: CounterfactualRequest = serde_json::from_str(r#"{"model": {"nodes": [
//!     {"name": "X", "noise": {"dist": "normal", "mean": 0, "std": 1}}]},
//!     "outcome": "X", "samples": 1000000, "seed": 7}"#).unwrap();
//! let opts = McOptions::default();
//! let answer = match GpuEngine::new() {
//!     Ok(Some(gpu)) => match gpu.counterfactual(&req, &opts, &|| false) {
//!         Ok(GpuAnswer::Answered(a)) => *a,                        // backend: "gpu"
//!         Ok(GpuAnswer::Unsupported(why)) => {                     // e.g. 600 registers
//!             eprintln!("cpu: {why}");
//!             counterfactual(&req, &opts, &CpuBackend::default(), &|| false).unwrap()
//!         }
//!         Err(e) => panic!("{e}"), // Request(e): as the CPU would; Device/Shader: retry on the CPU
//!     },
//!     _ => counterfactual(&req, &opts, &CpuBackend::default(), &|| false).unwrap(),
//! };
//! # let _ = answer;
//! ```
//!
//! **What runs where.** Counterfactuals, fixed or adaptive (`target_error`), with interventions,
//! evidence, quantiles and a threshold, run on the GPU: moments, threshold counts and the quantile
//! histograms are device reductions. Evidence is likelihood weighting exactly as on the CPU: the
//! shader evaluates each recovered noise's log-density (isl-mc's `Dist::log_pdf`, in f32) into the
//! sample's log-weight, and the kernel's `main_w` entry point reduces, per workgroup and relative
//! to the workgroup's largest log-weight, Σw, Σw², the weighted mean and centred sums and the
//! weights above the threshold; the host rescales the records to the largest log-weight overall
//! and combines them in f64 — isl-mc's self-normalised mean, std, delta-method standard error,
//! effective sample size `(Σw)²/Σw²` and weighted threshold probability. Weighted quantiles come
//! from histograms of the weights `exp(lw − max)` in 64-bit fixed point (2⁻²⁴ of the largest
//! weight per unit, so every level's sums are exact and agree), refined like the unweighted ones.
//! Importance sampling of rare tails runs its cross-entropy pilot rounds (10⁴ samples each,
//! inspected one by one) on the CPU and its final weighted run on the GPU, with evidence too.
//! Sensitivity analysis (fixed and per-slot-stream runs), models past
//! [`codegen::MAX_REGISTERS`] / [`codegen::MAX_INSTRUCTIONS`], and evidence whose noise
//! distribution needs constants f32 cannot hold ([`Unsupported::EvidenceRange`]) are answered
//! [`GpuAnswer::Unsupported`]: the caller runs them on the CPU.
//!
//! **Precision.** Samples are f32: each matches the CPU's f64 sample for the same seed and index
//! within f32 rounding of the program's operations (AS 241 and the transcendentals in f32; values
//! beyond f32's range become infinite and count as non-finite). Moments are Welford/Chan
//! combinations in f32 inside a workgroup of 4096 samples and in f64 across workgroups, so 10⁹
//! samples keep about seven significant digits of the mean and variance. Log-weights are f32
//! too: a recovered noise `observed − structural part` carries the rounding of the structural
//! part, which a steep log-density amplifies (only for weights far below the largest, in
//! practice). Quantiles: see [`reduce`]; at most `GpuOptions::quantile_tolerance × std` from the
//! quantile of the f32 samples (weighted: of the f32 samples and weights).

#![warn(missing_docs)]

pub mod codegen;
mod device;
pub mod reduce;

use std::sync::Arc;

use isl_mc::backend::{Backend, CpuBackend, RunSpec, Samples};
use isl_mc::estimator::{Estimator, Exceedance, MainRun, SampleEstimator, TailSums};
use isl_mc::program::Program;
use isl_mc::stats::Moments;
use isl_mc::{CounterfactualRequest, CounterfactualResponse, McError, McOptions, PreparedCounterfactual};

pub use codegen::Unsupported;

use crate::device::{
    Device, MODE_MOMENTS, MODE_REFINE, MODE_TAIL, MODE_VALUES, MODE_WCOARSE, MODE_WMOMENTS, MODE_WREFINE, Pass,
    Pipeline, Refine,
};
use crate::reduce::{Accum, Located, QuantilePlan, WAccum, locate};

/// The most samples [`GpuEngine::debug_samples`] returns.
pub const DEBUG_MAX_SAMPLES: usize = 1 << 16;

/// Errors of the GPU path. Only [`GpuError::Request`] is about the request; every other variant
/// means the GPU could not answer and the caller should answer on the CPU.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// The request's own error, exactly as the CPU path reports it (bad input → 422, or
    /// [`McError::Interrupted`] when `stop` fired → 504).
    #[error(transparent)]
    Request(McError),
    /// The device failed: lost, out of memory, a dispatch or readback refused.
    #[error("GPU device error: {0}")]
    Device(String),
    /// The generated shader did not compile (a bug, or a driver limit).
    #[error("GPU shader error: {0}")]
    Shader(String),
    /// `stop` fired during a GPU-only call ([`GpuEngine::debug_samples`]).
    #[error("interrupted")]
    Interrupted,
}

impl From<GpuError> for McError {
    fn from(e: GpuError) -> McError {
        match e {
            GpuError::Request(e) => e,
            GpuError::Interrupted => McError::Interrupted,
            other => McError::Backend { backend: "gpu".into(), message: other.to_string() },
        }
    }
}

/// How the GPU engine runs.
#[derive(Clone, Debug, PartialEq)]
pub struct GpuOptions {
    /// Samples per dispatch (rounded up to a multiple of 4096, at most 65 535 workgroups); `stop`
    /// is polled between dispatches. 0: 2²⁴ on a hardware GPU, 2²⁰ on a software adapter.
    pub chunk_samples: u64,
    /// Accept a software adapter (Mesa's lavapipe): correct, slower than the CPU path.
    pub allow_software: bool,
    /// A quantile's order statistics are refined to single f32 values unless the histogram bin
    /// holding them is at most this many standard deviations wide (0: always exact).
    pub quantile_tolerance: f64,
    /// Compiled pipelines kept (by shader hash).
    pub pipeline_cache: usize,
    /// Philox's 32×32→64-bit products as one 64-bit multiply where the adapter has 64-bit
    /// shader integers (NVIDIA, AMD, lavapipe); off, or without them, from 16-bit halves. The
    /// same bits either way.
    pub wide_multiply: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            chunk_samples: 0,
            allow_software: true,
            quantile_tolerance: 1e-4,
            pipeline_cache: 64,
            wide_multiply: true,
        }
    }
}

/// The adapter the engine runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name (`NVIDIA H100 80GB HBM3`, `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// Driver name and version.
    pub driver: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `Cpu`, ...
    pub device_type: String,
    /// Whether it is a software rasteriser on the CPU (lavapipe).
    pub software: bool,
    /// Whether Philox runs on 64-bit integer products ([`GpuOptions::wide_multiply`] and the
    /// adapter's `SHADER_INT64`).
    pub wide_multiply: bool,
}

/// The outcome of [`GpuEngine::counterfactual`] when the GPU did not fail.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuAnswer {
    /// Answered on the GPU (`backend: "gpu"`).
    Answered(Box<CounterfactualResponse>),
    /// The GPU does not run this request: answer it on the CPU (a warning, not an error).
    Unsupported(Unsupported),
}

/// A GPU (Vulkan adapter) ready to answer Monte Carlo requests. `Send + Sync`: share one per
/// process; runs are serialised on the device.
pub struct GpuEngine {
    device: Device,
    adapter: AdapterSummary,
    options: GpuOptions,
    cpu: CpuBackend,
}

impl std::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuEngine").field("adapter", &self.adapter).field("chunk", &self.device.chunk).finish()
    }
}

impl GpuEngine {
    /// The first Vulkan adapter with default options; `Ok(None)` when there is none (no driver,
    /// no device). Never panics.
    pub fn new() -> Result<Option<GpuEngine>, GpuError> {
        GpuEngine::with_options(GpuOptions::default())
    }

    /// [`GpuEngine::new`] with options.
    pub fn with_options(options: GpuOptions) -> Result<Option<GpuEngine>, GpuError> {
        let opened = std::panic::catch_unwind(|| {
            Device::open(options.allow_software, options.chunk_samples, options.pipeline_cache, options.wide_multiply)
        })
        .map_err(|_| GpuError::Device("the wgpu instance panicked while opening the adapter".into()))??;
        let Some(device) = opened else { return Ok(None) };
        let info = &device.info;
        let adapter = AdapterSummary {
            name: info.name.clone(),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            device_type: format!("{:?}", info.device_type),
            software: info.device_type == wgpu::DeviceType::Cpu,
            wide_multiply: device.wide,
        };
        Ok(Some(GpuEngine { device, adapter, options, cpu: CpuBackend::default() }))
    }

    /// The adapter.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// The options.
    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// Samples per dispatch in effect.
    pub fn chunk_samples(&self) -> u64 {
        self.device.chunk
    }

    /// Whether this engine runs `program` (the request-independent part of the decision).
    pub fn supports(&self, program: &Program) -> Result<(), Unsupported> {
        codegen::check(program)
    }

    /// Answers `/v1/counterfactual` on the GPU: the same checks, limits, seed, adaptive rounds and
    /// response type as [`isl_mc::counterfactual`], `backend: "gpu"`. `stop` is polled between
    /// dispatches.
    pub fn counterfactual(
        &self,
        req: &CounterfactualRequest,
        opts: &McOptions,
        stop: &dyn Fn() -> bool,
    ) -> Result<GpuAnswer, GpuError> {
        let prepared = PreparedCounterfactual::new(req, opts).map_err(GpuError::Request)?;
        self.counterfactual_prepared(&prepared, stop)
    }

    /// [`GpuEngine::counterfactual`] of a request already checked and compiled.
    pub fn counterfactual_prepared(
        &self,
        prepared: &PreparedCounterfactual,
        stop: &dyn Fn() -> bool,
    ) -> Result<GpuAnswer, GpuError> {
        if let Err(u) = codegen::check(prepared.program()) {
            return Ok(GpuAnswer::Unsupported(u));
        }
        match prepared.run(&self.estimator(), stop) {
            Ok(answer) => Ok(GpuAnswer::Answered(Box::new(answer))),
            Err(McError::Backend { message, .. }) => Err(GpuError::Device(message)),
            Err(e) => Err(GpuError::Request(e)),
        }
    }

    /// The engine as an [`Estimator`] (for [`isl_mc::counterfactual_with`]). Programs it does not
    /// support fail with [`McError::Backend`]; check [`GpuEngine::supports`] first.
    pub fn estimator(&self) -> GpuEstimator<'_> {
        GpuEstimator { engine: self }
    }

    /// Per-sample outcomes and log-weights of a small run, read back from the device: for
    /// parity tests and debugging only (the answers never read samples back). At most
    /// [`DEBUG_MAX_SAMPLES`] samples; slot settings may only shift (importance sampling).
    pub fn debug_samples(&self, program: &Program, spec: &RunSpec<'_>) -> Result<Samples, GpuError> {
        if spec.count > DEBUG_MAX_SAMPLES {
            return Err(GpuError::Device(format!("debug_samples reads at most {DEBUG_MAX_SAMPLES} samples")));
        }
        codegen::check(program).map_err(|u| GpuError::Shader(u.to_string()))?;
        let shifts = shifts_of(program, spec).map_err(|u| GpuError::Shader(u.to_string()))?;
        let _guard = self.device.begin();
        let pipeline = self.device.pipeline(program)?;
        let pass = Pass {
            mode: MODE_VALUES,
            seed: spec.seed,
            stream: spec.stream,
            start: spec.start,
            count: spec.count as u64,
            threshold: 0.0,
            shifts: shifts.as_ref().map(|(s, _)| &s[..]),
            wref: shifts.as_ref().map_or(0.0, |(_, r)| *r as f32),
            refine: None,
        };
        let out = self.device.run_pass(&pipeline, &pass, &|| false)?;
        let outcome: Vec<f64> = out.values.chunks_exact(2).map(|p| f64::from(p[0])).collect();
        let weighted = codegen::weighted(program) || shifts.is_some();
        let log_weight = weighted.then(|| out.values.chunks_exact(2).map(|p| f64::from(p[1])).collect());
        Ok(Samples { outcome, log_weight })
    }

    /// Destroys the wgpu device (`wgpu::Device::destroy`), as a driver reset or a removed GPU
    /// would: every later run fails with [`GpuError::Device`]. For tests of the CPU fallback only.
    #[doc(hidden)]
    pub fn simulate_device_loss(&self) {
        let _guard = self.device.begin();
        self.device.device.destroy();
    }

    /// Philox4x32-10 of (counter, key) pairs computed on the device (the known-answer test).
    pub fn philox(&self, inputs: &[([u32; 4], [u32; 2])]) -> Result<Vec<[u32; 4]>, GpuError> {
        self.device.philox(inputs)
    }
}

/// Per-slot shifts of a run and the log-weight reference `−½Σμ²`; `None` when nothing is shifted.
/// Fixed slots or per-slot streams among the used slots are not supported.
fn shifts_of(program: &Program, spec: &RunSpec<'_>) -> Result<Option<(Vec<f32>, f64)>, Unsupported> {
    let mut shifts = vec![0f32; program.slots.len().max(1)];
    let mut any = false;
    let mut wref = 0.0;
    for (s, (set, info)) in spec.slots.iter().zip(&program.slots).enumerate() {
        if !info.used {
            continue;
        }
        if set.fixed.is_some() || set.stream.is_some_and(|st| st != spec.stream) {
            return Err(Unsupported::SlotSettings);
        }
        let mu = set.shift as f32;
        if mu != 0.0 {
            any = true;
            shifts[s] = mu;
            wref -= 0.5 * f64::from(mu) * f64::from(mu);
        }
    }
    Ok(any.then_some((shifts, wref)))
}

/// [`GpuEngine`] as an [`isl_mc::Estimator`]: main runs and importance tail sums on the device,
/// pilot rounds on the CPU.
#[derive(Debug, Clone, Copy)]
pub struct GpuEstimator<'e> {
    engine: &'e GpuEngine,
}

fn backend_error(e: GpuError) -> McError {
    McError::from(e)
}

impl Estimator for GpuEstimator<'_> {
    fn name(&self) -> &str {
        "gpu"
    }

    fn main_run<'a>(
        &'a self,
        program: &'a Program,
        seed: u64,
        _block_size: usize,
        threshold: Option<f64>,
        stop: &'a dyn Fn() -> bool,
    ) -> Result<Box<dyn MainRun + 'a>, McError> {
        codegen::check(program).map_err(|u| McError::Backend { backend: "gpu".into(), message: u.to_string() })?;
        let pipeline = {
            let _guard = self.engine.device.begin();
            self.engine.device.pipeline(program).map_err(backend_error)?
        };
        Ok(Box::new(GpuRun {
            engine: self.engine,
            pipeline,
            seed,
            threshold,
            stop,
            drawn: 0,
            weighted: codegen::weighted(program),
            acc: Accum::default(),
            wacc: WAccum::default(),
            coarse: vec![0; codegen::COARSE_BINS],
            moments: None,
        }))
    }

    fn sampler(&self) -> &dyn Backend {
        &self.engine.cpu
    }

    fn tail_sums(
        &self,
        program: &Program,
        spec: &RunSpec<'_>,
        threshold: f64,
        max_log_weight: f64,
        norm: f64,
        stop: &dyn Fn() -> bool,
    ) -> Result<TailSums, McError> {
        let shifts = match (codegen::check(program), shifts_of(program, spec)) {
            (Ok(()), Ok(s)) => s,
            // Settings the shader does not implement: the CPU computes the sums.
            _ => {
                return SampleEstimator::new(&self.engine.cpu).tail_sums(
                    program,
                    spec,
                    threshold,
                    max_log_weight,
                    norm,
                    stop,
                );
            }
        };
        let (shift_vec, mut wref) = shifts.unwrap_or_else(|| (vec![0.0; program.slots.len().max(1)], 0.0));
        // Evidence: weights relative to the main run's largest log-weight keep f32's exp in range.
        if codegen::weighted(program) && max_log_weight.is_finite() {
            wref += max_log_weight;
        }
        let _guard = self.engine.device.begin();
        let pipeline = self.engine.device.pipeline(program).map_err(backend_error)?;
        let pass = Pass {
            mode: MODE_TAIL,
            seed: spec.seed,
            stream: spec.stream,
            start: spec.start,
            count: spec.count as u64,
            threshold: threshold as f32,
            shifts: Some(&shift_vec),
            wref: wref as f32,
            refine: None,
        };
        let out = self.engine.device.run_pass(&pipeline, &pass, stop).map_err(backend_error)?;
        let mut acc = Accum::default();
        acc.add_tail(&out.partials);
        // The device summed exp(lw − wref); rescale to exp(lw − max_log_weight).
        let e = (wref as f32 as f64 - max_log_weight).exp();
        let sum_w = acc.sum_w * e;
        let sum_ww = acc.sum_ww * e * e;
        Ok(TailSums { finite: acc.n as f64, sum_a: sum_w / norm, sum_aa: sum_ww / (norm * norm), sum_w, sum_ww })
    }
}

/// A main run on the device: running moments and the level-A histogram on the host.
struct GpuRun<'a> {
    engine: &'a GpuEngine,
    pipeline: Arc<Pipeline>,
    seed: u64,
    threshold: Option<f64>,
    stop: &'a dyn Fn() -> bool,
    drawn: u64,
    /// The program has evidence: moments from `main_w` into `wacc`, weighted quantiles.
    weighted: bool,
    acc: Accum,
    wacc: WAccum,
    /// Level-A counts of the unweighted moments passes.
    coarse: Vec<u64>,
    moments: Option<Moments>,
}

/// Bits of the order key resolved by level C; level B resolves the 21 − C_BITS after the 11 of
/// level A. With 5, a level-B bin spans 32 consecutive f32 values: narrower than the default
/// tolerance (10⁻⁴ standard deviations) for outcomes within about 30 standard deviations of 0,
/// so most requests need no level-C pass (with 8 bits, 10 quantiles out to 0.999 of a unit-scale
/// outcome took one: three passes instead of two). 2¹⁶ bins per target: 256 KiB of counters.
const C_BITS: u32 = 5;
const BINS_B: u32 = 1 << (21 - C_BITS);
const BINS_C: u32 = 1 << C_BITS;

impl GpuRun<'_> {
    /// A refine pass over samples `0..drawn`: histograms of `bins` bins for each key prefix
    /// (counts, or weights relative to `wref` when the run is weighted).
    fn refine(&self, targets: &[u32], pfx_shift: u32, bin_shift: u32, bins: u32) -> Result<Vec<u64>, GpuError> {
        let pass = Pass {
            mode: if self.weighted { MODE_WREFINE } else { MODE_REFINE },
            seed: self.seed,
            stream: isl_mc::rng::STREAM_MAIN,
            start: 0,
            count: self.drawn,
            threshold: 0.0,
            shifts: None,
            wref: if self.weighted { self.wref() } else { 0.0 },
            refine: Some(Refine { targets, pfx_shift, bin_shift, bins }),
        };
        Ok(self.engine.device.run_pass(&self.pipeline, &pass, self.stop)?.fine)
    }

    /// The reference of the weighted histograms: the largest log-weight (an f32 from the device).
    fn wref(&self) -> f32 {
        self.wacc.m as f32
    }

    /// The level-A histogram of weights `exp(lw − wref)` over samples `0..drawn`, in units of 2⁻²⁴.
    fn weighted_coarse(&self) -> Result<Vec<u64>, GpuError> {
        let pass = Pass {
            mode: MODE_WCOARSE,
            seed: self.seed,
            stream: isl_mc::rng::STREAM_MAIN,
            start: 0,
            count: self.drawn,
            threshold: 0.0,
            shifts: None,
            wref: self.wref(),
            refine: None,
        };
        Ok(self.engine.device.run_pass(&self.pipeline, &pass, self.stop)?.coarse)
    }

    /// Where each of `ranks` (0-based positions in the sorted order: samples, or units of weight)
    /// lies, given the level-A histogram `coarse`: level-B bins of `BINS_C` consecutive f32 values, and
    /// single values (level C) where such a bin is wider than the tolerance.
    fn locate_ranks(&self, coarse: &[u64], ranks: &[u64]) -> Result<Vec<(u64, Located)>, GpuError> {
        // Level A: 11-bit prefixes.
        let mut level_a: Vec<(u64, usize, u64)> = Vec::with_capacity(ranks.len()); // (rank, bin, rank in bin)
        for &k in ranks {
            if let Some((bin, r)) = locate(coarse, k) {
                level_a.push((k, bin, r));
            }
        }
        let mut targets_a: Vec<u32> = level_a.iter().map(|&(_, b, _)| b as u32).collect();
        targets_a.sort_unstable();
        targets_a.dedup();
        let fine_b = self.refine(&targets_a, 21, C_BITS, BINS_B)?;
        let mut located: Vec<(u64, Located)> = Vec::with_capacity(level_a.len());
        for &(k, bin, r) in &level_a {
            let t = targets_a.binary_search(&(bin as u32)).unwrap_or(0);
            let counts = fine_b.get(t * BINS_B as usize..(t + 1) * BINS_B as usize).unwrap_or(&[]);
            let loc = match locate(counts, r) {
                Some((j, rr)) => Located {
                    lo_key: ((bin as u32) << 21) | ((j as u32) << C_BITS),
                    width: BINS_C,
                    rank: rr,
                    count: counts[j],
                },
                None => Located { lo_key: (bin as u32) << 21, width: 1 << 21, rank: r, count: coarse[bin] },
            };
            located.push((k, loc));
        }
        // Level C: the last `C_BITS` bits where a bin is wider than the tolerance.
        let std = self.moments.as_ref().map_or(f64::NAN, |m| m.std);
        let tol = self.engine.options.quantile_tolerance * if std.is_finite() { std } else { 0.0 };
        let mut targets_c: Vec<u32> = located
            .iter()
            .filter(|(_, l)| l.width == BINS_C && l.value_width() > tol)
            .map(|(_, l)| l.lo_key >> C_BITS)
            .collect();
        targets_c.sort_unstable();
        targets_c.dedup();
        if !targets_c.is_empty() {
            let fine_c = self.refine(&targets_c, C_BITS, 0, BINS_C)?;
            for (_, loc) in located.iter_mut() {
                if loc.width != BINS_C {
                    continue;
                }
                let Ok(t) = targets_c.binary_search(&(loc.lo_key >> C_BITS)) else { continue };
                let counts = fine_c.get(t * BINS_C as usize..(t + 1) * BINS_C as usize).unwrap_or(&[]);
                if let Some((j, rr)) = locate(counts, loc.rank) {
                    *loc = Located { lo_key: loc.lo_key | j as u32, width: 1, rank: rr, count: counts[j] };
                }
            }
        }
        Ok(located)
    }

    fn quantiles_inner(&mut self, qs: &[f64]) -> Result<Vec<f64>, GpuError> {
        if self.weighted {
            return self.weighted_quantiles(qs);
        }
        let n = self.acc.n;
        if n == 0 || qs.is_empty() {
            return Ok(vec![f64::NAN; qs.len()]);
        }
        let _guard = self.engine.device.begin();
        let plan = QuantilePlan::new(n, qs);
        let located = self.locate_ranks(&self.coarse, &plan.ranks())?;
        let value = |k: u64| located.iter().find(|(r, _)| *r == k).map_or(f64::NAN, |(_, l)| l.value());
        Ok(plan.combine(value))
    }

    /// isl-mc's weighted quantile: the smallest sample whose cumulative weight (ascending order)
    /// reaches `q·Σw`. The weights are counted in units of 2⁻²⁴ of the largest (exact integer
    /// sums, so every level of the histogram agrees), and `q·Σw` is rounded up to a unit.
    fn weighted_quantiles(&mut self, qs: &[f64]) -> Result<Vec<f64>, GpuError> {
        if self.wacc.n == 0 || self.wacc.w.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || qs.is_empty() {
            return Ok(vec![f64::NAN; qs.len()]);
        }
        let _guard = self.engine.device.begin();
        let coarse = self.weighted_coarse()?;
        let total: u64 = coarse.iter().fold(0u64, |a, &c| a.saturating_add(c));
        if total == 0 {
            return Ok(vec![f64::NAN; qs.len()]);
        }
        let rank = |q: f64| ((q * total as f64).ceil() as u64).clamp(1, total) - 1;
        let mut ranks: Vec<u64> = qs.iter().map(|&q| rank(q)).collect();
        ranks.sort_unstable();
        ranks.dedup();
        let located = self.locate_ranks(&coarse, &ranks)?;
        Ok(qs
            .iter()
            .map(|&q| {
                let k = rank(q);
                located.iter().find(|(r, _)| *r == k).map_or(f64::NAN, |(_, l)| l.value())
            })
            .collect())
    }

    /// Draws samples `drawn..n`: moments, hits and level-A counts (unweighted), or the weighted
    /// records of `main_w` (evidence).
    fn extend(&mut self, n: u64) -> Result<(), GpuError> {
        let _guard = self.engine.device.begin();
        let pass = Pass {
            mode: if self.weighted { MODE_WMOMENTS } else { MODE_MOMENTS },
            seed: self.seed,
            stream: isl_mc::rng::STREAM_MAIN,
            start: self.drawn,
            count: n - self.drawn,
            threshold: self.threshold.map_or(f32::INFINITY, |t| t as f32),
            shifts: None,
            wref: 0.0,
            refine: None,
        };
        let out = self.engine.device.run_pass(&self.pipeline, &pass, self.stop)?;
        if self.weighted {
            self.wacc.add(&out.partials);
        } else {
            self.acc.add_moments(&out.partials);
            for (a, c) in self.coarse.iter_mut().zip(&out.coarse) {
                *a += c;
            }
        }
        self.drawn = n;
        Ok(())
    }
}

impl MainRun for GpuRun<'_> {
    fn extend_to(&mut self, n: u64) -> Result<Moments, McError> {
        if n > self.drawn {
            self.extend(n).map_err(backend_error)?;
        }
        let m = if self.weighted { self.wacc.moments(self.drawn) } else { self.acc.moments(self.drawn) };
        self.moments = Some(m.clone());
        Ok(m)
    }

    fn max_log_weight(&self) -> f64 {
        if self.weighted { self.wacc.m } else { 0.0 }
    }

    fn quantiles(&mut self, qs: &[f64]) -> Result<Vec<f64>, McError> {
        self.quantiles_inner(qs).map_err(backend_error)
    }

    fn exceedance(&mut self, t: f64, m: &Moments) -> Result<Exceedance, McError> {
        if self.threshold != Some(t) {
            return Err(McError::Backend {
                backend: "gpu".into(),
                message: "the GPU counts the threshold given when the run starts".into(),
            });
        }
        if self.weighted {
            let (probability, std_error, hits) = self.wacc.exceedance();
            return Ok(Exceedance { probability, std_error, hits });
        }
        let p = self.acc.hits as f64 / m.total_weight;
        Ok(Exceedance { probability: p, std_error: (p * (1.0 - p) / m.total_weight).sqrt(), hits: self.acc.hits })
    }
}
