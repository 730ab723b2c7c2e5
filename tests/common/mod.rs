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

/// One HTTP/1.1 response read off a blocking socket: status, lower-case headers, body.
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (by its Content-Length; responses here are never chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics, showing it, when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

/// Reads one response from `stream` as a client that sent its whole request first would:
/// the head up to the blank line, then Content-Length bytes. Panics on a reset or a timeout.
pub fn read_raw_response(stream: &mut std::net::TcpStream) -> RawResponse {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap_or_else(|e| panic!("reading the head after {buf:?}: {e}"));
        assert!(n == 1, "the connection closed before the head ended: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    let mut body = vec![0; length];
    stream.read_exact(&mut body).unwrap_or_else(|e| panic!("reading the body after {head}: {e}"));
    RawResponse { status, headers, body }
}

/// An oversized body that a server answering early cannot hide in socket buffers: a client
/// writing it whole sees the reset unless the server reads it (32 MiB, under the default
/// `--drain-body-bytes` of 64 MiB).
pub const OVERSIZED_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Writes a POST of `OVERSIZED_BODY_BYTES` to `addr` whole, then reads the answer, reporting a
/// transport failure instead of panicking.
pub fn write_oversized_body_first(addr: &str, path: &str) -> Result<RawResponse, String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {OVERSIZED_BODY_BYTES}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(&vec![b' '; OVERSIZED_BODY_BYTES]).map_err(|e| format!("writing the body: {e}"))?;
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_raw_response(&mut s)));
    read.map_err(|_| "reading the answer failed".to_string())
}

/// The oversized-body contract on a server whose body limit is the default 1 MiB (`isl serve`
/// and `isl edge` alike): clients that write their whole body before reading — as Python's
/// `urllib` and `requests` do — read the 413 JSON, not a reset, whether the size was declared
/// or found while reading a chunked body; the connection then serves the next request; and a
/// client that waits for `100 Continue` gets the 413 without sending anything.
pub fn check_oversized_bodies_get_their_413(addr: &str, path: &str, next: &[u8]) {
    use std::io::Write;
    // Larger than loopback's socket buffers (which can absorb a few MB and hide the reset).
    let big = vec![b' '; OVERSIZED_BODY_BYTES];
    // Declared: Content-Length 3 MiB, written whole before reading, then a second request.
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(&big).expect("the whole body goes out (the server reads it)");
    let r = read_raw_response(&mut s);
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert_eq!(r.json()["error"]["details"]["size"], big.len() as u64);
    assert_eq!(r.header("connection"), None, "drained to its end: the connection stays open");
    s.write_all(next).expect("the next request");
    let again = read_raw_response(&mut s);
    assert_eq!(again.status, 200, "{}", String::from_utf8_lossy(&again.body));

    // Chunked, no declared size: found over the limit while reading.
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("head");
    for chunk in big.chunks(64 * 1024) {
        s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).expect("chunk size");
        s.write_all(chunk).expect("chunk");
        s.write_all(b"\r\n").expect("chunk end");
    }
    s.write_all(b"0\r\n\r\n").expect("last chunk");
    let r = read_raw_response(&mut s);
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    s.write_all(next).expect("the next request");
    assert_eq!(read_raw_response(&mut s).status, 200);

    // Expect: 100-continue: the 413 comes before any byte of the body is sent.
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        big.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let r = read_raw_response(&mut s);
    assert_eq!(r.status, 413, "no 100 Continue first: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
}
