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
        Command::Serve(args) => isl::serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Validate(args) => one_request("/v1/causal/validate", &args),
        Command::Counterfactual(args) => one_request("/v1/counterfactual", &args),
        Command::Sensitivity(args) => one_request("/v1/sensitivity", &args),
        Command::Bench(args) => isl::bench::run(&args),
        Command::Edge(args) => isl::edge::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isl: {e}");
            ExitCode::from(2)
        }
    }
}

/// One request from a file through the service: the JSON on stdout, success for a 2xx.
fn one_request(path: &str, args: &isl::cli::ValidateArgs) -> Result<ExitCode, isl::HostError> {
    isl::validate::run_route(path, args, &mut std::io::stdout().lock())
        .map(|status| if (200..300).contains(&status) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
