//! The one module that talks to SageMaker. It returns facts (statuses,
//! steps, tokens) and the core's error classes; it decides nothing (what an
//! answer means is `stopper_core::decide`'s), and nothing else in the crate
//! sees the SDK's types.

use std::collections::{HashSet, VecDeque};
use std::time::SystemTime;

use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::{
    DescribePipelineExecutionError, DescribePipelineExecutionOutput,
};
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsError;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsError;
use aws_sdk_sagemaker::operation::list_tags::ListTagsError;
use aws_sdk_sagemaker::operation::search::SearchError;
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::SendPipelineExecutionStepFailureError;
use aws_sdk_sagemaker::operation::stop_pipeline_execution::StopPipelineExecutionError;
use aws_sdk_sagemaker::operation::update_pipeline_execution::UpdatePipelineExecutionError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{
    Filter, Operator, PipelineExecutionStatus, PipelineExecutionStep, ResourceType,
    SearchExpression, SearchSortOrder, Tag,
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
    let out = describe(client, arn).await?;
    Ok(status_of(out.pipeline_execution_status()))
}

/// The execution's description, as its owner (and this function) wrote it.
pub async fn description(client: &Client, arn: &str) -> Result<Option<String>, StopError> {
    let out = describe(client, arn).await?;
    Ok(out.pipeline_execution_description().map(str::to_owned))
}

async fn describe(
    client: &Client,
    arn: &str,
) -> Result<DescribePipelineExecutionOutput, StopError> {
    client
        .describe_pipeline_execution()
        .pipeline_execution_arn(arn)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("execution {arn}")))
}

/// Replaces the execution's description (and nothing else of it).
pub async fn set_description(client: &Client, arn: &str, text: &str) -> Result<(), StopError> {
    client
        .update_pipeline_execution()
        .pipeline_execution_arn(arn)
        .pipeline_execution_description(text)
        .send()
        .await
        .map(drop)
        .map_err(|e| classify(&e, &format!("execution {arn}")))
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

/// The most pages any listing reads. Listings are bounded by pages, not
/// results: an endpoint that answers empty pages with a new token each time
/// must not keep the command line (which has no deadline) calling forever.
/// A thousand pages of 100 is a hundred times SageMaker's default quotas.
const MAX_PAGES: usize = 1000;

/// The paging of one listing: the token to send, every token seen (a token
/// that comes back means the listing goes round in circles: SageMaker's
/// tokens never repeat), and the pages read.
struct Pager {
    what: String,
    next: Option<String>,
    seen: HashSet<String>,
    pages: usize,
    done: bool,
}

impl Pager {
    fn new(what: String) -> Pager {
        Pager {
            what,
            next: None,
            seen: HashSet::new(),
            pages: 0,
            done: false,
        }
    }

    /// After a page: whether there is another to read, or why the listing
    /// cannot be trusted to end.
    fn advance(&mut self, token: Option<String>) -> Result<bool, StopError> {
        self.pages += 1;
        let token = token.filter(|token| !token.is_empty());
        let Some(token) = token else {
            self.done = true;
            return Ok(false);
        };
        let problem = if !self.seen.insert(token.clone()) {
            "repeated a page token"
        } else if self.pages >= MAX_PAGES {
            "went on past 1000 pages"
        } else {
            self.next = Some(token);
            return Ok(true);
        };
        self.done = true;
        Err(StopError::new(
            ErrorKind::Upstream,
            format!("SageMaker's listing of {} {problem}", self.what),
        ))
    }
}

/// Executions per `ListPipelineExecutions` page (SageMaker's maximum).
pub const LIST_PAGE_SIZE: usize = 100;

/// `pipeline`'s executions, yielded page by page as SageMaker lists them,
/// so that stops can start before the listing ends; with `created_before`,
/// SageMaker lists only those created before it. Which of them a sweep stops
/// is `stopper_core::decide::is_swept`'s to say. The stream ends after an
/// error (a page's executions are yielded before the error that follows it).
pub fn list_executions<'a>(
    client: &'a Client,
    pipeline: &'a str,
    created_before: Option<SystemTime>,
) -> impl Stream<Item = Result<ListedExecution, StopError>> + 'a {
    let pager = Pager::new(format!("pipeline {pipeline}'s executions"));
    let state = (pager, VecDeque::new(), None::<StopError>);
    stream::unfold(Some(state), move |state| async move {
        let (mut pager, mut page, mut failed) = state?;
        loop {
            if let Some(listed) = page.pop_front() {
                return Some((Ok(listed), Some((pager, page, failed))));
            }
            if let Some(error) = failed.take() {
                return Some((Err(error), None));
            }
            if pager.done {
                return None;
            }
            let out = match client
                .list_pipeline_executions()
                .pipeline_name(pipeline)
                .set_created_before(created_before.map(DateTime::from))
                .max_results(LIST_PAGE_SIZE as i32)
                .set_next_token(pager.next.take())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => return Some((Err(classify(&e, &format!("pipeline {pipeline}"))), None)),
            };
            page = out
                .pipeline_execution_summaries()
                .iter()
                .filter_map(|summary| {
                    Some(ListedExecution {
                        arn: summary.pipeline_execution_arn.clone()?,
                        status: status_of(summary.pipeline_execution_status.as_ref()),
                        started: time_of(summary.start_time),
                    })
                })
                .collect();
            failed = pager.advance(out.next_token).err();
        }
    })
}

/// Search results per page (SageMaker's maximum).
pub const SEARCH_PAGE_SIZE: i32 = 100;

/// Every pipeline that carries `tag_key`, with the tag's value: one `Search`
/// call per 100 tagged pipelines, however many pipelines the account has.
/// A record without its ARN or name is left out: the guard never judges an
/// execution by the default without reading its pipeline's tags itself
/// ([`pipeline_tag`]), so a record missing here cannot exempt or limit
/// anything wrongly.
pub async fn search_tagged_pipelines(
    client: &Client,
    tag_key: &str,
) -> Result<Vec<TaggedPipeline>, StopError> {
    let has_tag = Filter::builder()
        .name(format!("Tags.{tag_key}"))
        .operator(Operator::Exists)
        .build();
    let mut pipelines = Vec::new();
    let mut pager = Pager::new(format!("pipelines tagged {tag_key}"));
    loop {
        let page = client
            .search()
            .resource(ResourceType::Pipeline)
            .search_expression(SearchExpression::builder().filters(has_tag.clone()).build())
            .sort_by("CreationTime")
            .sort_order(SearchSortOrder::Ascending)
            .max_results(SEARCH_PAGE_SIZE)
            .set_next_token(pager.next.take())
            .send()
            .await
            .map_err(|e| classify(&e, &format!("pipelines tagged {tag_key}")))?;
        for pipeline in page.results().iter().filter_map(|r| r.pipeline()) {
            let (Some(arn), Some(name)) = (pipeline.pipeline_arn(), pipeline.pipeline_name())
            else {
                continue;
            };
            pipelines.push(TaggedPipeline {
                arn: arn.to_owned(),
                name: name.to_owned(),
                value: tag_value(pipeline.tags(), tag_key),
            });
        }
        if !pager.advance(page.next_token)? {
            return Ok(pipelines);
        }
    }
}

/// The value of `key` among `tags`, if it is there (empty when the tag has
/// no value: a tag that is there is never read as no tag).
fn tag_value(tags: &[Tag], key: &str) -> Option<String> {
    tags.iter()
        .find(|tag| tag.key() == Some(key))
        .map(|tag| tag.value().unwrap_or_default().to_owned())
}

/// The value of `tag_key` on one pipeline, read with `ListTags` (`None`: the
/// pipeline does not carry it). The guard reads it before it acts on any of
/// the pipeline's executions: `Search` is an index, which can miss a tagged
/// pipeline or show a tag its owner has just changed.
pub async fn pipeline_tag(
    client: &Client,
    pipeline_arn: &str,
    tag_key: &str,
) -> Result<Option<String>, StopError> {
    let mut pager = Pager::new(format!("the tags of {pipeline_arn}"));
    loop {
        let page = client
            .list_tags()
            .resource_arn(pipeline_arn)
            .max_results(100)
            .set_next_token(pager.next.take())
            .send()
            .await
            .map_err(|e| classify(&e, &format!("pipeline {pipeline_arn}")))?;
        if let Some(value) = tag_value(page.tags(), tag_key) {
            return Ok(Some(value));
        }
        if !pager.advance(page.next_token)? {
            return Ok(None);
        }
    }
}

/// The account's executions in `status` (`Executing`, `Stopping`), oldest
/// first, every page of them, added to `found` as they arrive (so that what
/// was found before a deadline or an error is kept). What they come to is
/// `stopper_core::guard`'s to say; nothing relies on the order.
pub async fn search_executions(
    client: &Client,
    status: &str,
    found: &mut Vec<RunningExecution>,
) -> Result<(), StopError> {
    let executing = Filter::builder()
        .name("PipelineExecutionStatus")
        .operator(Operator::Equals)
        .value(status)
        .build();
    let what = format!("{} executions", status.to_ascii_lowercase());
    let mut pager = Pager::new(what.clone());
    loop {
        let page = client
            .search()
            .resource(ResourceType::PipelineExecution)
            .search_expression(
                SearchExpression::builder()
                    .filters(executing.clone())
                    .build(),
            )
            .sort_by("CreationTime")
            .sort_order(SearchSortOrder::Ascending)
            .max_results(SEARCH_PAGE_SIZE)
            .set_next_token(pager.next.take())
            .send()
            .await
            .map_err(|e| classify(&e, &what))?;
        found.extend(
            page.results()
                .iter()
                .filter_map(|r| r.pipeline_execution())
                .filter_map(|execution| {
                    Some(RunningExecution {
                        arn: execution.pipeline_execution_arn.clone()?,
                        status: status_of(execution.pipeline_execution_status.as_ref()),
                        created: time_of(execution.creation_time),
                        modified: time_of(execution.last_modified_time),
                    })
                }),
        );
        if !pager.advance(page.next_token)? {
            return Ok(());
        }
    }
}

/// The steps of an execution, every page of them (which of them block a
/// stop is `stopper_core::decide::blocking_step`'s to say). The iterations
/// of a running `ForEach` step are listed as steps of their own (with an
/// `IterationContext`), so a Callback or Lambda step inside one is found.
pub async fn list_steps(client: &Client, arn: &str) -> Result<Vec<ListedStep>, StopError> {
    let mut steps = Vec::new();
    let mut pager = Pager::new(format!("the steps of execution {arn}"));
    // Paged by hand rather than with the SDK's paginator: a paginator boxes
    // its own task and channel, and a sweep runs one of these per concurrent
    // stop, so this is where its peak memory went.
    loop {
        let page = client
            .list_pipeline_execution_steps()
            .pipeline_execution_arn(arn)
            .max_results(100)
            .set_next_token(pager.next.take())
            .send()
            .await
            .map_err(|e| classify(&e, &format!("execution {arn}")))?;
        steps.extend(page.pipeline_execution_steps().iter().map(listed_step));
        // A listing that repeats a token or never ends has shown what it
        // has: the steps read are kept (they are what `Force` acts on), as
        // the SDK's paginators end on a repeated token.
        if !pager.advance(page.next_token).unwrap_or(false) {
            return Ok(steps);
        }
    }
}

/// A step as SageMaker lists it.
fn listed_step(step: &PipelineExecutionStep) -> ListedStep {
    let metadata = step.metadata();
    // The iterations of a `ForEach` step share their body step's name: the
    // iteration's index tells them apart in replies and in `Wait`'s listing.
    let iteration = step.iteration_context().and_then(|c| c.index());
    ListedStep {
        name: step.step_name().map(|name| match iteration {
            Some(index) => format!("{name}[{index}]"),
            None => name.to_owned(),
        }),
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

/// Operations whose modelled errors are `ResourceNotFound` and `ConflictException`.
macro_rules! not_found_and_conflict_are_modeled {
    ($($error:ty),+) => {$(
        impl ModeledError for $error {
            fn modeled_kind(&self) -> Option<ErrorKind> {
                match self {
                    Self::ResourceNotFound(_) => Some(ErrorKind::NotFound),
                    Self::ConflictException(_) => Some(ErrorKind::Conflict),
                    _ => None,
                }
            }
        }
    )+};
}

not_found_and_conflict_are_modeled!(StopPipelineExecutionError, UpdatePipelineExecutionError);

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

/// Operations that model no error of their own.
macro_rules! nothing_is_modeled {
    ($($error:ty),+) => {$(
        impl ModeledError for $error {
            fn modeled_kind(&self) -> Option<ErrorKind> {
                None
            }
        }
    )+};
}

nothing_is_modeled!(SearchError, ListTagsError);

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
