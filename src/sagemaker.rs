//! The one module that talks to SageMaker. It returns facts (statuses,
//! steps, tokens) and the core's error classes; it decides nothing (what an
//! answer means is `stopper_core::decide`'s), and nothing else in the crate
//! sees the SDK's types.

use std::time::SystemTime;

use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionError;
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsError;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsError;
use aws_sdk_sagemaker::operation::search::SearchError;
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::SendPipelineExecutionStepFailureError;
use aws_sdk_sagemaker::operation::stop_pipeline_execution::StopPipelineExecutionError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    Filter, Operator, PipelineExecutionStatus, PipelineExecutionStep, ResourceType,
    SearchExpression, SearchSortOrder,
};
use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, Stream};
use stopper_core::guard::{RunningExecution, TaggedPipeline};
use stopper_core::status::{ExecutionStatus, ListedExecution};
use stopper_core::steps::{Callback, CallbackToken, Lambda, ListedStep};
use stopper_core::upstream::{self, Transport};
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
    Ok(status_of(out.pipeline_execution_status()))
}

/// An execution's status as SageMaker gives it (unknown when it gives none).
fn status_of(status: Option<&PipelineExecutionStatus>) -> ExecutionStatus {
    status.map_or_else(ExecutionStatus::unknown, |status| {
        ExecutionStatus::parse(status.as_str())
    })
}

/// A time SageMaker gives, if it has one that fits a `SystemTime`.
fn time_of(time: Option<DateTime>) -> Option<SystemTime> {
    time.and_then(|t| SystemTime::try_from(t).ok())
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
                status: status_of(summary.pipeline_execution_status.as_ref()),
                started: time_of(summary.start_time),
            };
            return Some((Ok(listed), Some(pages)));
        }
    })
}

/// Search results per page (SageMaker's maximum).
pub const SEARCH_PAGE_SIZE: i32 = 100;

/// The most pages of tagged pipelines read (100,000 pipelines, a hundred
/// times SageMaker's default quota): an endpoint that never stops paging
/// must not keep the command line running forever.
const MAX_TAGGED_PAGES: usize = 1000;

/// Every pipeline that carries `tag_key`, with the tag's value: one `Search`
/// call per 100 tagged pipelines, however many pipelines the account has.
pub async fn search_tagged_pipelines(
    client: &Client,
    tag_key: &str,
) -> Result<Vec<TaggedPipeline>, StopError> {
    let has_tag = Filter::builder()
        .name(format!("Tags.{tag_key}"))
        .operator(Operator::Exists)
        .build();
    let mut pipelines = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_TAGGED_PAGES {
        let page = client
            .search()
            .resource(ResourceType::Pipeline)
            .search_expression(SearchExpression::builder().filters(has_tag.clone()).build())
            .max_results(SEARCH_PAGE_SIZE)
            .set_next_token(next_token.clone())
            .send()
            .await
            .map_err(|e| classify(&e, &format!("pipelines tagged {tag_key}")))?;
        for pipeline in page.results().iter().filter_map(|r| r.pipeline()) {
            let Some(name) = pipeline.pipeline_name() else {
                continue;
            };
            let value = pipeline
                .tags()
                .iter()
                .find(|tag| tag.key() == Some(tag_key))
                .and_then(|tag| tag.value());
            pipelines.push(TaggedPipeline {
                name: name.to_owned(),
                value: value.map(str::to_owned),
            });
        }
        // As in list_steps: an empty or repeated token ends the listing.
        match page.next_token.filter(|token| !token.is_empty()) {
            Some(token) if Some(&token) != next_token.as_ref() => next_token = Some(token),
            _ => return Ok(pipelines),
        }
    }
    Err(StopError::new(
        ErrorKind::Upstream,
        format!("the search for pipelines tagged {tag_key} went on past {MAX_TAGGED_PAGES} pages"),
    ))
}

/// The account's `Executing` executions, oldest first, yielded page by page
/// (one `Search` call per 100), so that stops start before the search ends.
/// Which of them are over their limit is `stopper_core::guard`'s to say. The
/// stream ends after an error.
pub fn search_running_executions(
    client: &Client,
) -> impl Stream<Item = Result<RunningExecution, StopError>> + '_ {
    let executing = Filter::builder()
        .name("PipelineExecutionStatus")
        .operator(Operator::Equals)
        .value("Executing")
        .build();
    let pages = client
        .search()
        .resource(ResourceType::PipelineExecution)
        .search_expression(SearchExpression::builder().filters(executing).build())
        .sort_by("CreationTime")
        .sort_order(SearchSortOrder::Ascending)
        .max_results(SEARCH_PAGE_SIZE)
        .into_paginator()
        .items()
        .send();
    stream::unfold(Some(pages), move |pages| async move {
        let mut pages = pages?;
        loop {
            let record = match pages.next().await? {
                Ok(record) => record,
                Err(e) => return Some((Err(classify(&e, "running executions")), None)),
            };
            let Some(execution) = record.pipeline_execution else {
                continue;
            };
            let Some(arn) = execution.pipeline_execution_arn else {
                continue;
            };
            let running = RunningExecution {
                arn,
                status: status_of(execution.pipeline_execution_status.as_ref()),
                created: time_of(execution.creation_time),
            };
            return Some((Ok(running), Some(pages)));
        }
    })
}

/// The steps of an execution, every page of them (which of them block a
/// stop is `stopper_core::decide::blocking_step`'s to say).
pub async fn list_steps(client: &Client, arn: &str) -> Result<Vec<ListedStep>, StopError> {
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
        steps.extend(page.pipeline_execution_steps().iter().map(listed_step));
        // As the SDK's paginators do: an empty or repeated token ends the
        // listing rather than looping on it.
        match page.next_token.filter(|token| !token.is_empty()) {
            Some(token) if Some(&token) != next_token.as_ref() => next_token = Some(token),
            _ => return Ok(steps),
        }
    }
}

/// A step as SageMaker lists it.
fn listed_step(step: &PipelineExecutionStep) -> ListedStep {
    let metadata = step.metadata();
    ListedStep {
        name: step.step_name().map(str::to_owned),
        status: step.step_status().map(|s| s.as_str().to_owned()),
        callback: metadata
            .and_then(|m| m.callback())
            .map(|callback| Callback {
                queue_url: callback.sqs_queue_url().map(str::to_owned),
                token: callback.callback_token().map(CallbackToken::new),
            }),
        lambda: metadata.and_then(|m| m.lambda()).map(|lambda| Lambda {
            function_arn: lambda.arn().map(str::to_owned),
        }),
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

impl ModeledError for SearchError {
    fn modeled_kind(&self) -> Option<ErrorKind> {
        None
    }
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

/// Reads an SDK error for `stopper_core::upstream`, which gives its class
/// and message (from the error code, never SageMaker's free text). `target` says what was asked
/// about ("execution arn:...", "pipeline nightly-training").
pub fn classify<E, R>(error: &SdkError<E, R>, target: &str) -> StopError
where
    E: ModeledError + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(problem) = crate::setup::configuration_problem(error) {
        return problem;
    }
    let failure = match error {
        SdkError::ServiceError(service) => {
            let (code, text) = (service.err().code(), service.err().message());
            return upstream::service_error(
                service.err().modeled_kind(),
                code.unwrap_or(""),
                text.unwrap_or(""),
                target,
            );
        }
        SdkError::TimeoutError(_) => Transport::TimedOut,
        SdkError::DispatchFailure(_) if certificate_refused(error) => Transport::Untrusted,
        SdkError::DispatchFailure(_) => Transport::Unreachable,
        SdkError::ResponseError(_) => Transport::Unreadable,
        _ => Transport::NotSent,
    };
    upstream::transport_error(failure, target)
}

/// Whether the connection failed because rustls refused the server's
/// certificate (an unknown issuer, a name mismatch, an expired certificate).
/// hyper carries rustls' error inside an `io::Error`, whose `source()` skips
/// it, so each `io::Error` is opened too.
pub(crate) fn certificate_refused(error: &(dyn std::error::Error + 'static)) -> bool {
    let refused = |e: &(dyn std::error::Error + 'static)| {
        matches!(
            e.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented)
        )
    };
    let mut source = Some(error);
    while let Some(e) = source {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        if refused(e) || inner.is_some_and(certificate_refused) {
            return true;
        }
        source = e.source();
    }
    false
}
