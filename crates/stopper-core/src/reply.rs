//! The wire formats: an [`Answer`] shaped for its trigger, in one place
//! ([`shape`]). JSON for direct, scheduled and alarm invocations (or a
//! failed invocation with an `errorType`), and the response each HTTP front
//! end expects. The JSON field names are a public contract.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use aws_lambda_events::http::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_TYPE};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::{ErrorKind, StopError};
use crate::guard::{GuardSummary, GuardedRun};
use crate::report::{Answer, ExecutionReport, Force, Outcome, PipelineFailure, Report, StepReport};
use crate::steps::StepKind;
use crate::trigger::{HttpFlavor, Trigger};

/// The reply to an event: for an HTTP trigger, always an HTTP response
/// (errors included); for every other trigger, a JSON reply, or the error
/// that fails the invocation (its `errorType` is what async retries,
/// destinations and dead-letter queues see).
pub fn shape(trigger: Trigger, answer: Answer) -> Result<Reply, StopError> {
    let Some(flavor) = trigger.http() else {
        return match answer {
            Answer::Ignored(reason) => Ok(Reply::Json(ignored_body(&reason))),
            Answer::Refused(e) => Err(e),
            Answer::Acted(report) => match report.error() {
                None => Ok(Reply::Report(report)),
                Some(error) => Err(error),
            },
        };
    };
    let (status, body) = match answer {
        Answer::Ignored(reason) => (200, Reply::Json(ignored_body(&reason))),
        Answer::Refused(e) => (e.kind.http_status(), Reply::Json(error_body(&e))),
        Answer::Acted(report) => match report.http_error() {
            None => (200, Reply::Report(report)),
            // Several targets, some failed: each one's outcome (Multi-Status).
            Some(e) if e.kind == ErrorKind::PartialFailure => (207, Reply::Report(report)),
            Some(e) => (e.kind.http_status(), Reply::Json(error_body(&e))),
        },
    };
    Ok(http_response(flavor, status, &body))
}

/// The success body: the single form (`{"PipelineExecutionArn": ...}`), or
/// one entry per execution. Written straight to the output rather than built
/// as a `serde_json::Value` first: a sweep's reply has an entry per execution,
/// and that tree was the function's largest allocation (docs/performance.md).
impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut body = serializer.serialize_map(None)?;
        if self.dry_run {
            body.serialize_entry("DryRun", &true)?;
        }
        if self.single {
            if let [only] = self.executions.as_slice() {
                execution_entries(&mut body, only)?;
                return body.end();
            }
        }
        body.serialize_entry("Executions", &self.executions)?;
        if !self.pipeline_failures.is_empty() {
            body.serialize_entry("Pipelines", &self.pipeline_failures)?;
        }
        if let Some(guard) = &self.guard {
            body.serialize_entry("Guard", &GuardEntry(guard, self))?;
        }
        if let Some(message) = self.nothing_found() {
            body.serialize_entry("Message", &message)?;
        }
        body.end()
    }
}

/// A guard run's summary: what it examined, what it skipped and why, and
/// the tallies of the executions the report lists.
struct GuardEntry<'a>(&'a GuardSummary, &'a Report);

impl Serialize for GuardEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (guard, report) = (self.0, self.1);
        let count =
            |f: fn(&ExecutionReport) -> bool| report.executions.iter().filter(|e| f(e)).count();
        let mut entry = serializer.serialize_map(None)?;
        entry.serialize_entry("TagKey", &guard.tag_key)?;
        entry.serialize_entry("DefaultMaxRuntime", &guard.default.map(|d| d.to_string()))?;
        entry.serialize_entry("PipelinesExamined", &guard.pipelines_examined)?;
        entry.serialize_entry("PipelinesGuarded", &guard.pipelines_guarded)?;
        entry.serialize_entry("PipelinesExempt", &guard.pipelines_exempt)?;
        entry.serialize_entry("PipelinesSkipped", &SkippedEntries(guard))?;
        // Counted, never named: the caller's deployment may not act on them.
        entry.serialize_entry("PipelinesNotAllowed", &guard.not_allowed.len())?;
        entry.serialize_entry("InvalidTags", &InvalidTagEntries(guard))?;
        entry.serialize_entry("ExecutionsExamined", &guard.executions_examined)?;
        entry.serialize_entry("ExecutionsOverLimit", &guard.over_limit)?;
        if report.dry_run {
            entry.serialize_entry(
                "ExecutionsWouldStop",
                &count(|e| e.outcome == Outcome::WouldStop),
            )?;
        } else {
            entry.serialize_entry(
                "ExecutionsStopped",
                &count(|e| e.outcome == Outcome::StopRequested),
            )?;
        }
        entry.serialize_entry("ExecutionsFailed", &count(|e| e.error().is_some()))?;
        let stuck: Vec<Value> = guard
            .stuck_stopping
            .iter()
            .map(|s| json!({"PipelineExecutionArn": s.arn, "StoppingMinutes": s.stopping_for.as_secs() / 60}))
            .collect();
        entry.serialize_entry("ExecutionsStuckStopping", &stuck)?;
        if report.dry_run {
            let within: Vec<WithinEntry> = guard
                .within_limit
                .iter()
                .map(|(arn, run)| WithinEntry(arn, run))
                .collect();
            entry.serialize_entry("WithinLimit", &within)?;
        }
        if let Some(error) = &guard.error {
            entry.serialize_entry("Error", &ErrorEntry(error))?;
        }
        entry.end()
    }
}

struct SkippedEntries<'a>(&'a GuardSummary);

impl Serialize for SkippedEntries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .skipped
                .iter()
                .map(|s| json!({"PipelineName": s.pipeline, "Reason": s.reason})),
        )
    }
}

struct InvalidTagEntries<'a>(&'a GuardSummary);

impl Serialize for InvalidTagEntries<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .invalid_tags
                .iter()
                .map(|t| json!({"PipelineName": t.pipeline, "Value": t.value, "Reason": t.reason})),
        )
    }
}

/// A running execution within its limit (dry runs).
struct WithinEntry<'a>(&'a str, &'a GuardedRun);

impl Serialize for WithinEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(None)?;
        entry.serialize_entry("PipelineExecutionArn", self.0)?;
        run_entries(&mut entry, self.1)?;
        entry.end()
    }
}

/// An execution's limit, where it came from, and how long it had run.
fn run_entries<M: SerializeMap>(map: &mut M, run: &GuardedRun) -> Result<(), M::Error> {
    map.serialize_entry("MaxRuntime", &run.limit.max_runtime.to_string())?;
    map.serialize_entry("MaxRuntimeMinutes", &run.limit.max_runtime.minutes())?;
    map.serialize_entry("LimitSource", run.limit.source.name())?;
    map.serialize_entry("RuntimeMinutes", &(run.runtime.as_secs() / 60))?;
    Ok(())
}

/// The `Guard` object of an execution the guard acted on.
struct RunEntry<'a>(&'a GuardedRun);

impl Serialize for RunEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(None)?;
        run_entries(&mut entry, self.0)?;
        entry.end()
    }
}

impl Serialize for ExecutionReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(None)?;
        execution_entries(&mut entry, self)?;
        entry.end()
    }
}

/// One execution's fields, into its own object or the single-form body.
pub(crate) fn execution_entries<M: SerializeMap>(
    map: &mut M,
    result: &ExecutionReport,
) -> Result<(), M::Error> {
    map.serialize_entry("PipelineExecutionArn", &result.arn)?;
    map.serialize_entry("Outcome", result.outcome.name())?;
    if let Some(status) = result.shown_status() {
        map.serialize_entry("Status", status.as_str())?;
    }
    if let Outcome::Failed(e) = &result.outcome {
        map.serialize_entry("Error", &ErrorEntry(e))?;
    }
    if !result.blocking_steps.is_empty() {
        map.serialize_entry("BlockingSteps", &result.blocking_steps)?;
    }
    if let Some(run) = &result.guard {
        map.serialize_entry("Guard", &RunEntry(run))?;
    }
    Ok(())
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

impl Serialize for StepReport {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(None)?;
        entry.serialize_entry("StepName", &self.name)?;
        match &self.kind {
            StepKind::Callback { queue_url } => {
                entry.serialize_entry("StepType", "Callback")?;
                if let Some(url) = queue_url {
                    entry.serialize_entry("SqsQueueUrl", url)?;
                }
            }
            StepKind::Lambda { function_arn } => {
                entry.serialize_entry("StepType", "Lambda")?;
                if let Some(arn) = function_arn {
                    entry.serialize_entry("FunctionArn", arn)?;
                }
            }
        }
        if let Some(force) = &self.force {
            entry.serialize_entry("Force", force.name())?;
            if let Force::Failed(e) = force {
                entry.serialize_entry("Error", &ErrorEntry(e))?;
            }
        }
        let note = match (&self.kind, &self.force) {
            (StepKind::Callback { .. }, None) => Some(CALLBACK_NOTE),
            (StepKind::Lambda { .. }, None) => Some(LAMBDA_NOTE),
            (StepKind::Lambda { .. }, Some(_)) => Some(LAMBDA_FORCE_NOTE),
            (StepKind::Callback { .. }, Some(_)) => None,
        };
        if let Some(note) = note {
            entry.serialize_entry("Note", note)?;
        }
        entry.end()
    }
}

impl Serialize for PipelineFailure {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(Some(2))?;
        entry.serialize_entry("PipelineName", &self.pipeline)?;
        entry.serialize_entry("Error", &ErrorEntry(&self.error))?;
        entry.end()
    }
}

/// `{"Code": ..., "Message": ...}`
struct ErrorEntry<'a>(&'a StopError);

impl Serialize for ErrorEntry<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entry = serializer.serialize_map(Some(2))?;
        entry.serialize_entry("Code", self.0.kind.error_type())?;
        entry.serialize_entry("Message", &self.0.message)?;
        entry.end()
    }
}

/// `{"Error": {"Code": ..., "Message": ...}}`
pub fn error_body(error: &StopError) -> Value {
    json!({ "Error": ErrorEntry(error) })
}

/// The body of an event that is deliberately not acted on.
pub fn ignored_body(reason: &str) -> Value {
    json!({"Outcome": "Ignored", "Reason": reason})
}

/// What the function returns, serialized by the runtime as it is sent: the
/// report, a small JSON value, or the response an HTTP front end expects.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    Report(Report),
    Json(Value),
    RestApi(ApiGatewayProxyResponse),
    HttpApi(ApiGatewayV2httpResponse),
    FunctionUrl(LambdaFunctionUrlResponse),
}

impl Reply {
    /// The reply as a JSON value, for callers that read it (the CLI, tests).
    pub fn to_value(&self) -> Value {
        // Every part serializes to a JSON object with string keys: this cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The response in the shape the HTTP front end expects.
pub fn http_response(flavor: HttpFlavor, status: u16, body: &Reply) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == 405 {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    // As above: cannot fail.
    let text = serde_json::to_string(body).unwrap_or_default();
    match flavor {
        HttpFlavor::RestApi => {
            let mut r = ApiGatewayProxyResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(Body::Text(text));
            Reply::RestApi(r)
        }
        HttpFlavor::HttpApi => {
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(Body::Text(text));
            Reply::HttpApi(r)
        }
        HttpFlavor::FunctionUrl => {
            let mut r = LambdaFunctionUrlResponse::default();
            r.status_code = status.into();
            r.headers = headers;
            r.body = Some(text);
            Reply::FunctionUrl(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{report, step_labels};
    use crate::status::ExecutionStatus;

    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a";
    const B: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/b";

    /// The success reply as JSON.
    fn ok(r: &Report) -> Value {
        shape(Trigger::Direct, Answer::Acted(r.clone()))
            .unwrap()
            .to_value()
    }

    fn err(r: &Report) -> StopError {
        shape(Trigger::Direct, Answer::Acted(r.clone())).unwrap_err()
    }

    /// The status and the parsed body of the function URL response.
    fn http(r: &Report) -> (u16, Value) {
        let function_url = Trigger::Http(HttpFlavor::FunctionUrl);
        let response = shape(function_url, Answer::Acted(r.clone()))
            .unwrap()
            .to_value();
        let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
        (response["statusCode"].as_u64().unwrap() as u16, body)
    }

    fn failed(kind: ErrorKind) -> Outcome {
        Outcome::Failed(StopError::new(kind, "x"))
    }

    #[test]
    fn single_success_replies_with_the_arn() {
        let r = report(true, vec![(A, Outcome::StopRequested)]);
        assert_eq!(
            ok(&r),
            json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"})
        );
        assert_eq!(
            http(&r),
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
                    status: ExecutionStatus::Succeeded,
                },
            )],
        );
        assert_eq!(ok(&r)["Status"], "Succeeded");
        let (status, body) = http(&r);
        assert_eq!(status, 409);
        assert_eq!(body["Error"]["Code"], "ConflictException");
        assert!(body["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("Succeeded"));
    }

    #[test]
    fn an_execution_already_stopping_is_a_success_with_its_status() {
        let mut r = report(true, vec![(A, Outcome::AlreadyStopping)]);
        assert_eq!(
            ok(&r),
            json!({"PipelineExecutionArn": A, "Outcome": "AlreadyStopping", "Status": "Stopping"})
        );
        let (status, body) = http(&r);
        assert_eq!((status, &body["Outcome"]), (200, &json!("AlreadyStopping")));
        // After a `Wait`, the status it ended in.
        r.executions[0].status = Some(ExecutionStatus::Stopped);
        assert_eq!(ok(&r)["Status"], "Stopped");
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
            assert_eq!(err(&r).kind.error_type(), error_type);
            let (got, body) = http(&r);
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
        let err = err(&r);
        assert_eq!(err.kind, ErrorKind::PartialFailure);
        assert!(
            err.message.contains(B)
                && !err.message.contains(A)
                && err.message.starts_with("1 of 2")
        );
        let (status, body) = http(&r);
        assert_eq!(status, 207);
        assert_eq!(body["Executions"][0]["Outcome"], "StopRequested");
        assert_eq!(body["Executions"][1]["Error"]["Code"], "ResourceNotFound");
        let all_ok = report(
            false,
            vec![(A, Outcome::StopRequested), (B, Outcome::StopRequested)],
        );
        assert_eq!(http(&all_ok).0, 200);
        assert_eq!(ok(&all_ok)["Executions"].as_array().unwrap().len(), 2);
        // "nothing found" is only for a sweep with no entry at all.
        assert!(ok(&all_ok).get("Message").is_none());
        assert_eq!(all_ok.nothing_found(), None);
    }

    #[test]
    fn a_sweep_reply_is_written_whole_with_every_entry() {
        let mut r = report(
            false,
            vec![
                (A, Outcome::StopRequested),
                (B, failed(ErrorKind::NotFound)),
            ],
        );
        r.executions[0].status = Some(ExecutionStatus::Stopping);
        r.executions[0].blocking_steps = vec![lambda(None)];
        r.pipeline_failures = vec![PipelineFailure {
            pipeline: "p".into(),
            error: StopError::new(ErrorKind::Forbidden, "denied"),
        }];
        let function_url = Trigger::Http(HttpFlavor::FunctionUrl);
        let response = shape(function_url, Answer::Acted(r.clone())).unwrap();
        let response = response.to_value();
        assert_eq!(response["statusCode"], 207);
        let text = response["body"].as_str().unwrap().to_owned();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({
                "Executions": [
                    {"PipelineExecutionArn": A, "Outcome": "StopRequested", "Status": "Stopping",
                     "BlockingSteps": [{"StepName": "score", "StepType": "Lambda",
                                        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:score",
                                        "Note": LAMBDA_NOTE}]},
                    {"PipelineExecutionArn": B, "Outcome": "Failed",
                     "Error": {"Code": "ResourceNotFound", "Message": "x"}},
                ],
                "Pipelines": [{"PipelineName": "p", "Error": {"Code": "AccessDenied", "Message": "denied"}}],
            })
        );
        // Entries keep the order in which the fields are read, ARN first.
        assert!(text.starts_with(&format!(
            "{{\"Executions\":[{{\"PipelineExecutionArn\":\"{A}\",\"Outcome\""
        )));
    }

    #[test]
    fn a_sweep_that_finds_nothing_says_so_and_a_failed_listing_is_its_error() {
        let empty = Report {
            pipelines_swept: vec!["p".into()],
            ..Report::default()
        };
        assert!(ok(&empty)["Message"]
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
        assert_eq!(err(&not_found).kind, ErrorKind::NotFound);
        assert_eq!(not_found.nothing_found(), None);
        assert_eq!(http(&not_found).0, 404);
    }

    /// The guard's reply is a public contract: each execution's limit, its
    /// source and run time; the summary's counts, lists and tallies; the
    /// dry run's WithinLimit; a failed discovery as the run's error.
    #[test]
    fn a_guard_run_reports_each_limit_and_its_summary() {
        use crate::guard::{
            GuardSummary, GuardedRun, InvalidTag, Limit, LimitSource, MaxRuntime, SkippedPipeline,
        };
        use std::time::Duration;
        let run = |minutes, source, ran: u64| GuardedRun {
            limit: Limit {
                max_runtime: MaxRuntime::from_minutes(minutes).unwrap(),
                source,
            },
            runtime: Duration::from_secs(ran * 60 + 59),
        };
        let mut stopped = ExecutionReport::new(A, Outcome::StopRequested);
        stopped.guard = Some(run(240, LimitSource::Tag, 247));
        let failed = ExecutionReport {
            guard: Some(run(90, LimitSource::Default, 91)),
            ..ExecutionReport::new(
                B,
                Outcome::Failed(StopError::new(ErrorKind::Throttled, "t")),
            )
        };
        let summary = GuardSummary {
            tag_key: "pipeline-stopper:max-runtime".into(),
            default: MaxRuntime::from_minutes(90),
            pipelines_examined: 5,
            pipelines_guarded: 2,
            pipelines_exempt: 1,
            skipped: vec![SkippedPipeline {
                pipeline: "q".into(),
                reason: "tags unread".into(),
            }],
            not_allowed: vec![SkippedPipeline {
                pipeline: "secret-pipeline".into(),
                reason: "not in ALLOWED_PIPELINES".into(),
            }],
            invalid_tags: vec![InvalidTag {
                pipeline: "r".into(),
                value: "4 hours".into(),
                reason: "bad".into(),
            }],
            executions_examined: 7,
            over_limit: 2,
            within_limit: vec![(A.into(), run(60, LimitSource::Tag, 10))],
            stuck_stopping: vec![crate::guard::StuckStop {
                arn: B.into(),
                token: "t".into(),
                stopping_for: Duration::from_secs(20 * 60 + 59),
            }],
            error: None,
        };
        // Ended before the stop reached it: neither stopped nor failed.
        let ended = ExecutionReport::new(
            A,
            Outcome::AlreadyFinished {
                status: ExecutionStatus::Succeeded,
            },
        );
        let mut report = Report {
            executions: vec![stopped, ended, failed],
            guard: Some(Box::new(summary)),
            ..Report::default()
        };
        let body = http(&report).1;
        assert_eq!(
            body["Executions"][0]["Guard"],
            json!({"MaxRuntime": "4h", "MaxRuntimeMinutes": 240, "LimitSource": "Tag", "RuntimeMinutes": 247})
        );
        assert_eq!(body["Executions"][2]["Guard"]["LimitSource"], "Default");
        assert_eq!(
            body["Guard"],
            json!({"TagKey": "pipeline-stopper:max-runtime", "DefaultMaxRuntime": "90m",
                   "PipelinesExamined": 5, "PipelinesGuarded": 2, "PipelinesExempt": 1,
                   "PipelinesSkipped": [{"PipelineName": "q", "Reason": "tags unread"}],
                   "PipelinesNotAllowed": 1,
                   "InvalidTags": [{"PipelineName": "r", "Value": "4 hours", "Reason": "bad"}],
                   "ExecutionsExamined": 7, "ExecutionsOverLimit": 2, "ExecutionsStopped": 1,
                   "ExecutionsFailed": 1,
                   "ExecutionsStuckStopping": [{"PipelineExecutionArn": B, "StoppingMinutes": 20}]})
        );
        assert_eq!(err(&report).kind, ErrorKind::PartialFailure);
        // A dry run counts what would be stopped and lists what is within its limit.
        report.dry_run = true;
        report.executions[0].outcome = Outcome::WouldStop;
        report.executions.pop();
        report.executions.pop();
        let dry = ok(&report);
        assert_eq!(dry["Guard"]["ExecutionsWouldStop"], 1);
        assert!(dry["Guard"].get("ExecutionsStopped").is_none());
        assert_eq!(
            dry["Guard"]["WithinLimit"],
            json!([{"PipelineExecutionArn": A, "MaxRuntime": "1h", "MaxRuntimeMinutes": 60,
                    "LimitSource": "Tag", "RuntimeMinutes": 10}])
        );
        // Nothing over a limit: said so; a failed discovery: the run's error, not "nothing".
        report.executions.clear();
        assert!(ok(&report)["Message"]
            .as_str()
            .unwrap()
            .contains("no running execution is over its limit"));
        report.guard.as_mut().unwrap().error = Some(StopError::new(ErrorKind::Forbidden, "denied"));
        assert_eq!(report.nothing_found(), None);
        assert_eq!(err(&report).kind, ErrorKind::Forbidden);
        let body = http(&report);
        assert_eq!(body.0, 403);
        let summary_error = &ok_even_if_failed(&report)["Guard"]["Error"];
        assert_eq!(summary_error["Code"], "AccessDenied");
    }

    /// The report's JSON whatever its error (as the CLI prints it).
    fn ok_even_if_failed(r: &Report) -> Value {
        Reply::Report(r.clone()).to_value()
    }

    fn callback(force: Option<Force>) -> StepReport {
        StepReport {
            name: "approve".into(),
            kind: StepKind::Callback {
                queue_url: Some("https://sqs.us-east-1.amazonaws.com/123456789012/q".into()),
            },
            force,
        }
    }

    fn lambda(force: Option<Force>) -> StepReport {
        StepReport {
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
        r.executions[0].status = Some(ExecutionStatus::Stopping);
        r.executions[0].blocking_steps = vec![callback(None), lambda(None)];
        let body = ok(&r);
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
        assert_eq!(http(&r).0, 200);
        let plain = ok(&report(true, vec![(A, Outcome::StopRequested)]));
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
        let err = err(&r);
        assert_eq!(err.kind, ErrorKind::PartialFailure);
        assert!(err.message.contains(B) && !err.message.contains(A));
        let (status, body) = http(&r);
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
        r.executions[0].status = Some(ExecutionStatus::Executing);
        r.executions[0].blocking_steps = vec![callback(Some(Force::WouldSend))];
        let body = ok(&r);
        assert_eq!(body["Outcome"], "WouldStop");
        assert_eq!(body["DryRun"], true);
        assert_eq!(body["Status"], "Executing");
        assert_eq!(body["BlockingSteps"][0]["Force"], "WouldSend");
        let mut several = report(
            false,
            vec![(A, Outcome::WouldStop), (B, Outcome::WouldStop)],
        );
        several.dry_run = true;
        assert_eq!(http(&several), (200, ok(&several)));
        assert_eq!(ok(&several)["DryRun"], true);
    }

    /// An event deliberately not acted on is a success with its reason, on
    /// every trigger; a refusal fails the invocation, or is an HTTP error.
    #[test]
    fn an_ignored_event_is_a_success_with_its_reason_and_a_refusal_is_an_error() {
        let why = "alarm \"a\" is in state OK, not ALARM; nothing to stop";
        let expected = json!({"Outcome": "Ignored", "Reason": why});
        assert_eq!(ignored_body(why), expected);
        let direct = shape(Trigger::AlarmEventBridge, Answer::Ignored(why.into())).unwrap();
        assert_eq!(direct.to_value(), expected);
        let http = shape(
            Trigger::Http(HttpFlavor::HttpApi),
            Answer::Ignored(why.into()),
        )
        .unwrap()
        .to_value();
        assert_eq!(http["statusCode"], 200);
        let body: Value = serde_json::from_str(http["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, expected);

        let refused = StopError::validation("bad");
        assert_eq!(
            shape(Trigger::Sns, Answer::Refused(refused.clone())).unwrap_err(),
            refused
        );
        let http = shape(Trigger::Http(HttpFlavor::RestApi), Answer::Refused(refused))
            .unwrap()
            .to_value();
        assert_eq!(http["statusCode"], 400);
        let body: Value = serde_json::from_str(http["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"Error": {"Code": "ValidationError", "Message": "bad"}})
        );
    }

    #[test]
    fn http_responses_take_each_front_end_shape() {
        for flavor in [
            HttpFlavor::RestApi,
            HttpFlavor::HttpApi,
            HttpFlavor::FunctionUrl,
        ] {
            let r = http_response(flavor, 405, &Reply::Json(json!({"a": 1}))).to_value();
            assert_eq!(r["statusCode"], 405);
            assert_eq!(r["headers"]["content-type"], "application/json");
            assert_eq!(r["headers"]["allow"], "POST");
            assert_eq!(r["body"], "{\"a\":1}");
            assert_eq!(r["isBase64Encoded"], false);
        }
    }
}
