//! The expression language: random trees printed to text parse back and evaluate, through the
//! parser and through compiled programs on the CPU backend, to the same bits as a direct
//! recursive evaluator; malformed inputs fail at the right byte.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::*;
use isl_mc::expr::{ParseError, parse};
use isl_mc::prelude::*;
use isl_mc::rng;
use proptest::prelude::*;
use serde_json::json;

/// An expression tree of the test's own.
#[derive(Clone, Debug)]
enum T {
    Num(f64),
    Var(usize),
    Neg(Box<T>),
    Bin(char, Box<T>, Box<T>),
    Call(&'static str, Vec<T>),
}

const VARS: [&str; 4] = ["x0", "x1", "x2", "x3"];

fn min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b < a {
        b
    } else {
        a
    }
}

fn max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if b > a {
        b
    } else {
        a
    }
}

/// Direct recursive evaluation with the documented semantics.
fn eval(t: &T, vars: &[f64]) -> f64 {
    match t {
        T::Num(x) => *x,
        T::Var(i) => vars[*i],
        T::Neg(a) => -eval(a, vars),
        T::Bin(op, a, b) => {
            let (a, b) = (eval(a, vars), eval(b, vars));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                '/' => a / b,
                _ => libm::pow(a, b),
            }
        }
        T::Call(f, args) => {
            let v: Vec<f64> = args.iter().map(|a| eval(a, vars)).collect();
            match *f {
                "exp" => libm::exp(v[0]),
                "log" => libm::log(v[0]),
                "sqrt" => v[0].sqrt(),
                "abs" => v[0].abs(),
                "pow" => libm::pow(v[0], v[1]),
                "min" => v[1..].iter().fold(v[0], |a, &b| min(a, b)),
                _ => v[1..].iter().fold(v[0], |a, &b| max(a, b)),
            }
        }
    }
}

/// Fully parenthesised text, numbers in varied notations (`2`, `0.5`, `1.5e-3`, `.25`).
fn print(t: &T, style: usize) -> String {
    match t {
        T::Num(x) => match style % 3 {
            0 => format!("{x:e}"),
            1 => format!("{x}"),
            _ => format!("{x:E}"),
        },
        T::Var(i) => VARS[*i].to_string(),
        T::Neg(a) => format!("(-{})", print(a, style + 1)),
        T::Bin(op, a, b) => format!("({} {op} {})", print(a, style + 1), print(b, style + 2)),
        T::Call(f, args) => {
            let args: Vec<String> = args.iter().enumerate().map(|(i, a)| print(a, style + i)).collect();
            format!("{f}({})", args.join(","))
        }
    }
}

fn tree() -> impl Strategy<Value = T> {
    let leaf = prop_oneof![
        (0u32..2000).prop_map(|n| T::Num(f64::from(n) / 8.0)),
        (1e-6f64..1e6).prop_map(T::Num),
        (0usize..4).prop_map(T::Var),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|a| T::Neg(Box::new(a))),
            (prop_oneof![Just('+'), Just('-'), Just('*'), Just('/'), Just('^')], inner.clone(), inner.clone())
                .prop_map(|(op, a, b)| T::Bin(op, Box::new(a), Box::new(b))),
            (prop_oneof![Just("exp"), Just("log"), Just("sqrt"), Just("abs")], inner.clone())
                .prop_map(|(f, a)| T::Call(f, vec![a])),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| T::Call("pow", vec![a, b])),
            (prop_oneof![Just("min"), Just("max")], prop::collection::vec(inner, 2..4))
                .prop_map(|(f, v)| T::Call(f, v)),
        ]
    })
}

fn same(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_parse_and_evaluate_alike(t in tree(), style in 0usize..3, vars in prop::array::uniform4(-3.0f64..3.0)) {
        let text = print(&t, style);
        let parsed = parse(&text, 64).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        let got = parsed.eval(&mut |v: &String| vars[VARS.iter().position(|n| n == v).unwrap_or(0)]);
        let want = eval(&t, &vars);
        prop_assert!(same(got, want), "{text}: parsed {got} vs direct {want}");
        // The parser's own printing parses back to the same value.
        let again = parse(&parsed.to_string(), 64).map_err(|e| TestCaseError::fail(format!("{parsed}: {e:?}")))?;
        let got2 = again.eval(&mut |v: &String| vars[VARS.iter().position(|n| n == v).unwrap_or(0)]);
        prop_assert!(same(got2, want));
    }

    /// The compiled program (constant folding, register allocation, the column kernels of every
    /// instruction set) computes the same bits as the direct evaluator, sample by sample.
    #[test]
    fn compiled_expressions_match_the_direct_evaluator(t in tree(), seed in any::<u64>(), portable in any::<bool>()) {
        let mut nodes: Vec<serde_json::Value> = VARS
            .iter()
            .map(|v| json!({"name": v, "noise": {"dist": "uniform", "low": -3.0, "high": 3.0}}))
            .collect();
        nodes.push(json!({"name": "E", "expr": print(&t, 0)}));
        let spec = model(json!({ "nodes": nodes }));
        let m = CheckedModel::new(&spec, &McOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let program = Program::compile(&m, &Query { outcome: m.id("E").unwrap_or(0), ..Query::default() })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let n = 37;
        let run = RunSpec { seed, stream: 0, start: 0, count: n, slots: &[], block_size: 16 };
        let backend = CpuBackend { chunk: 8, portable };
        let out = backend.run(&program, &run, &|| false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, got) in out.outcome.iter().enumerate() {
            // Nodes in name order: "E" then x0..x3, so x_k is slot k.
            let vars: Vec<f64> = (0..4).map(|k| 6.0 * rng::slot_uniform(seed, i as u64, k, 0) + -3.0).collect();
            let want = eval(&t, &vars);
            prop_assert!(same(*got, want), "sample {}: {} vs {} for {}", i, got, want, print(&t, 0));
        }
    }
}

#[test]
fn syntax_errors_report_the_byte_and_what_was_expected() {
    let cases: [(&str, usize, &str, &str); 18] = [
        ("", 0, "a number, a name", "end of input"),
        ("1 +", 3, "a number, a name", "end of input"),
        ("* 2", 0, "a number, a name", "'*'"),
        ("(1 + 2", 6, "')'", "end of input"),
        ("1 + 2)", 5, "end of the expression", "')'"),
        ("foo(1)", 0, "a function", "name 'foo'"),
        ("pow(1)", 0, "2 arguments for pow", "1 argument"),
        ("exp(1, 2)", 0, "1 argument for exp", "2 arguments"),
        ("max(1)", 0, "2 or more arguments", "1 argument"),
        ("1e", 2, "digits in the exponent", "end of input"),
        ("1e+x", 3, "digits in the exponent", "'x'"),
        ("2 $ 3", 2, "an operator", "'$'"),
        ("x y", 2, "an operator", "name 'y'"),
        (". + 1", 0, "digits", "'.'"),
        ("min(1,)", 6, "a number, a name", "')'"),
        ("1e999", 0, "a finite number", "'1e999' (overflows)"),
        ("sqrt(x", 6, "',', ')'", "end of input"),
        ("3 ** 2", 3, "a number, a name", "'*'"),
    ];
    for (src, position, expected, found) in cases {
        match parse(src, 64) {
            Err(ParseError::Syntax { position: p, expected: e, found: f }) => {
                assert_eq!(p, position, "{src:?}: {e} / {f}");
                assert!(e.contains(expected), "{src:?}: expected {e:?}");
                assert_eq!(f, found, "{src:?}");
            }
            other => panic!("{src:?}: {other:?}"),
        }
    }
    assert!(matches!(parse(&"(".repeat(100), 64), Err(ParseError::TooDeep { position: 64 })));
    assert!(matches!(parse(&format!("{}1", "-".repeat(100)), 64), Err(ParseError::TooDeep { .. })));
    // Long flat sums do not nest.
    let long = vec!["x"; 1500].join(" + ");
    assert!(parse(&long, 8).is_ok());
}

#[test]
fn syntax_errors_surface_through_the_model_with_the_node_name() {
    let err = answer(json!({"model": {"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "expr": "A * (2 +"}
    ]}, "outcome": "B"}))
    .expect_err("syntax error");
    assert_eq!(err.code(), "expression_syntax");
    assert_eq!(
        err.details(),
        json!({"node": "B", "position": 8, "expected": "a number, a name, '(' or '-'", "found": "end of input"})
    );
    assert_eq!(
        err.to_string(),
        "syntax error in the expression of node 'B' at byte 8: expected a number, a name, '(' or '-', found end of input"
    );
}

#[test]
fn constants_fold_at_compile_time() {
    let spec = model(json!({"nodes": [
        {"name": "A", "noise": {"dist": "normal", "mean": 0, "std": 1}},
        {"name": "B", "expr": "A * (2 ^ 3 - max(1, 4) / 2) + exp(0)"}
    ]}));
    let m = CheckedModel::new(&spec, &McOptions::default()).expect("model");
    let p = Program::compile(&m, &Query { outcome: m.id("B").expect("B"), ..Query::default() }).expect("compile");
    // draw, A's noise, A·6, + 1: the constant subexpressions are gone.
    let text = p.to_string();
    assert_eq!(p.instructions.len(), 4, "{text}");
    assert!(text.contains(" * 6.0\n") && text.contains(" + 1.0\n"), "{text}");
    let p = Program::compile(
        &m,
        &Query { outcome: m.id("B").expect("B"), intervention: vec![(m.id("A").expect("A"), 2.0)], evidence: vec![] },
    )
    .expect("compile");
    assert!(p.instructions.is_empty());
    assert_eq!(p.outcome, isl_mc::Operand::Const(13.0));
}
