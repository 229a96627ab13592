//! The wire formats: an [`Answer`] shaped for its trigger, in one place
//! ([`shape`]). JSON for direct, scheduled and alarm invocations (or a
//! failed invocation with an `errorType`), and the response each HTTP front
//! end expects. The JSON field names are a public contract.
//!
//! The report's types know no wire format: each JSON object is a derived,
//! borrowing view of them here, its fields in the order they are written.
//! The views are written straight to the output rather than built as a
//! `serde_json::Value` first: a sweep's reply has an entry per execution, and
//! that tree was the function's largest allocation (docs/performance.md). A
//! view's field order is its key order whatever serde_json's features (a
//! `json!` map's is not: the function's build preserves insertion order, the
//! core built alone sorts).

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlResponse;
use aws_lambda_events::http::header::{HeaderMap, HeaderValue, ALLOW, CONTENT_TYPE};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::error::{ErrorKind, StopError};
use crate::guard::GuardSummary;
use crate::limit::GuardedRun;
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

/// The success body: the single form (`{"PipelineExecutionArn": ...}`, only
/// `DryRun` beside it), or one entry per execution and the rest.
#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ReportBody<'a> {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
    #[serde(flatten)]
    single: Option<ExecutionEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executions: Option<Vec<ExecutionEntry<'a>>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pipelines: Vec<PipelineEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guard: Option<GuardEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl<'a> ReportBody<'a> {
    fn new(report: &'a Report) -> ReportBody<'a> {
        let body = ReportBody {
            dry_run: report.dry_run,
            ..ReportBody::default()
        };
        match report.executions.as_slice() {
            [only] if report.single => ReportBody {
                single: Some(ExecutionEntry::new(only)),
                ..body
            },
            executions => ReportBody {
                executions: Some(executions.iter().map(ExecutionEntry::new).collect()),
                pipelines: report
                    .pipeline_failures
                    .iter()
                    .map(PipelineEntry::new)
                    .collect(),
                guard: report.guard.as_deref().map(|g| GuardEntry::new(g, report)),
                message: report.nothing_found(),
                ..body
            },
        }
    }
}

/// A guard run's summary: what it examined, what it skipped and why, and
/// the tallies of the executions the report lists.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GuardEntry<'a> {
    tag_key: &'a str,
    default_max_runtime: Option<String>,
    pipelines_examined: usize,
    pipelines_guarded: usize,
    pipelines_exempt: usize,
    pipelines_skipped: Vec<SkippedEntry<'a>>,
    /// Counted, never named: the caller's deployment may not act on them.
    pipelines_not_allowed: usize,
    invalid_tags: Vec<InvalidTagEntry<'a>>,
    executions_examined: usize,
    executions_over_limit: usize,
    /// A dry run counts what it would stop, a real run what it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    executions_would_stop: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    executions_stopped: Option<usize>,
    executions_failed: usize,
    executions_stuck_stopping: Vec<StuckEntry<'a>>,
    /// Dry runs only: a real run reports what it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    within_limit: Option<Vec<WithinEntry<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorEntry<'a>>,
}

impl<'a> GuardEntry<'a> {
    fn new(guard: &'a GuardSummary, report: &Report) -> GuardEntry<'a> {
        let count =
            |f: fn(&ExecutionReport) -> bool| report.executions.iter().filter(|e| f(e)).count();
        let (would_stop, stopped) = match report.dry_run {
            true => (Some(count(|e| e.outcome == Outcome::WouldStop)), None),
            false => (None, Some(count(|e| e.outcome == Outcome::StopRequested))),
        };
        GuardEntry {
            tag_key: &guard.tag_key,
            default_max_runtime: guard.default.map(|d| d.to_string()),
            pipelines_examined: guard.pipelines_examined,
            pipelines_guarded: guard.pipelines_guarded,
            pipelines_exempt: guard.pipelines_exempt,
            pipelines_skipped: (guard.skipped.iter())
                .map(|s| SkippedEntry {
                    pipeline_name: &s.pipeline,
                    reason: &s.reason,
                })
                .collect(),
            pipelines_not_allowed: guard.not_allowed.len(),
            invalid_tags: (guard.invalid_tags.iter())
                .map(|t| InvalidTagEntry {
                    pipeline_name: &t.pipeline,
                    value: &t.value,
                    reason: &t.reason,
                })
                .collect(),
            executions_examined: guard.executions_examined,
            executions_over_limit: guard.over_limit,
            executions_would_stop: would_stop,
            executions_stopped: stopped,
            executions_failed: count(|e| e.error().is_some()),
            executions_stuck_stopping: (guard.stuck_stopping.iter())
                .map(|s| StuckEntry {
                    pipeline_execution_arn: &s.arn,
                    stopping_minutes: s.stopping_for.as_secs() / 60,
                })
                .collect(),
            within_limit: report.dry_run.then(|| {
                (guard.within_limit.iter())
                    .map(|(arn, run)| WithinEntry {
                        pipeline_execution_arn: arn,
                        run: RunEntry::new(run),
                    })
                    .collect()
            }),
            error: guard.error.as_ref().map(ErrorEntry::new),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SkippedEntry<'a> {
    pipeline_name: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InvalidTagEntry<'a> {
    pipeline_name: &'a str,
    value: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StuckEntry<'a> {
    pipeline_execution_arn: &'a str,
    stopping_minutes: u64,
}

/// A running execution within its limit (dry runs).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WithinEntry<'a> {
    pipeline_execution_arn: &'a str,
    #[serde(flatten)]
    run: RunEntry,
}

/// An execution's limit, where it came from, and how long it had run: the
/// `Guard` object of an execution the guard acted on.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunEntry {
    max_runtime: String,
    max_runtime_minutes: u64,
    limit_source: &'static str,
    runtime_minutes: u64,
}

impl RunEntry {
    fn new(run: &GuardedRun) -> RunEntry {
        RunEntry {
            max_runtime: run.limit.max_runtime.to_string(),
            max_runtime_minutes: run.limit.max_runtime.minutes(),
            limit_source: run.limit.source.name(),
            runtime_minutes: run.runtime.as_secs() / 60,
        }
    }
}

/// One execution, as its own object, the single-form body or a notice's entry.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecutionEntry<'a> {
    pipeline_execution_arn: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorEntry<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    blocking_steps: Vec<StepEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    guard: Option<RunEntry>,
}

impl<'a> ExecutionEntry<'a> {
    pub(crate) fn new(result: &'a ExecutionReport) -> ExecutionEntry<'a> {
        ExecutionEntry {
            pipeline_execution_arn: &result.arn,
            outcome: result.outcome.name(),
            status: result.shown_status().map(|s| s.as_str()),
            error: match &result.outcome {
                Outcome::Failed(e) => Some(ErrorEntry::new(e)),
                _ => None,
            },
            blocking_steps: result.blocking_steps.iter().map(StepEntry::new).collect(),
            guard: result.guard.as_ref().map(RunEntry::new),
        }
    }
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

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct StepEntry<'a> {
    step_name: &'a str,
    step_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqs_queue_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_arn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    force: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

impl<'a> StepEntry<'a> {
    fn new(step: &'a StepReport) -> StepEntry<'a> {
        let (sqs_queue_url, function_arn) = match &step.kind {
            StepKind::Callback { queue_url } => (queue_url.as_deref(), None),
            StepKind::Lambda { function_arn } => (None, function_arn.as_deref()),
        };
        let note = match (&step.kind, &step.force) {
            (StepKind::Callback { .. }, None) => Some(CALLBACK_NOTE),
            (StepKind::Lambda { .. }, None) => Some(LAMBDA_NOTE),
            (StepKind::Lambda { .. }, Some(_)) => Some(LAMBDA_FORCE_NOTE),
            (StepKind::Callback { .. }, Some(_)) => None,
        };
        StepEntry {
            step_name: &step.name,
            step_type: step.kind.name(),
            sqs_queue_url,
            function_arn,
            force: step.force.as_ref().map(Force::name),
            error: match &step.force {
                Some(Force::Failed(e)) => Some(ErrorEntry::new(e)),
                _ => None,
            },
            note,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PipelineEntry<'a> {
    pipeline_name: &'a str,
    error: ErrorEntry<'a>,
}

impl<'a> PipelineEntry<'a> {
    fn new(failure: &'a PipelineFailure) -> PipelineEntry<'a> {
        PipelineEntry {
            pipeline_name: &failure.pipeline,
            error: ErrorEntry::new(&failure.error),
        }
    }
}

/// `{"Code": ..., "Message": ...}`
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorEntry<'a> {
    code: &'static str,
    message: &'a str,
}

impl<'a> ErrorEntry<'a> {
    fn new(error: &'a StopError) -> ErrorEntry<'a> {
        ErrorEntry {
            code: error.kind.error_type(),
            message: &error.message,
        }
    }
}

/// `{"Error": {"Code": ..., "Message": ...}}`
pub fn error_body(error: &StopError) -> Value {
    json!({ "Error": ErrorEntry::new(error) })
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
    #[serde(serialize_with = "report_body")]
    Report(Report),
    Json(Value),
    RestApi(ApiGatewayProxyResponse),
    HttpApi(ApiGatewayV2httpResponse),
    FunctionUrl(LambdaFunctionUrlResponse),
}

fn report_body<S: Serializer>(report: &Report, serializer: S) -> Result<S::Ok, S::Error> {
    ReportBody::new(report).serialize(serializer)
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
        use crate::guard::{GuardSummary, InvalidTag, SkippedPipeline};
        use crate::limit::{GuardedRun, Limit, LimitSource, MaxRuntime};
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
