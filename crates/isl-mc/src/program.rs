//! Compiled programs: a flat list of column instructions over f64 registers.
//!
//! A [`Program`] answers one question (outcome, intervention, evidence) about one
//! [`CheckedModel`]. Every register is a column holding one value per sample of a block; every
//! instruction is one tight loop over the block, the same operation for every sample, with no
//! per-sample branching on the model's shape. A backend runs the instructions in order for each
//! block of samples; on a GPU each instruction becomes a statement of a shader executed per
//! sample (registers become local variables).
//!
//! Semantics of each instruction, for one sample (`v(x)` is the value of an [`Operand`]):
//!
//! | instruction | effect |
//! |-------------|--------|
//! | `Draw { group, dst }` | for `k` in 0..4 with `dst[k]` set: `r[dst[k]] = ` the standard variate of slot `4·group + k` (see below) |
//! | `Unary { op, dst, src }` | `r[dst] = op(r[src])` ([`UnaryOp::apply`]) |
//! | `Binary { op, dst, a, b }` | `r[dst] = op(v(a), v(b))` ([`BinaryOp::apply`]) |
//! | `MulAdd { dst, a, b, c }` | `r[dst] = v(a)·v(b) + v(c)`, two roundings (never fused) |
//! | `Triangular { dst, src, low, mode, high }` | `r[dst] = ` [`crate::dist::triangular`]`(r[src], low, mode, high)` |
//! | `LogDensity { src, dist }` | `log_weight += dist.log_pdf(v(src))` ([`Dist::log_pdf`]) |
//!
//! The outcome of the sample is `v(outcome)`; its log-weight starts at 0 and is non-zero only
//! for programs with evidence ([`Program::weighted`]) or runs with importance shifts.
//!
//! **Standard variates.** For slot `s` with run settings (fixed value, stream, shift μ; see
//! [`crate::SlotSetting`]): a fixed slot gives its fixed value. Otherwise `u` is the slot's
//! uniform from [`crate::rng`] in the slot's stream and, for a slot of [`VariateKind::Normal`],
//! the variate is `z = Φ⁻¹(u) + μ`; for [`VariateKind::Uniform`] it is `u` when μ = 0, else
//! `Φ(Φ⁻¹(u) + μ)`. When μ ≠ 0, `log_weight += (0.5·μ)·μ − μ·z` (with `z = Φ⁻¹(u) + μ`): the
//! likelihood ratio of the unshifted to the shifted normal.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::dist::{Dist, VariateKind};
use crate::error::McError;
use crate::expr::{BinaryOp, Expr, Func, UnaryOp};
use crate::model::{CheckedModel, NodeId, SlotRole, Structure, Term};

/// A register number: a column of f64, one entry per sample of a block.
pub type Reg = u32;

/// An instruction input: a register or a constant.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operand {
    /// A register.
    Reg(Reg),
    /// A constant, the same for every sample.
    Const(f64),
}

/// One column instruction (semantics in the module table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Instr {
    /// Standard variates of the four slots of a Philox group (one Philox call per sample).
    Draw {
        /// Slot group: slots `4·group .. 4·group + 4`.
        group: u32,
        /// Destination of each slot's variate; `None` for slots the program does not use.
        dst: [Option<Reg>; 4],
    },
    /// `r[dst] = op(r[src])`.
    Unary {
        /// The operation.
        op: UnaryOp,
        /// Destination.
        dst: Reg,
        /// Source.
        src: Reg,
    },
    /// `r[dst] = op(a, b)`.
    Binary {
        /// The operation.
        op: BinaryOp,
        /// Destination.
        dst: Reg,
        /// First operand.
        a: Operand,
        /// Second operand.
        b: Operand,
    },
    /// `r[dst] = a·b + c` (two roundings).
    MulAdd {
        /// Destination.
        dst: Reg,
        /// Factor.
        a: Operand,
        /// Factor.
        b: Operand,
        /// Addend.
        c: Operand,
    },
    /// `r[dst] = triangular(r[src], low, mode, high)`: the triangular inverse CDF of a uniform.
    Triangular {
        /// Destination.
        dst: Reg,
        /// The uniform.
        src: Reg,
        /// Lower bound.
        low: f64,
        /// Peak.
        mode: f64,
        /// Upper bound.
        high: f64,
    },
    /// `log_weight += dist.log_pdf(src)`: likelihood of a recovered noise value (evidence).
    LogDensity {
        /// The noise value.
        src: Operand,
        /// The noise distribution.
        dist: Dist,
    },
}

/// A random slot as a program sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotInfo {
    /// `Demand.intercept`, `Demand<-Price` or `Demand.noise`.
    pub label: String,
    /// What it feeds.
    pub role: SlotRole,
    /// Which standard variate it draws.
    pub kind: VariateKind,
    /// Its distribution (the program applies the transform; backends need only `kind`).
    pub dist: Dist,
    /// Whether the program draws it.
    pub used: bool,
}

/// A compiled question: instructions, register count, the outcome, the slot table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// The instructions, run in order for every block of samples.
    pub instructions: Vec<Instr>,
    /// Registers needed (registers are reused once their value is dead).
    pub registers: u32,
    /// The outcome's value.
    pub outcome: Operand,
    /// Every slot of the model, indexed by slot number (slots the program does not draw have
    /// `used == false`).
    pub slots: Vec<SlotInfo>,
    /// Whether the program accumulates log-weights (it has evidence).
    pub weighted: bool,
}

/// What to compile: an outcome, `do()` assignments, and observed values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// The node whose value is the outcome.
    pub outcome: NodeId,
    /// `do(node = value)` in the predicted world.
    pub intervention: Vec<(NodeId, f64)>,
    /// Observed values in the factual world (abduction by likelihood weighting).
    pub evidence: Vec<(NodeId, f64)>,
}

impl Program {
    /// Compiles a question about a model.
    ///
    /// Without evidence the program is the forward pass of the intervened model, restricted to
    /// the outcome's ancestors. With evidence it first runs the factual world with evidenced
    /// nodes clamped to their observed values, recovers each evidenced node's noise as
    /// `observed − structural part` and adds its log-density to the weight, then runs the
    /// intervened world with the same beliefs and noises (recovered ones for evidenced nodes).
    /// Nodes the intervention does not reach keep their factual values.
    pub fn compile(model: &CheckedModel, query: &Query) -> Result<Program, McError> {
        let n = model.nodes().len();
        let mut intervened: Vec<Option<f64>> = vec![None; n];
        for &(v, x) in &query.intervention {
            intervened[v as usize] = Some(x);
        }
        let mut observed: Vec<Option<f64>> = vec![None; n];
        for &(v, x) in &query.evidence {
            let node = &model.nodes()[v as usize];
            if node.noise.is_none() {
                let what = match node.noise_constant {
                    Some(_) => "'s noise is a point mass (zero spread)",
                    None => " has no noise term",
                };
                return Err(McError::Abduction {
                    node: node.name.clone(),
                    reason: format!(
                        "'{}'{what}: a deterministic node's observed value cannot be explained by an exogenous \
                         term (likelihood weighting needs additive noise with a density)",
                        node.name
                    ),
                });
            }
            observed[v as usize] = Some(x);
        }
        // Which nodes each world needs, and which the intervention reaches.
        let mut needed_cf = vec![false; n];
        mark_ancestors(model, &[query.outcome], &intervened, &mut needed_cf);
        let mut needed_f = vec![false; n];
        let evidenced: Vec<NodeId> = query.evidence.iter().map(|e| e.0).collect();
        mark_ancestors(model, &evidenced, &vec![None; n], &mut needed_f);
        let mut affected = vec![false; n];
        for &v in model.order() {
            let v = v as usize;
            affected[v] = intervened[v].is_some() || model.nodes()[v].parents.iter().any(|&p| affected[p as usize]);
        }

        let mut b = Builder::new(model);
        let mut fact: Vec<Option<Operand>> = vec![None; n];
        let mut recovered: Vec<Option<Operand>> = vec![None; n];
        for &v in model.order() {
            let vi = v as usize;
            if !needed_f[vi] {
                continue;
            }
            let s = b.structural(v, &fact);
            let node = &model.nodes()[vi];
            fact[vi] = Some(match (observed[vi], &node.noise) {
                (Some(x), Some((dist, _))) => {
                    let noise = b.binary(BinaryOp::Sub, Operand::Const(x), s);
                    b.code.push(Instr::LogDensity { src: noise, dist: dist.clone() });
                    recovered[vi] = Some(noise);
                    Operand::Const(x)
                }
                _ => {
                    let shared = needed_cf[vi] && affected[vi] && intervened[vi].is_none();
                    b.add_noise(v, s, shared)
                }
            });
        }
        let mut cf: Vec<Option<Operand>> = vec![None; n];
        for &v in model.order() {
            let vi = v as usize;
            if !needed_cf[vi] {
                continue;
            }
            cf[vi] = Some(if let Some(x) = intervened[vi] {
                Operand::Const(x)
            } else if let (false, Some(f)) = (affected[vi], fact[vi]) {
                f
            } else {
                let s = b.structural(v, &cf);
                match recovered[vi] {
                    Some(noise) => b.binary(BinaryOp::Add, s, noise),
                    None => b.add_noise(v, s, false),
                }
            });
        }
        let outcome = cf[query.outcome as usize].unwrap_or(Operand::Const(f64::NAN));
        Ok(b.finish(outcome, !query.evidence.is_empty()))
    }

    /// The slots the program draws, ascending.
    pub fn used_slots(&self) -> Vec<u32> {
        self.slots.iter().enumerate().filter(|(_, s)| s.used).map(|(i, _)| i as u32).collect()
    }
}

/// Marks `roots` and their ancestors, not looking past intervened nodes.
fn mark_ancestors(model: &CheckedModel, roots: &[NodeId], intervened: &[Option<f64>], mark: &mut [bool]) {
    let mut stack: Vec<NodeId> = roots.to_vec();
    while let Some(v) = stack.pop() {
        if std::mem::replace(&mut mark[v as usize], true) {
            continue;
        }
        if intervened[v as usize].is_none() {
            stack.extend(model.nodes()[v as usize].parents.iter().copied().filter(|&p| !mark[p as usize]));
        }
    }
}

/// Emits code over virtual registers (each defined once), then allocates real registers.
struct Builder<'m> {
    model: &'m CheckedModel,
    code: Vec<Instr>,
    vregs: u32,
    variate: HashMap<u32, Reg>,
    belief: HashMap<u32, Operand>,
    noise: HashMap<u32, Operand>,
}

impl<'m> Builder<'m> {
    fn new(model: &'m CheckedModel) -> Self {
        Builder {
            model,
            code: Vec::new(),
            vregs: 0,
            variate: HashMap::new(),
            belief: HashMap::new(),
            noise: HashMap::new(),
        }
    }

    fn vreg(&mut self) -> Reg {
        self.vregs += 1;
        self.vregs - 1
    }

    /// The register holding slot `slot`'s standard variate (drawing its group on first use).
    fn variate(&mut self, slot: u32) -> Reg {
        if let Some(&r) = self.variate.get(&slot) {
            return r;
        }
        let group = slot / 4;
        let count = self.model.slots().len() as u32;
        let mut dst = [None; 4];
        for (k, d) in dst.iter_mut().enumerate() {
            let s = group * 4 + k as u32;
            if s < count {
                let r = self.vreg();
                self.variate.insert(s, r);
                *d = Some(r);
            }
        }
        self.code.push(Instr::Draw { group, dst });
        self.variate[&slot]
    }

    /// A distribution's value at slot `slot`'s variate.
    fn transformed(&mut self, dist: &Dist, slot: u32) -> Operand {
        let z = Operand::Reg(self.variate(slot));
        match *dist {
            Dist::Normal { mean, std } => self.muladd(z, Operand::Const(std), Operand::Const(mean)),
            Dist::Lognormal { mu, sigma } => {
                let x = self.muladd(z, Operand::Const(sigma), Operand::Const(mu));
                self.unary(UnaryOp::Exp, x)
            }
            Dist::Uniform { low, high } => self.muladd(z, Operand::Const(high - low), Operand::Const(low)),
            Dist::Triangular { low, mode, high } => {
                let Operand::Reg(src) = z else { unreachable!("variates live in registers") };
                let dst = self.vreg();
                self.code.push(Instr::Triangular { dst, src, low, mode, high });
                Operand::Reg(dst)
            }
        }
    }

    fn term(&mut self, t: &Term) -> Operand {
        match t {
            Term::Fixed(x) => Operand::Const(*x),
            Term::Belief { dist, slot } => {
                if let Some(&op) = self.belief.get(slot) {
                    return op;
                }
                let op = self.transformed(dist, *slot);
                self.belief.insert(*slot, op);
                op
            }
        }
    }

    /// The structural part of node `v` given its parents' values in `vals`.
    fn structural(&mut self, v: NodeId, vals: &[Option<Operand>]) -> Operand {
        let model = self.model;
        let node = &model.nodes()[v as usize];
        let value = |p: NodeId| vals[p as usize].unwrap_or(Operand::Const(f64::NAN));
        match &node.structure {
            Structure::Linear { intercept, terms } => {
                let mut acc = self.term(intercept);
                for (p, t) in terms {
                    let coef = self.term(t);
                    acc = self.muladd(coef, value(*p), acc);
                }
                acc
            }
            Structure::Expr(e) => self.expr(e, &value),
        }
    }

    /// `s + noise of v`; `shared` materialises the noise value for reuse by the other world.
    fn add_noise(&mut self, v: NodeId, s: Operand, shared: bool) -> Operand {
        let node = &self.model.nodes()[v as usize];
        let Some((dist, slot)) = &node.noise else {
            return match node.noise_constant {
                Some(c) => self.binary(BinaryOp::Add, s, Operand::Const(c)),
                None => s,
            };
        };
        if let Some(&n) = self.noise.get(slot) {
            return self.binary(BinaryOp::Add, s, n);
        }
        if let Dist::Normal { mean, std } = dist
            && !shared
            && *mean == 0.0
        {
            let z = Operand::Reg(self.variate(*slot));
            return self.muladd(z, Operand::Const(*std), s);
        }
        let n = self.transformed(dist, *slot);
        self.noise.insert(*slot, n);
        self.binary(BinaryOp::Add, s, n)
    }

    fn expr(&mut self, e: &Expr<NodeId>, value: &dyn Fn(NodeId) -> Operand) -> Operand {
        match e {
            Expr::Num(x) => Operand::Const(*x),
            Expr::Var(v) => value(*v),
            Expr::Neg(a) => {
                let a = self.expr(a, value);
                self.unary(UnaryOp::Neg, a)
            }
            Expr::Chain(first, rest) => {
                let mut acc = self.expr(first, value);
                for (op, x) in rest {
                    let x = self.expr(x, value);
                    acc = self.binary(*op, acc, x);
                }
                acc
            }
            Expr::Pow(a, b) => {
                let a = self.expr(a, value);
                let b = self.expr(b, value);
                self.binary(BinaryOp::Pow, a, b)
            }
            Expr::Call(f, args) => {
                let mut vals: Vec<Operand> = args.iter().map(|a| self.expr(a, value)).collect();
                let first = if vals.is_empty() { Operand::Const(f64::NAN) } else { vals.remove(0) };
                match f {
                    Func::Unary(op) => self.unary(*op, first),
                    Func::Pow => {
                        let b = vals.first().copied().unwrap_or(Operand::Const(f64::NAN));
                        self.binary(BinaryOp::Pow, first, b)
                    }
                    Func::Min | Func::Max => {
                        let op = if *f == Func::Min { BinaryOp::Min } else { BinaryOp::Max };
                        vals.into_iter().fold(first, |acc, x| self.binary(op, acc, x))
                    }
                }
            }
        }
    }

    fn unary(&mut self, op: UnaryOp, a: Operand) -> Operand {
        match a {
            Operand::Const(x) => Operand::Const(op.apply(x)),
            Operand::Reg(src) => {
                let dst = self.vreg();
                self.code.push(Instr::Unary { op, dst, src });
                Operand::Reg(dst)
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, a: Operand, b: Operand) -> Operand {
        if let (Operand::Const(x), Operand::Const(y)) = (a, b) {
            return Operand::Const(op.apply(x, y));
        }
        let dst = self.vreg();
        self.code.push(Instr::Binary { op, dst, a, b });
        Operand::Reg(dst)
    }

    fn muladd(&mut self, a: Operand, b: Operand, c: Operand) -> Operand {
        if let (Operand::Const(x), Operand::Const(y), Operand::Const(z)) = (a, b, c) {
            return Operand::Const(x * y + z);
        }
        let dst = self.vreg();
        self.code.push(Instr::MulAdd { dst, a, b, c });
        Operand::Reg(dst)
    }

    /// Dead-code elimination and register allocation (a register is freed after its last read;
    /// destinations are allocated before sources are freed, so no instruction writes a register
    /// it reads).
    fn finish(self, outcome: Operand, weighted: bool) -> Program {
        let nv = self.vregs as usize;
        // Backward pass: keep instructions whose results are read (or that weigh).
        let mut live = vec![false; nv];
        if let Operand::Reg(r) = outcome {
            live[r as usize] = true;
        }
        let mut kept: Vec<Instr> = Vec::with_capacity(self.code.len());
        for mut ins in self.code.into_iter().rev() {
            let keep = match &mut ins {
                Instr::Draw { dst, .. } => {
                    for d in dst.iter_mut() {
                        if d.is_some_and(|r| !live[r as usize]) {
                            *d = None;
                        }
                    }
                    dst.iter().any(Option::is_some)
                }
                Instr::LogDensity { .. } => true,
                other => live[dest(other).unwrap_or(0) as usize],
            };
            if keep {
                for_each_source(&ins, |r| live[r as usize] = true);
                kept.push(ins);
            }
        }
        kept.reverse();
        // Last read of each virtual register.
        let mut last = vec![usize::MAX; nv];
        for (k, ins) in kept.iter().enumerate() {
            for_each_source(ins, |r| last[r as usize] = k);
        }
        if let Operand::Reg(r) = outcome {
            last[r as usize] = usize::MAX - 1;
        }
        let mut map: Vec<Reg> = vec![Reg::MAX; nv];
        let mut free: std::collections::BinaryHeap<std::cmp::Reverse<Reg>> = Default::default();
        let mut registers: Reg = 0;
        let mut alloc = |free: &mut std::collections::BinaryHeap<std::cmp::Reverse<Reg>>| match free.pop() {
            Some(std::cmp::Reverse(r)) => r,
            None => {
                registers += 1;
                registers - 1
            }
        };
        let mut instructions = Vec::with_capacity(kept.len());
        for (k, ins) in kept.into_iter().enumerate() {
            let mut sources = Vec::new();
            for_each_source(&ins, |r| sources.push(r));
            let m = |r: Reg, map: &[Reg]| map[r as usize];
            let mo = |o: Operand, map: &[Reg]| match o {
                Operand::Reg(r) => Operand::Reg(map[r as usize]),
                c => c,
            };
            let mapped = match ins {
                Instr::Draw { group, dst } => {
                    let mut out = [None; 4];
                    for (o, d) in out.iter_mut().zip(dst) {
                        if let Some(r) = d {
                            map[r as usize] = alloc(&mut free);
                            *o = Some(map[r as usize]);
                        }
                    }
                    Instr::Draw { group, dst: out }
                }
                Instr::Unary { op, dst, src } => {
                    map[dst as usize] = alloc(&mut free);
                    Instr::Unary { op, dst: map[dst as usize], src: m(src, &map) }
                }
                Instr::Binary { op, dst, a, b } => {
                    map[dst as usize] = alloc(&mut free);
                    Instr::Binary { op, dst: map[dst as usize], a: mo(a, &map), b: mo(b, &map) }
                }
                Instr::MulAdd { dst, a, b, c } => {
                    map[dst as usize] = alloc(&mut free);
                    Instr::MulAdd { dst: map[dst as usize], a: mo(a, &map), b: mo(b, &map), c: mo(c, &map) }
                }
                Instr::Triangular { dst, src, low, mode, high } => {
                    map[dst as usize] = alloc(&mut free);
                    Instr::Triangular { dst: map[dst as usize], src: m(src, &map), low, mode, high }
                }
                Instr::LogDensity { src, dist } => Instr::LogDensity { src: mo(src, &map), dist },
            };
            sources.sort_unstable();
            sources.dedup();
            for r in sources {
                if last[r as usize] == k {
                    free.push(std::cmp::Reverse(map[r as usize]));
                }
            }
            instructions.push(mapped);
        }
        let outcome = match outcome {
            Operand::Reg(r) => Operand::Reg(map[r as usize]),
            c => c,
        };
        let mut used = vec![false; self.model.slots().len()];
        for ins in &instructions {
            if let Instr::Draw { group, dst } = ins {
                for (k, d) in dst.iter().enumerate() {
                    if d.is_some() {
                        used[*group as usize * 4 + k] = true;
                    }
                }
            }
        }
        let slots = self
            .model
            .slots()
            .iter()
            .zip(used)
            .map(|(s, used)| SlotInfo {
                label: s.label.clone(),
                role: s.role.clone(),
                kind: s.kind(),
                dist: s.dist.clone(),
                used,
            })
            .collect();
        Program { instructions, registers, outcome, slots, weighted }
    }
}

/// The destination register of a single-output instruction.
fn dest(ins: &Instr) -> Option<Reg> {
    match ins {
        Instr::Unary { dst, .. }
        | Instr::Binary { dst, .. }
        | Instr::MulAdd { dst, .. }
        | Instr::Triangular { dst, .. } => Some(*dst),
        Instr::Draw { .. } | Instr::LogDensity { .. } => None,
    }
}

/// Calls `f` on every register an instruction reads.
fn for_each_source(ins: &Instr, mut f: impl FnMut(Reg)) {
    let mut op = |o: &Operand| {
        if let Operand::Reg(r) = o {
            f(*r)
        }
    };
    match ins {
        Instr::Draw { .. } => {}
        Instr::Unary { src, .. } | Instr::Triangular { src, .. } => op(&Operand::Reg(*src)),
        Instr::Binary { a, b, .. } => {
            op(a);
            op(b);
        }
        Instr::MulAdd { a, b, c, .. } => {
            op(a);
            op(b);
            op(c);
        }
        Instr::LogDensity { src, .. } => op(src),
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Reg(r) => write!(f, "r{r}"),
            Operand::Const(x) => write!(f, "{x:?}"),
        }
    }
}

/// One instruction per line, e.g. `r4 = r0 * 0.3 + -2.0`.
impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for ins in &self.instructions {
            match ins {
                Instr::Draw { group, dst } => {
                    let parts: Vec<String> = dst
                        .iter()
                        .enumerate()
                        .filter_map(|(k, d)| {
                            let slot = *group as usize * 4 + k;
                            d.map(|r| format!("r{r} = {}", self.slots[slot].label))
                        })
                        .collect();
                    writeln!(f, "draw group {group}: {}", parts.join(", "))?;
                }
                Instr::Unary { op, dst, src } => writeln!(f, "r{dst} = {}(r{src})", op.name())?,
                Instr::Binary { op: op @ (BinaryOp::Min | BinaryOp::Max), dst, a, b } => {
                    writeln!(f, "r{dst} = {}({a}, {b})", op.symbol())?
                }
                Instr::Binary { op, dst, a, b } => writeln!(f, "r{dst} = {a} {} {b}", op.symbol())?,
                Instr::MulAdd { dst, a, b, c } => writeln!(f, "r{dst} = {a} * {b} + {c}")?,
                Instr::Triangular { dst, src, low, mode, high } => {
                    writeln!(f, "r{dst} = triangular(r{src}; {low:?}, {mode:?}, {high:?})")?
                }
                Instr::LogDensity { src, dist } => writeln!(f, "log_weight += log_pdf({src}; {dist:?})")?,
            }
        }
        writeln!(f, "outcome = {}", self.outcome)
    }
}
