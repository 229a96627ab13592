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
    /// The function (or the CLI) cannot make calls as configured: no
    /// credentials, an unusable endpoint, no region. Not the caller's fault,
    /// and retrying will not help until the configuration is fixed.
    Configuration,
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
            ErrorKind::Configuration => "ConfigurationError",
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
            ErrorKind::Configuration => 500,
        }
    }
}

/// An error with a message fit to show the caller: never SageMaker's raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The longest message an error carries (bytes). Messages quote caller input
/// (serde's included), and a reply or log line must stay small whatever the
/// input: a 5 MB field name must not become a 5 MB HTTP reply, which Lambda's
/// 6 MB response limit would turn into a 502.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// The longest stretch of caller input quoted in a message (characters).
pub const MAX_QUOTED_CHARS: usize = 1024;

impl StopError {
    /// An error whose message is bounded and free of control characters.
    /// `PartialFailure` lists validated targets and our own messages, so it is
    /// left whole: cutting it would hide which targets failed.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = if kind == ErrorKind::PartialFailure {
            message
        } else {
            bound_message(&message)
        };
        StopError { kind, message }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
}

/// Characters that must not reach a terminal or a log line as they are:
/// control characters (C0, DEL, C1: escape sequences, BEL, CSI), and the
/// invisible formatting ones that reorder or hide text (bidirectional
/// overrides and isolates, zero-width characters, line and paragraph
/// separators, the byte order mark).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Makes a message safe to reply with, log and print to a terminal: control
/// characters are escaped (`\u{1b}`: an ESC from caller input must not reach an
/// operator's terminal), each back-quoted stretch of input (as serde quotes
/// unknown fields and values) is cut to [`MAX_QUOTED_CHARS`], and the whole to
/// [`MAX_MESSAGE_BYTES`].
pub fn bound_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_BYTES));
    let mut quoted: Option<usize> = None;
    let mut cut_quote = false;
    for c in message.chars() {
        if out.len() >= MAX_MESSAGE_BYTES {
            out.push_str(&format!("… ({} bytes in all)", message.len()));
            return out;
        }
        match (c, quoted) {
            ('`', None) => {
                quoted = Some(0);
                cut_quote = false;
            }
            ('`', Some(_)) => {
                if cut_quote {
                    out.push('…');
                }
                quoted = None;
            }
            (_, Some(n)) if n >= MAX_QUOTED_CHARS => {
                cut_quote = true;
                continue;
            }
            (_, Some(n)) => quoted = Some(n + 1),
            _ => {}
        }
        push_safe(&mut out, c);
    }
    out
}

/// Appends `c`, escaped (`\u{1b}`) if it is an unsafe character.
pub fn push_safe(out: &mut String, c: char) {
    if is_unsafe_char(c) {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// `text` with every unsafe character escaped: fit for a terminal or a log.
pub fn escape_unsafe(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        push_safe(&mut out, c);
    }
    out
}

impl fmt::Display for StopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.error_type(), self.message)
    }
}

impl std::error::Error for StopError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_quoting_huge_input_are_bounded() {
        let name = "x".repeat(1_000_000);
        let e = StopError::validation(format!("unknown field `{name}`, expected one of `A`, `B`"));
        assert!(e.message.len() < 1_200, "{}", e.message.len());
        assert!(
            e.message.ends_with("…`, expected one of `A`, `B`"),
            "{}",
            e.message
        );
        let e = StopError::validation("y".repeat(1_000_000));
        assert!(e.message.len() <= MAX_MESSAGE_BYTES + 40);
        assert!(e.message.contains("1000000 bytes in all"));
    }

    #[test]
    fn control_and_invisible_formatting_characters_are_escaped() {
        let e = StopError::validation(
            "unknown field `\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}gnp.exe\u{200b}\u{2028}\u{feff}`",
        );
        assert!(!e.message.chars().any(is_unsafe_char), "{:?}", e.message);
        assert!(e.message.contains("\\u{1b}]0;pwned"), "{}", e.message);
        assert!(e.message.contains("\\u{202e}gnp.exe"), "{}", e.message);
    }

    /// Text for a terminal or a log (the CLI prints ARNs and step names with
    /// it): every unsafe character escaped, everything else kept as it is.
    #[test]
    fn escape_unsafe_escapes_only_unsafe_characters() {
        for (text, escaped) in [
            ("", ""),
            ("nightly-training ünïcode ✓", "nightly-training ünïcode ✓"),
            ("a\u{1b}[2Jb", "a\\u{1b}[2Jb"),
            ("x\u{202e}y\u{200b}", "x\\u{202e}y\\u{200b}"),
        ] {
            assert_eq!(escape_unsafe(text), escaped, "{text:?}");
        }
    }

    /// The one-line form of an error (logs, the CLI's stderr): its class as
    /// callers see it (`errorType`), then its message.
    #[test]
    fn an_error_displays_as_its_error_type_and_message() {
        let e = StopError::forbidden("pipeline \"p\" is not in ALLOWED_PIPELINES (q)");
        assert_eq!(
            e.to_string(),
            "AccessDenied: pipeline \"p\" is not in ALLOWED_PIPELINES (q)"
        );
        assert_eq!(
            StopError::new(ErrorKind::Throttled, "slow down").to_string(),
            "ThrottlingException: slow down"
        );
    }

    #[test]
    fn partial_failures_keep_every_target() {
        let long = "a".repeat(10_000);
        assert_eq!(
            StopError::new(ErrorKind::PartialFailure, long.clone()).message,
            long
        );
    }
}
