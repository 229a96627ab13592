//! Typed parses from JSON text, with errors that name the field at fault.

use serde::de::DeserializeOwned;

use crate::error::StopError;

/// Typed parse from JSON text, with the field at fault named.
pub(super) fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StopError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = crate::request::field_path(e.path());
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        StopError::validation(format!("not a valid {what}{at}: {}", e.inner()))
    })
}

/// Typed parse of an HTTP event's envelope. The error names where, never
/// what: serde quotes the offending value, and in an HTTP envelope that can
/// be a cookie, an `authorization` header or a token in a query string.
pub(super) fn parse_envelope<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StopError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        StopError::validation(format!(
            "not a valid {what} at {}: a value of the wrong type, or with characters a front end never sends \
             (the value is not quoted: it may be a credential)",
            crate::request::field_path(e.path())
        ))
    })
}
