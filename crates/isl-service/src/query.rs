//! The GET form of compute requests: `?q=` holding the JSON as base64url (unpadded; padded
//! accepted, percent-encoding tolerated).

use std::borrow::Cow;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::error::ServiceError;

/// base64url: unpadded when encoding, padding optional when decoding.
pub const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes a JSON request as the `q` parameter of a GET (unpadded base64url).
pub fn encode_query(json: &[u8]) -> String {
    BASE64URL.encode(json)
}

/// The raw value of the first `name` parameter of a query string.
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

fn percent_decode(s: &str) -> Result<Cow<'_, [u8]>, ServiceError> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s.as_bytes()));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            let byte = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ServiceError::InvalidBase64 { message: format!("bad percent-escape at offset {i}") })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(Cow::Owned(out))
}

/// Decodes the `q` parameter of `query` into request bytes, enforcing `limit` on the decoded size
/// (checked on the encoded length first, so oversized input is never decoded).
pub fn decode_query(query: Option<&str>, limit: usize) -> Result<Vec<u8>, ServiceError> {
    let q = query.and_then(|qs| query_param(qs, "q")).filter(|q| !q.is_empty()).ok_or(ServiceError::MissingQuery)?;
    let estimated = (q.len() as u64).saturating_mul(3) / 4;
    if estimated > limit as u64 + 3 {
        return Err(ServiceError::PayloadTooLarge { size: estimated, limit: limit as u64 });
    }
    let raw = percent_decode(q)?;
    let bytes = BASE64URL.decode(raw.as_ref()).map_err(|e| ServiceError::InvalidBase64 { message: e.to_string() })?;
    if bytes.len() > limit {
        return Err(ServiceError::PayloadTooLarge { size: bytes.len() as u64, limit: limit as u64 });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_padded_unpadded_and_percent_encoded() {
        let json = br#"{"a":1}"#;
        let q = encode_query(json);
        assert!(!q.contains('='));
        assert_eq!(decode_query(Some(&format!("x=1&q={q}")), 100).unwrap(), json);
        let padded = base64::engine::general_purpose::URL_SAFE.encode(json);
        assert!(padded.ends_with('='));
        assert_eq!(decode_query(Some(&format!("q={padded}")), 100).unwrap(), json);
        let escaped = padded.replace('=', "%3D");
        assert_eq!(decode_query(Some(&format!("q={escaped}")), 100).unwrap(), json);
    }

    #[test]
    fn errors() {
        assert_eq!(decode_query(None, 100), Err(ServiceError::MissingQuery));
        assert_eq!(decode_query(Some("q="), 100), Err(ServiceError::MissingQuery));
        assert_eq!(decode_query(Some("q=!!!"), 100).unwrap_err().status(), 400);
        assert_eq!(decode_query(Some("q=%zz"), 100).unwrap_err().status(), 400);
        let big = encode_query(&[b'x'; 200]);
        assert_eq!(decode_query(Some(&format!("q={big}")), 100).unwrap_err().status(), 413);
    }
}
