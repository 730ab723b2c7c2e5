//! `isl validate FILE`: the validate route through the service directly, no server.

use std::io::{Read, Write};
use std::sync::Arc;

use isl_service::{Request, Service, SystemClock};

use crate::cli::ValidateArgs;
use crate::error::HostError;

/// Answers the request in `args.file` (or stdin for `-`), writes the JSON body and a newline to
/// `out`, and returns the HTTP status the server would have answered.
pub fn run(args: &ValidateArgs, out: &mut dyn Write) -> Result<u16, HostError> {
    let body = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map_err(|e| HostError::io("reading stdin", e))?;
        buf
    } else {
        std::fs::read(&args.file).map_err(|e| HostError::io(format!("reading {}", args.file.display()), e))?
    };
    let service = Service::new(args.service.to_config(), Arc::new(SystemClock::new()));
    let response = service.handle(Request::post_json("/v1/causal/validate", body));
    out.write_all(&response.body).and_then(|()| out.write_all(b"\n")).map_err(|e| HostError::io("writing", e))?;
    Ok(response.status)
}
