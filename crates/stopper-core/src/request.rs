//! What a request can name: the fields accepted in a direct invocation, a
//! schedule's input, an EventBridge `detail`, an SNS message or an HTTP body.

use serde::Deserialize;
use serde_json::Value;

use crate::error::StopError;

/// Explicit ARNs one request may name. Lambda caps a payload at 6 MB anyway;
/// this keeps a hand-typed mistake from fanning out into thousands of calls.
pub const MAX_EXPLICIT_TARGETS: usize = 100;

/// The request fields. Unknown fields are refused rather than ignored: a typo
/// such as `PipelineExecutionARN` must not fall back to the default pipeline
/// and stop something the caller did not name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    #[serde(
        rename = "PipelineExecutionArn",
        alias = "pipelineExecutionArn",
        default
    )]
    pub execution_arn: Option<String>,
    #[serde(
        rename = "PipelineExecutionArns",
        alias = "pipelineExecutionArns",
        default
    )]
    pub execution_arns: Option<Vec<String>>,
    #[serde(rename = "PipelineName", alias = "pipelineName", default)]
    pub pipeline_name: Option<String>,
    #[serde(rename = "ClientRequestToken", alias = "clientRequestToken", default)]
    pub client_request_token: Option<String>,
    /// Report what would be stopped; change nothing.
    #[serde(rename = "DryRun", alias = "dryRun", default)]
    pub dry_run: Option<bool>,
    /// Wait for stopped executions to end, up to the function's remaining time.
    #[serde(rename = "Wait", alias = "wait", default)]
    pub wait: Option<bool>,
    /// Wait at most this long (implies `Wait`).
    #[serde(rename = "WaitSeconds", alias = "waitSeconds", default)]
    pub wait_seconds: Option<u64>,
    /// Fail running Callback steps so the stop can complete.
    #[serde(rename = "Force", alias = "force", default)]
    pub force: Option<bool>,
    /// The failure reason sent to forced Callback steps.
    #[serde(rename = "Reason", alias = "reason", default)]
    pub reason: Option<String>,
    /// With a pipeline sweep: only executions running longer than this.
    #[serde(rename = "OlderThanMinutes", alias = "olderThanMinutes", default)]
    pub older_than_minutes: Option<u64>,
}

impl StopRequest {
    /// Reads a request from a JSON value, with the offending field named in
    /// the error (`PipelineExecutionArns[2]: invalid type: ...`).
    pub fn from_value(value: &Value) -> Result<StopRequest, StopError> {
        if !value.is_object() {
            return Err(StopError::validation(format!(
                "the request must be a JSON object, not {}",
                json_kind(value)
            )));
        }
        let request: StopRequest = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                StopError::validation(format!("invalid request: {}", e.inner()))
            } else {
                StopError::validation(format!("invalid request: {path}: {}", e.inner()))
            }
        })?;
        if request
            .execution_arns
            .as_ref()
            .is_some_and(|a| a.len() > MAX_EXPLICIT_TARGETS)
        {
            return Err(StopError::validation(format!(
                "PipelineExecutionArns names more than {MAX_EXPLICIT_TARGETS} executions; split the request"
            )));
        }
        Ok(request)
    }

    /// Whether the request names any target at all.
    pub fn names_target(&self) -> bool {
        self.execution_arn.is_some()
            || self.execution_arns.is_some()
            || self.pipeline_name.is_some()
    }
}

/// "a string", "an array", ... for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_field_in_both_spellings() {
        let r = StopRequest::from_value(
            &json!({"PipelineExecutionArn": "a", "ClientRequestToken": "t"}),
        )
        .unwrap();
        assert_eq!(r.execution_arn.as_deref(), Some("a"));
        assert_eq!(r.client_request_token.as_deref(), Some("t"));
        let r = StopRequest::from_value(&json!({"pipelineExecutionArn": "a"})).unwrap();
        assert_eq!(r.execution_arn.as_deref(), Some("a"));
        let r = StopRequest::from_value(
            &json!({"PipelineExecutionArns": ["a", "b"], "PipelineName": "p"}),
        )
        .unwrap();
        assert_eq!(r.execution_arns.unwrap().len(), 2);
        assert_eq!(r.pipeline_name.as_deref(), Some("p"));
        assert!(!StopRequest::from_value(&json!({})).unwrap().names_target());
    }

    #[test]
    fn refuses_typos_wrong_types_and_non_objects_with_the_field_named() {
        let err = StopRequest::from_value(&json!({"PipelineExecutionARN": "a"})).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionARN"),
            "{}",
            err.message
        );
        let err = StopRequest::from_value(&json!({"PipelineExecutionArns": ["a", 7]})).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionArns[1]"),
            "{}",
            err.message
        );
        let err =
            StopRequest::from_value(&json!({"PipelineExecutionArn": {"deep": [1]}})).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionArn"),
            "{}",
            err.message
        );
        for v in [json!([]), json!("arn"), json!(null), json!(3)] {
            assert!(StopRequest::from_value(&v)
                .unwrap_err()
                .message
                .contains("JSON object"));
        }
    }

    #[test]
    fn caps_the_number_of_explicit_targets() {
        let many: Vec<String> = (0..=MAX_EXPLICIT_TARGETS)
            .map(|i| format!("a{i}"))
            .collect();
        let err = StopRequest::from_value(&json!({ "PipelineExecutionArns": many })).unwrap_err();
        assert!(err.message.contains("more than"));
    }
}
