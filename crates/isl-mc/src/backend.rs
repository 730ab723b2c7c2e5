//! Backends run a [`Program`] over a range of sample indices. The CPU backend here evaluates the
//! program column by column over chunks of samples (structure of arrays), with rayon over blocks
//! on native targets and one thread on wasm32. A GPU backend implements the same trait.

use crate::dist::{NormalColumn, VariateKind, norm_cdf};
use crate::error::McError;
use crate::expr::{BinaryOp, UnaryOp};
use crate::program::{Instr, Operand, Program};
use crate::rng;

/// How one slot is drawn in a run (the default draws it in the run's stream, unshifted).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SlotSetting {
    /// A fixed standard variate (z for normal-kind slots, u for uniform-kind ones) used for every
    /// sample instead of a draw; takes precedence over `stream` and `shift`.
    pub fixed: Option<f64>,
    /// The stream this slot is drawn from, instead of the run's.
    pub stream: Option<u32>,
    /// Importance-sampling mean shift μ of the slot's standard normal (0 = none).
    pub shift: f64,
}

/// One run: which samples, under which seed and stream, with which slot settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec<'a> {
    /// The seed (the Philox key).
    pub seed: u64,
    /// The default stream (Philox counter word 3).
    pub stream: u32,
    /// Index of the first sample.
    pub start: u64,
    /// Number of samples.
    pub count: usize,
    /// Per-slot settings indexed by slot number; slots past the end use the default.
    pub slots: &'a [SlotSetting],
    /// Samples per scheduling block (the unit of parallel work and of stop checks). Results do
    /// not depend on it.
    pub block_size: usize,
}

impl RunSpec<'_> {
    /// Whether any slot the program draws is shifted (so the run produces log-weights).
    pub fn shifted(&self, program: &Program) -> bool {
        self.slots.iter().zip(&program.slots).any(|(s, info)| info.used && s.fixed.is_none() && s.shift != 0.0)
    }
}

/// The outcome of every sample of a run, in index order, and their log-weights when the run is
/// weighted (evidence or importance shifts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Outcome values (may be NaN or infinite).
    pub outcome: Vec<f64>,
    /// Log-weights (`-inf` = weight 0), present for weighted runs.
    pub log_weight: Option<Vec<f64>>,
}

/// Something that runs programs: the CPU here, a GPU elsewhere.
pub trait Backend {
    /// A short name reported in answers (`cpu`, `gpu`).
    fn name(&self) -> &str;

    /// Runs `program` for samples `spec.start .. spec.start + spec.count`. Sample `i` must depend
    /// only on `(seed, i, slot settings)` so that any split of the work gives the same numbers.
    /// `stop` is polled between blocks; when it returns true the run ends with
    /// [`McError::Interrupted`].
    fn run(&self, program: &Program, spec: &RunSpec<'_>, stop: &dyn Fn() -> bool) -> Result<Samples, McError>;
}

/// The CPU backend: rayon over blocks on native targets, one thread on wasm32. Threads come from
/// the current rayon pool (`ThreadPool::install` chooses it).
///
/// On x86-64 the column loops and the Philox generator run with AVX-512F or AVX2 when the CPU has
/// them (detected at run time); every path computes the same bits (the same IEEE operations in
/// the same order, never fused), so `portable` only exists to let tests compare them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuBackend {
    /// Samples evaluated together, column by column (kept small so registers stay in cache).
    pub chunk: usize,
    /// Use the portable code only, without run-time detected SIMD.
    pub portable: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend { chunk: 512, portable: false }
    }
}

/// Which instruction-set variant evaluates the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn detect(portable: bool) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if !portable && std::arch::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if !portable && std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    let _ = portable;
    Isa::Portable
}

/// Resolved per-slot plan of a run.
#[derive(Clone, Copy, Debug)]
struct SlotPlan {
    fixed: Option<f64>,
    stream: u32,
    shift: f64,
    kind: VariateKind,
}

struct Ctx<'a> {
    program: &'a Program,
    plan: Vec<SlotPlan>,
    seed: u64,
    weighted: bool,
    chunk: usize,
    isa: Isa,
}

impl Ctx<'_> {
    /// Whether the AVX-512F paths may run.
    #[inline(always)]
    fn isa_avx512(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.isa == Isa::Avx512
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

/// Per-thread columns.
struct Scratch {
    regs: Vec<Vec<f64>>,
    u: [Vec<f64>; 4],
    logw: Vec<f64>,
    normal: NormalColumn,
}

impl Scratch {
    fn new(registers: usize, chunk: usize) -> Self {
        Scratch {
            regs: (0..registers).map(|_| vec![0.0; chunk]).collect(),
            u: std::array::from_fn(|_| vec![0.0; chunk]),
            logw: vec![0.0; chunk],
            normal: NormalColumn::default(),
        }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn run(&self, program: &Program, spec: &RunSpec<'_>, stop: &dyn Fn() -> bool) -> Result<Samples, McError> {
        let plan = program
            .slots
            .iter()
            .enumerate()
            .map(|(s, info)| {
                let set = spec.slots.get(s).copied().unwrap_or_default();
                SlotPlan {
                    fixed: set.fixed,
                    stream: set.stream.unwrap_or(spec.stream),
                    shift: if set.fixed.is_some() { 0.0 } else { set.shift },
                    kind: info.kind,
                }
            })
            .collect();
        let weighted = program.weighted || spec.shifted(program);
        let ctx =
            Ctx { program, plan, seed: spec.seed, weighted, chunk: self.chunk.max(1), isa: detect(self.portable) };
        let count = spec.count;
        let block = spec.block_size.max(1);
        let mut outcome = vec![0.0; count];
        let mut logw = if weighted { vec![0.0; count] } else { Vec::new() };
        let wave = block * wave_blocks();
        let mut done = 0usize;
        while done < count {
            if stop() {
                return Err(McError::Interrupted);
            }
            let end = (done + wave).min(count);
            let out = &mut outcome[done..end];
            let lw = if weighted { Some(&mut logw[done..end]) } else { None };
            run_wave(&ctx, spec.start + done as u64, block, out, lw);
            done = end;
        }
        Ok(Samples { outcome, log_weight: weighted.then_some(logw) })
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn wave_blocks() -> usize {
    4 * rayon::current_num_threads()
}

#[cfg(target_arch = "wasm32")]
fn wave_blocks() -> usize {
    1
}

#[cfg(not(target_arch = "wasm32"))]
fn run_wave(ctx: &Ctx<'_>, first: u64, block: usize, out: &mut [f64], logw: Option<&mut [f64]>) {
    use rayon::prelude::*;
    let scratch = || Scratch::new(ctx.program.registers as usize, ctx.chunk);
    match logw {
        Some(lw) => out
            .par_chunks_mut(block)
            .zip(lw.par_chunks_mut(block))
            .enumerate()
            .for_each_init(scratch, |s, (b, (o, w))| eval_block(ctx, s, first + (b * block) as u64, o, Some(w))),
        None => out
            .par_chunks_mut(block)
            .enumerate()
            .for_each_init(scratch, |s, (b, o)| eval_block(ctx, s, first + (b * block) as u64, o, None)),
    }
}

#[cfg(target_arch = "wasm32")]
fn run_wave(ctx: &Ctx<'_>, first: u64, _block: usize, out: &mut [f64], logw: Option<&mut [f64]>) {
    let mut s = Scratch::new(ctx.program.registers as usize, ctx.chunk);
    eval_block(ctx, &mut s, first, out, logw);
}

/// Evaluates samples `first ..` into `out` (and `logw`), chunk by chunk.
fn eval_block(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, out: &mut [f64], mut logw: Option<&mut [f64]>) {
    let mut done = 0;
    while done < out.len() {
        let n = (out.len() - done).min(ctx.chunk);
        eval_chunk(ctx, s, first + done as u64, n);
        let o = &mut out[done..done + n];
        match ctx.program.outcome {
            Operand::Reg(r) => o.copy_from_slice(&s.regs[r as usize][..n]),
            Operand::Const(x) => o.fill(x),
        }
        if let Some(w) = logw.as_deref_mut() {
            w[done..done + n].copy_from_slice(&s.logw[..n]);
        }
        done += n;
    }
}

/// A resolved operand: a column or a constant.
#[derive(Clone, Copy)]
enum Src<'a> {
    Col(&'a [f64]),
    Val(f64),
}

fn src<'a>(regs: &'a [Vec<f64>], o: Operand, n: usize) -> Src<'a> {
    match o {
        Operand::Reg(r) => Src::Col(&regs[r as usize][..n]),
        Operand::Const(x) => Src::Val(x),
    }
}

/// Runs every instruction over samples `first .. first + n`, with the detected instruction set.
fn eval_chunk(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, n: usize) {
    match ctx.isa {
        // SAFETY: `detect` chose these only on CPUs with the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { eval_chunk_avx512(ctx, s, first, n) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { eval_chunk_avx2(ctx, s, first, n) },
        Isa::Portable => eval_chunk_body(ctx, s, first, n),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn eval_chunk_avx512(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, n: usize) {
    eval_chunk_body(ctx, s, first, n)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn eval_chunk_avx2(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, n: usize) {
    eval_chunk_body(ctx, s, first, n)
}

/// The instruction loop; inlined into each instruction-set variant so that the column loops are
/// vectorised for it.
#[inline(always)]
fn eval_chunk_body(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, n: usize) {
    if ctx.weighted {
        s.logw[..n].fill(0.0);
    }
    for ins in &ctx.program.instructions {
        match ins {
            Instr::Draw { group, dst } => draw(ctx, s, first, n, *group, dst),
            Instr::Unary { op, dst, src: a } => {
                let mut d = std::mem::take(&mut s.regs[*dst as usize]);
                let a = &s.regs[*a as usize][..n];
                unary(*op, &mut d[..n], a);
                s.regs[*dst as usize] = d;
            }
            Instr::Binary { op, dst, a, b } => {
                let mut d = std::mem::take(&mut s.regs[*dst as usize]);
                binary(*op, &mut d[..n], src(&s.regs, *a, n), src(&s.regs, *b, n));
                s.regs[*dst as usize] = d;
            }
            Instr::MulAdd { dst, a, b, c } => {
                let mut d = std::mem::take(&mut s.regs[*dst as usize]);
                muladd(&mut d[..n], src(&s.regs, *a, n), src(&s.regs, *b, n), src(&s.regs, *c, n));
                s.regs[*dst as usize] = d;
            }
            Instr::Triangular { dst, src: a, low, mode, high } => {
                let mut d = std::mem::take(&mut s.regs[*dst as usize]);
                let a = &s.regs[*a as usize][..n];
                for (d, &u) in d[..n].iter_mut().zip(a) {
                    *d = crate::dist::triangular(u, *low, *mode, *high);
                }
                s.regs[*dst as usize] = d;
            }
            Instr::LogDensity { src: a, dist } => match src(&s.regs, *a, n) {
                Src::Col(a) => {
                    for (w, &x) in s.logw[..n].iter_mut().zip(a) {
                        *w += dist.log_pdf(x);
                    }
                }
                Src::Val(x) => {
                    let l = dist.log_pdf(x);
                    s.logw[..n].iter_mut().for_each(|w| *w += l);
                }
            },
        }
    }
}

/// The four uniform columns of a slot group, by the instruction set's Philox.
#[inline(always)]
fn fill_group(isa: Isa, seed: u64, first: u64, group: u32, stream: u32, out: [&mut [f64]; 4]) {
    match isa {
        // SAFETY: `detect` chose these only on CPUs with the features.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { rng::x86::fill_group_avx512(seed, first, group, stream, out) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { rng::x86::fill_group_avx2(seed, first, group, stream, out) },
        Isa::Portable => rng::fill_group(seed, first, group, stream, out),
    }
}

/// The standard variates of one slot group.
#[inline(always)]
fn draw(ctx: &Ctx<'_>, s: &mut Scratch, first: u64, n: usize, group: u32, dst: &[Option<u32>; 4]) {
    let mut streams: [Option<u32>; 4] = [None; 4];
    for (k, d) in dst.iter().enumerate() {
        let slot = group as usize * 4 + k;
        let Some(r) = d else { continue };
        let plan = ctx.plan[slot];
        match plan.fixed {
            Some(x) => s.regs[*r as usize][..n].fill(x),
            None => streams[k] = Some(plan.stream),
        }
    }
    // One Philox pass per distinct stream (normally one).
    let mut done = [false; 4];
    for k in 0..4 {
        let Some(stream) = streams[k] else { continue };
        if done[k] {
            continue;
        }
        {
            let [u0, u1, u2, u3] = &mut s.u;
            fill_group(
                ctx.isa,
                ctx.seed,
                first,
                group,
                stream,
                [&mut u0[..n], &mut u1[..n], &mut u2[..n], &mut u3[..n]],
            );
        }
        for j in k..4 {
            if streams[j] != Some(stream) {
                continue;
            }
            done[j] = true;
            let slot = group as usize * 4 + j;
            let Some(r) = dst[j] else { continue };
            let plan = ctx.plan[slot];
            let d = &mut s.regs[r as usize][..n];
            let u = &s.u[j][..n];
            match (plan.kind, plan.shift) {
                (VariateKind::Uniform, mu) if mu.abs() == 0.0 => d.copy_from_slice(u),
                (VariateKind::Normal, mu) if mu.abs() == 0.0 => s.normal.fill_with(u, d, ctx.isa_avx512()),
                (kind, mu) => {
                    s.normal.fill_with(u, d, ctx.isa_avx512());
                    let half = 0.5 * mu;
                    for (z, w) in d.iter_mut().zip(&mut s.logw[..n]) {
                        *z += mu;
                        *w += half * mu - mu * *z;
                    }
                    if kind == VariateKind::Uniform {
                        d.iter_mut().for_each(|z| *z = norm_cdf(*z));
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn map1(d: &mut [f64], a: &[f64], f: impl Fn(f64) -> f64) {
    for (d, &a) in d.iter_mut().zip(a) {
        *d = f(a);
    }
}

#[inline(always)]
fn unary(op: UnaryOp, d: &mut [f64], a: &[f64]) {
    match op {
        UnaryOp::Neg => map1(d, a, |x| -x),
        UnaryOp::Exp => map1(d, a, libm::exp),
        UnaryOp::Log => map1(d, a, libm::log),
        UnaryOp::Sqrt => map1(d, a, f64::sqrt),
        UnaryOp::Abs => map1(d, a, f64::abs),
    }
}

#[inline(always)]
fn map2(d: &mut [f64], a: Src<'_>, b: Src<'_>, f: impl Fn(f64, f64) -> f64) {
    match (a, b) {
        (Src::Col(a), Src::Col(b)) => {
            for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
                *d = f(a, b);
            }
        }
        (Src::Col(a), Src::Val(b)) => {
            for (d, &a) in d.iter_mut().zip(a) {
                *d = f(a, b);
            }
        }
        (Src::Val(a), Src::Col(b)) => {
            for (d, &b) in d.iter_mut().zip(b) {
                *d = f(a, b);
            }
        }
        (Src::Val(a), Src::Val(b)) => d.fill(f(a, b)),
    }
}

#[inline(always)]
fn binary(op: BinaryOp, d: &mut [f64], a: Src<'_>, b: Src<'_>) {
    match op {
        BinaryOp::Add => map2(d, a, b, |x, y| x + y),
        BinaryOp::Sub => map2(d, a, b, |x, y| x - y),
        BinaryOp::Mul => map2(d, a, b, |x, y| x * y),
        BinaryOp::Div => map2(d, a, b, |x, y| x / y),
        BinaryOp::Pow => map2(d, a, b, libm::pow),
        BinaryOp::Min => map2(d, a, b, |x, y| BinaryOp::Min.apply(x, y)),
        BinaryOp::Max => map2(d, a, b, |x, y| BinaryOp::Max.apply(x, y)),
    }
}

/// `d = a·b + c` for every combination of columns and constants (eight tight loops).
#[inline(always)]
fn muladd(d: &mut [f64], a: Src<'_>, b: Src<'_>, c: Src<'_>) {
    use Src::{Col, Val};
    match (a, b, c) {
        (Col(a), Col(b), Col(c)) => {
            for (((d, &a), &b), &c) in d.iter_mut().zip(a).zip(b).zip(c) {
                *d = a * b + c;
            }
        }
        (Col(a), Col(b), Val(c)) => {
            for ((d, &a), &b) in d.iter_mut().zip(a).zip(b) {
                *d = a * b + c;
            }
        }
        (Col(a), Val(b), Col(c)) | (Val(b), Col(a), Col(c)) => {
            for ((d, &a), &c) in d.iter_mut().zip(a).zip(c) {
                *d = a * b + c;
            }
        }
        (Col(a), Val(b), Val(c)) | (Val(b), Col(a), Val(c)) => {
            for (d, &a) in d.iter_mut().zip(a) {
                *d = a * b + c;
            }
        }
        (Val(a), Val(b), Col(c)) => {
            let ab = a * b;
            for (d, &c) in d.iter_mut().zip(c) {
                *d = ab + c;
            }
        }
        (Val(a), Val(b), Val(c)) => d.fill(a * b + c),
    }
}
