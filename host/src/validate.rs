//! `isl validate FILE`, `isl counterfactual FILE`, `isl sensitivity FILE`: one request through
//! the service directly, no server.

use std::io::{Read, Write};
use std::sync::Arc;

use isl_service::{Request, Service, SystemClock};

use crate::cli::ValidateArgs;
use crate::error::HostError;

/// Answers the `/v1/causal/validate` request in `args.file`; see [`run_route`].
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u16, HostError> {
    run_route("/v1/causal/validate", args, out)
}

/// Answers the request in `args.file` (or stdin for `-`) on the compute route `path`, writes the
/// JSON body and a newline to `out`, and returns the HTTP status the server would have answered.
pub fn run_route(path: &str, args: &ValidateArgs, out: &mut dyn Write) -> Result<u16, HostError> {
    let body = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| HostError::io("reading stdin", e))?;
        buf
    } else {
        std::fs::read(&args.file).map_err(|e| HostError::io(format!("reading {}", args.file.display()), e))?
    };
    let service = Service::new(args.service.to_config(), Arc::new(SystemClock::new()));
    let response = service.handle(Request::post_json(path, body));
    out.write_all(&response.body).and_then(|()| out.write_all(b"\n")).map_err(|e| HostError::io("writing", e))?;
    Ok(response.status)
}
