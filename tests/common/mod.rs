//! What the end-to-end tests share: a real `isl` process on an ephemeral port.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use std::time::Duration;

use bytes::Bytes;
use isl::client::{ClientResponse, Connection};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_isl");

/// A running `isl` server process (`isl serve` or `isl edge`), killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Runs `isl ARGS` (which must bind `127.0.0.1:0`) and waits for its `listening on` line.
    /// Monte Carlo runs on the CPU (`ISL_BACKEND=cpu`: no GPU opened and measured per server)
    /// and missing models are not fetched (`ISL_FETCH_MODELS=false`: the model tests fetch them
    /// once, themselves) unless `env` or `args` say otherwise.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .env("ISL_BACKEND", "cpu")
            .env("ISL_FETCH_MODELS", "false")
            .envs(env.iter().copied())
            .env("ISL_LOG", std::env::var("TEST_ISL_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn isl");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line from isl {args:?}: {line:?}"))
            .to_string();
        Server { child, addr, _stdout: stdout }
    }

    /// A fresh keep-alive connection.
    pub async fn conn(&self) -> Connection {
        Connection::connect(&self.addr).await.expect("connect")
    }

    /// Sends one request on a fresh connection and reads the whole response.
    pub async fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> ClientResponse {
        self.conn().await.send(method, target, headers, body.into()).await.expect("request")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the head and the first half of a POST body, leaving the request in flight.
pub async fn start_slow_request(addr: &str) -> (TcpStream, Vec<u8>) {
    let body = br#"{"dag": {"edges": [["Z","X"], ["Z","Y"], ["X","Y"]]}, "treatment": "X", "outcome": "Y"}"#.to_vec();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/causal/validate HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.unwrap();
    stream.flush().await.unwrap();
    (stream, body[half..].to_vec())
}

/// Sends the rest and reads the whole response (the server closes the connection).
pub async fn finish_slow_request(mut stream: TcpStream, rest: &[u8]) -> (u16, Value) {
    stream.write_all(rest).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or_else(|_| panic!("{text}")))
}

/// Starts a slow request that holds the server's only permit (`--max-concurrency 1`), proved by
/// a 429 on another connection; returns it with the rest of its body, and the 429. Retries when
/// the probe won the race for the permit (the slow request then got the 429 itself).
pub async fn hold_the_only_permit(server: &Server) -> (TcpStream, Vec<u8>, ClientResponse) {
    for _ in 0..50 {
        let (stream, rest) = start_slow_request(&server.addr).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = server.send("GET", "/health", &[], Bytes::new()).await;
        if r.status == 429 {
            return (stream, rest, r);
        }
        // Dropping the stream ends the slow request, whoever got the permit.
        drop(stream);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the slow request never held the permit");
}

/// The interface names a wasm component imports and exports, read through wasmtime (compiled
/// once per build into `test-precompiled/` beside it: the engine's configuration differs from
/// the edge host's, so its compiled form must not replace the host's).
pub fn component_interfaces(path: &std::path::Path) -> (Vec<String>, Vec<String>) {
    assert!(path.exists(), "{} is missing: build it first (scripts/test.sh does)", path.display());
    let engine = wasmtime::Engine::default();
    let dir = path.parent().expect("the component's folder").join("test-precompiled");
    std::fs::create_dir_all(&dir).expect("test-precompiled folder");
    let (loaded, _) = isl::edge::precompiled::load(&engine, path, Some(&dir)).expect("the component loads");
    let ty = loaded.component_type();
    let imports = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
    let exports = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
    (imports, exports)
}
