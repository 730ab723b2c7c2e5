//! The `isl` binary: `isl serve`, `isl validate FILE`, `isl counterfactual FILE`,
//! `isl sensitivity FILE`, `isl bench`, `isl edge`.

use std::process::ExitCode;

use clap::Parser;
use isl::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("ISL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = match cli.command {
        Command::Serve(args) => isl::serve::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => one_request("/v1/causal/validate", &args),
        Command::Counterfactual(args) => one_request("/v1/counterfactual", &args),
        Command::Sensitivity(args) => one_request("/v1/sensitivity", &args),
        Command::Bench(args) if args.llm => isl::bench_llm::run(&args),
        Command::Bench(args) => isl::bench::run(&args),
        Command::Edge(args) => isl::edge::run(args).map(|()| ExitCode::SUCCESS),
        Command::TuneBatch(args) => return tune_batch(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isl: {e}");
            ExitCode::from(2)
        }
    }
}

/// `isl tune-batch MODEL`: the sweep as a table (or JSON) on stdout.
fn tune_batch(args: &isl::cli::TuneArgs) -> ExitCode {
    match isl::models::tune_batch(args) {
        Ok(report) if args.json => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{}: batch-size sweep", report.model);
            println!("{:>6} {:>12} {:>10} {:>10} {:>10}", "batch", "items/s", "p50 ms", "p95 ms", "RSS MiB");
            for r in &report.rows {
                let rss = r.rss_bytes.map_or("-".to_string(), |b| format!("{:.0}", b as f64 / 1048576.0));
                println!(
                    "{:>6} {:>12.1} {:>10.2} {:>10.2} {:>10}",
                    r.batch_size, r.items_per_s, r.latency_ms_p50, r.latency_ms_p95, rss
                );
            }
            println!(
                "recommended: --batch-max {} (the smallest size within 5% of the best throughput)",
                report.recommended
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("isl tune-batch: {e}");
            ExitCode::from(2)
        }
    }
}

/// One request from a file through the service: the JSON on stdout, success for a 2xx.
fn one_request(path: &str, args: &isl::cli::ValidateArgs) -> Result<ExitCode, isl::HostError> {
    isl::validate::run_route(path, args, &mut std::io::stdout().lock())
        .map(|status| if (200..300).contains(&status) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
