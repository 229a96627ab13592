//! The one module that talks to SageMaker. It turns SDK results into the
//! core's outcomes and error classes; nothing else in the crate sees the SDK's
//! error types.

use std::time::{Duration, SystemTime};

use aws_sdk_sagemaker::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionError;
use aws_sdk_sagemaker::operation::list_pipeline_execution_steps::ListPipelineExecutionStepsError;
use aws_sdk_sagemaker::operation::list_pipeline_executions::ListPipelineExecutionsError;
use aws_sdk_sagemaker::operation::send_pipeline_execution_step_failure::SendPipelineExecutionStepFailureError;
use aws_sdk_sagemaker::operation::stop_pipeline_execution::StopPipelineExecutionError;
use aws_sdk_sagemaker::primitives::DateTime;
use aws_sdk_sagemaker::types::{PipelineExecutionStatus, PipelineExecutionStep, StepStatus};
use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, Stream};
use stopper_core::arn::Scope;
use stopper_core::reply::{BlockingStep, Outcome, StepKind};
use stopper_core::{ErrorKind, StopError};

/// SDK timeouts: a connection that cannot be made in 3 s will not be made in
/// 30; an attempt that takes 10 s is retried (with the same token) rather than
/// waited on. The handler also bounds every call by the invocation's deadline.
pub fn timeout_config() -> aws_sdk_sagemaker::config::timeout::TimeoutConfig {
    aws_sdk_sagemaker::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .build()
}

/// Builds the client from the standard AWS configuration chain
/// (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL_SAGEMAKER`,
/// `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`), with our timeouts on top.
/// `endpoint`: the CLI's `--endpoint-url`, which (as in the AWS CLI) applies
/// to SageMaker only.
pub fn client(sdk_config: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut config =
        aws_sdk_sagemaker::config::Builder::from(sdk_config).timeout_config(timeout_config());
    if let Some(url) = endpoint {
        config = config.endpoint_url(url);
    }
    Client::from_conf(config.build())
}

/// The scope of the configured region: targets must be in its partition and
/// region (and `account`, when known). No region is a configuration error.
pub fn home_scope(
    sdk_config: &aws_config::SdkConfig,
    account: Option<&str>,
) -> Result<Scope, StopError> {
    let region = sdk_config.region().map(|r| r.as_ref().to_owned());
    let region = region.filter(|r| !r.is_empty()).ok_or_else(|| {
        StopError::new(
            ErrorKind::Configuration,
            "no AWS region is configured: set AWS_REGION (or --region, or a profile's region)",
        )
    })?;
    Scope::for_region(&region, account).ok_or_else(|| {
        StopError::new(
            ErrorKind::Configuration,
            format!("the configured region {region:?} is not a region name"),
        )
    })
}

/// The endpoint override in force, if any, resolved as the SDK resolves it
/// when `client` builds SageMaker's configuration: `--endpoint-url`, else the
/// service's own setting (`AWS_ENDPOINT_URL_SAGEMAKER`, a profile's
/// `services` section), else the global one (`AWS_ENDPOINT_URL`, a profile's
/// `endpoint_url`).
fn endpoint_override(
    sdk_config: &aws_config::SdkConfig,
    explicit: Option<&str>,
) -> Option<(String, &'static str)> {
    if let Some(url) = explicit {
        return Some((url.to_owned(), "--endpoint-url"));
    }
    let global = || {
        sdk_config.endpoint_url().map(|url| {
            (
                url.to_owned(),
                "the configured endpoint (AWS_ENDPOINT_URL or a profile)",
            )
        })
    };
    // Set in code, the global endpoint wins, as in the SDK's own resolution.
    if sdk_config.get_origin("endpoint_url").is_client_config() {
        return global();
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("SageMaker")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk_config
        .service_config()
        .and_then(|config| config.load_config(key))
        .map(|url| {
            (
                url,
                "the SageMaker endpoint (AWS_ENDPOINT_URL_SAGEMAKER or a profile's services section)",
            )
        })
        .or_else(global)
}

/// Refuses an endpoint override that is not an `http(s)://host` URL: the SDK
/// would fail every call with a dispatch error that reads like an outage.
pub fn check_endpoint(
    sdk_config: &aws_config::SdkConfig,
    explicit: Option<&str>,
) -> Result<(), StopError> {
    let Some((url, source)) = endpoint_override(sdk_config, explicit) else {
        return Ok(());
    };
    let usable = url
        .parse::<aws_lambda_events::http::Uri>()
        .ok()
        .is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
        });
    if usable {
        Ok(())
    } else {
        Err(StopError::new(
            ErrorKind::Configuration,
            format!(
                "{source} {} is not a usable endpoint: give a URL such as https://api.sagemaker.us-east-1.amazonaws.com \
                 (with http:// or https://)",
                stopper_core::arn::quote(&url)
            ),
        ))
    }
}

/// Statuses in which an execution has ended and cannot be stopped.
pub fn is_finished(status: &str) -> bool {
    matches!(
        status,
        "Succeeded" | "Failed" | "Stopped" | "CompletedWithFailures"
    )
}

/// Asks SageMaker to stop one execution. A `ConflictException` (SageMaker's
/// answer for an execution it cannot stop) is checked against the execution's
/// status: an execution that has already ended is reported as such, not failed.
pub async fn stop(client: &Client, arn: &str, token: &str) -> Outcome {
    let result = client
        .stop_pipeline_execution()
        .pipeline_execution_arn(arn)
        .client_request_token(token)
        .send()
        .await;
    let error = match result {
        Ok(_) => return Outcome::StopRequested,
        Err(e) => classify(&e, &format!("execution {arn}")),
    };
    if error.kind != ErrorKind::Conflict {
        return Outcome::Failed(error);
    }
    match describe_status(client, arn).await {
        Ok(status) if is_finished(&status) => Outcome::AlreadyFinished { status },
        // Already on its way down: the stop the caller wants is under way.
        Ok(status) if status == "Stopping" => Outcome::StopRequested,
        Ok(status) => Outcome::Failed(StopError::new(
            ErrorKind::Conflict,
            format!("SageMaker refused to stop execution {arn} in status {status}"),
        )),
        Err(_) => Outcome::Failed(error),
    }
}

/// The execution's current status, as SageMaker spells it.
pub async fn describe_status(client: &Client, arn: &str) -> Result<String, StopError> {
    let out = client
        .describe_pipeline_execution()
        .pipeline_execution_arn(arn)
        .send()
        .await
        .map_err(|e| classify(&e, &format!("execution {arn}")))?;
    Ok(out
        .pipeline_execution_status()
        .map(PipelineExecutionStatus::as_str)
        .unwrap_or("Unknown")
        .to_owned())
}

/// Executions per `ListPipelineExecutions` page (SageMaker's maximum).
pub const LIST_PAGE_SIZE: usize = 100;

/// The ARNs of `pipeline`'s `Executing` executions, yielded page by page as
/// SageMaker lists them, so that stops can start before the listing ends;
/// with `started_before`, only those that started before it. The stream ends
/// after an error.
pub fn executing<'a>(
    client: &'a Client,
    pipeline: &'a str,
    started_before: Option<SystemTime>,
) -> impl Stream<Item = Result<String, StopError>> + 'a {
    let cutoff = started_before.map(DateTime::from);
    let pages = client
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .set_created_before(cutoff)
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
            if summary.pipeline_execution_status() != Some(&PipelineExecutionStatus::Executing) {
                continue;
            }
            // `CreatedBefore` filters on the server; the start time is checked
            // here too, so an execution without one is never taken for old.
            if let Some(cutoff) = cutoff {
                if summary.start_time().is_none_or(|t| *t >= cutoff) {
                    continue;
                }
            }
            if let Some(arn) = summary.pipeline_execution_arn {
                return Some((Ok(arn), Some(pages)));
            }
        }
    })
}

/// A running step that holds a stop, with the callback token `Force` needs
/// (kept out of replies and logs: it is a credential for the step).
#[derive(Debug, Clone)]
pub struct HoldingStep {
    pub step: BlockingStep,
    pub callback_token: Option<String>,
}

/// The running Callback and Lambda steps of an execution: the steps that keep
/// a stop from completing.
pub async fn blocking_steps(client: &Client, arn: &str) -> Result<Vec<HoldingStep>, StopError> {
    let mut held = Vec::new();
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
        held.extend(
            page.pipeline_execution_steps()
                .iter()
                .filter_map(holding_step),
        );
        // As the SDK's paginators do: an empty or repeated token ends the
        // listing rather than looping on it.
        match page.next_token.filter(|token| !token.is_empty()) {
            Some(token) if Some(&token) != next_token.as_ref() => next_token = Some(token),
            _ => return Ok(held),
        }
    }
}

/// The step as a `HoldingStep` if it is running and is of a kind that holds
/// a stop (Callback or Lambda).
fn holding_step(step: &PipelineExecutionStep) -> Option<HoldingStep> {
    if !matches!(
        step.step_status(),
        Some(StepStatus::Executing | StepStatus::Starting)
    ) {
        return None;
    }
    let name = step.step_name().unwrap_or("(unnamed)").to_owned();
    let metadata = step.metadata()?;
    if let Some(callback) = metadata.callback() {
        Some(HoldingStep {
            step: BlockingStep {
                name,
                kind: StepKind::Callback {
                    queue_url: callback.sqs_queue_url().map(str::to_owned),
                },
                force: None,
            },
            callback_token: callback.callback_token().map(str::to_owned),
        })
    } else {
        metadata.lambda().map(|lambda| HoldingStep {
            step: BlockingStep {
                name,
                kind: StepKind::Lambda {
                    function_arn: lambda.arn().map(str::to_owned),
                },
                force: None,
            },
            callback_token: None,
        })
    }
}

/// Fails a Callback step, so a stop it holds can complete. `token` makes a
/// redelivered event's call a no-op.
pub async fn fail_callback_step(
    client: &Client,
    callback_token: &str,
    reason: &str,
    token: &str,
    step: &str,
) -> Result<(), StopError> {
    client
        .send_pipeline_execution_step_failure()
        .callback_token(callback_token)
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

/// A failure that is the configuration's, not SageMaker's: no credentials
/// could be loaded. Retrying will not help, and the operator must be told
/// what is missing rather than that SageMaker is unreachable.
pub fn configuration_problem<E, R>(error: &SdkError<E, R>) -> Option<StopError>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_credential_types::provider::error::CredentialsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(credentials) = e.downcast_ref::<CredentialsError>() {
            let why = match credentials {
                CredentialsError::CredentialsNotLoaded(_) => {
                    "no AWS credentials were found (environment, profile, SSO, container or instance role)"
                }
                CredentialsError::ProviderTimedOut(_) => "loading AWS credentials timed out",
                CredentialsError::InvalidConfiguration(_) => "the AWS credentials configuration is invalid",
                CredentialsError::ProviderError(_) => "the AWS credentials provider failed",
                _ => "AWS credentials could not be loaded",
            };
            return Some(StopError::new(
                ErrorKind::Configuration,
                format!(
                    "{why}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role"
                ),
            ));
        }
        source = e.source();
    }
    None
}

/// Maps an SDK error to an error class with a message in the caller's terms:
/// the error code, never SageMaker's free text. `target` says what was asked
/// about ("execution arn:...", "pipeline nightly-training").
pub fn classify<E, R>(error: &SdkError<E, R>, target: &str) -> StopError
where
    E: ModeledError + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(problem) = configuration_problem(error) {
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
