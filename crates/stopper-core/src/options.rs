//! How a stop is carried out, beyond what it names: dry runs, waiting for the
//! executions to end, forcing Callback steps, and the age filter of sweeps.

use std::time::Duration;

use crate::error::StopError;
use crate::request::StopRequest;

/// The longest `WaitSeconds` accepted: Lambda's own maximum timeout.
pub const MAX_WAIT_SECONDS: u64 = 900;
/// How long `Wait: true` waits when nothing else bounds it (the CLI, or a
/// runtime that gives no deadline). In Lambda the remaining time bounds it.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(MAX_WAIT_SECONDS);
/// SageMaker's limit on `SendPipelineExecutionStepFailure`'s `FailureReason`.
pub const MAX_REASON_CHARS: usize = 256;
/// The largest `OlderThanMinutes`: a year. Anything larger is a typo.
pub const MAX_OLDER_THAN_MINUTES: u64 = 525_600;
/// The reason forced Callback steps fail with when the request gives none.
pub const DEFAULT_REASON: &str =
    "Stopped by sagemaker-pipeline-stopper (Force): the callback step was failed so the stop could complete";

/// How long to wait for stopped executions to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wait {
    /// Reply as soon as the stops are accepted.
    #[default]
    No,
    /// Wait until the function's remaining time (less the reply margin) runs out.
    UntilDeadline,
    /// Wait at most this long, and never past the deadline.
    UpTo(Duration),
}

/// The options of one request, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Resolve and report; call nothing that changes state.
    pub dry_run: bool,
    pub wait: Wait,
    /// Send `SendPipelineExecutionStepFailure` to running Callback steps.
    pub force: bool,
    /// The failure reason for forced steps (`DEFAULT_REASON` when `None`).
    pub reason: Option<String>,
    /// Only executions that started more than this many minutes ago (sweeps).
    pub older_than_minutes: Option<u64>,
}

impl Options {
    /// Validates the option fields of a request. Contradictions are refused
    /// rather than resolved silently: a caller who wrote `"Wait": false,
    /// "WaitSeconds": 60` meant one of them, and we cannot know which.
    pub fn from_request(request: &StopRequest) -> Result<Options, StopError> {
        let wait = match (request.wait, request.wait_seconds) {
            (None | Some(false), None) => Wait::No,
            (Some(true), None) => Wait::UntilDeadline,
            (Some(false), Some(_)) => {
                return Err(StopError::validation(
                    "WaitSeconds contradicts \"Wait\": false; drop one of them",
                ))
            }
            (_, Some(seconds)) if (1..=MAX_WAIT_SECONDS).contains(&seconds) => {
                Wait::UpTo(Duration::from_secs(seconds))
            }
            (_, Some(seconds)) => {
                return Err(StopError::validation(format!(
                    "WaitSeconds must be 1 to {MAX_WAIT_SECONDS}, got {seconds}"
                )))
            }
        };
        let force = request.force.unwrap_or(false);
        if let Some(reason) = &request.reason {
            if !force {
                return Err(StopError::validation(
                    "Reason is the failure reason of forced Callback steps: it needs \"Force\": true",
                ));
            }
            let chars = reason.chars().count();
            if reason.trim().is_empty() || chars > MAX_REASON_CHARS {
                return Err(StopError::validation(format!(
                    "Reason must be 1 to {MAX_REASON_CHARS} characters, got {chars}"
                )));
            }
        }
        if let Some(minutes) = request.older_than_minutes {
            if !(1..=MAX_OLDER_THAN_MINUTES).contains(&minutes) {
                return Err(StopError::validation(format!(
                    "OlderThanMinutes must be 1 to {MAX_OLDER_THAN_MINUTES}, got {minutes}"
                )));
            }
        }
        Ok(Options {
            dry_run: request.dry_run.unwrap_or(false),
            wait,
            force,
            reason: request.reason.clone(),
            older_than_minutes: request.older_than_minutes,
        })
    }

    /// The failure reason forced Callback steps get: the request's, else the
    /// default naming the caller (when an HTTP front end authenticated one),
    /// so the pipeline's owner can see who stopped it.
    pub fn failure_reason(&self, caller: Option<&str>) -> std::borrow::Cow<'_, str> {
        match (&self.reason, caller) {
            (Some(reason), _) => reason.as_str().into(),
            (None, Some(caller)) => {
                let reason = format!(
                    "Stopped by sagemaker-pipeline-stopper (Force) at the request of {caller}: \
                     the callback step was failed so the stop could complete"
                );
                if reason.chars().count() <= MAX_REASON_CHARS {
                    reason.into()
                } else {
                    let cut: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
                    format!("{cut}…").into()
                }
            }
            (None, None) => DEFAULT_REASON.into(),
        }
    }

    /// How long to wait from now, given the time left before the deadline
    /// (`None`: no deadline). `None` when not waiting.
    pub fn wait_budget(&self, remaining: Option<Duration>) -> Option<Duration> {
        let asked = match self.wait {
            Wait::No => return None,
            Wait::UntilDeadline => DEFAULT_WAIT,
            Wait::UpTo(limit) => limit,
        };
        Some(remaining.map_or(asked, |left| asked.min(left)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options(value: serde_json::Value) -> Result<Options, StopError> {
        Options::from_request(&StopRequest::from_value(&value).unwrap())
    }

    #[test]
    fn no_option_fields_mean_a_plain_stop() {
        assert_eq!(options(json!({})).unwrap(), Options::default());
        assert_eq!(
            options(json!({"Wait": false, "Force": false, "DryRun": false})).unwrap(),
            Options::default()
        );
    }

    #[test]
    fn wait_and_wait_seconds() {
        assert_eq!(
            options(json!({"Wait": true})).unwrap().wait,
            Wait::UntilDeadline
        );
        let up_to = Wait::UpTo(Duration::from_secs(30));
        assert_eq!(options(json!({"WaitSeconds": 30})).unwrap().wait, up_to);
        assert_eq!(
            options(json!({"Wait": true, "WaitSeconds": 30}))
                .unwrap()
                .wait,
            up_to
        );
        for bad in [
            json!({"Wait": false, "WaitSeconds": 30}),
            json!({"WaitSeconds": 0}),
            json!({"WaitSeconds": 901}),
        ] {
            assert!(options(bad.clone()).is_err(), "{bad}");
        }
        assert!(StopRequest::from_value(&json!({"WaitSeconds": -1})).is_err());
        assert!(StopRequest::from_value(&json!({"Wait": "yes"})).is_err());
    }

    #[test]
    fn the_wait_budget_never_passes_the_deadline() {
        let o = options(json!({"WaitSeconds": 30})).unwrap();
        assert_eq!(
            o.wait_budget(Some(Duration::from_secs(10))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(o.wait_budget(None), Some(Duration::from_secs(30)));
        let until = options(json!({"Wait": true})).unwrap();
        assert_eq!(
            until.wait_budget(Some(Duration::from_secs(50))),
            Some(Duration::from_secs(50))
        );
        assert_eq!(until.wait_budget(None), Some(DEFAULT_WAIT));
        assert_eq!(Options::default().wait_budget(None), None);
    }

    #[test]
    fn reason_needs_force_and_fits_sagemakers_limit() {
        let forced = options(json!({"Force": true})).unwrap();
        assert!(forced.force);
        assert_eq!(forced.failure_reason(None), DEFAULT_REASON);
        let who = "arn:aws:iam::123456789012:user/alice";
        let named = forced.failure_reason(Some(who));
        assert!(
            named.contains("at the request of arn:aws:iam::123456789012:user/alice"),
            "{named}"
        );
        let long = "x".repeat(1_000);
        assert_eq!(
            forced.failure_reason(Some(&long)).chars().count(),
            MAX_REASON_CHARS
        );
        let given = options(json!({"Force": true, "Reason": "cost alarm"})).unwrap();
        assert_eq!(given.failure_reason(Some(who)), "cost alarm");
        assert!(options(json!({"Reason": "cost alarm"}))
            .unwrap_err()
            .message
            .contains("Force"));
        assert!(options(json!({"Force": true, "Reason": "x".repeat(257)})).is_err());
        assert!(options(json!({"Force": true, "Reason": " "})).is_err());
        assert!(options(json!({"Force": true, "Reason": "é".repeat(256)})).is_ok());
    }

    #[test]
    fn older_than_minutes_is_bounded() {
        assert_eq!(
            options(json!({"OlderThanMinutes": 240}))
                .unwrap()
                .older_than_minutes,
            Some(240)
        );
        assert!(options(json!({"OlderThanMinutes": 0})).is_err());
        assert!(options(json!({"OlderThanMinutes": 525_601})).is_err());
    }
}
