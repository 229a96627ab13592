//! Idempotency tokens for `StopPipelineExecution`.
//!
//! A token derived from the trigger's own identity (an EventBridge event id, an
//! SNS MessageId, an alarm's ARN and state time, an HTTP request id) and the
//! execution ARN: a redelivered event yields the same token, so SageMaker
//! completes the stop at most once, and two targets never share a token. The
//! raw id is never used as the token: an HTTP API request id can be shorter than
//! the 32 characters SageMaker requires.

use sha2::{Digest, Sha256};

/// SageMaker's bounds on `ClientRequestToken`.
pub const MIN_TOKEN_LEN: usize = 32;
pub const MAX_TOKEN_LEN: usize = 128;

/// What every derived token starts with. A caller's own token may not: the
/// guard's tokens derive from public inputs (the execution alone), and a
/// caller allowed to stop one execution could otherwise send the guard's
/// token for another as theirs, and SageMaker would refuse the guard's stop
/// of that execution for as long as it remembers the token.
pub const DERIVED_PREFIX: &str = "stopper-";

/// `stopper-` and 64 lowercase hex digits (72 characters), deterministic in
/// (identity, arn).
pub fn derive(identity: &str, execution_arn: &str) -> String {
    let mut hasher = Sha256::new();
    // Domain-separated and length-prefixed, so ("ab", "c") and ("a", "bc") differ.
    hasher.update(b"sagemaker-pipeline-stopper/v1\0");
    hasher.update((identity.len() as u64).to_be_bytes());
    hasher.update(identity.as_bytes());
    hasher.update(execution_arn.as_bytes());
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{DERIVED_PREFIX}{hex}")
}

/// Whether a token is in the derived tokens' space, which callers may not use.
pub fn is_reserved(token: &str) -> bool {
    token.starts_with(DERIVED_PREFIX)
}

/// Whether a caller-given token fits SageMaker's constraints.
pub fn is_valid(token: &str) -> bool {
    (MIN_TOKEN_LEN..=MAX_TOKEN_LEN).contains(&token.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_are_deterministic_valid_and_distinct() {
        let arn = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x";
        let t = derive("evt-1", arn);
        assert_eq!(t, derive("evt-1", arn));
        assert!(is_valid(&t) && t.len() == 72 && is_reserved(&t));
        assert_ne!(t, derive("evt-2", arn));
        assert_ne!(t, derive("evt-1", &arn.replace("/x", "/y")));
        assert_ne!(derive("ab", "c"), derive("a", "bc"));
    }

    #[test]
    fn only_the_derived_prefix_is_reserved() {
        assert!(is_reserved("stopper-0123456789abcdef0123456789"));
        assert!(!is_reserved("Stopper-0123456789abcdef0123456789"));
        assert!(!is_reserved("my-stopper-0123456789abcdef012345"));
    }

    #[test]
    fn token_bounds() {
        assert!(!is_valid(&"a".repeat(31)));
        assert!(is_valid(&"a".repeat(32)));
        assert!(is_valid(&"a".repeat(128)));
        assert!(!is_valid(&"a".repeat(129)));
    }
}
