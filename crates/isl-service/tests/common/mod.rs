//! What the service's contract tests share: a service on the system clock and the requests and
//! answers they send and read.
#![allow(dead_code)]

use std::sync::Arc;

use isl_service::{Config, Method, Request, Response, Service, SystemClock, encode_query};
use serde_json::Value;

/// A service with the default configuration.
pub fn service() -> Service {
    Service::new(Config::default(), Arc::new(SystemClock::new()))
}

/// A service with the default configuration changed by `f`.
pub fn service_with(f: impl FnOnce(&mut Config)) -> Service {
    let mut config = Config::default();
    f(&mut config);
    Service::new(config, Arc::new(SystemClock::new()))
}

/// POSTs `body` as JSON to `path`.
pub fn post(s: &Service, path: &str, body: &Value) -> Response {
    s.handle(Request::post_json(path, serde_json::to_vec(body).unwrap()))
}

/// GETs `path` with `body` as `?q=` (unpadded base64url JSON).
pub fn get(s: &Service, path: &str, body: &Value) -> Response {
    let q = encode_query(&serde_json::to_vec(body).unwrap());
    s.handle(Request::new(Method::Get, path).with_query(format!("q={q}")))
}

/// The JSON body (panics, showing it, when it is not JSON).
pub fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", r.body))
}

/// A 200 answer's JSON.
pub fn ok(r: &Response) -> Value {
    assert_eq!(r.status, 200, "body: {}", String::from_utf8_lossy(&r.body));
    json_of(r)
}
