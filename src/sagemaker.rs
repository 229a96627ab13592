//! The one module that talks to SageMaker. It returns facts (statuses,
//! steps, tokens) and the core's error classes; it decides nothing (what an
//! answer means is `stopper_core::decide`'s), and nothing else in the crate
//! sees the SDK's types.

use std::time::SystemTime;

use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionError;
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsError;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsError;
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::SendPipelineExecutionStepFailureError;
use aws_sdk_sagemaker::operation::stop_pipeline_execution::StopPipelineExecutionError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{PipelineExecutionStep, StepStatus};
use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, Stream};
use stopper_core::status::{ExecutionStatus, ListedExecution};
use stopper_core::steps::{BlockingStep, CallbackToken, StepKind};
use stopper_core::{ErrorKind, StopError};

/// Asks SageMaker to stop one execution, with `token` as its idempotency key.
pub async fn stop(client: &Client, arn: &str, token: &str) -> Result<(), StopError> {
    client
        .stop_pipeline_execution()
        .pipeline_execution_arn(arn)
        .client_request_token(token)
        .send()
        .await
        .map(drop)
        .map_err(|e| classify(&e, &format!("execution {arn}")))
}

/// The execution's current status.
pub async fn describe_status(client: &Client, arn: &str) -> Result<ExecutionStatus, StopError> {
    let out = client
        .describe_pipeline_execution()
        .pipeline_execution_arn(arn)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("execution {arn}")))?;
    Ok(out
        .pipeline_execution_status()
        .map_or_else(ExecutionStatus::unknown, |status| {
            ExecutionStatus::parse(status.as_str())
        }))
}

/// Executions per `ListPipelineExecutions` page (SageMaker's maximum).
pub const LIST_PAGE_SIZE: usize = 100;

/// `pipeline`'s executions, yielded page by page as SageMaker lists them,
/// so that stops can start before the listing ends; with `created_before`,
/// SageMaker lists only those created before it. Which of them a sweep stops
/// is `stopper_core::decide::is_swept`'s to say. The stream ends after an
/// error.
pub fn list_executions<'a>(
    client: &'a Client,
    pipeline: &'a str,
    created_before: Option<SystemTime>,
) -> impl Stream<Item = Result<ListedExecution, StopError>> + 'a {
    let pages = client
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .set_created_before(created_before.map(DateTime::from))
        .max_results(LIST_PAGE_SIZE as i32)
        .into_paginator()
        .items()
        .send();
    stream::unfold(Some(pages), move |pages| async move {
        let mut pages = pages?;
        loop {
            let summary = match pages.next().await? {
                Ok(summary) => summary,
                Err(e) => return Some((Err(classify(&e, &format!("pipeline {pipeline}"))), None)),
            };
            let Some(arn) = summary.pipeline_execution_arn else {
                continue;
            };
            let listed = ListedExecution {
                arn,
                status: summary
                    .pipeline_execution_status
                    .map_or_else(ExecutionStatus::unknown, |status| {
                        ExecutionStatus::parse(status.as_str())
                    }),
                started: summary
                    .start_time
                    .and_then(|t| SystemTime::try_from(t).ok()),
            };
            return Some((Ok(listed), Some(pages)));
        }
    })
}

/// The running Callback and Lambda steps of an execution: the steps that keep
/// a stop from completing.
pub async fn blocking_steps(client: &Client, arn: &str) -> Result<Vec<BlockingStep>, StopError> {
    let mut steps = Vec::new();
    let mut next_token: Option<String> = None;
    // Paged by hand rather than with the SDK's paginator: a paginator boxes
    // its own task and channel, and a sweep runs one of these per concurrent
    // stop, so this is where its peak memory went.
    loop {
        let page = client
            .list_pipeline_execution_steps()
            .pipeline_execution_arn(arn)
            .max_results(100)
            .set_next_token(next_token.clone())
            .send()
            .await
            .map_err(|e| classify(&e, &format!("execution {arn}")))?;
        steps.extend(
            page.pipeline_execution_steps()
                .iter()
                .filter_map(blocking_step),
        );
        // As the SDK's paginators do: an empty or repeated token ends the
        // listing rather than looping on it.
        match page.next_token.filter(|token| !token.is_empty()) {
            Some(token) if Some(&token) != next_token.as_ref() => next_token = Some(token),
            _ => return Ok(steps),
        }
    }
}

/// The step, if it is running and of a kind that holds a stop (Callback or
/// Lambda).
fn blocking_step(step: &PipelineExecutionStep) -> Option<BlockingStep> {
    if !matches!(
        step.step_status(),
        Some(StepStatus::Executing | StepStatus::Starting)
    ) {
        return None;
    }
    let name = step.step_name().unwrap_or("(unnamed)").to_owned();
    let metadata = step.metadata()?;
    if let Some(callback) = metadata.callback() {
        Some(BlockingStep {
            name,
            kind: StepKind::Callback {
                queue_url: callback.sqs_queue_url().map(str::to_owned),
            },
            callback_token: callback.callback_token().map(CallbackToken::new),
        })
    } else {
        metadata.lambda().map(|lambda| BlockingStep {
            name,
            kind: StepKind::Lambda {
                function_arn: lambda.arn().map(str::to_owned),
            },
            callback_token: None,
        })
    }
}

/// Fails a Callback step, so a stop it holds can complete. `token` makes a
/// redelivered event's call a no-op.
pub async fn fail_callback_step(
    client: &Client,
    callback_token: &CallbackToken,
    reason: &str,
    token: &str,
    step: &str,
) -> Result<(), StopError> {
    client
        .send_pipeline_execution_step_failure()
        .callback_token(callback_token.expose())
        .failure_reason(reason)
        .client_request_token(token)
        .send()
        .await
        .map(drop)
        .map_err(|e| classify(&e, &format!("callback step {step}")))
}

/// The error classes an operation's model names; other errors are told
/// apart by their code.
pub trait ModeledError: ProvideErrorMetadata {
    fn modeled_kind(&self) -> Option<ErrorKind>;
}

impl ModeledError for StopPipelineExecutionError {
    fn modeled_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::ResourceNotFound(_) => Some(ErrorKind::NotFound),
            Self::ConflictException(_) => Some(ErrorKind::Conflict),
            _ => None,
        }
    }
}

/// Operations whose one modelled error is `ResourceNotFound`.
macro_rules! not_found_is_modeled {
    ($($error:ty),+) => {$(
        impl ModeledError for $error {
            fn modeled_kind(&self) -> Option<ErrorKind> {
                self.is_resource_not_found().then_some(ErrorKind::NotFound)
            }
        }
    )+};
}

not_found_is_modeled!(
    DescribePipelineExecutionError,
    ListPipelineExecutionStepsError,
    ListPipelineExecutionsError
);

impl ModeledError for SendPipelineExecutionStepFailureError {
    fn modeled_kind(&self) -> Option<ErrorKind> {
        match self {
            Self::ResourceNotFound(_) => Some(ErrorKind::NotFound),
            Self::ConflictException(_) => Some(ErrorKind::Conflict),
            Self::ResourceLimitExceeded(_) => Some(ErrorKind::Throttled),
            _ => None,
        }
    }
}

/// Maps an SDK error to an error class with a message in the caller's terms:
/// the error code, never SageMaker's free text. `target` says what was asked
/// about ("execution arn:...", "pipeline nightly-training").
pub fn classify<E, R>(error: &SdkError<E, R>, target: &str) -> StopError
where
    E: ModeledError + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(problem) = crate::setup::configuration_problem(error) {
        return problem;
    }
    match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let kind = service.err().modeled_kind().unwrap_or(match code {
                "ResourceNotFound" | "ResourceNotFoundException" => ErrorKind::NotFound,
                "ConflictException" => ErrorKind::Conflict,
                "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded" => ErrorKind::Throttled,
                // SageMaker refusing a request we sent is an upstream answer,
                // not the caller's bad input (which never reaches SageMaker):
                // `ValidationError` promises that nothing was called.
                "ValidationException" => ErrorKind::Upstream,
                "AccessDeniedException" => ErrorKind::Forbidden,
                _ => ErrorKind::Upstream,
            });
            let message = match kind {
                ErrorKind::NotFound => format!("SageMaker has no {target} in this account and region"),
                ErrorKind::Conflict => {
                    format!("SageMaker refused the request for {target} in its current state (ConflictException)")
                }
                ErrorKind::Throttled => {
                    format!("SageMaker kept throttling requests for {target} after retries; try again later")
                }
                ErrorKind::Forbidden => format!(
                    "the function's role may not act on {target} (AccessDeniedException): check its IAM policy"
                ),
                _ if code == "ValidationException" => format!(
                    "SageMaker rejected the request for {target} as invalid (ValidationException): a \
                     ClientRequestToken reused for another execution, or a constraint this function does not check"
                ),
                _ if code.is_empty() => format!("SageMaker failed on {target} with an unrecognised error"),
                _ => format!("SageMaker failed on {target} ({code})"),
            };
            StopError::new(kind, message)
        }
        SdkError::TimeoutError(_) => StopError::new(
            ErrorKind::Unavailable,
            format!("SageMaker did not answer in time for {target}"),
        ),
        SdkError::DispatchFailure(_) => StopError::new(
            ErrorKind::Unavailable,
            format!("SageMaker could not be reached for {target}"),
        ),
        SdkError::ResponseError(_) => StopError::new(
            ErrorKind::Upstream,
            format!("SageMaker sent an unreadable response for {target}"),
        ),
        _ => StopError::new(
            ErrorKind::Upstream,
            format!("the request for {target} could not be made"),
        ),
    }
}
