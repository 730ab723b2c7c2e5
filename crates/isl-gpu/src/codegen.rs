//! From an [`isl_mc::Program`] to a WGSL compute shader.
//!
//! The shader is three parts: a fixed prelude (bindings, Philox4x32-10 with the 32×32→64-bit
//! product built from 16-bit halves, AS 241 in f32, the libm special cases of `log`, `sqrt`,
//! `pow`, `min` and `max`), one generated function `sample(ilo, ihi) -> vec2<f32>` that evaluates
//! the program for sample index `ihi·2³² + ilo` and returns `(outcome, log_weight)`, and a fixed
//! kernel that calls it for `SPT` samples per invocation and reduces (see `kernel.wgsl`).
//!
//! The generated function is the program, instruction by instruction: every register is a local
//! `f32`, every instruction one statement, in program order. `Draw` is one Philox call on the
//! counter `(ilo, ihi, group, stream)` under the key `(seed_lo, seed_hi)` — the CPU's layout
//! ([`isl_mc::rng`]) — and each used slot's word becomes `u = (bits + 0.5)·2⁻³²` or `z = Φ⁻¹(u)`.
//! `LogDensity` (evidence) adds the recovered noise's log-density to the log-weight `lw`, with
//! the distribution's constants (`ln σ + ln(2π)/2`, the triangular's slopes, ...) computed here in
//! f64; a constant noise's log-density is computed here entirely.
//! Constants are rounded to f32 once, here (non-finite ones read the `inf`/`nan` uniforms, as
//! WGSL has no literals for them; f32-subnormal ones become zero).

use std::fmt::Write as _;

use isl_mc::dist::{Dist, VariateKind};
use isl_mc::expr::{BinaryOp, UnaryOp};
use isl_mc::program::{Instr, Operand, Program};

/// The most registers a generated shader may use: past this a GPU spills them to memory, and the
/// model is better run on the CPU.
pub const MAX_REGISTERS: u32 = 512;

/// The most instructions a generated shader may have (its compile time grows with them).
pub const MAX_INSTRUCTIONS: usize = 20_000;

/// Samples per workgroup: 256 invocations × 16 samples each.
pub const SAMPLES_PER_WORKGROUP: u64 = 256 * 16;

/// Bins of the level-A histogram (the top 11 bits of the order key).
pub const COARSE_BINS: usize = 2048;

/// Why a program does not run on the GPU (the caller runs it on the CPU instead).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Evidence whose noise distribution has a parameter (or a constant of its log-density) that
    /// f32 cannot hold — beyond f32's range, or so small it would be flushed to zero — so the
    /// shader cannot compute its likelihood weights.
    #[error(
        "the evidence on a {dist} noise term needs constants outside f32's range ({what} = {value}) to weigh \
         samples: run it on the CPU"
    )]
    EvidenceRange {
        /// The distribution (`normal`, `lognormal`, `uniform`, `triangular`).
        dist: &'static str,
        /// Which constant.
        what: &'static str,
        /// Its value (as text).
        value: String,
    },
    /// More registers than [`MAX_REGISTERS`].
    #[error("the model needs {registers} registers; the GPU shader allows {limit}: run it on the CPU")]
    TooManyRegisters {
        /// Registers the program needs.
        registers: u32,
        /// [`MAX_REGISTERS`].
        limit: u32,
    },
    /// More instructions than [`MAX_INSTRUCTIONS`].
    #[error("the model compiles to {instructions} instructions; the GPU shader allows {limit}: run it on the CPU")]
    TooManyInstructions {
        /// Instructions of the program.
        instructions: usize,
        /// [`MAX_INSTRUCTIONS`].
        limit: usize,
    },
    /// A run with slot settings the shader does not implement (fixed variates, per-slot streams).
    #[error("runs with fixed slots or per-slot streams (sensitivity analysis) run on the CPU")]
    SlotSettings,
}

/// Whether the GPU can run `program` (not counting run settings).
pub fn check(program: &Program) -> Result<(), Unsupported> {
    if program.registers > MAX_REGISTERS {
        return Err(Unsupported::TooManyRegisters { registers: program.registers, limit: MAX_REGISTERS });
    }
    if program.instructions.len() > MAX_INSTRUCTIONS {
        return Err(Unsupported::TooManyInstructions {
            instructions: program.instructions.len(),
            limit: MAX_INSTRUCTIONS,
        });
    }
    for ins in &program.instructions {
        if let Instr::LogDensity { dist, .. } = ins {
            log_density_constants(dist)?;
        }
    }
    Ok(())
}

/// Whether `program` accumulates log-weights (evidence): its moments then come from the weighted
/// entry point `main_w` of the kernel.
pub fn weighted(program: &Program) -> bool {
    program.weighted || program.instructions.iter().any(|i| matches!(i, Instr::LogDensity { .. }))
}

/// The name of a distribution, for messages.
fn dist_name(d: &Dist) -> &'static str {
    match d {
        Dist::Normal { .. } => "normal",
        Dist::Lognormal { .. } => "lognormal",
        Dist::Uniform { .. } => "uniform",
        Dist::Triangular { .. } => "triangular",
    }
}

/// The WGSL call `lpdf_*(x, ...)` of a distribution's log-density (constants computed here in
/// f64), or why f32 cannot hold its constants. Parameters and constants must be finite and either
/// zero or normal f32 numbers (the triangular's slopes may be infinite where their branch is
/// unreachable: `mode == low` or `mode == high`).
fn log_density_constants(d: &Dist) -> Result<(&'static str, Vec<f64>), Unsupported> {
    use isl_mc::dist::HALF_LN_2PI;
    let (f, cs): (&'static str, Vec<(&'static str, f64)>) = match *d {
        Dist::Normal { mean, std } => {
            ("lpdf_normal", vec![("mean", mean), ("std", std), ("ln(std) + ln(2π)/2", std.ln() + HALF_LN_2PI)])
        }
        Dist::Lognormal { mu, sigma } => {
            ("lpdf_lognormal", vec![("mu", mu), ("sigma", sigma), ("ln(sigma) + ln(2π)/2", sigma.ln() + HALF_LN_2PI)])
        }
        Dist::Uniform { low, high } => {
            ("lpdf_uniform", vec![("low", low), ("high", high), ("-ln(high - low)", -(high - low).ln())])
        }
        Dist::Triangular { low, mode, high } => (
            "lpdf_triangular",
            vec![
                ("low", low),
                ("mode", mode),
                ("high", high),
                ("2/((high - low)(mode - low))", 2.0 / ((high - low) * (mode - low))),
                ("2/((high - low)(high - mode))", 2.0 / ((high - low) * (high - mode))),
                ("ln(2/(high - low))", (2.0 / (high - low)).ln()),
            ],
        ),
    };
    let slope = |what: &str| what.starts_with("2/((");
    for &(what, value) in &cs {
        let ok = if value.is_infinite() && slope(what) {
            true
        } else {
            let a = value.abs();
            value.is_finite() && (a == 0.0 || (a >= f64::from(f32::MIN_POSITIVE) && a <= f64::from(f32::MAX)))
        };
        if !ok {
            return Err(Unsupported::EvidenceRange { dist: dist_name(d), what, value: format!("{value:e}") });
        }
    }
    Ok((f, cs.into_iter().map(|c| c.1).collect()))
}
/// Philox4x32-10 in WGSL (`philox`; needs one of the `mulhilo` below before it).
pub const PHILOX: &str = include_str!("philox.wgsl");

/// `mulhilo` from 16-bit halves: WGSL has no `mulhi`, and 32-bit integers are all every
/// adapter has.
pub const MULHILO_U32: &str = include_str!("mulhilo_u32.wgsl");

/// `mulhilo` as one 64-bit product, for adapters with 64-bit shader integers. The same bits.
pub const MULHILO_U64: &str = include_str!("mulhilo_u64.wgsl");

/// `mulhilo` (64-bit products when `wide`) and Philox4x32-10.
pub fn philox_source(wide: bool) -> String {
    let mut s = String::from(if wide { MULHILO_U64 } else { MULHILO_U32 });
    s.push('\n');
    s.push_str(PHILOX);
    s
}

/// The shader prelude (bindings, normals, operations; needs [`PHILOX`]).
pub const PRELUDE: &str = include_str!("prelude.wgsl");

/// A shader that applies Philox4x32-10 to counters and keys (the known-answer test): input
/// `ctr_key[2i]` = the counter, `ctr_key[2i + 1]` = (k0, k1, _, _), output `out[i]` = the four words.
pub fn philox_kat(wide: bool) -> String {
    philox_source(wide)
        + "
@group(0) @binding(0) var<storage, read> ctr_key: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&out)) {
        return;
    }
    let c = ctr_key[2u * i];
    let k = ctr_key[2u * i + 1u];
    out[i] = philox(c, k.xy);
}
"
}

/// The kernel that calls `sample` and reduces.
pub const KERNEL: &str = include_str!("kernel.wgsl");

/// A complete WGSL module for `program`: Philox (64-bit products when `wide`), prelude,
/// generated `sample`, kernel.
pub fn shader(program: &Program, wide: bool) -> Result<String, Unsupported> {
    check(program)?;
    let mut s = philox_source(wide);
    s.reserve(PRELUDE.len() + KERNEL.len() + 64 * program.instructions.len());
    s.push('\n');
    s.push_str(PRELUDE);
    s.push('\n');
    sample_fn(program, &mut s);
    s.push('\n');
    s.push_str(KERNEL);
    Ok(s)
}

/// A WGSL f32 expression for a constant.
pub fn literal(x: f64) -> String {
    let f = x as f32;
    if f.is_nan() {
        "P.nan".to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "P.inf".to_string() } else { "(-P.inf)".to_string() }
    } else if f == 0.0 || f.is_subnormal() {
        if f.is_sign_negative() { "(-0.0f)".to_string() } else { "0.0f".to_string() }
    } else if f < 0.0 {
        format!("(-{:e}f)", -f)
    } else {
        format!("{f:e}f")
    }
}

fn operand(o: &Operand) -> String {
    match o {
        Operand::Reg(r) => format!("r{r}"),
        Operand::Const(x) => literal(*x),
    }
}

/// `sample(ilo, ihi) -> vec2<f32>(outcome, log_weight)`.
fn sample_fn(program: &Program, s: &mut String) {
    // Writing to a String cannot fail.
    let _ = writeln!(s, "fn sample(ilo: u32, ihi: u32) -> vec2<f32> {{");
    let _ = writeln!(s, "    var lw: f32 = 0.0;");
    for r in 0..program.registers {
        let _ = writeln!(s, "    var r{r}: f32;");
    }
    let words = ["x", "y", "z", "w"];
    for ins in &program.instructions {
        match ins {
            Instr::Draw { group, dst } => {
                let _ = writeln!(s, "    {{");
                let _ = writeln!(s, "        let w = philox(vec4<u32>(ilo, ihi, {group}u, P.stream), P.key);");
                for (k, d) in dst.iter().enumerate() {
                    let Some(r) = d else { continue };
                    let slot = group * 4 + k as u32;
                    let kind = program.slots.get(slot as usize).map_or(VariateKind::Normal, |i| i.kind);
                    let f = match kind {
                        VariateKind::Normal => "normal_variate",
                        VariateKind::Uniform => "uniform_variate",
                    };
                    let _ = writeln!(s, "        r{r} = {f}(w.{}, {slot}u, &lw);", words[k]);
                }
                let _ = writeln!(s, "    }}");
            }
            Instr::Unary { op, dst, src } => {
                let e = match op {
                    UnaryOp::Neg => format!("-r{src}"),
                    UnaryOp::Exp => format!("exp(r{src})"),
                    UnaryOp::Log => format!("log_f(r{src})"),
                    UnaryOp::Sqrt => format!("sqrt_f(r{src})"),
                    UnaryOp::Abs => format!("abs(r{src})"),
                };
                let _ = writeln!(s, "    r{dst} = {e};");
            }
            Instr::Binary { op, dst, a, b } => {
                let (x, y) = (operand(a), operand(b));
                let e = match op {
                    BinaryOp::Add => format!("{x} + {y}"),
                    BinaryOp::Sub => format!("{x} - {y}"),
                    BinaryOp::Mul => format!("{x} * {y}"),
                    BinaryOp::Div => format!("{x} / {y}"),
                    BinaryOp::Pow => match b {
                        // libm's pow(x, 2) is x·x exactly; a product is also faster.
                        Operand::Const(2.0) => format!("{x} * {x}"),
                        Operand::Const(1.0) => x.clone(),
                        _ => format!("pow_f({x}, {y})"),
                    },
                    BinaryOp::Min => format!("min_f({x}, {y})"),
                    BinaryOp::Max => format!("max_f({x}, {y})"),
                };
                let _ = writeln!(s, "    r{dst} = {e};");
            }
            Instr::MulAdd { dst, a, b, c } => {
                let _ = writeln!(s, "    r{dst} = {} * {} + {};", operand(a), operand(b), operand(c));
            }
            Instr::Triangular { dst, src, low, mode, high } => {
                let _ = writeln!(
                    s,
                    "    r{dst} = triangular(r{src}, {}, {}, {}, {}, {});",
                    literal(*low),
                    literal(*high),
                    literal(high - low),
                    literal(mode - low),
                    literal(high - mode)
                );
            }
            Instr::LogDensity { src, dist } => match src {
                // A constant's log-density is the same for every sample: in f64, here.
                Operand::Const(x) => {
                    let _ = writeln!(s, "    lw = lw + {};", literal(dist.log_pdf(*x)));
                }
                Operand::Reg(r) => {
                    // `check` accepted the constants; a refusal here cannot happen, but would
                    // give NaN weights (samples left out), never a wrong weight.
                    let call = match log_density_constants(dist) {
                        Ok((f, cs)) => {
                            let args: Vec<String> = cs.iter().map(|&c| literal(c)).collect();
                            format!("{f}(r{r}, {})", args.join(", "))
                        }
                        Err(_) => "P.nan".to_string(),
                    };
                    let _ = writeln!(s, "    lw = lw + {call};");
                }
            },
        }
    }
    let _ = writeln!(s, "    return vec2<f32>({}, lw);", operand(&program.outcome));
    let _ = writeln!(s, "}}");
}

/// A 64-bit identity of a program's shader: xxh3 of the generated source (equal programs, equal
/// shaders; the pipeline cache is keyed by it).
pub fn shader_hash(source: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(source.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_wgsl() {
        assert_eq!(literal(1.5), "1.5e0f");
        assert_eq!(literal(-0.25), "(-2.5e-1f)");
        assert_eq!(literal(1e300), "P.inf");
        assert_eq!(literal(-1e300), "(-P.inf)");
        assert_eq!(literal(f64::NAN), "P.nan");
        assert_eq!(literal(1e-300), "0.0f");
        assert_eq!(literal(0.0), "0.0f");
        // Round trip through f32 text.
        for x in [0.1f64, 3.0e38, 1.17549435e-38, 123456.789, 7.0] {
            let t = literal(x);
            let v: f32 = t.trim_end_matches('f').parse().unwrap();
            assert_eq!(v, x as f32, "{t}");
        }
    }
}
