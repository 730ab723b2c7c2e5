//! Request bodies for both transports: read whole, never past a limit, and an oversized body
//! drained so that the client reads its 413.
//!
//! A server that answers 413 and closes while the client is still sending makes the client's
//! kernel see unread data arrive on a closed socket: the server's kernel answers with a reset,
//! and a client that writes its whole body before reading (Python's `urllib` and `requests`, most
//! HTTP libraries) gets "connection reset" instead of the JSON. So the rest of an oversized body
//! is read and dropped, as nginx's lingering close does, up to [`Drain::max_bytes`] and for at
//! most [`Drain::max_time`]; a body drained to its end leaves the connection reusable, and one
//! cut short gets `Connection: close`. A client that sent `Expect: 100-continue` has not sent its
//! body: it gets the 413 at once and nothing is read.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use isl_service::ServiceError;

/// How much of an oversized body is read and dropped before the 413 goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// The most bytes dropped past the limit (0: none, answer at once).
    pub max_bytes: u64,
    /// The longest time spent dropping them.
    pub max_time: Duration,
}

/// An oversized body's 413 and whether the connection must close (the body was not read to its
/// end, so the bytes still coming would be taken as the next request).
#[derive(Debug)]
pub struct TooLarge {
    /// The 413 error.
    pub error: ServiceError,
    /// `Connection: close` is due.
    pub close: bool,
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Over the limit (413).
    TooLarge(TooLarge),
    /// The client sent a broken body (400; nobody reads it when the client went away).
    Broken(ServiceError),
}

/// The declared `Content-Length`, when it is over `limit`: the 413 to answer before reading.
pub fn declared_too_large(headers: &hyper::HeaderMap, limit: usize) -> Option<ServiceError> {
    let declared = headers.get(hyper::header::CONTENT_LENGTH)?.to_str().ok()?.parse::<u64>().ok()?;
    (declared > limit as u64).then_some(ServiceError::PayloadTooLarge { size: declared, limit: limit as u64 })
}

/// Whether the client waits for `100 Continue` before sending its body.
pub fn expects_continue(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(hyper::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// Reads a whole body of at most `limit` bytes. Over the limit — declared in the headers or
/// found while reading — the rest is drained as `drain` allows and the answer is the 413 (with
/// whether the connection must close).
pub async fn read<B>(headers: &hyper::HeaderMap, body: B, limit: usize, drain: Drain) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut body = std::pin::pin!(body);
    if let Some(error) = declared_too_large(headers, limit) {
        // Nothing was sent yet when the client waits for 100 Continue (hyper sends it only
        // once the body is polled): answer at once; the connection stays clean.
        if expects_continue(headers) {
            return Err(BodyError::TooLarge(TooLarge { error, close: false }));
        }
        let ended = discard(body.as_mut(), drain).await;
        return Err(BodyError::TooLarge(TooLarge { error, close: !ended }));
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.as_mut().frame().await {
        let frame = frame.map_err(|e| {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            BodyError::Broken(ServiceError::MalformedJson {
                message: format!("reading the body: {e}"),
                line: 0,
                column: 0,
            })
        })?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.len() + data.len() > limit {
            let size = (buf.len() + data.len()) as u64;
            drop(buf);
            let ended = discard(body.as_mut(), drain).await;
            let error = ServiceError::PayloadTooLarge { size, limit: limit as u64 };
            return Err(BodyError::TooLarge(TooLarge { error, close: !ended }));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and drops the rest of `body` within `drain`'s bounds; true when it reached the end.
async fn discard<B>(mut body: std::pin::Pin<&mut B>, drain: Drain) -> bool
where
    B: Body<Data = Bytes>,
{
    if drain.max_bytes == 0 {
        return body.is_end_stream();
    }
    let mut dropped = 0u64;
    let read_all = async {
        while let Some(frame) = body.as_mut().frame().await {
            let Ok(frame) = frame else { return false };
            if let Ok(data) = frame.into_data() {
                dropped += data.len() as u64;
                if dropped > drain.max_bytes {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(drain.max_time, read_all).await.unwrap_or(false)
}

/// A streamed response body: each chunk a channel delivers is one frame; the body ends when the
/// sender is dropped. Dropping the body (the client went away) closes the channel, which is
/// how producers notice a disconnect.
pub enum ChannelBody {
    /// From a bounded channel (the producer waits when the client reads slowly).
    Bounded(tokio::sync::mpsc::Receiver<Bytes>),
    /// From an unbounded channel (a blocking producer that must never wait).
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<Bytes>),
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let next = match &mut *self {
            ChannelBody::Bounded(rx) => rx.poll_recv(cx),
            ChannelBody::Unbounded(rx) => rx.poll_recv(cx),
        };
        next.map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}
