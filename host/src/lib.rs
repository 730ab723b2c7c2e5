//! The `isl` binary's library: the HTTP server over `isl_service`, the edge host (wasmtime), the
//! `validate` command, the load generator, and a small HTTP/1 client they and the tests share.

#![warn(missing_docs)]

pub mod bench;
pub mod bench_llm;
pub mod body;
pub mod cli;
pub mod client;
pub mod edge;
pub mod error;
pub mod gpu;
pub mod llm;
pub mod models;
pub mod serve;
pub mod validate;

pub use error::HostError;
