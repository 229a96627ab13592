//! Size caps on what is read, and the check against them.

use crate::error::StopError;

/// The largest alarm event read (CloudWatch alarm state changes on
/// EventBridge, alarm Lambda actions, SNS alarm notifications). A real one is
/// a few KB; this bounds the lists their decoding builds.
pub const MAX_ALARM_EVENT_BYTES: usize = 256 * 1024;
/// The largest SNS event read: SNS's limit on a message and its attributes is
/// 256 KB, and a message, escaped inside the event's JSON, can take up to 6
/// bytes per byte (`\u0000`). This bounds the records and attributes built.
pub const MAX_SNS_EVENT_BYTES: usize = 6 * 256 * 1024 + 64 * 1024;
/// The largest EventBridge event read: Lambda takes at most 1 MB in an
/// asynchronous invocation, which is how EventBridge delivers. This bounds
/// the `resources` built.
pub const MAX_EVENTBRIDGE_EVENT_BYTES: usize = 1024 * 1024;
/// The largest HTTP event read, not counting its body. API Gateway and
/// function URLs send at most 10 KB of request line and headers (twice over in
/// a REST event's `multiValueHeaders`) and a few KB of `requestContext`; the
/// rest of an event up to Lambda's 6 MB is the body. It also keeps each header
/// map under 24,576 names (about 218 KB of the shortest), past which the
/// `http` header map the events decode into panics.
pub const MAX_HTTP_ENVELOPE_BYTES: usize = 128 * 1024;
/// The longest caller identity kept for logs and the forced-step reason.
pub const MAX_CALLER_CHARS: usize = 256;
/// API Gateway gives an integration at most this long (HTTP APIs 30 s, REST
/// APIs 29 s by default) before it answers 503 itself; the function must
/// reply before then. Counted from the request's arrival at API Gateway.
pub const API_GATEWAY_TIMEOUT_MS: u64 = 29_000;

/// Refuses an event larger than its source ever sends.
pub(super) fn within(text: &str, limit: usize, what: &str) -> Result<(), StopError> {
    if text.len() > limit {
        return Err(StopError::validation(format!(
            "{what} of {} bytes is larger than any its source sends ({limit} bytes at most)",
            text.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caps in bytes, as their sources document them (SNS: 256 KB a
    /// message; Lambda: 1 MB an asynchronous event), written out here rather
    /// than recomputed from the same expressions.
    #[test]
    fn the_caps_are_the_documented_sizes() {
        assert_eq!(MAX_ALARM_EVENT_BYTES, 262_144);
        assert_eq!(MAX_SNS_EVENT_BYTES, 1_638_400);
        assert_eq!(MAX_EVENTBRIDGE_EVENT_BYTES, 1_048_576);
        assert_eq!(MAX_HTTP_ENVELOPE_BYTES, 131_072);
        assert!(within(&"x".repeat(10), 10, "t").is_ok());
        assert!(within(&"x".repeat(11), 10, "t").is_err());
    }
}
