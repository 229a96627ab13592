//! The engine's progress reports, against a mocked SageMaker: what it tells
//! an observer (targets found, each one done, what a wait still waits for),
//! and that an observer changes nothing it does.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{describe, summary, A, B};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionOutput;
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsOutput;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsOutput;
use aws_sdk_sagemaker::operation::stop_pipeline_execution::StopPipelineExecutionOutput;
use aws_sdk_sagemaker::types::{
    CallbackStepMetadata, PipelineExecutionStatus, PipelineExecutionStep,
    PipelineExecutionStepMetadata, StepStatus,
};
use aws_sdk_sagemaker::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use sagemaker_pipeline_stopper::engine::Progress;
use sagemaker_pipeline_stopper::handler::{Invocation, Stopper};
use stopper_core::arn::Scope;
use stopper_core::config::Config;
use stopper_core::report::{step_labels, Answer, ExecutionReport};

const DONE: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/f1n15hed0000";

/// What the engine told, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Told {
    Found(usize),
    FoundAll,
    Done(String),
    /// Each execution still stopping, with its status and blocking steps.
    Waiting(Vec<(String, Option<String>, String)>, Duration),
}

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Told>>);

impl Recorder {
    fn told(&self) -> Vec<Told> {
        self.0.lock().unwrap().clone()
    }
}

impl Progress for Recorder {
    fn found(&self, targets: usize) {
        self.0.lock().unwrap().push(Told::Found(targets));
    }
    fn found_all(&self) {
        self.0.lock().unwrap().push(Told::FoundAll);
    }
    fn done(&self, execution: &ExecutionReport) {
        self.0
            .lock()
            .unwrap()
            .push(Told::Done(execution.arn.clone()));
    }
    fn waiting(&self, stopping: &[&ExecutionReport], left: Duration) {
        let stopping = stopping
            .iter()
            .map(|e| {
                (
                    e.arn.clone(),
                    e.status.as_ref().map(|s| s.as_str().to_owned()),
                    step_labels(&e.blocking_steps),
                )
            })
            .collect();
        self.0.lock().unwrap().push(Told::Waiting(stopping, left));
    }
}

fn stopper(client: Client) -> Stopper {
    let home = Scope::for_region("us-east-1", Some("123456789012")).unwrap();
    let config = Config {
        max_concurrency: 4,
        ..Config::default()
    };
    Stopper::new(client, config, home.clone(), None)
}

/// The answer to `payload`, with `progress` told (or none).
async fn respond(client: Client, payload: &str, progress: Option<Arc<Recorder>>) -> Answer {
    let invocation = Invocation {
        request_id: "progress-test".into(),
        scope: Some(Scope::for_region("us-east-1", Some("123456789012")).unwrap()),
        progress: progress.map(|p| p as Arc<dyn Progress>),
        ..Invocation::default()
    };
    stopper(client).respond(payload, &invocation).await.1
}

fn sweep_rules() -> Vec<Rule> {
    let page1 = mock!(Client::list_pipeline_executions)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            ListPipelineExecutionsOutput::builder()
                .pipeline_execution_summaries(summary(A, PipelineExecutionStatus::Executing))
                .pipeline_execution_summaries(summary(DONE, PipelineExecutionStatus::Succeeded))
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
    let stop = mock!(Client::stop_pipeline_execution)
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let steps = mock!(Client::list_pipeline_execution_steps)
        .then_output(|| ListPipelineExecutionStepsOutput::builder().build());
    // The named execution is looked at before its stop.
    let running = mock!(Client::describe_pipeline_execution).then_output(|| {
        DescribePipelineExecutionOutput::builder()
            .pipeline_execution_status(PipelineExecutionStatus::Executing)
            .build()
    });
    vec![page1, page2, stop, steps, running]
}

fn sweep_client() -> Client {
    let rules = sweep_rules();
    mock_client!(aws_sdk_sagemaker, RuleMode::MatchAny, &rules)
}

#[tokio::test]
async fn a_sweep_tells_each_target_it_finds_and_each_one_done() {
    let recorder = Arc::new(Recorder::default());
    // A named execution and a sweep that finds it again (acted on once) and B.
    let payload =
        format!(r#"{{"PipelineExecutionArn": "{A}", "PipelineName": "nightly-training"}}"#);
    let answer = respond(sweep_client(), &payload, Some(recorder.clone())).await;
    let Answer::Acted(report) = &answer else {
        panic!("{answer:?}")
    };
    let told = recorder.told();
    // The named one first; then what the sweep found that was not already named.
    assert_eq!(told[0], Told::Found(1), "{told:?}");
    let found: usize = told
        .iter()
        .map(|t| match t {
            Told::Found(n) => *n,
            _ => 0,
        })
        .sum();
    let mut done: Vec<&str> = told
        .iter()
        .filter_map(|t| match t {
            Told::Done(arn) => Some(arn.as_str()),
            _ => None,
        })
        .collect();
    done.sort_unstable();
    assert_eq!(found, 2, "{told:?}");
    assert_eq!(done, [A, B], "{told:?}");
    assert_eq!(report.executions.len(), 2);
    assert_eq!(
        told.iter().filter(|t| **t == Told::FoundAll).count(),
        1,
        "{told:?}"
    );
    // Nothing is ever done before it was found.
    let mut open = 0_i64;
    for t in &told {
        match t {
            Told::Found(n) => open += *n as i64,
            Told::Done(_) => open -= 1,
            _ => {}
        }
        assert!(open >= 0, "done before found: {told:?}");
    }
    assert!(
        !told.iter().any(|t| matches!(t, Told::Waiting(..))),
        "no wait was asked for"
    );
}

#[tokio::test]
async fn an_observer_changes_nothing_the_engine_does() {
    let payload = r#"{"PipelineName": "nightly-training"}"#;
    let without = respond(sweep_client(), payload, None).await;
    let with = respond(sweep_client(), payload, Some(Arc::default())).await;
    assert_eq!(with, without);
}

fn held_by_a_callback() -> Rule {
    mock!(Client::list_pipeline_execution_steps).then_output(|| {
        ListPipelineExecutionStepsOutput::builder()
            .pipeline_execution_steps(
                PipelineExecutionStep::builder()
                    .step_name("approve")
                    .step_status(StepStatus::Executing)
                    .metadata(
                        PipelineExecutionStepMetadata::builder()
                            .callback(
                                CallbackStepMetadata::builder()
                                    .callback_token("Xk3vQ9aL2m")
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build()
    })
}

#[tokio::test(start_paused = true)]
async fn a_wait_tells_what_still_stops_and_the_step_that_holds_it_until_it_runs_out() {
    let stop = mock!(Client::stop_pipeline_execution)
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let (steps, status) = (
        held_by_a_callback(),
        describe(PipelineExecutionStatus::Stopping),
    );
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &status]
    );
    let recorder = Arc::new(Recorder::default());
    let payload = format!(r#"{{"PipelineExecutionArn": "{A}", "WaitSeconds": 10}}"#);
    let answer = respond(client, &payload, Some(recorder.clone())).await;
    let Answer::Acted(report) = &answer else {
        panic!("{answer:?}")
    };
    assert_eq!(
        report.executions[0].status.as_ref().unwrap().as_str(),
        "Stopping"
    );
    let waits: Vec<_> = recorder
        .told()
        .into_iter()
        .filter_map(|t| match t {
            Told::Waiting(stopping, left) => Some((stopping, left)),
            _ => None,
        })
        .collect();
    assert!(
        waits.len() >= 3,
        "at the start and after each poll: {waits:?}"
    );
    // At the start, before any poll: the steps listed after the stop.
    assert_eq!(
        waits[0].0,
        [(A.to_owned(), None, "approve(Callback)".to_owned())]
    );
    assert!(waits[0].1 <= Duration::from_secs(10) && waits[0].1 > Duration::from_secs(9));
    // After a poll: its status too; and the time left only goes down.
    let last = waits.last().unwrap();
    assert_eq!(
        last.0,
        [(
            A.to_owned(),
            Some("Stopping".to_owned()),
            "approve(Callback)".to_owned()
        )]
    );
    assert!(waits.windows(2).all(|w| w[1].1 <= w[0].1), "{waits:?}");
    assert_eq!(last.1, Duration::ZERO, "the wait ran out: {waits:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_ends_tells_that_nothing_still_stops() {
    let stop = mock!(Client::stop_pipeline_execution)
        .then_output(|| StopPipelineExecutionOutput::builder().build());
    let steps = mock!(Client::list_pipeline_execution_steps)
        .then_output(|| ListPipelineExecutionStepsOutput::builder().build());
    let status = describe(PipelineExecutionStatus::Stopped);
    let client = mock_client!(
        aws_sdk_sagemaker,
        RuleMode::MatchAny,
        [&stop, &steps, &status]
    );
    let recorder = Arc::new(Recorder::default());
    let payload = format!(r#"{{"PipelineExecutionArn": "{A}", "WaitSeconds": 60}}"#);
    respond(client, &payload, Some(recorder.clone())).await;
    let told = recorder.told();
    let Some(Told::Waiting(stopping, _)) = told.last() else {
        panic!("{told:?}")
    };
    assert!(stopping.is_empty(), "{told:?}");
}
