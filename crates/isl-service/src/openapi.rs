//! The OpenAPI 3.1 document of the HTTP contract, served at `/openapi.json`.

/// The OpenAPI 3.1 document (static JSON).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_openapi_31() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    }
}
