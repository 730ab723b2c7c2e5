//! `isl bench`: a load generator for a running server. Requests are generated before timing;
//! each worker drives one keep-alive HTTP/1.1 connection.
//!
//! A [`Mix`] says what to send; add a mix for a new route by implementing it and adding a
//! [`MixKind`] variant.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use isl_causal::generate::{RandomDagParams, SplitMix64, random_dag};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{BenchArgs, BenchMethod};
use crate::client::Connection;
use crate::error::HostError;

/// A family of requests for one route, generated from a seed.
pub trait Mix: Send + Sync {
    /// Name, as given to `--mix`.
    fn name(&self) -> &'static str;
    /// Route path the requests go to.
    fn route(&self) -> &'static str;
    /// The request body for `seed` (distinct seeds give distinct requests).
    fn request(&self, seed: u64) -> Value;
}

/// The mixes `--mix` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MixKind {
    /// `/v1/causal/validate` on random 200-node DAGs.
    #[value(name = "validate-200")]
    Validate200,
    /// `/v1/counterfactual`: 10⁵ samples of a random 10-node linear model with uncertain
    /// coefficients, an intervention on a root and a threshold on the outcome.
    #[value(name = "counterfactual-10")]
    Counterfactual10,
    /// `/v1/sensitivity` on a random 10-node linear model (default samples).
    #[value(name = "sensitivity-10")]
    Sensitivity10,
    /// `/v1/forecast`: a week of hourly values (a daily cycle, a trend and noise, varied by
    /// seed), horizon 30.
    #[value(name = "forecast-30")]
    Forecast30,
    /// `/v1/verify`: 5 claims against 10 evidence passages drawn from a pool by seed, top 3.
    #[value(name = "verify-5x10")]
    Verify5x10,
    /// `/v1/embed`: 8 sentences of mixed length drawn by seed.
    #[value(name = "embed-8")]
    Embed8,
    /// `/v1/nli`: 8 premise/hypothesis pairs drawn by seed.
    #[value(name = "nli-8")]
    Nli8,
    /// `/v1/preferences/next`: 5 attributes, 10 options, 20 answers (by a simulated
    /// decision-maker), 10,000 particles — the target case — varied by seed.
    #[value(name = "preferences-5")]
    Preferences5,
    /// `/v1/counterfactual`: 10⁸ samples of the 30-node benchmark model of `bench/mc.sh` and
    /// `bench/gpu.sh` (`isl_mc::generate::benchmark_model`), 10 quantiles and a threshold —
    /// the GPU issue's end-to-end case; the seed varies by request. Needs `--max-samples`
    /// of at least 10⁸ on the server.
    #[value(name = "counterfactual-30-1e8")]
    Counterfactual30x1e8,
    /// `/v1/causal/d-separation`: 100 queries (one node each side, up to 5 given) per request,
    /// drawn by seed, about one fixed 1,000-node `er` DAG — the causal benchmark's `er-n1000-s2`
    /// graph. Requests about one DAG, each distinct: what the DAG cache is for.
    #[value(name = "dsep-1000-er")]
    Dsep1000Er,
    /// As `dsep-1000-er` on the causal benchmark's `local-n1000-s4` graph.
    #[value(name = "dsep-1000-local")]
    Dsep1000Local,
}

impl MixKind {
    /// The mix.
    pub fn mix(self) -> Box<dyn Mix> {
        match self {
            MixKind::Validate200 => Box::new(ValidateMix { nodes: 200 }),
            MixKind::Counterfactual10 => Box::new(CounterfactualMix { nodes: 10, samples: 100_000 }),
            MixKind::Sensitivity10 => Box::new(SensitivityMix { nodes: 10 }),
            MixKind::Forecast30 => Box::new(TextMix::Forecast),
            MixKind::Verify5x10 => Box::new(TextMix::Verify),
            MixKind::Embed8 => Box::new(TextMix::Embed),
            MixKind::Nli8 => Box::new(TextMix::Nli),
            MixKind::Preferences5 => Box::new(PreferencesMix),
            MixKind::Counterfactual30x1e8 => Box::new(LargeCounterfactualMix),
            MixKind::Dsep1000Er => Box::new(DSeparationMix::new("dsep-1000-er", "er", 2)),
            MixKind::Dsep1000Local => Box::new(DSeparationMix::new("dsep-1000-local", "local", 4)),
        }
    }
}

/// `/v1/causal/validate` on a random DAG (`random_dag` with 2 parents on average, window 20,
/// 10% latent) with a treatment in the middle and an outcome downstream of it.
#[derive(Debug, Clone, Copy)]
pub struct ValidateMix {
    /// Nodes per graph.
    pub nodes: usize,
}

impl Mix for ValidateMix {
    fn name(&self) -> &'static str {
        "validate-200"
    }

    fn route(&self) -> &'static str {
        "/v1/causal/validate"
    }

    fn request(&self, seed: u64) -> Value {
        let n = self.nodes.max(2);
        let dag = random_dag(&RandomDagParams { nodes: n, avg_parents: 2.0, window: 20, latent_share: 0.1, seed });
        let (treatment, outcome) = pick_pair(n, &dag.edges, &dag.latent, seed);
        json!({"dag": dag, "treatment": format!("V{treatment}"), "outcome": format!("V{outcome}")})
    }
}

/// `/v1/causal/d-separation` about one fixed benchmark DAG (1,000 nodes), 100 queries per
/// request drawn by seed.
pub struct DSeparationMix {
    name: &'static str,
    dag: Value,
    nodes: usize,
}

impl DSeparationMix {
    /// The mix on the causal benchmark's graph of `family` and `seed`.
    pub fn new(name: &'static str, family: &str, seed: u64) -> Self {
        let nodes = 1000;
        let spec = random_dag(&isl_causal::generate::benchmark_params(family, nodes, seed)).canonical();
        DSeparationMix { name, dag: serde_json::to_value(spec).unwrap_or_default(), nodes }
    }
}

impl Mix for DSeparationMix {
    fn name(&self) -> &'static str {
        self.name
    }

    fn route(&self) -> &'static str {
        "/v1/causal/d-separation"
    }

    fn request(&self, seed: u64) -> Value {
        let mut rng = SplitMix64::new(seed ^ 0xD5EB_0100);
        let queries: Vec<Value> = isl_causal::generate::benchmark_dsep_queries(self.nodes, 100, &mut rng)
            .into_iter()
            .map(|(x, y, given)| json!({"x": x, "y": y, "given": given}))
            .collect();
        json!({"dag": self.dag, "queries": queries})
    }
}

/// A random linear structural causal model `X0..X{n-1}` in topological order: node `i > 0` has
/// 1–3 parents among the 5 before it, each coefficient a normal belief (mean in ±1, std 0.1),
/// a numeric intercept and normal noise. Distinct seeds give distinct models.
pub fn linear_model(nodes: usize, seed: u64) -> Value {
    let mut rng = SplitMix64::new(seed ^ 0x5c4e_11ab);
    let mut out = Vec::with_capacity(nodes);
    for i in 0..nodes {
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        let mut node = json!({
            "name": format!("X{i}"),
            "intercept": round(rng.next_f64() * 4.0 - 2.0),
            "noise": {"dist": "normal", "mean": 0, "std": round(0.5 + rng.next_f64())},
        });
        if i > 0 {
            let mut parents = serde_json::Map::new();
            let count = 1 + rng.below(3.min(i as u64)) as usize;
            while parents.len() < count {
                let p = i - 1 - rng.below(5.min(i as u64)) as usize;
                let belief = json!({"dist": "normal", "mean": round(rng.next_f64() * 2.0 - 1.0), "std": 0.1});
                parents.insert(format!("X{p}"), belief);
            }
            node["parents"] = Value::Object(parents);
        }
        out.push(node);
    }
    json!({"nodes": out})
}

/// `/v1/counterfactual` on [`linear_model`]: `do(X0 = 1)`, outcome the last node, a threshold.
#[derive(Debug, Clone, Copy)]
pub struct CounterfactualMix {
    /// Nodes per model.
    pub nodes: usize,
    /// Samples per request.
    pub samples: u64,
}

impl Mix for CounterfactualMix {
    fn name(&self) -> &'static str {
        "counterfactual-10"
    }

    fn route(&self) -> &'static str {
        "/v1/counterfactual"
    }

    fn request(&self, seed: u64) -> Value {
        let n = self.nodes.max(2);
        json!({
            "model": linear_model(n, seed),
            "intervention": {"X0": 1.0},
            "outcome": format!("X{}", n - 1),
            "samples": self.samples,
            "threshold": 0.0,
            "seed": seed,
        })
    }
}

/// `/v1/counterfactual` on the 30-node benchmark model (seed 2024, as in `gpu_timing`): 10⁸
/// samples, 10 quantiles, a threshold, `do(N00 = 1)`; the request's seed is the mix seed.
#[derive(Debug, Clone, Copy)]
pub struct LargeCounterfactualMix;

impl Mix for LargeCounterfactualMix {
    fn name(&self) -> &'static str {
        "counterfactual-30-1e8"
    }

    fn route(&self) -> &'static str {
        "/v1/counterfactual"
    }

    fn request(&self, seed: u64) -> Value {
        json!({
            "model": isl_mc::generate::benchmark_model(30, 2024),
            "intervention": {"N00": 1.0},
            "outcome": "N29",
            "samples": 100_000_000u64,
            "quantiles": [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999],
            "threshold": 2.0,
            "seed": seed,
        })
    }
}

/// `/v1/sensitivity` on [`linear_model`]: the drivers of the last node.
#[derive(Debug, Clone, Copy)]
pub struct SensitivityMix {
    /// Nodes per model.
    pub nodes: usize,
}

impl Mix for SensitivityMix {
    fn name(&self) -> &'static str {
        "sensitivity-10"
    }

    fn route(&self) -> &'static str {
        "/v1/sensitivity"
    }

    fn request(&self, seed: u64) -> Value {
        let n = self.nodes.max(2);
        json!({"model": linear_model(n, seed), "outcome": format!("X{}", n - 1), "seed": seed})
    }
}

/// Sentences the model mixes draw from (contract clauses and general facts, mixed lengths).
const SENTENCES: [&str; 24] = [
    "The supplier shall deliver the goods within thirty days of the purchase order.",
    "Either party may terminate this agreement with ninety days' written notice.",
    "The receiving party shall not disclose confidential information to any third party.",
    "Confidential information may be shared with employees who need to know it.",
    "Payment is due within forty-five days of the invoice date.",
    "Late payments accrue interest at one percent per month.",
    "The warranty covers defects in materials and workmanship for two years.",
    "This agreement is governed by the laws of the State of New York.",
    "Any dispute shall be resolved by binding arbitration in London.",
    "The licensee may not reverse engineer the software.",
    "The customer owns all data it uploads to the service.",
    "The provider may use aggregated, anonymised data to improve the service.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Paris is the capital of France and its largest city.",
    "The Eiffel Tower was completed in 1889 for the World's Fair.",
    "Bananas are a good source of potassium.",
    "The Pacific is the largest and deepest of the world's oceans.",
    "Mount Everest is the highest mountain above sea level.",
    "Light from the Sun takes about eight minutes to reach the Earth.",
    "The human heart has four chambers.",
    "Obligations of confidentiality survive the termination of this agreement for five years, \
     including obligations relating to trade secrets, customer lists and pricing information.",
    "The parties agree that the limitation of liability does not apply to breaches of confidentiality, \
     gross negligence or wilful misconduct, nor to indemnification obligations under section nine.",
    "Short.",
    "The service level agreement promises 99.9 percent monthly uptime, excluding scheduled maintenance.",
];

/// The model routes' mixes (the models must be fetched; the forecaster is built in).
#[derive(Debug, Clone, Copy)]
pub enum TextMix {
    /// `/v1/forecast`, horizon 30.
    Forecast,
    /// `/v1/verify`, 5 claims × 10 passages.
    Verify,
    /// `/v1/embed`, 8 texts.
    Embed,
    /// `/v1/nli`, 8 pairs.
    Nli,
}

impl TextMix {
    fn draw(rng: &mut SplitMix64, n: usize, seed: u64) -> Vec<String> {
        // A distinct request per seed: the seed is part of one text.
        (0..n)
            .map(|i| {
                let s = SENTENCES[rng.below(SENTENCES.len() as u64) as usize];
                if i == 0 { format!("{s} (case {seed})") } else { s.to_string() }
            })
            .collect()
    }
}

impl Mix for TextMix {
    fn name(&self) -> &'static str {
        match self {
            TextMix::Forecast => "forecast-30",
            TextMix::Verify => "verify-5x10",
            TextMix::Embed => "embed-8",
            TextMix::Nli => "nli-8",
        }
    }

    fn route(&self) -> &'static str {
        match self {
            TextMix::Forecast => "/v1/forecast",
            TextMix::Verify => "/v1/verify",
            TextMix::Embed => "/v1/embed",
            TextMix::Nli => "/v1/nli",
        }
    }

    fn request(&self, seed: u64) -> Value {
        let mut rng = SplitMix64::new(seed ^ 0x7e47_5eed);
        match self {
            TextMix::Forecast => {
                let level = 10.0 + 10.0 * rng.next_f64();
                let amp = 0.5 + 2.0 * rng.next_f64();
                let trend = 0.02 * (rng.next_f64() - 0.5);
                let start = 1_717_200_000 + 3600 * (seed % 10_000) as i64;
                let ts: Vec<i64> = (0..168).map(|h| start + 3600 * h).collect();
                let values: Vec<f64> = (0..168)
                    .map(|h| {
                        let x = level + amp * (h as f64 * std::f64::consts::PI / 12.0).sin() + trend * h as f64;
                        ((x + 0.2 * (rng.next_f64() - 0.5)) * 1000.0).round() / 1000.0
                    })
                    .collect();
                json!({"timestamps": ts, "values": values, "horizon": 30})
            }
            TextMix::Verify => {
                let claims = TextMix::draw(&mut rng, 5, seed);
                let evidence = TextMix::draw(&mut rng, 10, seed ^ 1);
                json!({"claims": claims, "evidence": evidence, "top_k": 3})
            }
            TextMix::Embed => json!({"texts": TextMix::draw(&mut rng, 8, seed)}),
            TextMix::Nli => {
                let premises = TextMix::draw(&mut rng, 8, seed);
                let hypotheses = TextMix::draw(&mut rng, 8, seed ^ 1);
                let pairs: Vec<Value> =
                    premises.iter().zip(&hypotheses).map(|(p, h)| json!({"premise": p, "hypothesis": h})).collect();
                json!({"pairs": pairs})
            }
        }
    }
}

/// `/v1/preferences/next` with 5 attributes, 10 options and 20 answers given by a hidden
/// weight vector (logit choices drawn from the seed), 10,000 particles, 3 questions.
#[derive(Debug, Clone, Copy)]
pub struct PreferencesMix;

impl Mix for PreferencesMix {
    fn name(&self) -> &'static str {
        "preferences-5"
    }

    fn route(&self) -> &'static str {
        "/v1/preferences/next"
    }

    fn request(&self, seed: u64) -> Value {
        let mut rng = SplitMix64::new(seed ^ 0x9e4f_5eed);
        let names = ["cost", "quality", "speed", "risk", "comfort"];
        let attributes: Vec<Value> = names
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"name": n, "better": if i % 2 == 0 { "lower" } else { "higher" }, "range": [0.0, 100.0]}))
            .collect();
        let round = |x: f64| (x * 10.0).round() / 10.0;
        let options: Vec<(String, Vec<f64>)> =
            (0..10).map(|k| (format!("O{k}"), (0..5).map(|_| round(100.0 * rng.next_f64())).collect())).collect();
        // A hidden decision-maker: weights on the simplex, logit choices with rationality 10.
        let raw: Vec<f64> = (0..5).map(|_| -rng.next_f64().max(1e-9).ln()).collect();
        let total: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / total).collect();
        let utility = |v: &[f64]| -> f64 {
            v.iter().enumerate().map(|(i, x)| weights[i] * if i % 2 == 0 { 1.0 - x / 100.0 } else { x / 100.0 }).sum()
        };
        let answers: Vec<Value> = (0..20)
            .map(|_| {
                let a = rng.below(10) as usize;
                let b = (a + 1 + rng.below(9) as usize) % 10;
                let d = 10.0 * (utility(&options[a].1) - utility(&options[b].1));
                let choice = if rng.next_f64() < 1.0 / (1.0 + (-d).exp()) { "a" } else { "b" };
                json!({"a": options[a].0, "b": options[b].0, "choice": choice})
            })
            .collect();
        let options: Vec<Value> = options
            .iter()
            .map(|(n, v)| json!({"name": n, "values": names.iter().zip(v).map(|(k, x)| (k.to_string(), json!(x))).collect::<serde_json::Map<_, _>>()}))
            .collect();
        json!({"attributes": attributes, "options": options, "answers": answers, "particles": 10_000, "count": 3, "seed": seed})
    }
}

/// Picks an observed treatment `V{n/2 - k}` (smallest `k` that works) and an observed outcome
/// among its descendants, chosen by `seed`. Nodes are `V0..V{n-1}` in topological order.
fn pick_pair(n: usize, edges: &[[String; 2]], latent: &[String], seed: u64) -> (usize, usize) {
    let index = |name: &str| name.strip_prefix('V').and_then(|i| i.parse::<usize>().ok()).filter(|&i| i < n);
    let mut children = vec![Vec::new(); n];
    for [a, b] in edges {
        if let (Some(a), Some(b)) = (index(a), index(b)) {
            children[a].push(b);
        }
    }
    let mut is_latent = vec![false; n];
    for name in latent {
        if let Some(i) = index(name) {
            is_latent[i] = true;
        }
    }
    let mut rng = SplitMix64::new(seed ^ 0x005e_ed0f_7a11);
    for t in (0..=n / 2).rev() {
        if is_latent[t] {
            continue;
        }
        let mut seen = vec![false; n];
        let mut stack = vec![t];
        let mut descendants = Vec::new();
        while let Some(v) = stack.pop() {
            for &c in &children[v] {
                if !seen[c] {
                    seen[c] = true;
                    stack.push(c);
                    if !is_latent[c] {
                        descendants.push(c);
                    }
                }
            }
        }
        if !descendants.is_empty() {
            descendants.sort_unstable();
            let pick = rng.below(descendants.len() as u64) as usize;
            return (t, descendants[pick]);
        }
    }
    (n / 2, n - 1)
}

/// One request ready to send.
#[derive(Debug, Clone)]
struct Planned {
    method: &'static str,
    target: String,
    body: Bytes,
}

fn plan(mix: &dyn Mix, base_path: &str, method: BenchMethod, seed: u64) -> Planned {
    let json = serde_json::to_vec(&mix.request(seed)).unwrap_or_default();
    let path = format!("{base_path}{}", mix.route());
    match method {
        BenchMethod::Post => Planned { method: "POST", target: path, body: Bytes::from(json) },
        BenchMethod::Get => Planned {
            method: "GET",
            target: format!("{path}?q={}", isl_service::encode_query(&json)),
            body: Bytes::new(),
        },
    }
}

/// Latencies in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// `X-Cache` outcomes seen.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CacheOutcomes {
    /// `X-Cache: hit`.
    pub hit: u64,
    /// `X-Cache: miss`.
    pub miss: u64,
    /// `X-Cache: coalesced`.
    pub coalesced: u64,
    /// Share of responses with an `X-Cache` header that were hits.
    pub hit_rate: f64,
}

/// The bench report (`--json` prints it as is).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Mix name.
    pub mix: String,
    /// Route path.
    pub route: String,
    /// Scenario.
    pub scenario: String,
    /// HTTP method.
    pub method: String,
    /// Server URL.
    pub url: String,
    /// Connections used.
    pub concurrency: usize,
    /// Measured requests sent.
    pub requests: usize,
    /// Warm-up requests sent before measuring.
    pub warmup: usize,
    /// First seed.
    pub seed: u64,
    /// Responses with 2xx or 304.
    pub ok: u64,
    /// Non-2xx/304 responses plus transport failures.
    pub errors: u64,
    /// Requests that got no response (connection errors, timeouts).
    pub transport_errors: u64,
    /// Responses by status.
    pub status_counts: BTreeMap<u16, u64>,
    /// Wall time of the measured phase, seconds.
    pub duration_s: f64,
    /// Measured requests per second.
    pub throughput_rps: f64,
    /// Latency of answered requests.
    pub latency_ms: Latency,
    /// Cache outcomes.
    pub cache: CacheOutcomes,
    /// Time spent inside the service by its own account (`Server-Timing`, all stages summed),
    /// for the responses that carried one: the rest of `latency_ms` is transport and host.
    pub server_time_ms: Option<Latency>,
    /// Mean of each `Server-Timing` stage over the responses that carried it, in ms.
    pub server_stage_mean_ms: BTreeMap<String, f64>,
    /// The P95 SLA asked for, if any.
    pub sla_p95_ms: Option<f64>,
    /// Whether P95 met the SLA (true without one).
    pub sla_ok: bool,
}

struct WorkerStats {
    hist: Histogram<u64>,
    /// Server-side time (µs) from `Server-Timing`.
    server_hist: Histogram<u64>,
    /// Per stage: (sum of ms, responses).
    stages: BTreeMap<String, (f64, u64)>,
    statuses: BTreeMap<u16, u64>,
    hit: u64,
    miss: u64,
    coalesced: u64,
    transport_errors: u64,
}

fn new_histogram() -> Result<Histogram<u64>, HostError> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| HostError::Usage(e.to_string()))
}

/// Runs `isl bench` and prints the report; the exit code says whether the SLA held.
pub fn run(args: &BenchArgs) -> Result<ExitCode, HostError> {
    if args.print_requests {
        let mix = args.mix.mix();
        let seed = args.seed.unwrap_or(1);
        let mut out = std::io::stdout().lock();
        for i in 0..args.requests as u64 {
            let line =
                serde_json::to_string(&mix.request(seed.wrapping_add(args.warmup as u64 + i))).unwrap_or_default();
            if writeln!(out, "{line}").is_err() {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(HostError::Runtime)?;
    let report = runtime.block_on(execute(args))?;
    let text =
        if args.json { serde_json::to_string_pretty(&report).unwrap_or_default() + "\n" } else { render_text(&report) };
    // A closed stdout (`| head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if !report.sla_ok {
        eprintln!(
            "isl bench: P95 {:.3} ms exceeds the SLA of {:.3} ms",
            report.latency_ms.p95,
            args.sla_p95_ms.unwrap_or(0.0)
        );
        return Ok(ExitCode::FAILURE);
    }
    if report.requests > 0 && report.ok == 0 {
        eprintln!("isl bench: no request succeeded");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The human-readable report.
pub fn render_text(r: &Report) -> String {
    let l = &r.latency_ms;
    let statuses: Vec<String> = r.status_counts.iter().map(|(s, n)| format!("{s}: {n}")).collect();
    let server = match &r.server_time_ms {
        Some(t) => {
            let stages: Vec<String> = r.server_stage_mean_ms.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
            format!(
                "\x20 server     p50 {:.3} ms  p95 {:.3} (Server-Timing means: {})\n",
                t.p50,
                t.p95,
                stages.join(", ")
            )
        }
        None => String::new(),
    };
    format!(
        "isl bench: {} {} {} ({}), {} connection(s)\n\
         \x20 requests   {} measured, {} warm-up, {} ok, {} errors ({} transport)\n\
         \x20 latency    mean {:.3} ms  p50 {:.3}  p95 {:.3}  p99 {:.3}  max {:.3}\n\
         \x20 throughput {:.1} req/s over {:.3} s\n\
         \x20 cache      hit rate {:.1}% (hit {}, miss {}, coalesced {})\n\
         \x20 statuses   {}\n",
        r.scenario,
        r.method,
        r.route,
        r.mix,
        r.concurrency,
        r.requests,
        r.warmup,
        r.ok,
        r.errors,
        r.transport_errors,
        l.mean,
        l.p50,
        l.p95,
        l.p99,
        l.max,
        r.throughput_rps,
        r.duration_s,
        r.cache.hit_rate * 100.0,
        r.cache.hit,
        r.cache.miss,
        r.cache.coalesced,
        statuses.join(", ")
    ) + &server
}

/// Splits `http://host:port/prefix` into `host:port` and the path prefix.
fn parse_url(url: &str) -> Result<(String, String), HostError> {
    let bad = |reason: &str| HostError::Url { url: url.to_string(), reason: reason.to_string() };
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| bad(&e.to_string()))?;
    if uri.scheme_str() != Some("http") {
        return Err(bad("only http:// is supported"));
    }
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    let host_port = match authority.port_u16() {
        Some(_) => authority.as_str().to_string(),
        None => format!("{}:80", authority.host()),
    };
    Ok((host_port, uri.path().trim_end_matches('/').to_string()))
}

/// Generates the requests, runs warm-up and the measured phase, and builds the report.
pub async fn execute(args: &BenchArgs) -> Result<Report, HostError> {
    let (authority, base_path) = parse_url(&args.url)?;
    let mix = args.mix.mix();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
    });
    let concurrency = if args.scenario.sequential() { 1 } else { args.concurrency.max(1) };
    let (warmup, measured): (Vec<Planned>, Vec<Planned>) = if args.scenario.cached() {
        let one = plan(mix.as_ref(), &base_path, args.method, seed);
        (vec![one.clone(); args.warmup.max(1)], vec![one; args.requests])
    } else {
        let w = (0..args.warmup as u64).map(|i| plan(mix.as_ref(), &base_path, args.method, seed.wrapping_add(i)));
        let m = (0..args.requests as u64)
            .map(|i| plan(mix.as_ref(), &base_path, args.method, seed.wrapping_add(args.warmup as u64 + i)));
        (w.collect(), m.collect())
    };
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let hidden = ProgressBar::hidden();
    phase(&authority, Arc::new(warmup), concurrency, timeout, &hidden).await?;

    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(measured.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}") {
            bar.set_style(style);
        }
        bar
    };
    let started = Instant::now();
    let stats = phase(&authority, Arc::new(measured), concurrency, timeout, &bar).await?;
    let duration = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let mut hist = new_histogram()?;
    let mut server_hist = new_histogram()?;
    let mut stages: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    let mut statuses = BTreeMap::new();
    let (mut hit, mut miss, mut coalesced, mut transport_errors) = (0, 0, 0, 0);
    for s in stats {
        hist.add(&s.hist).map_err(|e| HostError::Client(e.to_string()))?;
        server_hist.add(&s.server_hist).map_err(|e| HostError::Client(e.to_string()))?;
        for (stage, (sum, n)) in s.stages {
            let e = stages.entry(stage).or_insert((0.0, 0));
            e.0 += sum;
            e.1 += n;
        }
        for (k, v) in s.statuses {
            *statuses.entry(k).or_insert(0) += v;
        }
        hit += s.hit;
        miss += s.miss;
        coalesced += s.coalesced;
        transport_errors += s.transport_errors;
    }
    let ok: u64 = statuses.iter().filter(|(s, _)| (200..300).contains(*s) || **s == 304).map(|(_, n)| n).sum();
    let answered: u64 = statuses.values().sum();
    let ms = |us: u64| us as f64 / 1000.0;
    let summary = |hist: &Histogram<u64>| Latency {
        mean: if hist.is_empty() { 0.0 } else { hist.mean() / 1000.0 },
        p50: ms(hist.value_at_quantile(0.5)),
        p95: ms(hist.value_at_quantile(0.95)),
        p99: ms(hist.value_at_quantile(0.99)),
        max: ms(hist.max()),
    };
    let latency = summary(&hist);
    let server_time_ms = (!server_hist.is_empty()).then(|| summary(&server_hist));
    let server_stage_mean_ms = stages.into_iter().map(|(k, (sum, n))| (k, sum / n.max(1) as f64)).collect();
    let with_cache = hit + miss + coalesced;
    let sla_ok = args.sla_p95_ms.is_none_or(|sla| latency.p95 <= sla);
    Ok(Report {
        mix: mix.name().to_string(),
        route: mix.route().to_string(),
        scenario: args.scenario.to_possible_value().map(|v| v.get_name().to_string()).unwrap_or_default(),
        method: args.method.to_possible_value().map(|v| v.get_name().to_uppercase()).unwrap_or_default(),
        url: args.url.clone(),
        concurrency,
        requests: args.requests,
        warmup: if args.scenario.cached() { args.warmup.max(1) } else { args.warmup },
        seed,
        ok,
        errors: (answered - ok) + transport_errors,
        transport_errors,
        status_counts: statuses,
        duration_s: duration,
        throughput_rps: if duration > 0.0 { args.requests as f64 / duration } else { 0.0 },
        latency_ms: latency,
        cache: CacheOutcomes {
            hit,
            miss,
            coalesced,
            hit_rate: if with_cache > 0 { hit as f64 / with_cache as f64 } else { 0.0 },
        },
        server_time_ms,
        server_stage_mean_ms,
        sla_p95_ms: args.sla_p95_ms,
        sla_ok,
    })
}

/// Sends every request in `requests` over `concurrency` connections.
async fn phase(
    authority: &str,
    requests: Arc<Vec<Planned>>,
    concurrency: usize,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<Vec<WorkerStats>, HostError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.min(requests.len()) {
        let (authority, requests, next, bar) = (authority.to_string(), requests.clone(), next.clone(), bar.clone());
        tasks.push(tokio::spawn(async move { worker(&authority, &requests, &next, timeout, &bar).await }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.map_err(|e| HostError::Client(format!("worker failed: {e}")))??);
    }
    Ok(out)
}

async fn worker(
    authority: &str,
    requests: &[Planned],
    next: &AtomicUsize,
    timeout: Duration,
    bar: &ProgressBar,
) -> Result<WorkerStats, HostError> {
    let mut stats = WorkerStats {
        hist: new_histogram()?,
        server_hist: new_histogram()?,
        stages: BTreeMap::new(),
        statuses: BTreeMap::new(),
        hit: 0,
        miss: 0,
        coalesced: 0,
        transport_errors: 0,
    };
    let mut conn = Connection::connect(authority).await?;
    let json_headers: [(&str, &str); 1] = [("content-type", "application/json")];
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        if !conn.is_open() {
            conn = Connection::connect(authority).await?;
        }
        let headers: &[(&str, &str)] = if req.method == "POST" { &json_headers } else { &[] };
        let t = Instant::now();
        let result = tokio::time::timeout(timeout, conn.send(req.method, &req.target, headers, req.body.clone())).await;
        let elapsed = t.elapsed();
        match result {
            Ok(Ok(resp)) => {
                stats.hist.saturating_record((elapsed.as_micros() as u64).max(1));
                *stats.statuses.entry(resp.status).or_insert(0) += 1;
                match resp.header("x-cache") {
                    Some("hit") => stats.hit += 1,
                    Some("miss") => stats.miss += 1,
                    Some("coalesced") => stats.coalesced += 1,
                    _ => {}
                }
                if let Some(timing) = resp.header("server-timing") {
                    let parsed = parse_server_timing(timing);
                    let total: f64 = parsed.iter().map(|(_, ms)| ms).sum();
                    stats.server_hist.saturating_record(((total * 1000.0) as u64).max(1));
                    for (stage, ms) in parsed {
                        let e = stats.stages.entry(stage.to_string()).or_insert((0.0, 0));
                        e.0 += ms;
                        e.1 += 1;
                    }
                }
            }
            Ok(Err(_)) | Err(_) => {
                stats.transport_errors += 1;
                // The connection may be broken or mid-response: start a fresh one.
                conn = Connection::connect(authority).await?;
            }
        }
        bar.inc(1);
    }
    Ok(stats)
}

/// The `(name, dur in ms)` entries of a `Server-Timing` header (`decode;dur=0.1, compute;dur=2`);
/// entries without a readable `dur` are skipped.
fn parse_server_timing(value: &str) -> Vec<(&str, f64)> {
    value
        .split(',')
        .filter_map(|entry| {
            let mut parts = entry.split(';').map(str::trim);
            let name = parts.next().filter(|n| !n.is_empty())?;
            let dur = parts.find_map(|p| p.strip_prefix("dur="))?.parse::<f64>().ok()?;
            dur.is_finite().then_some((name, dur))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_entries() {
        let parsed =
            parse_server_timing("decode;dur=0.096, compute;dur=0.072,encode;desc=\"x\";dur=0.013, cache, bad;dur=x");
        assert_eq!(parsed, vec![("decode", 0.096), ("compute", 0.072), ("encode", 0.013)]);
        assert!(parse_server_timing("").is_empty());
    }

    #[test]
    fn validate_mix_picks_a_downstream_observed_outcome() {
        let mix = ValidateMix { nodes: 200 };
        for seed in 0..20 {
            let req = mix.request(seed);
            let t: usize = req["treatment"].as_str().unwrap()[1..].parse().unwrap();
            let o: usize = req["outcome"].as_str().unwrap()[1..].parse().unwrap();
            assert!(t <= 100 && o > t, "{t} {o}");
            let latent: Vec<String> = serde_json::from_value(req["dag"]["latent"].clone()).unwrap();
            assert!(!latent.contains(&format!("V{t}")) && !latent.contains(&format!("V{o}")));
            // Deterministic per seed, distinct across seeds.
            assert_eq!(req, mix.request(seed));
            assert_ne!(req, mix.request(seed + 1));
        }
    }

    #[test]
    fn monte_carlo_mixes_are_valid_distinct_requests() {
        let service = isl_service::Service::new(
            isl_service::Config::default(),
            std::sync::Arc::new(isl_service::ManualClock::new(0)),
        );
        for kind in
            [MixKind::Counterfactual10, MixKind::Sensitivity10, MixKind::Preferences5, MixKind::Counterfactual30x1e8]
        {
            let mix = kind.mix();
            let (a, b) = (mix.request(1), mix.request(2));
            assert_ne!(a, b);
            assert_eq!(a, mix.request(1));
            let mut small = a.clone();
            if small.get("samples").is_some() {
                small["samples"] = json!(2000);
            }
            let resp =
                service.handle(isl_service::Request::post_json(mix.route(), serde_json::to_vec(&small).unwrap()));
            assert_eq!(resp.status, 200, "{}: {}", mix.name(), String::from_utf8_lossy(&resp.body));
        }
        let model = linear_model(30, 7);
        assert_eq!(model["nodes"].as_array().unwrap().len(), 30);
    }

    #[test]
    fn model_mixes_are_distinct_requests_and_the_forecast_one_is_answered() {
        for kind in [MixKind::Forecast30, MixKind::Verify5x10, MixKind::Embed8, MixKind::Nli8] {
            let mix = kind.mix();
            assert_eq!(mix.request(3), mix.request(3));
            assert_ne!(mix.request(3), mix.request(4), "{}", mix.name());
        }
        let registry = isl_models::Registry::new(isl_models::RegistryConfig::new("/nonexistent"));
        let req: isl_models::ForecastRequest = serde_json::from_value(MixKind::Forecast30.mix().request(5)).unwrap();
        let answer = isl_models::api::forecast(&registry, &req, &isl_models::ModelLimits::default()).unwrap();
        assert_eq!(answer.forecast.len(), 30);
    }

    #[test]
    fn urls() {
        assert_eq!(parse_url("http://127.0.0.1:8080").unwrap(), ("127.0.0.1:8080".into(), String::new()));
        assert_eq!(parse_url("http://localhost/api/").unwrap(), ("localhost:80".into(), "/api".into()));
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("::").is_err());
    }
}
