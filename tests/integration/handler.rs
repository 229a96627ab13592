//! The handler against a mocked SageMaker (aws-smithy-mocks): each SageMaker
//! outcome, each trigger's reply shape, and bad input that must reach nothing.

use crate::{describe, summary, A, B};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionOutput;
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsOutput;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsOutput;
use aws_sdk_sagemaker::operation::list_tags::ListTagsOutput;
use aws_sdk_sagemaker::operation::search::{SearchInput, SearchOutput};
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::{
    SendPipelineExecutionStepFailureError, SendPipelineExecutionStepFailureOutput,
};
use aws_sdk_sagemaker::operation::stop_pipeline_execution::{
    StopPipelineExecutionError, StopPipelineExecutionOutput,
};
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::error::{ConflictException, ResourceNotFound};
use aws_sdk_sagemaker::types::{
    CallbackStepMetadata, LambdaStepMetadata, Pipeline, PipelineExecution, PipelineExecutionStatus,
    PipelineExecutionStep, PipelineExecutionStepMetadata, PipelineExecutionSummary, ResourceType,
    SearchRecord, StepStatus, Tag,
};
use aws_sdk_sagemaker::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use aws_smithy_types::body::SdkBody;
use lambda_runtime::tracing::subscriber::filter::LevelFilter;
use lambda_runtime::tracing::subscriber::layer::SubscriberExt as _;
use lambda_runtime::tracing::subscriber::{fmt, registry};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use sagemaker_pipeline_stopper::handler::Stopper;
use sagemaker_pipeline_stopper::logging;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use stopper_core::arn::Scope;
use stopper_core::config::{AllowList, Config};
use stopper_core::token;

const REQUEST_ID: &str = "8f5c2a1e-0d3b-4e6f-9a7c-1b2d3e4f5a6b";

fn event(payload: Value) -> LambdaEvent<Box<RawValue>> {
    let mut context = Context::default();
    context.request_id = REQUEST_ID.into();
    context.invoked_function_arn =
        "arn:aws:lambda:us-east-1:123456789012:function:sagemaker-pipeline-stopper".into();
    LambdaEvent::new(RawValue::from_string(payload.to_string()).unwrap(), context)
}

fn home() -> Scope {
    Scope::for_region("us-east-1", Some("123456789012")).unwrap()
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stopper(client: Client) -> Stopper {
    Stopper::new(
        client,
        Config {
            max_concurrency: 4,
            ..Config::default()
        },
        home(),
        None,
    )
}

fn stop_ok() -> Rule {
    mock!(Client::stop_pipeline_execution)
        .then_output(|| StopPipelineExecutionOutput::builder().build())
}

/// A named execution, looked at before its stop: running.
fn executing() -> Rule {
    describe(PipelineExecutionStatus::Executing)
}

/// No step holds the stop.
fn no_steps() -> Rule {
    mock!(Client::list_pipeline_execution_steps)
        .then_output(|| ListPipelineExecutionStepsOutput::builder().build())
}

fn no_call_rules() -> [Rule; 4] {
    [
        stop_ok(),
        no_steps(),
        describe(PipelineExecutionStatus::Executing),
        mock!(Client::list_pipeline_executions)
            .then_output(|| ListPipelineExecutionsOutput::builder().build()),
    ]
}

/// What the function logs, captured with its own filter (our crates at the
/// level asked for, every other crate at most WARN).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` with the function's logs at TRACE (the most an operator can
/// ask for) and returns what it logged with its result.
async fn logged<T>(work: impl Future<Output = T>) -> (T, String) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = registry()
        .with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        )
        .with(logging::filter(LevelFilter::TRACE));
    let result = {
        let _in_force = tracing::subscriber::set_default(subscriber);
        work.await
    };
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    (result, text)
}

/// The callback tokens of `held_steps`: credentials for the steps, which
/// must reach no reply and no log line.
const CALLBACK_TOKENS: [&str; 2] = ["Xk3vQ9aL2m", "Rt5wY7uI0p"];

fn assert_no_callback_token(reply: &str, logs: &str) {
    assert!(
        !logs.is_empty(),
        "nothing was logged: the capture is broken"
    );
    for token in CALLBACK_TOKENS {
        assert!(
            !reply.contains(token),
            "callback token in the reply: {reply}"
        );
        assert!(!logs.contains(token), "callback token in the logs: {logs}");
    }
}

async fn run(client: Client, payload: Value) -> Result<Value, Diagnostic> {
    stopper(client)
        .handle(event(payload))
        .await
        .map(|reply| reply.to_value())
}

#[tokio::test]
async fn a_direct_stop_calls_sagemaker_once_with_a_derived_token_and_replies_with_the_arn() {
    let expected_token = token::derive(&format!("lambda:{REQUEST_ID}"), A);
    let rule = mock!(Client::stop_pipeline_execution)
        .match_requests(move |r| {
            r.pipeline_execution_arn() == Some(A)
                && r.client_request_token() == Some(expected_token.as_str())
        })
        .then_output(|| {
            StopPipelineExecutionOutput::builder()
                .pipeline_execution_arn(A)
                .build()
        });
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&rule, &no_steps(), &executing()]
    );
    let reply = run(client, fixture("direct.json")).await.unwrap();
    assert_eq!(
        reply,
        json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"})
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_caller_token_is_passed_through_unchanged() {
    let given = "ops-console-2026-11-22-0600-nightly-training";
    let rule = mock!(Client::stop_pipeline_execution)
        .match_requests(move |r| r.client_request_token() == Some(given))
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&rule, &no_steps(), &executing()]
    );
    run(
        client,
        json!({"PipelineExecutionArn": A, "ClientRequestToken": given}),
    )
    .await
    .unwrap();
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn a_modeled_not_found_error_is_resource_not_found() {
    let rule = mock!(Client::stop_pipeline_execution).then_error(|| {
        StopPipelineExecutionError::ResourceNotFound(ResourceNotFound::builder().build())
    });
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&rule, &no_steps(), &executing()]
    );
    let err = run(client, fixture("direct.json")).await.unwrap_err();
    assert_eq!(err.error_type, "ResourceNotFound");
    assert!(err.error_message.contains(A));
}

#[tokio::test]
async fn a_conflict_on_a_finished_execution_is_reported_with_its_status_and_is_409_over_http() {
    let conflict = mock!(Client::stop_pipeline_execution).then_error(|| {
        StopPipelineExecutionError::ConflictException(ConflictException::builder().build())
    });
    let status = describe(PipelineExecutionStatus::Succeeded);
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&conflict, &status, &no_steps()]
    );
    let reply = run(client.clone(), fixture("direct.json")).await.unwrap();
    assert_eq!(
        reply,
        json!({"PipelineExecutionArn": A, "Outcome": "AlreadyFinished", "Status": "Succeeded"})
    );
    let http = run(client, fixture("http-api.json")).await.unwrap();
    assert_eq!(http["statusCode"], 409);
    assert!(http["body"].as_str().unwrap().contains("Succeeded"));
}

#[tokio::test]
async fn an_alarm_sweeps_every_page_and_stops_only_executing_executions() {
    let finished = A.replace("k7xvw1b9q2hj", "f1n15hed0000");
    let page1 = mock!(Client::list_pipeline_executions)
        .match_requests(|r| {
            r.pipeline_name() == Some("nightly-training") && r.next_token().is_none()
        })
        .then_output(move || {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(summary(A, PipelineExecutionStatus::Executing))
                .pipeline_execution_summaries(summary(
                    &finished,
                    PipelineExecutionStatus::Succeeded,
                ))
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(Client::list_pipeline_executions)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(summary(B, PipelineExecutionStatus::Executing))
                .build()
        });
    let stop_a = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A))
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let stop_b = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(B))
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&page1, &page2, &stop_a, &stop_b, &no_steps(), &executing()]
    );
    let reply = run(client, fixture("alarm-eventbridge.json"))
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"Executions": [
            {"PipelineExecutionArn": A, "Outcome": "StopRequested"},
            {"PipelineExecutionArn": B, "Outcome": "StopRequested"},
        ]})
    );
    assert_eq!(
        (
            page1.num_calls(),
            page2.num_calls(),
            stop_a.num_calls(),
            stop_b.num_calls()
        ),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn stops_start_from_the_first_page_and_a_listing_that_fails_later_is_a_partial_failure() {
    let page1 = mock!(Client::list_pipeline_executions)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(summary(A, PipelineExecutionStatus::Executing))
                .next_token("page-2")
                .build()
        });
    let page2 = mock!(Client::list_pipeline_executions)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                400.try_into().unwrap(),
                SdkBody::from("{\"__type\":\"AccessDeniedException\"}"),
            )
        });
    let stop = stop_ok();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&page1, &page2, &stop, &no_steps(), &executing()]
    );
    let err = run(client, fixture("alarm-eventbridge.json"))
        .await
        .unwrap_err();
    assert_eq!(stop.num_calls(), 1, "the listed execution was stopped");
    assert_eq!(err.error_type, "PartialFailure");
    assert!(
        err.error_message.contains("nightly-training (AccessDenied"),
        "{}",
        err.error_message
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_target_keeps_its_place_in_the_reply() {
    // A's stop is retried after a backoff, so B's result comes back first.
    let stop_a = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A))
        .sequence()
        .http_status(500, None)
        .output(|| StopPipelineExecutionOutput::builder().build())
        .build();
    let stop_b = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(B))
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop_a, &stop_b, &no_steps(), &executing()],
        |conf| conf.retry_config(aws_sdk_sagemaker::config::retry::RetryConfig::standard())
    );
    let reply = run(client, json!({"PipelineExecutionArns": [A, B]}))
        .await
        .unwrap();
    assert_eq!(stop_a.num_calls(), 2, "A's stop was retried");
    let order: Vec<&str> = reply["Executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["PipelineExecutionArn"].as_str().unwrap())
        .collect();
    assert_eq!(order, [A, B]);
}

#[tokio::test(start_paused = true)]
async fn a_target_in_backoff_holds_back_new_starts() {
    // Two slots; A's stop fails once and is retried after a backoff. B ends at
    // once, but C must not start until A is answered: that backpressure is what
    // keeps a sweep at SageMaker's rate limit. Time is paused, so only the
    // backoff moves the clock.
    let c = A.replace("k7xvw1b9q2hj", "c0000000000c");
    let started = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = {
        let started = started.clone();
        // Matches nothing: it notes when each stop begins.
        mock!(Client::stop_pipeline_execution)
            .match_requests(move |r| {
                let arn = r.pipeline_execution_arn().unwrap_or_default().to_owned();
                started
                    .lock()
                    .unwrap()
                    .push((arn, tokio::time::Instant::now()));
                false
            })
            .then_output(|| StopPipelineExecutionOutput::builder().build())
    };
    let stop_a = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A))
        .sequence()
        .http_status(500, None)
        .output(|| StopPipelineExecutionOutput::builder().build())
        .build();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&record, &stop_a, &stop_ok(), &no_steps(), &executing()],
        |conf| conf.retry_config(aws_sdk_sagemaker::config::retry::RetryConfig::standard())
    );
    let stopper = Stopper::new(
        client,
        Config {
            max_concurrency: 2,
            ..Config::default()
        },
        home(),
        None,
    );
    let reply = stopper
        .handle(event(json!({"PipelineExecutionArns": [A, B, c.as_str()]})))
        .await
        .unwrap()
        .to_value();
    assert_eq!(reply["Executions"].as_array().unwrap().len(), 3);
    assert_eq!(stop_a.num_calls(), 2, "A's stop was retried");
    let started = started.lock().unwrap();
    let at = |arn: &str| started.iter().find(|(a, _)| a == arn).unwrap().1;
    assert!(
        at(&c) > at(A),
        "C started while A was in backoff: {started:?}"
    );
}

#[tokio::test]
async fn a_sweep_that_finds_nothing_running_succeeds_and_says_so() {
    let list = mock!(Client::list_pipeline_executions)
        .then_output(|| ListPipelineExecutionsOutput::builder().build());
    let client = mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, [&list, &executing()]);
    let reply = run(client, fixture("alarm-sns.json")).await.unwrap();
    assert!(reply["Message"]
        .as_str()
        .unwrap()
        .contains("no running executions of nightly-training"));
}

#[tokio::test]
async fn one_failed_target_among_several_is_a_partial_failure_that_names_it() {
    let stop_a = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A))
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let stop_b = mock!(Client::stop_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(B))
        .then_error(|| {
            StopPipelineExecutionError::ResourceNotFound(ResourceNotFound::builder().build())
        });
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop_a, &stop_b, &no_steps(), &executing()]
    );
    let err = run(client.clone(), fixture("eventbridge-custom.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "PartialFailure");
    assert!(err.error_message.contains(B) && err.error_message.contains("ResourceNotFound"));
    let http = run(client, fixture("function-url.json")).await.unwrap();
    assert_eq!(http["statusCode"], 207);
    let body: Value = serde_json::from_str(http["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["Executions"][0]["Outcome"], "StopRequested");
    assert_eq!(body["Executions"][1]["Error"]["Code"], "ResourceNotFound");
}

#[tokio::test]
async fn every_http_front_end_gets_its_response_shape() {
    for file in ["http-rest-api.json", "http-api.json", "function-url.json"] {
        let rule = stop_ok();
        let client = mock_client!(
            aws_sdk_sagemaker,
            RuleMode::MatchAny,
            [&rule, &no_steps(), &executing()]
        );
        let http = run(client, fixture(file)).await.unwrap();
        assert_eq!(http["statusCode"], 200, "{file}");
        assert_eq!(
            http["headers"]["content-type"], "application/json",
            "{file}"
        );
        let body: Value = serde_json::from_str(http["body"].as_str().unwrap()).unwrap();
        assert!(
            body.get("PipelineExecutionArn").is_some() || body.get("Executions").is_some(),
            "{file}"
        );
        assert!(rule.num_calls() >= 1, "{file}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_reaches_nothing_and_the_next_event_is_served() {
    let rules = no_call_rules();
    let client = mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, &rules);
    let stopper = Stopper::new(
        client,
        Config {
            allowed: AllowList::parse("exp-*").unwrap(),
            max_concurrency: 4,
            ..Config::default()
        },
        home(),
        None,
    );
    let other_account = A.replace("123456789012", "999999999999");
    let cases = [
        (
            json!({"PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/x"}),
            "ValidationError",
        ),
        (
            json!({"PipelineExecutionArn": A, "ClientRequestToken": "short"}),
            "ValidationError",
        ),
        (
            json!({"PipelineExecutionArn": other_account}),
            "AccessDenied",
        ),
        (fixture("direct.json"), "AccessDenied"),
        // Valid ARNs, allowed pipeline: refused for their number alone,
        // at the 101st (the cap is 100), however many follow.
        (
            json!({"PipelineExecutionArns": (0..101)
                .map(|i| format!("{}{i}", A.replace("nightly-training", "exp-7")))
                .collect::<Vec<_>>()}),
            "ValidationError",
        ),
        (
            json!({"PipelineExecutionArns": (0..5000)
                .map(|i| format!("{}{i}", A.replace("nightly-training", "exp-7")))
                .collect::<Vec<_>>()}),
            "ValidationError",
        ),
        (json!("just a string"), "ValidationError"),
        (json!({}), "ValidationError"),
    ];
    for (payload, error_type) in cases {
        let err = stopper.handle(event(payload.clone())).await.unwrap_err();
        assert_eq!(err.error_type, error_type, "{payload}");
        assert!(!err.error_message.is_empty());
        if payload["PipelineExecutionArns"].is_array() {
            assert!(
                err.error_message.contains("100"),
                "the cap is named: {}",
                err.error_message
            );
        }
    }
    let forbidden_http = stopper
        .handle(event(fixture("http-rest-api.json")))
        .await
        .unwrap()
        .to_value();
    assert_eq!(forbidden_http["statusCode"], 403);
    let ignored = stopper
        .handle(event(fixture("alarm-eventbridge-ok.json")))
        .await
        .unwrap()
        .to_value();
    assert_eq!(ignored["Outcome"], "Ignored");
    assert!(
        rules.iter().all(|r| r.num_calls() == 0),
        "bad input reached SageMaker"
    );

    let allowed = A.replace("nightly-training", "exp-7");
    let reply = stopper
        .handle(event(json!({"PipelineExecutionArn": allowed})))
        .await
        .unwrap()
        .to_value();
    assert_eq!(reply["Outcome"], "StopRequested");
    assert_eq!(rules[0].num_calls(), 1);
    assert_eq!(rules[1].num_calls(), 1);
}

#[tokio::test]
async fn a_scheduled_event_stops_the_default_pipelines_running_executions() {
    let list = mock!(Client::list_pipeline_executions)
        .match_requests(|r| r.pipeline_name() == Some("nightly-training"))
        .then_output(|| {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(summary(A, PipelineExecutionStatus::Executing))
                .build()
        });
    let stop = stop_ok();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&list, &stop, &no_steps(), &executing()]
    );
    let stopper = Stopper::new(
        client,
        Config {
            default_pipeline: Some("nightly-training".into()),
            max_concurrency: 4,
            ..Config::default()
        },
        home(),
        None,
    );
    let reply = stopper
        .handle(event(fixture("eventbridge-scheduled.json")))
        .await
        .unwrap()
        .to_value();
    assert_eq!(reply["Executions"][0]["PipelineExecutionArn"], A);
    assert_eq!(stop.num_calls(), 1);
}

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/approvals";
const SCORER: &str = "arn:aws:lambda:us-east-1:123456789012:function:score-model";

fn step(
    name: &str,
    status: StepStatus,
    metadata: PipelineExecutionStepMetadata,
) -> PipelineExecutionStep {
    PipelineExecutionStep::builder()
        .step_name(name)
        .step_status(status)
        .metadata(metadata)
        .build()
}

/// A running Callback step (token `Xk3vQ9aL2m`), a running Lambda step, a
/// running training step (holds nothing) and a finished Callback step.
fn held_steps() -> Rule {
    mock!(Client::list_pipeline_execution_steps).then_output(|| {
        ListPipelineExecutionStepsOutput::builder()
            .pipeline_execution_steps(step(
                "approve",
                StepStatus::Executing,
                PipelineExecutionStepMetadata::builder()
                    .callback(
                        CallbackStepMetadata::builder()
                            .callback_token("Xk3vQ9aL2m")
                            .sqs_queue_url(QUEUE)
                            .build(),
                    )
                    .build(),
            ))
            .pipeline_execution_steps(step(
                "score",
                StepStatus::Executing,
                PipelineExecutionStepMetadata::builder()
                    .lambda(LambdaStepMetadata::builder().arn(SCORER).build())
                    .build(),
            ))
            .pipeline_execution_steps(step(
                "train",
                StepStatus::Executing,
                PipelineExecutionStepMetadata::builder().build(),
            ))
            .pipeline_execution_steps(step(
                "earlier-approval",
                StepStatus::Succeeded,
                PipelineExecutionStepMetadata::builder()
                    .callback(
                        CallbackStepMetadata::builder()
                            .callback_token("Rt5wY7uI0p")
                            .sqs_queue_url(QUEUE)
                            .build(),
                    )
                    .build(),
            ))
            .build()
    })
}

fn fail_step_ok() -> Rule {
    mock!(Client::send_pipeline_execution_step_failure)
        .then_output(|| SendPipelineExecutionStepFailureOutput::builder().build())
}

#[tokio::test]
async fn the_running_callback_and_lambda_steps_that_hold_a_stop_are_reported() {
    let (stop, steps, fail) = (stop_ok(), held_steps(), fail_step_ok());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &fail, &executing()]
    );
    let (reply, logs) = logged(run(client, fixture("direct.json"))).await;
    let reply = reply.unwrap();
    assert_eq!(
        reply["BlockingSteps"],
        json!([
            {"StepName": "approve", "StepType": "Callback", "SqsQueueUrl": QUEUE,
             "Note": "holds the stop until its SQS consumer calls SendPipelineExecutionStepSuccess or \
                      SendPipelineExecutionStepFailure; \"Force\": true fails it"},
            {"StepName": "score", "StepType": "Lambda", "FunctionArn": SCORER,
             "Note": "holds the stop until the function returns (then Stopped) or times out (then Failed)"},
        ])
    );
    assert_no_callback_token(&reply.to_string(), &logs);
    assert_eq!(fail.num_calls(), 0, "no Force, no step failed");
}

/// A `ForEach` step's iterations are listed as steps of their own, each with
/// the body step's name and an `IterationContext`: each one that holds the
/// stop is reported, told apart by its index, and forced with its own token.
#[tokio::test]
async fn the_iterations_of_a_foreach_step_that_hold_a_stop_are_each_reported_and_forced() {
    let iteration = |index: i32, token: &str| {
        PipelineExecutionStep::builder()
            .step_name("approve")
            .step_status(StepStatus::Executing)
            .iteration_context(
                aws_sdk_sagemaker::types::IterationContext::builder()
                    .parent_step_name("per-region")
                    .index(index)
                    .build(),
            )
            .metadata(
                PipelineExecutionStepMetadata::builder()
                    .callback(
                        CallbackStepMetadata::builder()
                            .sqs_queue_url(QUEUE)
                            .callback_token(token)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let steps = mock!(Client::list_pipeline_execution_steps).then_output(move || {
        ListPipelineExecutionStepsOutput::builder()
            .pipeline_execution_steps(iteration(0, "Iter0token"))
            .pipeline_execution_steps(iteration(1, "Iter1token"))
            .build()
    });
    let (stop, fail) = (stop_ok(), fail_step_ok());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &fail, &executing()]
    );
    let reply = run(client, json!({"PipelineExecutionArn": A, "Force": true}))
        .await
        .unwrap();
    let names: Vec<&str> = reply["BlockingSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["StepName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["approve[0]", "approve[1]"]);
    assert!(reply["BlockingSteps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["Force"] == "Sent"));
    assert_eq!(fail.num_calls(), 2, "each iteration's step failed");
}

#[tokio::test]
async fn blocking_steps_are_read_from_every_page_and_a_repeated_token_ends_the_listing() {
    let callback = || {
        step(
            "approve",
            StepStatus::Executing,
            PipelineExecutionStepMetadata::builder()
                .callback(CallbackStepMetadata::builder().sqs_queue_url(QUEUE).build())
                .build(),
        )
    };
    let lambda = || {
        step(
            "score",
            StepStatus::Executing,
            PipelineExecutionStepMetadata::builder()
                .lambda(LambdaStepMetadata::builder().arn(SCORER).build())
                .build(),
        )
    };
    let page1 = mock!(Client::list_pipeline_execution_steps)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A) && r.next_token().is_none())
        .then_output(move || {
            ListPipelineExecutionStepsOutput::builder()
                .pipeline_execution_steps(callback())
                .next_token("steps-2")
                .build()
        });
    // A server that hands back the token it was given would loop forever.
    let page2 = mock!(Client::list_pipeline_execution_steps)
        .match_requests(|r| r.next_token() == Some("steps-2"))
        .then_output(move || {
            ListPipelineExecutionStepsOutput::builder()
                .pipeline_execution_steps(lambda())
                .next_token("steps-2")
                .build()
        });
    let stop = stop_ok();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &page1, &page2, &executing()]
    );
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run(client, fixture("direct.json")),
    )
    .await
    .expect("the listing ended")
    .unwrap();
    let names: Vec<&str> = reply["BlockingSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["StepName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["approve", "score"]);
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
}

#[tokio::test]
async fn force_fails_running_callback_steps_once_with_a_derived_token_and_says_lambda_steps_cannot_be(
) {
    let identity = format!("lambda:{REQUEST_ID}");
    let expected = token::derive(&identity, &format!("{A}#force#Xk3vQ9aL2m"));
    let fail = mock!(Client::send_pipeline_execution_step_failure)
        .match_requests(move |r| {
            r.callback_token() == Some("Xk3vQ9aL2m")
                && r.failure_reason() == Some("cost alarm: budget exceeded")
                && r.client_request_token() == Some(expected.as_str())
        })
        .then_output(|| SendPipelineExecutionStepFailureOutput::builder().build());
    let (stop, steps) = (stop_ok(), held_steps());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &fail, &executing()]
    );
    let (reply, logs) = logged(run(
        client,
        json!({"PipelineExecutionArn": A, "Force": true, "Reason": "cost alarm: budget exceeded"}),
    ))
    .await;
    let reply = reply.unwrap();
    assert_no_callback_token(&reply.to_string(), &logs);
    assert_eq!(fail.num_calls(), 1);
    assert_eq!(reply["BlockingSteps"][0]["Force"], "Sent");
    assert_eq!(reply["BlockingSteps"][1]["Force"], "NotPossible");
    assert!(reply["BlockingSteps"][1]["Note"]
        .as_str()
        .unwrap()
        .contains("cannot be forced"));
}

#[tokio::test]
async fn a_force_that_sagemaker_refuses_fails_the_invocation_and_its_retry_repeats_the_same_tokens()
{
    // SageMaker refuses the first failure it is sent (with text that quotes
    // the token, which must not be passed on), then accepts the retry's.
    let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let record = sent.clone();
    let fail = mock!(Client::send_pipeline_execution_step_failure)
        .match_requests(move |r| {
            let token = r.client_request_token().unwrap_or_default().to_owned();
            let callback = r.callback_token().unwrap_or_default().to_owned();
            record.lock().unwrap().push((token, callback));
            true
        })
        .sequence()
        .http_response(|| {
            aws_smithy_runtime_api::http::Response::new(
                500.try_into().unwrap(),
                SdkBody::from(
                    "{\"__type\":\"InternalFailure\",\"Message\":\"token Xk3vQ9aL2m: internal\"}",
                ),
            )
        })
        .output(|| SendPipelineExecutionStepFailureOutput::builder().build())
        .build();
    let stop_tokens: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = stop_tokens.clone();
    let stop = mock!(Client::stop_pipeline_execution)
        .match_requests(move |r| {
            let token = r.client_request_token().unwrap_or_default().to_owned();
            record.lock().unwrap().push(token);
            true
        })
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let steps = held_steps();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &fail, &executing()],
        |c| c.retry_config(aws_sdk_sagemaker::config::retry::RetryConfig::disabled())
    );
    let stopper = stopper(client);
    let request = json!({"PipelineExecutionArn": A, "Force": true});
    // The first delivery fails, so that Lambda (or the caller) retries it.
    let (first, logs) = logged(stopper.handle(event(request.clone()))).await;
    let err = first.unwrap_err();
    assert_eq!(err.error_type, "UpstreamError");
    assert!(
        err.error_message.contains("approve"),
        "{}",
        err.error_message
    );
    assert_no_callback_token(&err.error_message, &logs);
    // The retry (the same event, the same request id) stops with the same
    // token and sends the same failure with the same token: SageMaker sees
    // one operation each, however often it is delivered.
    let retried = stopper.handle(event(request)).await.unwrap().to_value();
    assert_eq!(retried["BlockingSteps"][0]["Force"], "Sent");
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], sent[1], "the retry sent a different failure");
    assert_eq!(sent[0].1, "Xk3vQ9aL2m");
    let stop_tokens = stop_tokens.lock().unwrap().clone();
    assert_eq!(stop_tokens.len(), 2);
    assert_eq!(
        stop_tokens[0], stop_tokens[1],
        "the retry stopped with another token"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_polls_until_the_execution_has_ended_and_replies_with_its_final_status() {
    let describe = mock!(Client::describe_pipeline_execution)
        .sequence()
        .output(|| {
            DescribePipelineExecutionOutput::builder()
                .pipeline_execution_status(PipelineExecutionStatus::Executing)
                .build()
        })
        .output(|| {
            DescribePipelineExecutionOutput::builder()
                .pipeline_execution_status(PipelineExecutionStatus::Stopping)
                .build()
        })
        .times(2)
        .output(|| {
            DescribePipelineExecutionOutput::builder()
                .pipeline_execution_status(PipelineExecutionStatus::Stopped)
                .build()
        })
        .repeatedly()
        .build();
    let (stop, steps) = (stop_ok(), no_steps());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &describe, &steps]
    );
    let reply = run(
        client,
        json!({"PipelineExecutionArn": A, "WaitSeconds": 60}),
    )
    .await
    .unwrap();
    assert_eq!(reply["Status"], "Stopped");
    assert_eq!(reply["Outcome"], "StopRequested");
    assert_eq!(
        describe.num_calls(),
        4,
        "the look before the stop, then 3 polls"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_runs_out_replies_stopping_with_what_still_holds_it() {
    let (stop, steps, fail) = (stop_ok(), held_steps(), fail_step_ok());
    let describe = describe(PipelineExecutionStatus::Stopping);
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &describe, &steps, &fail]
    );
    let started = tokio::time::Instant::now();
    let (reply, logs) = logged(run(
        client,
        json!({"PipelineExecutionArn": A, "WaitSeconds": 10, "Force": true}),
    ))
    .await;
    let reply = reply.unwrap();
    let waited = started.elapsed();
    assert_no_callback_token(&reply.to_string(), &logs);
    assert!(
        waited <= std::time::Duration::from_secs(10) && waited >= std::time::Duration::from_secs(5),
        "{waited:?}"
    );
    // Already Stopping (a stop held by its callback step): not stopped
    // again, but Force still fails what holds it, and the wait waits.
    assert_eq!(reply["Outcome"], "AlreadyStopping");
    assert_eq!(stop.num_calls(), 0);
    assert_eq!(reply["Status"], "Stopping");
    assert_eq!(reply["BlockingSteps"][0]["StepName"], "approve");
    // The step still holds the stop after the wait: what Force did to it stays.
    assert_eq!(reply["BlockingSteps"][0]["Force"], "Sent");
    assert_eq!(fail.num_calls(), 1, "forced once, not again after the wait");
    assert!(describe.num_calls() >= 3);
    assert_eq!(
        steps.num_calls(),
        2,
        "listed after the stop, and again when the wait ran out"
    );
}

#[tokio::test]
async fn a_dry_run_looks_but_changes_nothing() {
    let stop = stop_ok();
    let fail = fail_step_ok();
    let steps = held_steps();
    let status = describe(PipelineExecutionStatus::Executing);
    let list = mock!(Client::list_pipeline_executions).then_output(|| {
        ListPipelineExecutionsOutput::builder()
            .pipeline_execution_summaries(summary(B, PipelineExecutionStatus::Executing))
            .build()
    });
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &fail, &steps, &status, &list]
    );
    let (reply, logs) = logged(run(
        client.clone(),
        json!({"PipelineExecutionArn": A, "DryRun": true, "Force": true}),
    ))
    .await;
    let reply = reply.unwrap();
    assert_no_callback_token(&reply.to_string(), &logs);
    assert_eq!(reply["Outcome"], "WouldStop");
    assert_eq!(reply["Status"], "Executing");
    assert_eq!(reply["DryRun"], true);
    assert_eq!(reply["BlockingSteps"][0]["Force"], "WouldSend");
    assert_eq!(reply["BlockingSteps"][1]["Force"], "NotPossible");
    let swept = run(
        client,
        json!({"PipelineName": "nightly-training", "DryRun": true}),
    )
    .await
    .unwrap();
    assert_eq!(swept["Executions"][0]["PipelineExecutionArn"], B);
    assert_eq!(swept["Executions"][0]["Outcome"], "WouldStop");
    assert_eq!(
        (stop.num_calls(), fail.num_calls(), status.num_calls()),
        (0, 0, 1),
        "a dry run called something that changes state (or described a swept execution again)"
    );
}

#[tokio::test]
async fn older_than_minutes_stops_only_executions_that_started_before_the_cutoff() {
    let now = std::time::SystemTime::now();
    let minutes_ago = move |m: u64| DateTime::from(now - std::time::Duration::from_secs(m * 60));
    let list = mock!(Client::list_pipeline_executions)
        .match_requests(move |r| {
            // The cutoff goes to SageMaker as CreatedBefore, about 4 hours ago.
            let cutoff = r.created_before().map(|t| t.secs()).unwrap_or(0);
            (cutoff - DateTime::from(now).secs() + 240 * 60).abs() <= 5
        })
        .then_output(move || {
            // As if SageMaker ignored the filter: the start time is checked too.
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(
                    PipelineExecutionSummary::builder()
                        .pipeline_execution_arn(A)
                        .pipeline_execution_status(PipelineExecutionStatus::Executing)
                        .start_time(minutes_ago(300))
                        .build(),
                )
                .pipeline_execution_summaries(
                    PipelineExecutionSummary::builder()
                        .pipeline_execution_arn(B)
                        .pipeline_execution_status(PipelineExecutionStatus::Executing)
                        .start_time(minutes_ago(30))
                        .build(),
                )
                .build()
        });
    let stop = stop_ok();
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&list, &stop, &no_steps(), &executing()]
    );
    let reply = run(
        client,
        json!({"PipelineName": "nightly-training", "OlderThanMinutes": 240}),
    )
    .await
    .unwrap();
    assert_eq!(list.num_calls(), 1);
    assert_eq!(
        reply["Executions"],
        json!([{"PipelineExecutionArn": A, "Outcome": "StopRequested"}])
    );
    assert_eq!(stop.num_calls(), 1);
}

#[tokio::test]
async fn a_callback_step_that_ended_before_the_force_is_reported_not_failed() {
    let fail = mock!(Client::send_pipeline_execution_step_failure).then_error(|| {
        SendPipelineExecutionStepFailureError::ConflictException(
            ConflictException::builder().build(),
        )
    });
    let (stop, steps) = (stop_ok(), held_steps());
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &fail, &executing()]
    );
    let reply = run(client, json!({"PipelineExecutionArn": A, "Force": true}))
        .await
        .unwrap();
    assert_eq!(reply["BlockingSteps"][0]["Force"], "StepAlreadyEnded");
    assert_eq!(fail.num_calls(), 1);
}

/// A `Search` result page of pipelines or executions.
fn search_page(records: Vec<SearchRecord>) -> SearchOutput {
    SearchOutput::builder().set_results(Some(records)).build()
}

fn searched_status(request: &SearchInput) -> Option<&str> {
    request
        .search_expression()
        .and_then(|e| e.filters().first())
        .filter(|f| f.name() == Some("PipelineExecutionStatus"))
        .and_then(|f| f.value())
}

/// The guard's path through the engine: the tagged pipelines and the running
/// executions from `Search`, the pipeline's own tag from `ListTags`, a look
/// at the execution over its limit, then its stop with the guard's token;
/// the execution within its limit is not touched.
#[tokio::test]
async fn a_guard_run_stops_only_the_execution_over_its_pipelines_limit() {
    let pipeline = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training";
    let now = std::time::SystemTime::now();
    let started = move |minutes: u64| DateTime::from(now - Duration::from_secs(minutes * 60));
    let tag = || {
        Tag::builder()
            .key("pipeline-stopper:max-runtime")
            .value("1h")
            .build()
    };
    let tagged = mock!(Client::search)
        .match_requests(|r| r.resource() == Some(&ResourceType::Pipeline))
        .then_output(move || {
            search_page(vec![SearchRecord::builder()
                .pipeline(
                    Pipeline::builder()
                        .pipeline_arn(pipeline)
                        .pipeline_name("nightly-training")
                        .tags(tag())
                        .build(),
                )
                .build()])
        });
    let execution = move |arn: &str, minutes: u64| {
        SearchRecord::builder()
            .pipeline_execution(
                PipelineExecution::builder()
                    .pipeline_execution_arn(arn)
                    .pipeline_arn(pipeline)
                    .pipeline_execution_status(PipelineExecutionStatus::Executing)
                    .creation_time(started(minutes))
                    .last_modified_time(started(minutes))
                    .build(),
            )
            .build()
    };
    let running = mock!(Client::search)
        .match_requests(|r| searched_status(r) == Some("Executing"))
        .then_output(move || search_page(vec![execution(A, 120), execution(B, 10)]));
    let stopping = mock!(Client::search)
        .match_requests(|r| searched_status(r) == Some("Stopping"))
        .then_output(|| search_page(Vec::new()));
    let own_tags = mock!(Client::list_tags)
        .match_requests(move |r| r.resource_arn() == Some(pipeline))
        .then_output(move || ListTagsOutput::builder().tags(tag()).build());
    let guard_token = token::derive(stopper_core::guard::GUARD_IDENTITY, A);
    let stop = mock!(Client::stop_pipeline_execution)
        .match_requests(move |r| {
            r.pipeline_execution_arn() == Some(A)
                && r.client_request_token() == Some(guard_token.as_str())
        })
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let look = mock!(Client::describe_pipeline_execution)
        .match_requests(|r| r.pipeline_execution_arn() == Some(A))
        .then_output(|| {
            DescribePipelineExecutionOutput::builder()
                .pipeline_execution_status(PipelineExecutionStatus::Executing)
                .build()
        });
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [
            &tagged,
            &running,
            &stopping,
            &own_tags,
            &look,
            &stop,
            &no_steps()
        ]
    );
    let reply = run(client, json!({"Guard": true})).await.unwrap();
    let stopped: Vec<&str> = reply["Executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["Outcome"] == "StopRequested")
        .map(|e| e["PipelineExecutionArn"].as_str().unwrap())
        .collect();
    assert_eq!(stopped, [A], "{reply}");
    assert!(!reply.to_string().contains(B), "{reply}");
    assert_eq!(stop.num_calls(), 1);
    assert_eq!(own_tags.num_calls(), 1, "the pipeline's own tags were read");
    assert_eq!(reply["Guard"]["ExecutionsOverLimit"], 1, "{reply}");
}
