//! The host's error type.

/// Everything the `isl` commands can fail with (request-level failures are HTTP responses, not
/// errors).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading a file or stdin, or another I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Loading or running the edge component failed.
    #[error("edge: {0}")]
    Edge(String),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Server(std::io::Error),
    /// An HTTP client failure (bench).
    #[error("http client: {0}")]
    Client(String),
    /// A URL that cannot be used.
    #[error("invalid URL {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Building the async runtime failed.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// Bad command-line input that clap cannot catch.
    #[error("{0}")]
    Usage(String),
}

impl HostError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> HostError {
        HostError::Io { context: context.into(), source }
    }
}
