//! Error classes, shared by every trigger: one class gives the Lambda
//! `errorType` (what async retries, destinations and DLQs see) and the HTTP status.

use std::fmt;

/// What went wrong, in the caller's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The event or request is malformed or names an invalid target. Nothing was called.
    Validation,
    /// The target is outside `ALLOWED_PIPELINES` or another account/region. Nothing was called.
    Forbidden,
    /// An HTTP request with a method other than POST.
    MethodNotAllowed,
    /// SageMaker does not know the execution or pipeline.
    NotFound,
    /// SageMaker refused the stop because of the execution's state.
    Conflict,
    /// SageMaker kept throttling after the SDK's retries.
    Throttled,
    /// SageMaker answered with an error we cannot act on (5xx, unexpected reply).
    Upstream,
    /// SageMaker could not be reached or did not answer in time.
    Unavailable,
    /// Several targets, and at least one failed.
    PartialFailure,
}

impl ErrorKind {
    /// The Lambda `errorType` of a failed invocation.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationError",
            ErrorKind::Forbidden => "AccessDenied",
            ErrorKind::MethodNotAllowed => "MethodNotAllowed",
            ErrorKind::NotFound => "ResourceNotFound",
            ErrorKind::Conflict => "ConflictException",
            ErrorKind::Throttled => "ThrottlingException",
            ErrorKind::Upstream => "UpstreamError",
            ErrorKind::Unavailable => "UpstreamUnavailable",
            ErrorKind::PartialFailure => "PartialFailure",
        }
    }

    /// The HTTP status an HTTP trigger replies with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Validation => 400,
            ErrorKind::Forbidden => 403,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Throttled => 429,
            ErrorKind::Upstream => 502,
            ErrorKind::Unavailable => 503,
            ErrorKind::PartialFailure => 207,
        }
    }
}

/// An error with a message fit to show the caller: never SageMaker's raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopError {
    pub kind: ErrorKind,
    pub message: String,
}

impl StopError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StopError {
            kind,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.error_type(), self.message)
    }
}

impl std::error::Error for StopError {}
