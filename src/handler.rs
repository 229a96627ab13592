//! One invocation, end to end: decode, plan, call SageMaker, reply.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, StreamExt};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::Value;
use stopper_core::arn::Scope;
use stopper_core::config::Config;
use stopper_core::plan::{plan, Plan};
use stopper_core::reply::{self, ExecutionResult, Outcome, PipelineFailure, Report};
use stopper_core::trigger::{decode, Action, Trigger};
use stopper_core::{ErrorKind, StopError};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::sagemaker;

/// Time kept back from the invocation's deadline to send the reply. A call
/// still running then is abandoned and reported as `UpstreamUnavailable`, so
/// the caller hears back instead of seeing the function time out.
pub const REPLY_MARGIN: Duration = Duration::from_millis(500);

/// The function: its SageMaker client and configuration, built once at init.
pub struct Stopper {
    client: Client,
    config: Config,
}

/// What an event came to, before it is shaped for its trigger.
enum Response {
    Ignored(String),
    Done(Report),
    Refused(StopError),
}

impl Stopper {
    pub fn new(client: Client, config: Config) -> Stopper {
        Stopper { client, config }
    }

    /// The Lambda handler. HTTP triggers always get an HTTP response (errors
    /// included); every other trigger gets a JSON reply or a failed invocation
    /// whose `errorType` names the error class.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
        let (payload, context) = event.into_parts();
        let decoded = decode(&payload);
        drop(payload);
        let trigger = decoded.trigger;
        let response = match decoded.action {
            Err(error) => Response::Refused(error),
            Ok(Action::Ignore(reason)) => Response::Ignored(reason),
            Ok(Action::Stop(selection)) => {
                let identity = decoded
                    .identity
                    .unwrap_or_else(|| format!("lambda:{}", context.request_id));
                let scope = Scope::from_function_arn(&context.invoked_function_arn);
                match plan(&selection, &self.config, scope.as_ref(), &identity) {
                    Ok(plan) => {
                        Response::Done(self.execute(trigger, plan, deadline(&context)).await)
                    }
                    Err(error) => Response::Refused(error),
                }
            }
        };
        match &response {
            Response::Ignored(reason) => info!(
                trigger = trigger.name(),
                reason = reason.as_str(),
                "ignored"
            ),
            Response::Refused(e) => warn!(
                trigger = trigger.name(),
                error_type = e.kind.error_type(),
                error = e.message.as_str(),
                "refused before any SageMaker call"
            ),
            Response::Done(_) => {}
        }
        shape(trigger, response)
    }

    /// Lists the pipelines to sweep, then stops every target, at most
    /// `max_concurrency` at a time; one failure never hides another's result.
    async fn execute(&self, trigger: Trigger, mut plan: Plan, deadline: Option<Instant>) -> Report {
        let mut report = Report {
            single: plan.is_single(),
            ..Report::default()
        };
        let mut targets = std::mem::take(&mut plan.executions);
        let mut seen: HashSet<String> = targets.iter().map(|t| t.arn.clone()).collect();
        for pipeline in &plan.pipelines {
            match bounded(deadline, sagemaker::list_executing(&self.client, pipeline)).await {
                Ok(arns) => {
                    info!(
                        trigger = trigger.name(),
                        pipeline = pipeline.as_str(),
                        executing = arns.len(),
                        "swept pipeline"
                    );
                    for arn in arns {
                        if seen.insert(arn.clone()) {
                            targets.push(plan.swept_target(arn));
                        }
                    }
                }
                Err(error) => {
                    warn!(
                        trigger = trigger.name(),
                        pipeline = pipeline.as_str(),
                        error_type = error.kind.error_type(),
                        error = error.message.as_str(),
                        "could not list executions"
                    );
                    report.pipeline_failures.push(PipelineFailure {
                        pipeline: pipeline.clone(),
                        error,
                    });
                }
            }
        }
        report.pipelines_swept = plan.pipelines;
        let client = &self.client;
        report.executions = stream::iter(targets)
            .map(|target| async move {
                let started = Instant::now();
                let outcome = bounded(deadline, async {
                    Ok(sagemaker::stop(client, &target.arn, &target.token).await)
                })
                .await
                .unwrap_or_else(Outcome::Failed);
                log_outcome(
                    trigger,
                    &target.arn,
                    &target.token,
                    &outcome,
                    started.elapsed(),
                );
                ExecutionResult {
                    arn: target.arn,
                    outcome,
                }
            })
            .buffered(self.config.max_concurrency)
            .collect()
            .await;
        report
    }
}

/// One structured line per target: trigger, ARN, token, outcome, latency.
/// The token is an idempotency key, not a secret.
fn log_outcome(trigger: Trigger, arn: &str, token: &str, outcome: &Outcome, elapsed: Duration) {
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    match outcome {
        Outcome::Failed(e) => warn!(
            trigger = trigger.name(),
            arn,
            token,
            outcome = outcome.name(),
            error_type = e.kind.error_type(),
            error = e.message.as_str(),
            latency_ms,
            "stop"
        ),
        Outcome::AlreadyFinished { status } => info!(
            trigger = trigger.name(),
            arn,
            token,
            outcome = outcome.name(),
            status = status.as_str(),
            latency_ms,
            "stop"
        ),
        Outcome::StopRequested => info!(
            trigger = trigger.name(),
            arn,
            token,
            outcome = outcome.name(),
            latency_ms,
            "stop"
        ),
    }
}

/// The instant by which SageMaker calls must be done, from the invocation's
/// deadline (milliseconds since the epoch), less [`REPLY_MARGIN`]. `None` when
/// the runtime gave no usable deadline: 0, or a value that cannot be a time
/// since the epoch (`cargo lambda watch` sends a relative `600000`); the SDK's
/// own timeouts then bound each call.
fn deadline(context: &Context) -> Option<Instant> {
    // 2001-09-09T01:46:40Z: any real deadline is later than this.
    const EARLIEST_EPOCH_MS: u64 = 1_000_000_000_000;
    if context.deadline < EARLIEST_EPOCH_MS {
        tracing::debug!(
            deadline_ms = context.deadline,
            "no usable invocation deadline"
        );
        return None;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_millis() as u64;
    let remaining = Duration::from_millis(context.deadline.saturating_sub(now_ms));
    Some(Instant::now() + remaining.saturating_sub(REPLY_MARGIN))
}

/// Runs a SageMaker call, giving up at the deadline.
async fn bounded<T>(
    deadline: Option<Instant>,
    call: impl std::future::Future<Output = Result<T, StopError>>,
) -> Result<T, StopError> {
    match deadline {
        None => call.await,
        Some(at) => tokio::time::timeout_at(at, call).await.unwrap_or_else(|_| {
            Err(StopError::new(
                ErrorKind::Unavailable,
                "SageMaker did not answer before the function's deadline",
            ))
        }),
    }
}

/// Shapes the response for its trigger.
fn shape(trigger: Trigger, response: Response) -> Result<Value, Diagnostic> {
    if let Some(flavor) = trigger.http() {
        let (status, body) = match response {
            Response::Ignored(reason) => (200, reply::ignored_body(&reason)),
            Response::Done(report) => report.http(),
            Response::Refused(e) => (e.kind.http_status(), reply::error_body(&e)),
        };
        return Ok(reply::http_response(flavor, status, &body));
    }
    match response {
        Response::Ignored(reason) => Ok(reply::ignored_body(&reason)),
        Response::Done(report) => report.result().map_err(diagnostic),
        Response::Refused(e) => Err(diagnostic(e)),
    }
}

fn diagnostic(error: StopError) -> Diagnostic {
    Diagnostic {
        error_type: error.kind.error_type().to_owned(),
        error_message: error.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(deadline: u64) -> Context {
        let mut context = Context::default();
        context.deadline = deadline;
        context
    }

    #[test]
    fn the_deadline_keeps_a_margin_to_reply() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let at = deadline(&context(now_ms + 10_000)).unwrap();
        let left = at - Instant::now();
        assert!(
            left <= Duration::from_millis(9_500) && left > Duration::from_millis(9_000),
            "{left:?}"
        );
        let past = deadline(&context(now_ms - 1_000)).unwrap();
        assert!(past <= Instant::now());
    }

    #[test]
    fn a_deadline_that_is_not_an_epoch_time_is_ignored() {
        assert!(deadline(&context(0)).is_none());
        assert!(deadline(&context(600_000)).is_none());
    }
}
