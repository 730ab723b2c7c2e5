//! A minimal HTTP/1.1 keep-alive client over one TCP connection (hyper 1), for the load
//! generator and the tests.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::HostError;

/// A response, fully read.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl ClientResponse {
    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
}

impl Connection {
    /// Connects to `authority` (`host:port`).
    pub async fn connect(authority: &str) -> Result<Connection, HostError> {
        let stream =
            TcpStream::connect(authority).await.map_err(|e| HostError::io(format!("connecting to {authority}"), e))?;
        stream.set_nodelay(true).map_err(|e| HostError::io("setting TCP_NODELAY", e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HostError::Client(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the connection closes; errors surface on the next send.
            let _ = conn.await;
        });
        Ok(Connection { sender, authority: authority.to_string() })
    }

    /// The `host:port` this connection talks to.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether the connection can still send requests.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends a request and reads the whole response. `path_and_query` starts with `/`;
    /// `headers` are added after `Host`.
    pub async fn send(
        &mut self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<ClientResponse, HostError> {
        let mut builder = hyper::Request::builder().method(method).uri(path_and_query).header("host", &self.authority);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Full::new(body)).map_err(|e| HostError::Client(e.to_string()))?;
        self.sender.ready().await.map_err(|e| HostError::Client(e.to_string()))?;
        let response = self.sender.send_request(request).await.map_err(|e| HostError::Client(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| HostError::Client(e.to_string()))?.to_bytes();
        Ok(ClientResponse { status: parts.status.as_u16(), headers: parts.headers, body })
    }
}
