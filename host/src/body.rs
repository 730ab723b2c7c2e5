//! Request bodies for both transports: read whole, never past a limit.

use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use isl_service::ServiceError;

/// The declared `Content-Length`, when it is over `limit`: the 413 to answer before reading.
pub fn declared_too_large(headers: &hyper::HeaderMap, limit: usize) -> Option<ServiceError> {
    let declared = headers.get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
    (declared > limit as u64).then_some(ServiceError::PayloadTooLarge { size: declared, limit: limit as u64 })
}

/// Reads a whole body of at most `limit` bytes: 413 past it, and a 400 naming the failure when
/// the client sends a broken body (nobody reads that answer when the client went away).
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, ServiceError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ServiceError::PayloadTooLarge { size: limit as u64 + 1, limit: limit as u64 })
        }
        Err(e) => Err(ServiceError::MalformedJson { message: format!("reading the body: {e}"), line: 0, column: 0 }),
    }
}
