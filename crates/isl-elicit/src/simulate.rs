//! Simulated decision-makers, for measuring how fast questions teach: a hidden weight vector
//! (drawn from the uniform prior), ten options, and answers drawn from the choice model. Each
//! round the whole stateless request — every answer so far — goes through [`crate::next`], and
//! the decision-maker answers either the top question ([`Strategy::InformationGain`]) or a
//! question drawn uniformly from the same candidate pool ([`Strategy::Random`]).
//!
//! The trace records, after each number of answers, the Euclidean distance between the
//! posterior mean and the hidden weights, and whether the recommended option is the truly best.

use std::collections::BTreeMap;

use crate::api::{
    Alternative, AnswerSpec, AttributeSpec, Better, ElicitOptions, NextRequest, OptionSpec, QuestionSource,
};
use crate::choice::{Choice, ChoiceModel};
use crate::error::ElicitError;
use crate::questions;
use crate::rng;

/// Hidden weights and options: index 0 = weights, 1.. = options.
const STREAM_TRUTH: u32 = 0x454c_0101;
/// Answer noise (sub 0) and random question picks (sub 1): index = round.
const STREAM_ANSWER: u32 = 0x454c_0102;

/// How the simulated session picks the question to answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// The top question by expected information gain.
    InformationGain,
    /// A question drawn uniformly from the same candidate pool (the selection alone compared).
    Random,
    /// Two alternatives drawn independently and uniformly within the ranges (the naive
    /// questionnaire).
    UniformPairs,
}

/// A simulated session's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Attributes (weights).
    pub attributes: usize,
    /// Options (for the recommendation; their pairs join the candidate pool).
    pub options: usize,
    /// Questions asked.
    pub rounds: usize,
    /// Particles per request.
    pub particles: usize,
    /// Synthesised candidates per request (option pairs come on top).
    pub candidates: usize,
    /// λ, of the decision-maker and of the model.
    pub rationality: f64,
    /// ν, of the decision-maker and of the model.
    pub indifference: f64,
    /// End the session as soon as the weight error is below this (None: ask every round).
    pub stop_below: Option<f64>,
    /// The decision-maker answers by the sign of the utility difference, without noise (a
    /// consistent decision-maker; the model still assumes `rationality` and `indifference`).
    pub noise_free: bool,
    /// Where questions come from (None: the route's default, `options` with options, else
    /// `synthetic`).
    pub questions_from: Option<QuestionSource>,
    /// `rationality_spread` of the requests (None: the route's default).
    pub rationality_spread: Option<f64>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            attributes: 4,
            options: 10,
            rounds: 40,
            particles: 2000,
            candidates: 64,
            rationality: 10.0,
            indifference: 0.5,
            stop_below: None,
            noise_free: false,
            questions_from: Some(QuestionSource::Both),
            rationality_spread: None,
        }
    }
}

/// What a session looked like after 0, 1, ..., `rounds` answers (fewer when it stopped early).
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The hidden weights.
    pub truth: Vec<f64>,
    /// ‖posterior mean − truth‖₂ after `k` answers.
    pub errors: Vec<f64>,
    /// ‖posterior mean − truth‖_∞ (the largest error over attributes) after `k` answers.
    pub max_errors: Vec<f64>,
    /// Whether the recommendation after `k` answers is the truly best option.
    pub best: Vec<bool>,
}

impl Trace {
    /// The fewest answers after which the weight error is below `target` (None: never within
    /// the rounds).
    pub fn questions_to_error(&self, target: f64) -> Option<usize> {
        self.errors.iter().position(|&e| e < target)
    }

    /// The fewest answers from which on the recommendation is the truly best option in every
    /// later round (None: not by the last round).
    pub fn questions_to_best(&self) -> Option<usize> {
        let last_wrong = self.best.iter().rposition(|&b| !b);
        match last_wrong {
            None => Some(0),
            Some(k) if k + 1 < self.best.len() => Some(k + 1),
            Some(_) => None,
        }
    }
}

fn name(k: usize) -> String {
    format!("w{k}")
}

fn alternative(z: &[f64]) -> Alternative {
    Alternative::Values(z.iter().enumerate().map(|(k, &v)| (name(k), v)).collect())
}

/// Runs one simulated session with decision-maker `seed`.
pub fn run(settings: &Settings, strategy: Strategy, seed: u64, opts: &ElicitOptions) -> Result<Trace, ElicitError> {
    let n = settings.attributes;
    let mut truth = vec![0.0; n];
    rng::fill(seed, 0, 0, STREAM_TRUTH, &mut truth);
    let total: f64 = truth.iter().map(|u| -libm::log(*u)).sum();
    for t in &mut truth {
        *t = -libm::log(*t) / total;
    }
    let options: Vec<Vec<f64>> = (0..settings.options)
        .map(|o| {
            let mut z = vec![0.0; n];
            rng::fill(seed, o as u32 + 1, 0, STREAM_TRUTH, &mut z);
            z
        })
        .collect();
    let utility = |z: &[f64]| truth.iter().zip(z).map(|(w, x)| w * x).sum::<f64>();
    let best = (0..options.len()).reduce(|b, o| if utility(&options[o]) > utility(&options[b]) { o } else { b });
    let option_name = |o: usize| format!("o{o:02}");
    let model = ChoiceModel::new(settings.rationality, settings.indifference);
    let mut request = NextRequest {
        attributes: (0..n)
            .map(|k| AttributeSpec {
                name: name(k),
                better: Better::Higher,
                range: Some([0.0, 1.0]),
                node: None,
                quantile: None,
            })
            .collect(),
        options: (!options.is_empty()).then(|| {
            options
                .iter()
                .enumerate()
                .map(|(o, z)| OptionSpec {
                    name: option_name(o),
                    values: z.iter().enumerate().map(|(k, &v)| (name(k), v)).collect::<BTreeMap<_, _>>(),
                })
                .collect()
        }),
        scm: None,
        answers: Vec::new(),
        count: Some(1),
        particles: Some(settings.particles),
        candidates: Some(settings.candidates),
        questions_from: settings.questions_from,
        rationality: Some(settings.rationality),
        indifference: Some(settings.indifference),
        rationality_spread: settings.rationality_spread,
        seed: Some(seed),
    };
    // The pool the route searches (same seed, same order), for random picks.
    let pool: Vec<(Vec<f64>, Vec<f64>)> = questions::option_pairs(&options, settings.candidates, seed)
        .into_iter()
        .chain(questions::synthesize(n, settings.candidates, seed))
        .map(|c| (c.a, c.b))
        .collect();
    let mut errors = Vec::with_capacity(settings.rounds + 1);
    let mut max_errors = Vec::with_capacity(settings.rounds + 1);
    let mut correct = Vec::with_capacity(settings.rounds + 1);
    for round in 0..=settings.rounds {
        let answer = crate::next(&request, opts, &isl_mc::McOptions::default(), &|| false)?;
        let mean: Vec<f64> = (0..n).map(|k| answer.weights.get(&name(k)).map_or(0.0, |w| w.mean)).collect();
        errors.push(mean.iter().zip(&truth).map(|(m, t)| (m - t) * (m - t)).sum::<f64>().sqrt());
        max_errors.push(mean.iter().zip(&truth).fold(0.0f64, |e, (m, t)| e.max((m - t).abs())));
        let recommended = answer.recommendation.as_ref().map(|r| r.option.clone());
        correct.push(best.is_some_and(|b| recommended.as_deref() == Some(option_name(b).as_str())));
        if round == settings.rounds || settings.stop_below.is_some_and(|t| errors[round] < t) {
            break;
        }
        let (a, b) = match strategy {
            Strategy::InformationGain => {
                let q = answer.questions.first().ok_or_else(|| ElicitError::InvalidRequest {
                    field: "questions".into(),
                    message: "no question to ask".into(),
                })?;
                let z = |m: &BTreeMap<String, f64>| (0..n).map(|k| m.get(&name(k)).copied().unwrap_or(0.0)).collect();
                (z(&q.a), z(&q.b))
            }
            Strategy::Random => {
                let u = rng::one(seed, round as u32, 1, STREAM_ANSWER);
                pool[((u * pool.len() as f64) as usize).min(pool.len() - 1)].clone()
            }
            Strategy::UniformPairs => {
                let mut u = vec![0.0; 2 * n];
                rng::fill(seed, round as u32, 2, STREAM_ANSWER, &mut u);
                (u[..n].to_vec(), u[n..].to_vec())
            }
        };
        let o = model.outcome(model.d(utility(&a) - utility(&b)));
        let u = rng::one(seed, round as u32, 0, STREAM_ANSWER);
        let choice = if settings.noise_free {
            let diff = utility(&a) - utility(&b);
            if diff > 0.0 {
                Choice::A
            } else if diff < 0.0 {
                Choice::B
            } else {
                Choice::Indifferent
            }
        } else if u < o.a {
            Choice::A
        } else if u < o.a + o.b {
            Choice::B
        } else {
            Choice::Indifferent
        };
        request.answers.push(AnswerSpec { a: alternative(&a), b: alternative(&b), choice });
    }
    Ok(Trace { truth, errors, max_errors, best: correct })
}

/// The median of `xs` where `None` (not reached) counts as `cap`; the upper median for even
/// lengths.
pub fn median(xs: &[Option<usize>], cap: usize) -> usize {
    let mut v: Vec<usize> = xs.iter().map(|x| x.unwrap_or(cap)).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(cap)
}

/// The benchmark case of `/v1/preferences/next` (BENCHMARKS.md; the timing test and example):
/// 5 attributes, 10 options with values drawn from a fixed generator, and 20 answers from a
/// decision-maker with fixed hidden weights who answers the top question of each round under
/// the default choice model. Returns the request for the 21st round (`count` 3, seed 7).
pub fn benchmark_request(particles: usize) -> Result<serde_json::Value, ElicitError> {
    use serde_json::{Value, json};
    let opts = ElicitOptions::default();
    let names = ["cost", "quality", "speed", "risk", "comfort"];
    let truth = [0.35, 0.25, 0.2, 0.12, 0.08];
    let attributes: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(k, n)| json!({"name": n, "better": if k % 2 == 0 { "lower" } else { "higher" }, "range": [0, 100]}))
        .collect();
    let mut state = 42u64;
    let mut uniform = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let options: Vec<Value> = (0..10)
        .map(|o| {
            let values: serde_json::Map<String, Value> =
                names.iter().map(|n| (n.to_string(), json!((uniform() * 100.0).round()))).collect();
            json!({"name": format!("option-{o}"), "values": values})
        })
        .collect();
    let model = ChoiceModel::new(opts.default_rationality, opts.default_indifference);
    let utility = |values: &serde_json::Map<String, Value>| -> f64 {
        names
            .iter()
            .enumerate()
            .map(|(k, n)| {
                let x = values.get(*n).and_then(Value::as_f64).unwrap_or(0.0) / 100.0;
                truth[k] * if k % 2 == 0 { 1.0 - x } else { x }
            })
            .sum()
    };
    let request = |answers: &[Value]| {
        json!({"attributes": attributes, "options": options, "answers": answers, "count": 3,
               "particles": particles, "seed": 7})
    };
    let mut answers: Vec<Value> = Vec::new();
    while answers.len() < 20 {
        let req: NextRequest = serde_json::from_value(request(&answers))
            .map_err(|e| ElicitError::InvalidRequest { field: "request".into(), message: e.to_string() })?;
        let resp = crate::next(&req, &opts, &isl_mc::McOptions::default(), &|| false)?;
        let Some(q) = resp.questions.first() else { break };
        let a: serde_json::Map<String, Value> = q.a.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let b: serde_json::Map<String, Value> = q.b.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let o = model.outcome(model.d(utility(&a) - utility(&b)));
        let u = uniform();
        let choice = if u < o.a {
            "a"
        } else if u < o.a + o.b {
            "b"
        } else {
            "indifferent"
        };
        answers.push(json!({"a": a, "b": b, "choice": choice}));
    }
    Ok(request(&answers))
}
