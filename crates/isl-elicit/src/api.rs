//! The request and response of `/v1/preferences/next`, and [`next`], which answers it.
//!
//! The request carries everything: the attributes, optional options, and *all* answers so far.
//! The posterior is rebuilt from the prior each time, so the server keeps no state and equal
//! requests give equal answers (a request without a `seed` uses one derived from its canonical
//! form, [`NextRequest::derived_seed`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::choice::{Choice, ChoiceModel};
use crate::consistency;
use crate::eig;
use crate::error::ElicitError;
use crate::posterior::{Evidence, Interrupted, SmcSettings, infer};
use crate::questions::{self, Candidate};
use crate::recommend;
use crate::scm::{self, ScmOptions};
use isl_mc::McOptions;

/// Limits and defaults for answering elicitation requests.
#[derive(Clone, Debug, PartialEq)]
pub struct ElicitOptions {
    /// The most attributes.
    pub max_attributes: usize,
    /// The most options (explicit, or interventions of a causal model).
    pub max_options: usize,
    /// The most answers.
    pub max_answers: usize,
    /// The most particles a request may ask for.
    pub max_particles: usize,
    /// `particles` when a request gives none.
    pub default_particles: usize,
    /// The most candidate questions a request may ask to be searched.
    pub max_candidates: usize,
    /// `candidates` when a request gives none: synthesised questions, and the cap on option
    /// pairs searched (a seeded sample of the pairs when there are more).
    pub default_candidates: usize,
    /// The most questions returned (`count`).
    pub max_count: usize,
    /// `count` when a request gives none.
    pub default_count: usize,
    /// Work bound: particles × answers (the cost of rebuilding the posterior).
    pub max_particle_answers: u64,
    /// Work bound: particles × candidates (the cost of the question search).
    pub max_particle_candidates: u64,
    /// The largest `rationality` accepted.
    pub max_rationality: f64,
    /// `rationality` (λ) when a request gives none.
    pub default_rationality: f64,
    /// The largest `indifference` accepted.
    pub max_indifference: f64,
    /// `indifference` (ν) when a request gives none.
    pub default_indifference: f64,
    /// The largest `rationality_spread` accepted.
    pub max_rationality_spread: f64,
    /// `rationality_spread` when a request gives none: the scale of the logistic prior of
    /// `ln(λ / rationality)` (0: λ fixed at `rationality`).
    pub default_rationality_spread: f64,
    /// Resample and rejuvenate when the effective sample size falls below this fraction.
    pub ess_threshold: f64,
    /// Metropolis–Hastings sweeps per rejuvenation.
    pub moves: usize,
    /// Questions whose difference vectors have |cosine| above this are not both returned
    /// (unless too few others remain).
    pub max_similarity: f64,
    /// Monte Carlo samples per intervention and outcome node for options from a causal model,
    /// when the request gives none.
    pub default_scm_samples: u64,
    /// Work bound for options from a causal model: samples × interventions × outcome nodes.
    pub max_scm_samples: u64,
}

impl Default for ElicitOptions {
    fn default() -> Self {
        ElicitOptions {
            max_attributes: 32,
            max_options: 200,
            max_answers: 1000,
            max_particles: 100_000,
            default_particles: 10_000,
            max_candidates: 4096,
            default_candidates: 128,
            max_count: 20,
            default_count: 3,
            max_particle_answers: 20_000_000,
            max_particle_candidates: 50_000_000,
            max_rationality: 1000.0,
            default_rationality: 10.0,
            max_indifference: 100.0,
            default_indifference: 0.5,
            max_rationality_spread: 10.0,
            default_rationality_spread: 0.0,
            ess_threshold: 0.5,
            moves: 2,
            max_similarity: 0.9,
            default_scm_samples: 4096,
            max_scm_samples: 20_000_000,
        }
    }
}

/// Which way an attribute is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Higher values are better.
    Higher,
    /// Lower values are better.
    Lower,
}

/// An attribute of the alternatives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// The name (unique).
    pub name: String,
    /// Which way is better.
    pub better: Better,
    /// `[lo, hi]`, finite, `lo < hi`: the values normalised to [0, 1]. Optional when the
    /// request has options: then the options' smallest and largest values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
    /// With `scm`: the model node this attribute measures (default: the attribute's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// With `scm`: this quantile of the node instead of its mean (a risk attribute), in (0, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantile: Option<f64>,
}

/// One side of an answered question: values for every attribute, or the name of an option.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Alternative {
    /// An option of the request, by name.
    Option(String),
    /// Attribute values.
    Values(BTreeMap<String, f64>),
}

/// An answered question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerSpec {
    /// The first alternative.
    pub a: Alternative,
    /// The second alternative.
    pub b: Alternative,
    /// `a`, `b` or `indifferent`.
    pub choice: Choice,
}

/// A named option with values for every attribute.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    /// The name (unique).
    pub name: String,
    /// A value for every attribute.
    pub values: BTreeMap<String, f64>,
}

/// Where candidate questions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionSource {
    /// Pairs of the request's options.
    Options,
    /// Pairs synthesised within the attribute ranges.
    Synthetic,
    /// Both.
    Both,
}

/// `/v1/preferences/next` request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NextRequest {
    /// The attributes (at least two).
    pub attributes: Vec<AttributeSpec>,
    /// Options to rank and to ask about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionSpec>>,
    /// Options from a causal model instead: one per intervention, valued by Monte Carlo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scm: Option<ScmOptions>,
    /// Every answer so far, in the order given.
    #[serde(default)]
    pub answers: Vec<AnswerSpec>,
    /// How many questions to return (default [`ElicitOptions::default_count`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// Particles of the posterior (default [`ElicitOptions::default_particles`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub particles: Option<usize>,
    /// Candidate questions searched (default [`ElicitOptions::default_candidates`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// Where questions come from (default: `both` with options, else `synthetic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions_from: Option<QuestionSource>,
    /// λ of the choice model (default [`ElicitOptions::default_rationality`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationality: Option<f64>,
    /// ν of the choice model (default [`ElicitOptions::default_indifference`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indifference: Option<f64>,
    /// How far the rationality is learned from the answers: λ = `rationality` · e^s with `s ≥ 0`
    /// half-logistic of this scale (default [`ElicitOptions::default_rationality_spread`], 0:
    /// λ fixed at `rationality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationality_spread: Option<f64>,
    /// The seed of every random draw (default: derived from the canonical request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl NextRequest {
    /// Canonical form: attributes and options sorted by name, defaults filled in. Answers keep
    /// their order. The seed is kept as given.
    pub fn canonical(&self, opts: &ElicitOptions) -> NextRequest {
        let mut c = self.clone();
        c.attributes.sort_by(|x, y| x.name.cmp(&y.name));
        if let Some(options) = &mut c.options {
            options.sort_by(|x, y| x.name.cmp(&y.name));
        }
        c.scm = self.scm.as_ref().map(|s| s.canonical(opts));
        c.count = Some(self.count.unwrap_or(opts.default_count));
        c.particles = Some(self.particles.unwrap_or(opts.default_particles));
        c.candidates = Some(self.candidates.unwrap_or(opts.default_candidates));
        c.rationality = Some(self.rationality.unwrap_or(opts.default_rationality));
        c.indifference = Some(self.indifference.unwrap_or(opts.default_indifference));
        // Filled in only when it differs from 0 (λ fixed): requests without it keep their
        // canonical form and derived seed.
        let spread = self.rationality_spread.unwrap_or(opts.default_rationality_spread);
        c.rationality_spread = (spread != 0.0).then_some(spread);
        // With options, synthesised pairs join the options' pairs by default: the options' pairs
        // alone leave directions of the weight space unasked (BENCHMARKS.md: 0.14 max weight
        // error after 15 consistent answers with 4 attributes, 0.044 with both).
        c.questions_from = Some(self.questions_from.unwrap_or(if self.options.is_some() || self.scm.is_some() {
            QuestionSource::Both
        } else {
            QuestionSource::Synthetic
        }));
        c
    }

    /// The seed used when the request has none: xxh3-64 of the canonical request's JSON without
    /// a seed. Identical on every target.
    pub fn derived_seed(&self, opts: &ElicitOptions) -> u64 {
        let mut c = self.canonical(opts);
        c.seed = None;
        xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(&c).unwrap_or_default())
    }
}

/// A weight's posterior summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightSummary {
    /// Posterior mean.
    pub mean: f64,
    /// Posterior standard deviation.
    pub std: f64,
    /// 5th percentile.
    pub p05: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Predicted answer probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predicted {
    /// P(a).
    pub a: f64,
    /// P(b).
    pub b: f64,
    /// P(indifferent).
    pub indifferent: f64,
}

/// A question to ask next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Question {
    /// Alternative `a`, in natural units.
    pub a: BTreeMap<String, f64>,
    /// Alternative `b`.
    pub b: BTreeMap<String, f64>,
    /// The option `a` is, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a_option: Option<String>,
    /// The option `b` is, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b_option: Option<String>,
    /// Expected information gain about the weights, in bits.
    pub expected_information_bits: f64,
    /// The answer's predicted probabilities under the current posterior.
    pub predicted: Predicted,
}

/// An option under the posterior.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptionSummary {
    /// The option's name.
    pub name: String,
    /// Its attribute values (natural units).
    pub values: BTreeMap<String, f64>,
    /// Expected utility (normalised: 0 = worst of every range, 1 = best).
    pub expected_utility: f64,
    /// Standard deviation of its utility over the posterior.
    pub utility_std: f64,
    /// Probability that it has the highest utility.
    pub probability_best: f64,
}

/// The recommended option.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Its name.
    pub option: String,
    /// Its expected utility (the highest).
    pub expected_utility: f64,
    /// The probability that it is the best option.
    pub probability_best: f64,
}

/// How the answer was computed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Answers used.
    pub answers: usize,
    /// Particles.
    pub particles: usize,
    /// Effective sample size of the final importance weights.
    pub effective_sample_size: f64,
    /// Resample–move steps taken.
    pub rejuvenations: usize,
    /// Fraction of Metropolis–Hastings moves accepted.
    pub acceptance_rate: f64,
    /// Posterior mean of the rationality λ, when it is learned (`rationality_spread` > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationality: Option<f64>,
    /// Estimated ln P(answers | choice model) (marginal over the prior).
    pub log_evidence: f64,
    /// Candidate questions searched.
    pub candidates: usize,
    /// `max_w min_j` margin of the strict answers (positive: some weights agree with all of
    /// them); null without strict answers.
    pub best_margin: Option<f64>,
}

/// An attribute as used: its resolved range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttributeUsed {
    /// The name.
    pub name: String,
    /// Which way is better.
    pub better: Better,
    /// The range normalised to [0, 1].
    pub range: [f64; 2],
}

/// `/v1/preferences/next` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NextResponse {
    /// The attributes (sorted by name) with the ranges used.
    pub attributes: Vec<AttributeUsed>,
    /// Posterior summary of each attribute's weight, by attribute name.
    pub weights: BTreeMap<String, WeightSummary>,
    /// Differential entropy of the posterior over the weights, in bits (Lebesgue measure on the
    /// first n−1 weights; the uniform prior has −log2((n−1)!)). Falls as answers come in.
    pub entropy_bits: f64,
    /// Information the answers gave: KL(posterior ‖ prior) in bits.
    pub information_bits: f64,
    /// Whether some weight vector agrees with every strict answer.
    pub consistent: bool,
    /// The next questions, by decreasing expected information gain, kept diverse.
    pub questions: Vec<Question>,
    /// The recommended option, when there are options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<Recommendation>,
    /// Every option under the posterior (sorted by name), when there are options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<OptionSummary>>,
    /// How it was computed.
    pub diagnostics: Diagnostics,
    /// The seed used.
    pub seed: u64,
    /// What the reader should know (contradictory answers, values outside ranges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// An attribute's scale: natural value ↔ normalised [0, 1], 1 best.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Scale {
    lo: f64,
    hi: f64,
    better: Better,
}

impl Scale {
    fn normalise(&self, x: f64) -> f64 {
        match self.better {
            Better::Higher => (x - self.lo) / (self.hi - self.lo),
            Better::Lower => (self.hi - x) / (self.hi - self.lo),
        }
    }

    fn natural(&self, z: f64) -> f64 {
        match self.better {
            Better::Higher => self.lo + z * (self.hi - self.lo),
            Better::Lower => self.hi - z * (self.hi - self.lo),
        }
    }
}

/// Normalised values beyond this many range widths outside [0, 1] are refused: they would
/// swamp every other attribute and overflow the model's arithmetic.
const MAX_OUTSIDE: f64 = 1000.0;

fn over(what: &str, count: usize, limit: usize) -> Result<(), ElicitError> {
    if count > limit {
        return Err(ElicitError::OverLimit { what: what.into(), count: count as u64, limit: limit as u64 });
    }
    Ok(())
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ElicitError {
    ElicitError::InvalidRequest { field: field.into(), message: message.into() }
}

/// The normalised values of an alternative given as attribute values.
fn normalise_values(
    values: &BTreeMap<String, f64>,
    names: &[String],
    scales: &[Scale],
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<f64>, ElicitError> {
    let unknown: Vec<String> = values.keys().filter(|k| names.binary_search(k).is_err()).cloned().collect();
    if !unknown.is_empty() {
        return Err(ElicitError::UnknownAttributes { field: field.into(), names: unknown });
    }
    let missing: Vec<String> = names.iter().filter(|n| !values.contains_key(*n)).cloned().collect();
    if !missing.is_empty() {
        return Err(ElicitError::MissingAttributes { field: field.into(), names: missing });
    }
    let mut z = Vec::with_capacity(names.len());
    for (name, scale) in names.iter().zip(scales) {
        let x = values[name];
        let v = scale.normalise(x);
        if !x.is_finite() || !v.is_finite() {
            return Err(ElicitError::NonFinite { field: format!("{field}.{name}") });
        }
        if !(-MAX_OUTSIDE..=1.0 + MAX_OUTSIDE).contains(&v) {
            return Err(invalid(
                format!("{field}.{name}"),
                format!("{x} is more than {MAX_OUTSIDE} range widths outside the range [{}, {}]", scale.lo, scale.hi),
            ));
        }
        if !(0.0..=1.0).contains(&v) {
            warnings.push(format!(
                "{field}: '{name}' = {x} is outside its range [{}, {}]; utilities extrapolate linearly",
                scale.lo, scale.hi
            ));
        }
        z.push(v);
    }
    Ok(z)
}

/// What a checked request resolves to.
struct Resolved {
    names: Vec<String>,
    scales: Vec<Scale>,
    /// Option names and their natural and normalised values.
    option_names: Vec<String>,
    option_values: Vec<BTreeMap<String, f64>>,
    option_z: Vec<Vec<f64>>,
    evidence: Evidence,
    /// Strict answers as sign-adjusted differences, for the consistency check.
    strict: Vec<Vec<f64>>,
    warnings: Vec<String>,
}

/// Checks a canonical request and resolves names, ranges and answers. `options` are the
/// request's options (explicit, or computed from a causal model).
fn resolve(
    req: &NextRequest,
    options: &[OptionSpec],
    opts: &ElicitOptions,
    indifference: f64,
) -> Result<Resolved, ElicitError> {
    let n = req.attributes.len();
    if n < 2 {
        return Err(ElicitError::TooFewAttributes { count: n });
    }
    over("attributes", n, opts.max_attributes)?;
    over("options", options.len(), opts.max_options)?;
    over("answers", req.answers.len(), opts.max_answers)?;
    let mut attrs: Vec<&AttributeSpec> = req.attributes.iter().collect();
    attrs.sort_by(|x, y| x.name.cmp(&y.name));
    let names: Vec<String> = attrs.iter().map(|a| a.name.clone()).collect();
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(invalid("attributes.name", "attribute names must be non-empty"));
        }
        if i > 0 && names[i - 1] == *name {
            return Err(ElicitError::DuplicateName { what: "attribute".into(), name: name.clone() });
        }
    }
    let mut sorted_options: Vec<&OptionSpec> = options.iter().collect();
    sorted_options.sort_by(|x, y| x.name.cmp(&y.name));
    for (i, o) in sorted_options.iter().enumerate() {
        if o.name.trim().is_empty() {
            return Err(invalid("options.name", "option names must be non-empty"));
        }
        if i > 0 && sorted_options[i - 1].name == o.name {
            return Err(ElicitError::DuplicateName { what: "option".into(), name: o.name.clone() });
        }
        let unknown: Vec<String> = o.values.keys().filter(|k| names.binary_search(k).is_err()).cloned().collect();
        if !unknown.is_empty() {
            return Err(ElicitError::UnknownAttributes { field: format!("options.{}", o.name), names: unknown });
        }
        let missing: Vec<String> = names.iter().filter(|k| !o.values.contains_key(*k)).cloned().collect();
        if !missing.is_empty() {
            return Err(ElicitError::MissingAttributes { field: format!("options.{}", o.name), names: missing });
        }
        if let Some((k, _)) = o.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(ElicitError::NonFinite { field: format!("options.{}.{k}", o.name) });
        }
    }
    // Ranges: as given, or the options' span.
    let mut scales = Vec::with_capacity(n);
    for a in &attrs {
        let [lo, hi] = match a.range {
            Some(r) => r,
            None => {
                if sorted_options.is_empty() {
                    return Err(ElicitError::InvalidRange {
                        attribute: a.name.clone(),
                        message: "a range [lo, hi] is required when the request has no options".into(),
                    });
                }
                let vals = sorted_options.iter().map(|o| o.values[&a.name]);
                let lo = vals.clone().fold(f64::INFINITY, f64::min);
                let hi = vals.fold(f64::NEG_INFINITY, f64::max);
                if lo >= hi {
                    return Err(ElicitError::InvalidRange {
                        attribute: a.name.clone(),
                        message: format!("every option has the value {lo}: give a range [lo, hi]"),
                    });
                }
                [lo, hi]
            }
        };
        if !lo.is_finite() || !hi.is_finite() || !(hi - lo).is_finite() {
            return Err(ElicitError::InvalidRange {
                attribute: a.name.clone(),
                message: "the range must be finite (and so must its width)".into(),
            });
        }
        if lo >= hi {
            return Err(ElicitError::InvalidRange {
                attribute: a.name.clone(),
                message: format!("the range [{lo}, {hi}] needs lo < hi"),
            });
        }
        scales.push(Scale { lo, hi, better: a.better });
    }
    let mut warnings = Vec::new();
    let mut option_z = Vec::with_capacity(sorted_options.len());
    for o in &sorted_options {
        option_z.push(normalise_values(&o.values, &names, &scales, &format!("options.{}", o.name), &mut warnings)?);
    }
    let option_names: Vec<String> = sorted_options.iter().map(|o| o.name.clone()).collect();
    let mut evidence = Evidence::new(n);
    let mut strict = Vec::new();
    for (j, ans) in req.answers.iter().enumerate() {
        let side = |alt: &Alternative, s: &str, warnings: &mut Vec<String>| -> Result<Vec<f64>, ElicitError> {
            let field = format!("answers[{j}].{s}");
            match alt {
                Alternative::Option(name) => match option_names.binary_search(name) {
                    Ok(i) => Ok(option_z[i].clone()),
                    Err(_) => Err(ElicitError::UnknownOption { field, name: name.clone() }),
                },
                Alternative::Values(values) => normalise_values(values, &names, &scales, &field, warnings),
            }
        };
        let a = side(&ans.a, "a", &mut warnings)?;
        let b = side(&ans.b, "b", &mut warnings)?;
        if ans.choice == Choice::Indifferent && indifference <= 0.0 {
            return Err(invalid(
                format!("answers[{j}].choice"),
                "an indifferent answer has probability 0 when indifference is 0",
            ));
        }
        let delta: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        match ans.choice {
            Choice::A => strict.push(delta.clone()),
            Choice::B => strict.push(delta.iter().map(|x| -x).collect()),
            Choice::Indifferent => {}
        }
        evidence.push(&delta, ans.choice);
    }
    // One warning per distinct text, in first-seen order.
    let mut seen = std::collections::BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    let option_values = sorted_options.iter().map(|o| o.values.clone()).collect();
    Ok(Resolved { names, scales, option_names, option_values, option_z, evidence, strict, warnings })
}

/// Answers `/v1/preferences/next` for a request (canonicalised here with `opts`). `mc` limits the
/// Monte Carlo runs of options from a causal model. `stop` is polled between stages of the
/// computation.
pub fn next(
    req: &NextRequest,
    opts: &ElicitOptions,
    mc: &McOptions,
    stop: &dyn Fn() -> bool,
) -> Result<NextResponse, ElicitError> {
    let attrs = &req.attributes;
    if let Some(a) = attrs.iter().find(|a| req.scm.is_none() && (a.node.is_some() || a.quantile.is_some())) {
        return Err(invalid(
            format!("attributes.{}", a.name),
            "node and quantile describe an attribute measured on a causal model: they need scm",
        ));
    }
    let options = match (&req.options, &req.scm) {
        (Some(_), Some(_)) => {
            return Err(invalid("scm", "give options or scm (options from a causal model), not both"));
        }
        (Some(options), None) => options.clone(),
        (None, Some(model)) => {
            // Cheap checks first, so a bad request does not wait for the Monte Carlo runs.
            if attrs.len() < 2 {
                return Err(ElicitError::TooFewAttributes { count: attrs.len() });
            }
            over("attributes", attrs.len(), opts.max_attributes)?;
            scm::options(model, attrs, req.seed, opts, mc, stop)?
        }
        (None, None) => Vec::new(),
    };
    next_with_options(req, &options, opts, stop)
}

/// [`next`] with the options given separately (e.g. computed from a causal model).
pub(crate) fn next_with_options(
    req: &NextRequest,
    options: &[OptionSpec],
    opts: &ElicitOptions,
    stop: &dyn Fn() -> bool,
) -> Result<NextResponse, ElicitError> {
    let seed = req.seed.unwrap_or_else(|| req.derived_seed(opts));
    let req = req.canonical(opts);
    let (count, particles, candidates) =
        (req.count.unwrap_or(1), req.particles.unwrap_or(1), req.candidates.unwrap_or(1));
    let (lambda, nu) = (req.rationality.unwrap_or(1.0), req.indifference.unwrap_or(0.0));
    let source = req.questions_from.unwrap_or(QuestionSource::Synthetic);
    if !lambda.is_finite() || lambda <= 0.0 || lambda > opts.max_rationality {
        return Err(invalid("rationality", format!("must be in (0, {}]", opts.max_rationality)));
    }
    if !nu.is_finite() || nu < 0.0 || nu > opts.max_indifference {
        return Err(invalid("indifference", format!("must be in [0, {}]", opts.max_indifference)));
    }
    let spread = req.rationality_spread.unwrap_or(0.0);
    if !spread.is_finite() || spread < 0.0 || spread > opts.max_rationality_spread {
        return Err(invalid("rationality_spread", format!("must be in [0, {}]", opts.max_rationality_spread)));
    }
    if count == 0 {
        return Err(invalid("count", "must be at least 1"));
    }
    over("count", count, opts.max_count)?;
    if particles < 2 {
        return Err(invalid("particles", "must be at least 2"));
    }
    over("particles", particles, opts.max_particles)?;
    if candidates == 0 {
        return Err(invalid("candidates", "must be at least 1"));
    }
    over("candidates", candidates, opts.max_candidates)?;
    let work = |what: &str, x: usize, limit: u64| -> Result<(), ElicitError> {
        let w = (particles as u64).saturating_mul(x as u64);
        if w > limit {
            return Err(ElicitError::OverLimit { what: what.into(), count: w, limit });
        }
        Ok(())
    };
    work("particles × answers", req.answers.len(), opts.max_particle_answers)?;
    work("particles × candidates", candidates, opts.max_particle_candidates)?;
    if source != QuestionSource::Synthetic && options.len() < 2 {
        return Err(invalid("questions_from", "questions from options need at least two options"));
    }

    let r = resolve(&req, options, opts, nu)?;
    let mut warnings = r.warnings.clone();
    let model = ChoiceModel::new(lambda, nu).learning_rationality(spread);
    let settings = SmcSettings { particles, ess_threshold: opts.ess_threshold, moves: opts.moves, seed };
    let posterior = infer(&model, &r.evidence, &settings, stop).map_err(|Interrupted| ElicitError::Interrupted)?;
    if stop() {
        return Err(ElicitError::Interrupted);
    }

    // Candidate questions and their scores.
    let mut cands: Vec<Candidate> = Vec::new();
    if source != QuestionSource::Synthetic {
        cands.extend(questions::option_pairs(&r.option_z, candidates, seed));
    }
    if source != QuestionSource::Options {
        cands.extend(questions::principal(&posterior, r.names.len() + 1));
        cands.extend(questions::synthesize(r.names.len(), candidates, seed));
    }
    let deltas: Vec<Vec<f64>> = cands.iter().map(Candidate::delta).collect();
    let scores = eig::score_all(&model, &posterior, &deltas);
    if stop() {
        return Err(ElicitError::Interrupted);
    }
    let bits: Vec<f64> = scores.iter().map(|s| s.bits).collect();
    let picked = questions::select_diverse(&deltas, &bits, count, opts.max_similarity);
    let natural = |z: &[f64]| -> BTreeMap<String, f64> {
        r.names.iter().zip(&r.scales).zip(z).map(|((n, s), &v)| (n.clone(), s.natural(v))).collect()
    };
    let questions = picked
        .iter()
        .map(|&c| {
            let (cand, s) = (&cands[c], &scores[c]);
            let side = |o: Option<usize>, z: &[f64]| match o {
                Some(i) => (r.option_values[i].clone(), Some(r.option_names[i].clone())),
                None => (natural(z), None),
            };
            let (a, a_option) = side(cand.a_option, &cand.a);
            let (b, b_option) = side(cand.b_option, &cand.b);
            Question {
                a,
                b,
                a_option,
                b_option,
                expected_information_bits: s.bits,
                predicted: Predicted { a: s.a, b: s.b, indifferent: s.indifferent },
            }
        })
        .collect();

    // Options and the recommendation.
    let (recommendation, option_summaries) = if r.option_z.is_empty() {
        (None, None)
    } else {
        let values = recommend::evaluate(&posterior, &r.option_z);
        let rec = recommend::recommend(&values).map(|i| Recommendation {
            option: r.option_names[i].clone(),
            expected_utility: values[i].expected_utility,
            probability_best: values[i].probability_best,
        });
        let list = values
            .iter()
            .enumerate()
            .map(|(i, v)| OptionSummary {
                name: r.option_names[i].clone(),
                values: r.option_values[i].clone(),
                expected_utility: v.expected_utility,
                utility_std: v.utility_std,
                probability_best: v.probability_best,
            })
            .collect();
        (rec, Some(list))
    };

    let best_margin = consistency::best_margin(&r.strict, r.names.len());
    let consistent = best_margin.is_none_or(|m| m > consistency::TOLERANCE);
    if !consistent {
        warnings.insert(
            0,
            format!(
                "the answers contradict each other: no weights rank every strictly answered pair as answered (best \
                 margin {:.4}); the posterior stays proper because the choice model treats the disagreement as noise",
                best_margin.unwrap_or(0.0)
            ),
        );
    }

    let weights = r
        .names
        .iter()
        .zip(posterior.weight_stats())
        .map(|(n, s)| (n.clone(), WeightSummary { mean: s.mean, std: s.std, p05: s.p05, p95: s.p95 }))
        .collect();
    let attributes = r
        .names
        .iter()
        .zip(&r.scales)
        .map(|(n, s)| AttributeUsed { name: n.clone(), better: s.better, range: [s.lo, s.hi] })
        .collect();
    Ok(NextResponse {
        attributes,
        weights,
        entropy_bits: posterior.entropy_nats() / std::f64::consts::LN_2,
        information_bits: posterior.information_nats() / std::f64::consts::LN_2,
        consistent,
        questions,
        recommendation,
        options: option_summaries,
        diagnostics: Diagnostics {
            answers: r.evidence.len(),
            particles: posterior.len(),
            effective_sample_size: posterior.effective_sample_size(),
            rejuvenations: posterior.rejuvenations(),
            acceptance_rate: posterior.acceptance_rate(),
            rationality: model.learns_rationality().then(|| lambda * posterior.rationality_multiplier()),
            log_evidence: posterior.log_evidence(),
            candidates: cands.len(),
            best_margin,
        },
        seed,
        warnings,
    })
}
