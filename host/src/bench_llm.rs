//! `isl bench --llm`: seed 003's scenarios against any OpenAI-compatible server (isl or a peer
//! such as llama.cpp's): sequential uncached, sequential cached, concurrent N. Every request
//! streams `/v1/completions`, so time to first token is measured the same way on every server;
//! a fixed answer length comes from `max_tokens` with the end-of-sequence token banned
//! (`logit_bias`), which both isl and llama.cpp honour.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{BenchArgs, Scenario};
use crate::error::HostError;

/// Percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

fn percentiles(v: &mut [f64]) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    Percentiles { p50: at(0.5), p95: at(0.95), p99: at(0.99), max: v[v.len() - 1] }
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct LlmReport {
    /// The server.
    pub url: String,
    /// Scenario.
    pub scenario: String,
    /// Concurrent streams.
    pub concurrency: usize,
    /// Measured requests.
    pub requests: usize,
    /// Of which answered 200 with a whole stream.
    pub ok: usize,
    /// Prompt length asked for (approximate tokens).
    pub prompt_tokens: usize,
    /// `max_tokens` of each request.
    pub max_tokens: usize,
    /// Whole-request latency.
    pub latency_ms: Percentiles,
    /// Time to the first generated text.
    pub ttft_ms: Percentiles,
    /// Generated tokens (content chunks) per second, all streams together, over the run's wall time.
    pub aggregate_tokens_per_second: f64,
    /// Median over requests of (tokens - 1) / (last chunk - first chunk): one stream's decode speed.
    pub stream_tokens_per_second_p50: f64,
    /// The SLA (P95 of whole requests), in ms.
    pub sla_p95_ms: f64,
    /// Whether P95 met it.
    pub sla_ok: bool,
}

struct One {
    ok: bool,
    total: f64,
    ttft: f64,
    tokens: usize,
    decode_secs: f64,
}

/// A prompt of about `tokens` tokens, distinct for each `i`.
fn prompt(tokens: usize, i: u64) -> String {
    let mut s = format!("Report {i}. ");
    let words = [
        "the", "river", "flows", "past", "old", "stone", "mills", "and", "quiet", "fields", "toward", "a", "distant",
        "harbour", "town.",
    ];
    let mut k = i as usize;
    while s.split_whitespace().count() < tokens.saturating_sub(4) {
        s.push_str(words[k % words.len()]);
        s.push(' ');
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    s.push_str("Summary:");
    s
}

async fn one(authority: &str, path: &str, body: &[u8], timeout: Duration) -> One {
    let fail = One { ok: false, total: 0.0, ttft: 0.0, tokens: 0, decode_secs: 0.0 };
    let t0 = Instant::now();
    let run = async {
        let mut s = TcpStream::connect(authority).await.ok()?;
        s.set_nodelay(true).ok()?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\naccept: text/event-stream\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.ok()?;
        s.write_all(body).await.ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut scanned = 0;
        let mut first: Option<Instant> = None;
        let mut last = t0;
        let mut tokens = 0usize;
        let mut done = false;
        let mut status_ok = None;
        loop {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            if status_ok.is_none() && buf.len() >= 12 {
                status_ok = Some(buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200"));
            }
            // Complete `data: ...` lines since the last scan.
            while let Some(end) = buf[scanned..].iter().position(|&b| b == b'\n') {
                let line = &buf[scanned..scanned + end];
                scanned += end + 1;
                let Some(data) = line.strip_prefix(b"data: ") else { continue };
                let data = data.strip_suffix(b"\r").unwrap_or(data);
                if data == b"[DONE]" {
                    done = true;
                    continue;
                }
                let Ok(v) = serde_json::from_slice::<Value>(data) else { continue };
                let text =
                    v["choices"][0]["text"].as_str().or(v["choices"][0]["delta"]["content"].as_str()).unwrap_or("");
                if !text.is_empty() {
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = now;
                    tokens += 1;
                }
            }
            if done {
                break;
            }
        }
        let first = first?;
        Some(One {
            ok: status_ok == Some(true) && done,
            total: t0.elapsed().as_secs_f64() * 1e3,
            ttft: (first - t0).as_secs_f64() * 1e3,
            tokens,
            decode_secs: (last - first).as_secs_f64(),
        })
    };
    tokio::time::timeout(timeout, run).await.ok().flatten().unwrap_or(fail)
}

/// Runs the scenario and prints the report.
pub fn run(args: &BenchArgs) -> Result<ExitCode, HostError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(HostError::Runtime)?;
    let report = runtime.block_on(execute(args))?;
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
    } else {
        format!(
            "{} {} x{} ({} requests, {} ok; prompt ~{} tokens, {} new tokens each)\n  latency ms  P50 {:.1}  P95 {:.1}  P99 {:.1}  max {:.1}\n  TTFT ms     P50 {:.1}  P95 {:.1}  P99 {:.1}\n  tokens/s    aggregate {:.1}  per stream (P50) {:.1}\n  SLA P95 < {} ms: {}\n",
            report.url,
            report.scenario,
            report.concurrency,
            report.requests,
            report.ok,
            report.prompt_tokens,
            report.max_tokens,
            report.latency_ms.p50,
            report.latency_ms.p95,
            report.latency_ms.p99,
            report.latency_ms.max,
            report.ttft_ms.p50,
            report.ttft_ms.p95,
            report.ttft_ms.p99,
            report.aggregate_tokens_per_second,
            report.stream_tokens_per_second_p50,
            report.sla_p95_ms,
            if report.sla_ok { "met" } else { "NOT met" },
        )
    };
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    if report.ok == 0 {
        eprintln!("isl bench --llm: no request succeeded");
        return Ok(ExitCode::FAILURE);
    }
    Ok(if report.sla_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Measures the scenario.
pub async fn execute(args: &BenchArgs) -> Result<LlmReport, HostError> {
    let url = args.url.trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HostError::Url { url: url.into(), reason: "only http:// is supported".into() })?;
    let (authority, base) = match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), String::new()),
    };
    let authority = if authority.contains(':') { authority } else { format!("{authority}:80") };
    let path = format!("{base}/v1/completions");
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1)
    });
    let cached = args.scenario.cached();
    let conc = if matches!(args.scenario, Scenario::SequentialCached | Scenario::SequentialUncached) {
        1
    } else {
        args.concurrency.max(1)
    };
    let body = |i: u64| {
        let mut b = json!({
            "prompt": prompt(args.llm_prompt_tokens, if cached { seed } else { seed.wrapping_add(i) }),
            "max_tokens": args.llm_max_tokens, "temperature": 0, "stream": true,
            "logit_bias": {args.llm_eos_token.to_string(): -100},
        });
        if let Some(m) = &args.llm_model {
            b["model"] = json!(m);
        }
        serde_json::to_vec(&b).unwrap_or_default()
    };
    let timeout = Duration::from_secs(args.timeout_secs);
    for i in 0..args.warmup as u64 {
        let _ = one(&authority, &path, &body(u64::MAX - i), timeout).await;
    }
    if cached {
        let _ = one(&authority, &path, &body(0), timeout).await;
    }
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = args.requests as u64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let next = next.clone();
        let authority = authority.clone();
        let path = path.clone();
        let bodies: Vec<Vec<u8>> = (0..total).map(body).collect();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return out;
                }
                out.push(one(&authority, &path, &bodies[i as usize], timeout).await);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let wall = started.elapsed().as_secs_f64();
    let ok: Vec<&One> = all.iter().filter(|o| o.ok).collect();
    let mut lat: Vec<f64> = ok.iter().map(|o| o.total).collect();
    let mut ttft: Vec<f64> = ok.iter().map(|o| o.ttft).collect();
    let tokens: usize = ok.iter().map(|o| o.tokens).sum();
    let mut per: Vec<f64> = ok
        .iter()
        .filter(|o| o.tokens > 1 && o.decode_secs > 0.0)
        .map(|o| (o.tokens - 1) as f64 / o.decode_secs)
        .collect();
    per.sort_by(f64::total_cmp);
    let latency = percentiles(&mut lat);
    let sla = args.sla_p95_ms.unwrap_or(2000.0);
    Ok(LlmReport {
        url: args.url.clone(),
        scenario: format!("{:?}", args.scenario),
        concurrency: conc,
        requests: all.len(),
        ok: ok.len(),
        prompt_tokens: args.llm_prompt_tokens,
        max_tokens: args.llm_max_tokens,
        sla_ok: !ok.is_empty() && latency.p95 <= sla,
        latency_ms: latency,
        ttft_ms: percentiles(&mut ttft),
        aggregate_tokens_per_second: if wall > 0.0 { tokens as f64 / wall } else { 0.0 },
        stream_tokens_per_second_p50: per.get(per.len() / 2).copied().unwrap_or(0.0),
        sla_p95_ms: sla,
    })
}
