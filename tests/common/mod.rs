//! What the end-to-end tests share: a real `isl` process on an ephemeral port.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use bytes::Bytes;
use isl::client::{ClientResponse, Connection};

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
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
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
