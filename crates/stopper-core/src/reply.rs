//! Shaping what happened into the reply: JSON for direct, scheduled and alarm
//! invocations (or a failed invocation with an `errorType`), and the response
//! shape each HTTP front end expects.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use aws_lambda_events::http::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_TYPE};
use serde_json::{json, Map, Value};

use crate::error::{ErrorKind, StopError};
use crate::trigger::HttpFlavor;

/// What happened to one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SageMaker accepted the stop: the execution is `Stopping`, then `Stopped`.
    StopRequested,
    /// The execution had already ended (SageMaker's status says how).
    AlreadyFinished {
        status: String,
    },
    /// Dry run: the execution is running and would be stopped.
    WouldStop,
    Failed(StopError),
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::StopRequested => "StopRequested",
            Outcome::AlreadyFinished { .. } => "AlreadyFinished",
            Outcome::WouldStop => "WouldStop",
            Outcome::Failed(_) => "Failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionResult {
    pub arn: String,
    pub outcome: Outcome,
    /// The execution's status as last seen, when it says more than the
    /// outcome: the final status after `Wait` (or `Stopping` if the wait ran
    /// out), the current one in a dry run.
    pub status: Option<String>,
    /// Running steps that hold the stop (Callback and Lambda steps).
    pub blocking_steps: Vec<BlockingStep>,
}

impl ExecutionResult {
    pub fn new(arn: impl Into<String>, outcome: Outcome) -> ExecutionResult {
        ExecutionResult {
            arn: arn.into(),
            outcome,
            status: None,
            blocking_steps: Vec::new(),
        }
    }

    /// The error that makes this target count as failed: its own, or a
    /// forced step's (the stop cannot complete as asked).
    pub fn error(&self) -> Option<&StopError> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e),
            _ => self.blocking_steps.iter().find_map(|s| match &s.force {
                Some(Force::Failed(e)) => Some(e),
                _ => None,
            }),
        }
    }
}

/// A running step that keeps a stopping execution from ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingStep {
    pub name: String,
    pub kind: StepKind,
    /// What `Force` did to it; `None` when the request did not ask to force.
    pub force: Option<Force>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Waits for `SendPipelineExecutionStepSuccess/Failure` from the consumer
    /// of this queue (SageMaker has sent it a `"Status": "Stopping"` message).
    Callback { queue_url: Option<String> },
    /// Waits for this function to return (then `Stopped`) or time out (`Failed`).
    Lambda { function_arn: Option<String> },
}

/// What `Force` did to one blocking step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Force {
    /// `SendPipelineExecutionStepFailure` was accepted.
    Sent,
    /// Dry run: it would be sent.
    WouldSend,
    /// A Lambda step: nothing can end it early.
    NotPossible,
    /// The step ended before the failure reached it: it no longer holds the stop.
    StepAlreadyEnded,
    /// `SendPipelineExecutionStepFailure` failed.
    Failed(StopError),
}

impl Force {
    pub fn name(&self) -> &'static str {
        match self {
            Force::Sent => "Sent",
            Force::WouldSend => "WouldSend",
            Force::NotPossible => "NotPossible",
            Force::StepAlreadyEnded => "StepAlreadyEnded",
            Force::Failed(_) => "Failed",
        }
    }
}

impl BlockingStep {
    /// `name(Callback)`, for log lines.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            StepKind::Callback { .. } => "Callback",
            StepKind::Lambda { .. } => "Lambda",
        };
        format!("{}({kind})", self.name)
    }
}

/// `a(Callback),b(Lambda)`: the blocking steps of one execution, for logs.
pub fn step_labels(steps: &[BlockingStep]) -> String {
    steps
        .iter()
        .map(BlockingStep::label)
        .collect::<Vec<_>>()
        .join(",")
}

/// A pipeline whose running executions could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineFailure {
    pub pipeline: String,
    pub error: StopError,
}

/// Everything one event did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub executions: Vec<ExecutionResult>,
    pub pipeline_failures: Vec<PipelineFailure>,
    /// Pipelines swept, for the message of a sweep that found nothing running.
    pub pipelines_swept: Vec<String>,
    /// The event named exactly one execution: reply `{"PipelineExecutionArn": ...}`.
    pub single: bool,
    /// Nothing was changed: the outcomes say what would have been.
    pub dry_run: bool,
}

impl Report {
    fn failures(&self) -> Vec<(&str, &StopError)> {
        let executions = self
            .executions
            .iter()
            .filter_map(|r| r.error().map(|e| (r.arn.as_str(), e)));
        let pipelines = self
            .pipeline_failures
            .iter()
            .map(|f| (f.pipeline.as_str(), &f.error));
        pipelines.chain(executions).collect()
    }

    /// The success body: the single form, or one entry per execution.
    pub fn body(&self) -> Value {
        if self.single {
            if let [only] = self.executions.as_slice() {
                let mut body = execution_json(only);
                if self.dry_run {
                    body.insert("DryRun".into(), true.into());
                }
                return Value::Object(body);
            }
        }
        let mut body = Map::new();
        if self.dry_run {
            body.insert("DryRun".into(), true.into());
        }
        body.insert(
            "Executions".into(),
            Value::Array(
                self.executions
                    .iter()
                    .map(|r| Value::Object(execution_json(r)))
                    .collect(),
            ),
        );
        if !self.pipeline_failures.is_empty() {
            let failures = self
                .pipeline_failures
                .iter()
                .map(|f| json!({"PipelineName": f.pipeline, "Error": error_json(&f.error)}))
                .collect();
            body.insert("Pipelines".into(), Value::Array(failures));
        }
        if self.executions.is_empty() && self.pipeline_failures.is_empty() {
            body.insert(
                "Message".into(),
                format!(
                    "no running executions of {}; nothing to stop",
                    self.pipelines_swept.join(", ")
                )
                .into(),
            );
        }
        Value::Object(body)
    }

    /// The result of a non-HTTP invocation: the body, or an error whose class
    /// async retries and dead-letter queues see. With several targets and any
    /// failed, `PartialFailure` names each failed one; a retry is safe, since
    /// the tokens are derived again the same.
    pub fn result(&self) -> Result<Value, StopError> {
        let failures = self.failures();
        let entries = self.executions.len() + self.pipeline_failures.len();
        match failures.as_slice() {
            [] => Ok(self.body()),
            [(_, only)] if entries == 1 => Err((*only).clone()),
            _ => {
                let listed: Vec<String> = failures
                    .iter()
                    .map(|(what, e)| format!("{what} ({}: {})", e.kind.error_type(), e.message))
                    .collect();
                Err(StopError::new(
                    ErrorKind::PartialFailure,
                    format!(
                        "{} of {entries} targets failed: {}",
                        failures.len(),
                        listed.join("; ")
                    ),
                ))
            }
        }
    }

    /// The HTTP status and body: 200 when every target succeeded, 207 with
    /// per-target outcomes when several were named and some failed, else the
    /// one failure's status. A single execution that had already ended is 409.
    pub fn http(&self) -> (u16, Value) {
        match self.result() {
            Ok(body) => match self.executions.as_slice() {
                [ExecutionResult {
                    arn,
                    outcome: Outcome::AlreadyFinished { status },
                    ..
                }] if self.single => {
                    let error = StopError::new(
                        ErrorKind::Conflict,
                        format!("execution {arn} has already finished with status {status}"),
                    );
                    (409, error_body(&error))
                }
                _ => (200, body),
            },
            Err(e) if e.kind == ErrorKind::PartialFailure => (207, self.body()),
            Err(e) => (e.kind.http_status(), error_body(&e)),
        }
    }
}

fn execution_json(result: &ExecutionResult) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("PipelineExecutionArn".into(), result.arn.clone().into());
    entry.insert("Outcome".into(), result.outcome.name().into());
    let status = match &result.outcome {
        Outcome::AlreadyFinished { status } => Some(status),
        _ => result.status.as_ref(),
    };
    if let Some(status) = status {
        entry.insert("Status".into(), status.clone().into());
    }
    if let Outcome::Failed(e) = &result.outcome {
        entry.insert("Error".into(), error_json(e));
    }
    if !result.blocking_steps.is_empty() {
        let steps = result.blocking_steps.iter().map(step_json).collect();
        entry.insert("BlockingSteps".into(), Value::Array(steps));
    }
    entry
}

/// What holds each kind of step, and what `Force` can do about it.
const CALLBACK_NOTE: &str =
    "holds the stop until its SQS consumer calls SendPipelineExecutionStepSuccess or \
     SendPipelineExecutionStepFailure; \"Force\": true fails it";
const LAMBDA_NOTE: &str =
    "holds the stop until the function returns (then Stopped) or times out (then Failed)";
const LAMBDA_FORCE_NOTE: &str =
    "a Lambda step cannot be forced: the stop completes when the function returns \
     (then Stopped) or times out (then Failed)";

fn step_json(step: &BlockingStep) -> Value {
    let mut entry = Map::new();
    entry.insert("StepName".into(), step.name.clone().into());
    match &step.kind {
        StepKind::Callback { queue_url } => {
            entry.insert("StepType".into(), "Callback".into());
            if let Some(url) = queue_url {
                entry.insert("SqsQueueUrl".into(), url.clone().into());
            }
        }
        StepKind::Lambda { function_arn } => {
            entry.insert("StepType".into(), "Lambda".into());
            if let Some(arn) = function_arn {
                entry.insert("FunctionArn".into(), arn.clone().into());
            }
        }
    }
    if let Some(force) = &step.force {
        entry.insert("Force".into(), force.name().into());
        if let Force::Failed(e) = force {
            entry.insert("Error".into(), error_json(e));
        }
    }
    let note = match (&step.kind, &step.force) {
        (StepKind::Callback { .. }, None) => Some(CALLBACK_NOTE),
        (StepKind::Lambda { .. }, None) => Some(LAMBDA_NOTE),
        (StepKind::Lambda { .. }, Some(_)) => Some(LAMBDA_FORCE_NOTE),
        (StepKind::Callback { .. }, Some(_)) => None,
    };
    if let Some(note) = note {
        entry.insert("Note".into(), note.into());
    }
    Value::Object(entry)
}

fn error_json(error: &StopError) -> Value {
    json!({"Code": error.kind.error_type(), "Message": error.message})
}

/// `{"Error": {"Code": ..., "Message": ...}}`
pub fn error_body(error: &StopError) -> Value {
    json!({ "Error": error_json(error) })
}

/// The body of an event that is deliberately not acted on.
pub fn ignored_body(reason: &str) -> Value {
    json!({"Outcome": "Ignored", "Reason": reason})
}

/// The response in the shape the HTTP front end expects.
pub fn http_response(flavor: HttpFlavor, status: u16, body: &Value) -> Value {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == 405 {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    let text = body.to_string();
    let shaped = match flavor {
        HttpFlavor::RestApi => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(Body::Text(text));
            serde_json::to_value(r)
        }
        HttpFlavor::HttpApi => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(Body::Text(text));
            serde_json::to_value(r)
        }
        HttpFlavor::FunctionUrl => {
            let mut r = LambdaFunctionUrlResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(text);
            serde_json::to_value(r)
        }
    };
    // Serializing these plain structs cannot fail; a bare body is the fallback.
    shaped.unwrap_or_else(|_| json!({"statusCode": status, "body": body.to_string()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a";
    const B: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/b";

    fn report(single: bool, outcomes: Vec<(&str, Outcome)>) -> Report {
        Report {
            executions: outcomes
                .into_iter()
                .map(|(arn, outcome)| ExecutionResult::new(arn, outcome))
                .collect(),
            single,
            ..Report::default()
        }
    }

    fn failed(kind: ErrorKind) -> Outcome {
        Outcome::Failed(StopError::new(kind, "x"))
    }

    #[test]
    fn single_success_replies_with_the_arn() {
        let r = report(true, vec![(A, Outcome::StopRequested)]);
        assert_eq!(
            r.result().unwrap(),
            json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"})
        );
        assert_eq!(
            r.http(),
            (
                200,
                json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"})
            )
        );
    }

    #[test]
    fn an_already_finished_execution_is_reported_not_failed_except_as_http_409() {
        let r = report(
            true,
            vec![(
                A,
                Outcome::AlreadyFinished {
                    status: "Succeeded".into(),
                },
            )],
        );
        assert_eq!(r.result().unwrap()["Status"], "Succeeded");
        let (status, body) = r.http();
        assert_eq!(status, 409);
        assert_eq!(body["Error"]["Code"], "ConflictException");
        assert!(body["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("Succeeded"));
    }

    #[test]
    fn each_failure_class_maps_to_its_error_type_and_status() {
        for (kind, error_type, status) in [
            (ErrorKind::NotFound, "ResourceNotFound", 404),
            (ErrorKind::Conflict, "ConflictException", 409),
            (ErrorKind::Throttled, "ThrottlingException", 429),
            (ErrorKind::Upstream, "UpstreamError", 502),
            (ErrorKind::Unavailable, "UpstreamUnavailable", 503),
            (ErrorKind::Forbidden, "AccessDenied", 403),
            (ErrorKind::Validation, "ValidationError", 400),
            (ErrorKind::MethodNotAllowed, "MethodNotAllowed", 405),
        ] {
            let r = report(true, vec![(A, failed(kind))]);
            assert_eq!(r.result().unwrap_err().kind.error_type(), error_type);
            let (got, body) = r.http();
            assert_eq!(got, status);
            assert_eq!(body["Error"]["Code"], error_type);
        }
    }

    #[test]
    fn several_targets_report_each_and_fail_partially() {
        let r = report(
            false,
            vec![
                (A, Outcome::StopRequested),
                (B, failed(ErrorKind::NotFound)),
            ],
        );
        let err = r.result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::PartialFailure);
        assert!(
            err.message.contains(B)
                && !err.message.contains(A)
                && err.message.starts_with("1 of 2")
        );
        let (status, body) = r.http();
        assert_eq!(status, 207);
        assert_eq!(body["Executions"][0]["Outcome"], "StopRequested");
        assert_eq!(body["Executions"][1]["Error"]["Code"], "ResourceNotFound");
        let ok = report(
            false,
            vec![(A, Outcome::StopRequested), (B, Outcome::StopRequested)],
        );
        assert_eq!(ok.http().0, 200);
        assert_eq!(
            ok.result().unwrap()["Executions"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn a_sweep_that_finds_nothing_says_so_and_a_failed_listing_is_its_error() {
        let empty = Report {
            pipelines_swept: vec!["p".into()],
            ..Report::default()
        };
        assert!(empty.result().unwrap()["Message"]
            .as_str()
            .unwrap()
            .contains("no running executions of p"));
        let not_found = Report {
            pipeline_failures: vec![PipelineFailure {
                pipeline: "p".into(),
                error: StopError::new(ErrorKind::NotFound, "no pipeline p"),
            }],
            ..Report::default()
        };
        assert_eq!(not_found.result().unwrap_err().kind, ErrorKind::NotFound);
        assert_eq!(not_found.http().0, 404);
    }

    fn callback(force: Option<Force>) -> BlockingStep {
        BlockingStep {
            name: "approve".into(),
            kind: StepKind::Callback {
                queue_url: Some("https://sqs.us-east-1.amazonaws.com/123456789012/q".into()),
            },
            force,
        }
    }

    fn lambda(force: Option<Force>) -> BlockingStep {
        BlockingStep {
            name: "score".into(),
            kind: StepKind::Lambda {
                function_arn: Some("arn:aws:lambda:us-east-1:123456789012:function:score".into()),
            },
            force,
        }
    }

    #[test]
    fn blocking_steps_and_the_waited_status_are_reported() {
        let mut r = report(true, vec![(A, Outcome::StopRequested)]);
        r.executions[0].status = Some("Stopping".into());
        r.executions[0].blocking_steps = vec![callback(None), lambda(None)];
        let body = r.result().unwrap();
        assert_eq!(body["Status"], "Stopping");
        let steps = body["BlockingSteps"].as_array().unwrap();
        assert_eq!(steps[0]["StepType"], "Callback");
        assert_eq!(
            steps[0]["SqsQueueUrl"],
            "https://sqs.us-east-1.amazonaws.com/123456789012/q"
        );
        assert!(steps[0]["Note"].as_str().unwrap().contains("Force"));
        assert!(steps[0].get("Force").is_none());
        assert_eq!(steps[1]["StepType"], "Lambda");
        assert_eq!(
            steps[1]["FunctionArn"],
            "arn:aws:lambda:us-east-1:123456789012:function:score"
        );
        assert_eq!(r.http().0, 200);
        let plain = report(true, vec![(A, Outcome::StopRequested)]).body();
        assert!(plain.get("BlockingSteps").is_none() && plain.get("Status").is_none());
    }

    #[test]
    fn force_says_what_it_did_and_a_failed_force_fails_the_target() {
        let mut r = report(
            false,
            vec![(A, Outcome::StopRequested), (B, Outcome::StopRequested)],
        );
        r.executions[0].blocking_steps = vec![
            callback(Some(Force::Sent)),
            lambda(Some(Force::NotPossible)),
        ];
        r.executions[1].blocking_steps = vec![callback(Some(Force::Failed(StopError::new(
            ErrorKind::Throttled,
            "slow down",
        ))))];
        let err = r.result().unwrap_err();
        assert_eq!(err.kind, ErrorKind::PartialFailure);
        assert!(err.message.contains(B) && !err.message.contains(A));
        let (status, body) = r.http();
        assert_eq!(status, 207);
        let a_steps = &body["Executions"][0]["BlockingSteps"];
        assert_eq!(a_steps[0]["Force"], "Sent");
        assert_eq!(a_steps[1]["Force"], "NotPossible");
        assert!(a_steps[1]["Note"]
            .as_str()
            .unwrap()
            .contains("cannot be forced"));
        assert_eq!(
            body["Executions"][1]["BlockingSteps"][0]["Error"]["Code"],
            "ThrottlingException"
        );
        assert_eq!(
            step_labels(&r.executions[0].blocking_steps),
            "approve(Callback),score(Lambda)"
        );
    }

    #[test]
    fn a_dry_run_says_so_and_what_would_be_stopped() {
        let mut r = report(true, vec![(A, Outcome::WouldStop)]);
        r.dry_run = true;
        r.executions[0].status = Some("Executing".into());
        r.executions[0].blocking_steps = vec![callback(Some(Force::WouldSend))];
        let body = r.result().unwrap();
        assert_eq!(body["Outcome"], "WouldStop");
        assert_eq!(body["DryRun"], true);
        assert_eq!(body["Status"], "Executing");
        assert_eq!(body["BlockingSteps"][0]["Force"], "WouldSend");
        let mut several = report(
            false,
            vec![(A, Outcome::WouldStop), (B, Outcome::WouldStop)],
        );
        several.dry_run = true;
        assert_eq!(several.http(), (200, several.body()));
        assert_eq!(several.body()["DryRun"], true);
    }

    #[test]
    fn http_responses_take_each_front_end_shape() {
        for flavor in [
            HttpFlavor::RestApi,
            HttpFlavor::HttpApi,
            HttpFlavor::FunctionUrl,
        ] {
            let r = http_response(flavor, 405, &json!({"a": 1}));
            assert_eq!(r["statusCode"], 405);
            assert_eq!(r["headers"]["content-type"], "application/json");
            assert_eq!(r["headers"]["allow"], "POST");
            assert_eq!(r["body"], "{\"a\":1}");
            assert_eq!(r["isBase64Encoded"], false);
        }
    }
}
