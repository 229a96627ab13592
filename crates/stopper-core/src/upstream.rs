//! What SageMaker's failures mean: an error class and a message in the
//! caller's terms. The error code decides the class; SageMaker's own free
//! text is never passed on (it can quote the request). `src/sagemaker.rs`
//! reads the code (or the kind of transport failure) off the SDK's error and
//! asks these.

use crate::error::{ErrorKind, StopError};

/// A failure before SageMaker answered with an error of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No answer within the SDK's timeouts.
    TimedOut,
    /// No connection could be made.
    Unreachable,
    /// The endpoint's certificate does not chain to a trusted root.
    Untrusted,
    /// An answer that could not be read.
    Unreadable,
    /// The request could not be built or sent.
    NotSent,
}

/// What SageMaker says, as a `ValidationException`, to a stop of an execution
/// that is not `Executing` (already `Stopping`, or ended). The code is shared
/// with real validation errors, so the message tells them apart, as Apache
/// Airflow's SageMaker hook does (docs/service-behaviour.md).
pub const NOT_EXECUTING: &str = "Only pipelines with 'Executing' status can be stopped";

/// The error SageMaker answered with: `modeled` is the class the operation's
/// model gives the error (if it models it), `code` its error code, `text` its
/// message (read only to recognise [`NOT_EXECUTING`], never passed on),
/// `target` what was asked about ("execution arn:...", "pipeline
/// nightly-training").
pub fn service_error(
    modeled: Option<ErrorKind>,
    code: &str,
    text: &str,
    target: &str,
) -> StopError {
    if code == "ValidationException" && text.contains(NOT_EXECUTING) {
        // A refusal for the execution's state, as a conflict is: the
        // decision looks the status up (`decide::after_conflict`).
        return StopError::new(
            ErrorKind::Conflict,
            format!("SageMaker refused to stop {target}: it is not Executing"),
        );
    }
    let kind = modeled.unwrap_or(match code {
        "ResourceNotFound" | "ResourceNotFoundException" => ErrorKind::NotFound,
        "ConflictException" => ErrorKind::Conflict,
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "AccessDeniedException" => ErrorKind::Forbidden,
        // Anything else is SageMaker's failure, `ValidationException`
        // included: SageMaker refusing a request we sent is an upstream
        // answer, not the caller's bad input (which never reaches SageMaker,
        // as `ValidationError` promises).
        _ => ErrorKind::Upstream,
    });
    let message = match kind {
        ErrorKind::NotFound => format!("SageMaker has no {target} in this account and region"),
        ErrorKind::Conflict => format!(
            "SageMaker refused the request for {target} in its current state (ConflictException)"
        ),
        ErrorKind::Throttled => format!(
            "SageMaker kept throttling requests for {target} after retries; try again later"
        ),
        ErrorKind::Forbidden => format!(
            "the function's role may not act on {target} (AccessDeniedException): check its IAM policy"
        ),
        _ if code == "ValidationException" => format!(
            "SageMaker rejected the request for {target} as invalid (ValidationException): a \
             ClientRequestToken reused for another execution, or a constraint this function does not check"
        ),
        _ if code.is_empty() => {
            format!("SageMaker failed on {target} with an unrecognised error")
        }
        _ => format!("SageMaker failed on {target} ({code})"),
    };
    StopError::new(kind, message)
}

/// A failure of the transport: SageMaker's state is unknown, so the classes
/// say whether a retry may help (`UpstreamUnavailable`) or not.
pub fn transport_error(failure: Transport, target: &str) -> StopError {
    match failure {
        Transport::TimedOut => StopError::new(
            ErrorKind::Unavailable,
            format!("SageMaker did not answer in time for {target}"),
        ),
        Transport::Unreachable => StopError::new(
            ErrorKind::Unavailable,
            format!("SageMaker could not be reached for {target}"),
        ),
        // A retry may help (another endpoint host, an interception that
        // ends); the operator is told how to trust a CA on purpose.
        Transport::Untrusted => StopError::new(
            ErrorKind::Unavailable,
            format!(
                "SageMaker's certificate is not trusted for {target}: to trust the CA of a custom endpoint \
                 or a TLS-inspecting proxy, set AWS_CA_BUNDLE to its PEM file"
            ),
        ),
        Transport::Unreadable => StopError::new(
            ErrorKind::Upstream,
            format!("SageMaker sent an unreadable response for {target}"),
        ),
        Transport::NotSent => StopError::new(
            ErrorKind::Upstream,
            format!("the request for {target} could not be made"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "execution arn:x";

    #[test]
    fn each_error_code_gets_its_class_and_a_message_in_the_callers_terms() {
        for (code, kind, message) in [
            (
                "ResourceNotFound",
                ErrorKind::NotFound,
                "SageMaker has no execution arn:x in this account and region",
            ),
            ("ResourceNotFoundException", ErrorKind::NotFound, "SageMaker has no execution arn:x in this account and region"),
            (
                "ConflictException",
                ErrorKind::Conflict,
                "SageMaker refused the request for execution arn:x in its current state (ConflictException)",
            ),
            ("ThrottlingException", ErrorKind::Throttled, "SageMaker kept throttling requests for execution arn:x after retries; try again later"),
            ("Throttling", ErrorKind::Throttled, "SageMaker kept throttling requests for execution arn:x after retries; try again later"),
            ("TooManyRequestsException", ErrorKind::Throttled, "SageMaker kept throttling requests for execution arn:x after retries; try again later"),
            ("RequestLimitExceeded", ErrorKind::Throttled, "SageMaker kept throttling requests for execution arn:x after retries; try again later"),
            (
                "AccessDeniedException",
                ErrorKind::Forbidden,
                "the function's role may not act on execution arn:x (AccessDeniedException): check its IAM policy",
            ),
            (
                "ValidationException",
                ErrorKind::Upstream,
                "SageMaker rejected the request for execution arn:x as invalid (ValidationException): a \
                 ClientRequestToken reused for another execution, or a constraint this function does not check",
            ),
            ("InternalFailure", ErrorKind::Upstream, "SageMaker failed on execution arn:x (InternalFailure)"),
            ("", ErrorKind::Upstream, "SageMaker failed on execution arn:x with an unrecognised error"),
        ] {
            let e = service_error(None, code, "", T);
            assert_eq!((e.kind, e.message.as_str()), (kind, message), "{code:?}");
        }
    }

    #[test]
    fn only_the_not_executing_validation_message_is_read_as_a_refusal_for_the_state() {
        let refused = service_error(
            None,
            "ValidationException",
            "Only pipelines with 'Executing' status can be stopped",
            T,
        );
        assert_eq!(refused.kind, ErrorKind::Conflict);
        assert_eq!(
            refused.message,
            "SageMaker refused to stop execution arn:x: it is not Executing"
        );
        for (code, text) in [
            // Another validation error stays one, whatever else it says.
            (
                "ValidationException",
                "1 validation error detected: Value at 'pipelineExecutionArn'",
            ),
            (
                "ValidationException",
                "Only pipelines with 'Executing' status",
            ),
            ("ValidationException", ""),
            // The message under another code is not the refusal.
            (
                "InternalFailure",
                "Only pipelines with 'Executing' status can be stopped",
            ),
        ] {
            let e = service_error(None, code, text, T);
            assert_eq!(e.kind, ErrorKind::Upstream, "{code} {text}");
            assert!(
                !e.message.contains(text) || text.is_empty(),
                "SageMaker's text is never passed on"
            );
        }
    }

    #[test]
    fn the_operations_model_decides_the_class_before_the_code() {
        // SendPipelineExecutionStepFailure models ResourceLimitExceeded as throttling.
        let e = service_error(Some(ErrorKind::Throttled), "ResourceLimitExceeded", "", T);
        assert_eq!(e.kind, ErrorKind::Throttled);
        assert!(e.message.contains("kept throttling"));
        let e = service_error(Some(ErrorKind::NotFound), "Whatever", "", T);
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn transport_failures_say_whether_a_retry_may_help() {
        for (failure, kind, message) in [
            (
                Transport::TimedOut,
                ErrorKind::Unavailable,
                "SageMaker did not answer in time for execution arn:x",
            ),
            (
                Transport::Unreachable,
                ErrorKind::Unavailable,
                "SageMaker could not be reached for execution arn:x",
            ),
            (
                Transport::Untrusted,
                ErrorKind::Unavailable,
                "SageMaker's certificate is not trusted for execution arn:x: to trust the CA of a custom \
                 endpoint or a TLS-inspecting proxy, set AWS_CA_BUNDLE to its PEM file",
            ),
            (
                Transport::Unreadable,
                ErrorKind::Upstream,
                "SageMaker sent an unreadable response for execution arn:x",
            ),
            (
                Transport::NotSent,
                ErrorKind::Upstream,
                "the request for execution arn:x could not be made",
            ),
        ] {
            let e = transport_error(failure, T);
            assert_eq!((e.kind, e.message.as_str()), (kind, message), "{failure:?}");
        }
    }
}
