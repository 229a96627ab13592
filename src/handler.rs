//! One invocation, end to end: decode, plan, call SageMaker, reply.

use std::collections::HashSet;
use std::pin::pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemaker::Client;
use futures_util::future;
use futures_util::stream::{self, Stream, StreamExt};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use stopper_core::arn::Scope;
use stopper_core::config::Config;
use stopper_core::plan::{plan, Plan, Target};
use stopper_core::reply::{
    self, step_labels, ExecutionResult, Force, Outcome, PipelineFailure, Reply, Report, StepKind,
};
use stopper_core::trigger::{decode, Action, Trigger};
use stopper_core::{ErrorKind, StopError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::sagemaker;

/// Time kept back from the invocation's deadline to send the reply. A call
/// still running then is abandoned and reported as `UpstreamUnavailable`, so
/// the caller hears back instead of seeing the function time out.
pub const REPLY_MARGIN: Duration = Duration::from_millis(500);

/// What the runtime says about one invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Seeds derived tokens when the trigger has no identity of its own.
    pub request_id: String,
    /// The function's partition, account and region, from the invoked
    /// function ARN; `None` when it cannot be read (as under `cargo lambda
    /// watch`): the configured scope then applies, never no scope at all.
    pub scope: Option<Scope>,
    /// When SageMaker calls must be done by (less the reply margin).
    pub deadline: Option<Instant>,
}

/// The function: its SageMaker client and configuration, built once at init.
pub struct Stopper {
    client: Client,
    config: Config,
    /// Where targets must be when the invocation does not say: the configured
    /// region's partition and region, and the account when it is known.
    home: Scope,
    /// A configuration that cannot work (an endpoint that is not a URL): every
    /// event that would call SageMaker gets this error instead.
    unusable: Option<StopError>,
}

/// What an event came to, before it is shaped for its trigger.
pub enum Response {
    Ignored(String),
    Done(Report),
    Refused(StopError),
}

impl Stopper {
    /// `home`: the scope of the configured region (and account, if known).
    /// `unusable`: why the configuration cannot reach SageMaker, if it cannot.
    pub fn new(
        client: Client,
        config: Config,
        home: Scope,
        unusable: Option<StopError>,
    ) -> Stopper {
        info!(
            scope = home.describe().as_str(),
            "targets must be in the invoked function's partition, region and account, or, when its ARN \
             cannot be read, in this scope"
        );
        Stopper {
            client,
            config,
            home,
            unusable,
        }
    }

    /// The Lambda handler. HTTP triggers always get an HTTP response (errors
    /// included); every other trigger gets a JSON reply or a failed invocation
    /// whose `errorType` names the error class. The event arrives as its raw
    /// JSON text and is decoded into types, never held as a `Value` tree.
    pub async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Reply, Diagnostic> {
        let (payload, context) = event.into_parts();
        let invocation = Invocation {
            request_id: context.request_id.clone(),
            scope: Scope::from_function_arn(&context.invoked_function_arn),
            deadline: deadline(&context),
        };
        let (trigger, response) = self.respond(payload.get(), &invocation).await;
        drop(payload);
        shape(trigger, response)
    }

    /// One event, from its JSON text to what it came to; the CLI calls this
    /// too, and prints the report whatever the outcome.
    pub async fn respond(&self, payload: &str, invocation: &Invocation) -> (Trigger, Response) {
        let decoded = decode(payload);
        let trigger = decoded.trigger;
        let caller = decoded.caller.as_deref();
        let response = match decoded.action {
            Err(error) => Response::Refused(error),
            Ok(Action::Ignore(reason)) => Response::Ignored(reason),
            Ok(Action::Stop(selection)) => {
                let identity = decoded
                    .identity
                    .unwrap_or_else(|| format!("lambda:{}", invocation.request_id));
                let scope = match &invocation.scope {
                    Some(scope) => scope,
                    None => {
                        warn!(
                            scope = self.home.describe().as_str(),
                            "the invoked function ARN gives no account and region: using the configured scope"
                        );
                        &self.home
                    }
                };
                let deadline = front_end_deadline(invocation.deadline, decoded.reply_by_epoch_ms);
                match (plan(&selection, &self.config, scope, &identity), &self.unusable) {
                    // Planned (so bad input is still told as such), but the
                    // configuration cannot reach SageMaker: say what is wrong.
                    (Ok(_), Some(problem)) => Response::Refused(problem.clone()),
                    // API Gateway has (all but) given up on this request: its
                    // caller gets a 503 from it whatever happens here, so
                    // nothing is started that the reply could not report.
                    (Ok(_), None) if deadline.is_some_and(|d| d <= Instant::now()) => {
                        Response::Refused(StopError::new(
                            ErrorKind::Unavailable,
                            "no time was left before the reply deadline (API Gateway's 29 s integration \
                             timeout, or the function's own) to call SageMaker: nothing was called; retry",
                        ))
                    }
                    (Ok(plan), None) => {
                        let plan = Plan {
                            caller: caller.map(str::to_owned),
                            ..plan
                        };
                        Response::Done(self.execute(trigger, plan, deadline).await)
                    }
                    (Err(error), _) => Response::Refused(error),
                }
            }
        };
        match &response {
            Response::Ignored(reason) => info!(
                trigger = trigger.name(),
                caller,
                reason = reason.as_str(),
                "ignored"
            ),
            Response::Refused(e) if e.kind == ErrorKind::Configuration => warn!(
                trigger = trigger.name(),
                caller,
                error_type = e.kind.error_type(),
                error = e.message.as_str(),
                "cannot call SageMaker as configured"
            ),
            Response::Refused(e) => warn!(
                trigger = trigger.name(),
                caller,
                error_type = e.kind.error_type(),
                error = e.message.as_str(),
                "refused before any SageMaker call"
            ),
            Response::Done(_) => {}
        }
        (trigger, response)
    }

    /// Acts on every target, at most `max_concurrency` at a time: the named
    /// executions, then those the pipeline sweeps find, from the first page
    /// of each listing on. One failure never hides another's result. With
    /// `Wait`, then polls the stopped executions until they end.
    async fn execute(&self, trigger: Trigger, mut plan: Plan, deadline: Option<Instant>) -> Report {
        let mut report = Report {
            single: plan.is_single(),
            dry_run: plan.options.dry_run,
            ..Report::default()
        };
        let started_before = plan
            .options
            .older_than_minutes
            .map(|minutes| SystemTime::now() - Duration::from_secs(minutes * 60));
        let named = std::mem::take(&mut plan.executions);
        let swept_pipelines = std::mem::take(&mut plan.pipelines);
        // A named execution that a sweep also finds is acted on once.
        let mut seen: HashSet<String> = named.iter().map(|t| t.arn.clone()).collect();
        let plan = &plan;
        let named = stream::iter(named).map(|target| Work::Act(target, Found::Named));
        // The listing runs a page ahead of the stops, through a channel of one
        // page: slots never wait on the next page's round trip.
        let (listed_tx, mut listed_rx) = mpsc::channel(sagemaker::LIST_PAGE_SIZE);
        let pipelines = &swept_pipelines;
        let listing = async move {
            for pipeline in pipelines {
                let mut listed =
                    pin!(self.sweep(trigger, pipeline, plan, started_before, deadline));
                while let Some(item) = listed.next().await {
                    if listed_tx.send((pipeline, item)).await.is_err() {
                        return;
                    }
                }
            }
        };
        let swept = stream::poll_fn(move |cx| listed_rx.poll_recv(cx));
        let swept = swept.filter_map(|(pipeline, listed)| {
            future::ready(match listed {
                Ok(arn) if seen.insert(arn.clone()) => {
                    Some(Work::Act(plan.swept_target(arn), Found::Executing))
                }
                Ok(_) => None,
                Err(error) => Some(Work::ListingFailed(PipelineFailure {
                    pipeline: pipeline.clone(),
                    error,
                })),
            })
        });
        // Ordered on purpose: a target whose call is in backoff (throttled)
        // holds back new starts until it completes, since its finished
        // followers still count against the limit. That is the backpressure
        // that keeps a sweep at SageMaker's rate limit instead of spending
        // every retry: measured at 100 requests/s over four runs, unordered
        // left 17 to 800 of 1,000 executions running (retries exhausted on
        // stops, or on the listing); ordered stopped all 1,000 at the limit's
        // pace, about 20 s.
        let acting = named
            .chain(swept)
            .map(|work| async move {
                match work {
                    Work::Act(target, found) => {
                        let started = Instant::now();
                        let result = self.act_on(plan, &target, found, deadline).await;
                        let caller = plan.caller.as_deref();
                        log_outcome(trigger, caller, &target.token, &result, started.elapsed());
                        Ok(result)
                    }
                    Work::ListingFailed(failure) => Err(failure),
                }
            })
            .buffered(self.config.max_concurrency)
            .for_each(|done| {
                match done {
                    Ok(result) => report.executions.push(result),
                    Err(failure) => report.pipeline_failures.push(failure),
                }
                future::ready(())
            });
        future::join(listing, acting).await;
        report.pipelines_swept = swept_pipelines;
        // The wait ends early enough for its last poll and the fresh step
        // listing to be answered before the deadline.
        let wait_room = remaining(deadline).map(|left| left.saturating_sub(FINAL_CALLS));
        if let Some(budget) = plan.options.wait_budget(wait_room) {
            self.wait_for_end(trigger, &mut report.executions, budget, deadline)
                .await;
        }
        report
    }

    /// The ARNs of one pipeline's running executions, as SageMaker lists
    /// them; a listing that fails, or outlasts the deadline, ends with its
    /// error.
    fn sweep<'a>(
        &'a self,
        trigger: Trigger,
        pipeline: &'a str,
        plan: &'a Plan,
        started_before: Option<SystemTime>,
        deadline: Option<Instant>,
    ) -> impl Stream<Item = Result<String, StopError>> + 'a {
        let listing = Box::pin(sagemaker::executing(&self.client, pipeline, started_before));
        stream::unfold(
            (Some(listing), 0_usize),
            move |(listing, listed)| async move {
                let mut listing = listing?;
                match bounded(deadline, async { Ok(listing.next().await) }).await {
                    Ok(Some(Ok(arn))) => Some((Ok(arn), (Some(listing), listed + 1))),
                    Ok(None) => {
                        info!(
                            trigger = trigger.name(),
                            pipeline,
                            executing = listed,
                            older_than_minutes = plan.options.older_than_minutes,
                            "swept pipeline"
                        );
                        None
                    }
                    Ok(Some(Err(error))) | Err(error) => {
                        warn!(
                            trigger = trigger.name(),
                            pipeline,
                            listed,
                            error_type = error.kind.error_type(),
                            error = error.message.as_str(),
                            "could not list executions"
                        );
                        Some((Err(error), (None, listed)))
                    }
                }
            },
        )
    }

    /// Stops one target (or, in a dry run, looks at it), then reports and, with
    /// `Force`, fails the steps that hold the stop.
    async fn act_on(
        &self,
        plan: &Plan,
        target: &Target,
        found: Found,
        deadline: Option<Instant>,
    ) -> ExecutionResult {
        let client = &self.client;
        let arn = target.arn.as_str();
        if plan.options.dry_run {
            let status = match found {
                Found::Executing => Ok("Executing".to_owned()),
                Found::Named => bounded(deadline, sagemaker::describe_status(client, arn)).await,
            };
            let mut result = match status {
                Ok(status) if sagemaker::is_finished(&status) => {
                    ExecutionResult::new(arn, Outcome::AlreadyFinished { status })
                }
                Ok(status) => {
                    let mut result = ExecutionResult::new(arn, Outcome::WouldStop);
                    result.status = Some(status);
                    result
                }
                Err(error) => ExecutionResult::new(arn, Outcome::Failed(error)),
            };
            if result.outcome == Outcome::WouldStop {
                result.blocking_steps = self
                    .holding_steps(arn, deadline)
                    .await
                    .into_iter()
                    .map(|held| {
                        let mut step = held.step;
                        if plan.options.force {
                            step.force = Some(match step.kind {
                                StepKind::Callback { .. } => Force::WouldSend,
                                StepKind::Lambda { .. } => Force::NotPossible,
                            });
                        }
                        step
                    })
                    .collect();
            }
            return result;
        }

        let outcome = bounded(deadline, async {
            Ok(sagemaker::stop(client, arn, &target.token).await)
        })
        .await
        .unwrap_or_else(Outcome::Failed);
        let mut result = ExecutionResult::new(arn, outcome);
        if result.outcome != Outcome::StopRequested {
            return result;
        }
        for held in self.holding_steps(arn, deadline).await {
            let mut step = held.step;
            if plan.options.force {
                step.force = Some(match (&step.kind, held.callback_token) {
                    (StepKind::Lambda { .. }, _) => Force::NotPossible,
                    (StepKind::Callback { .. }, None) => Force::Failed(StopError::new(
                        ErrorKind::Upstream,
                        format!(
                            "SageMaker listed callback step {} without a callback token",
                            step.name
                        ),
                    )),
                    (StepKind::Callback { .. }, Some(callback_token)) => {
                        let token = plan.force_token(arn, &callback_token);
                        let reason = plan.failure_reason();
                        let call = sagemaker::fail_callback_step(
                            client,
                            &callback_token,
                            &reason,
                            &token,
                            &step.name,
                        );
                        match bounded(deadline, call).await {
                            Ok(()) => Force::Sent,
                            Err(e) if e.kind == ErrorKind::Conflict => Force::StepAlreadyEnded,
                            Err(e) => Force::Failed(e),
                        }
                    }
                });
            }
            result.blocking_steps.push(step);
        }
        result
    }

    /// The steps holding a stop. A listing that fails is logged and reported as
    /// none: the stop itself has been accepted either way.
    async fn holding_steps(
        &self,
        arn: &str,
        deadline: Option<Instant>,
    ) -> Vec<sagemaker::HoldingStep> {
        self.listed_holding_steps(arn, deadline)
            .await
            .unwrap_or_default()
    }

    /// The steps holding a stop, or `None` (logged) when they could not be listed.
    async fn listed_holding_steps(
        &self,
        arn: &str,
        deadline: Option<Instant>,
    ) -> Option<Vec<sagemaker::HoldingStep>> {
        match bounded(deadline, sagemaker::blocking_steps(&self.client, arn)).await {
            Ok(steps) => Some(steps),
            Err(error) => {
                warn!(
                    arn,
                    error_type = error.kind.error_type(),
                    error = error.message.as_str(),
                    "could not list the execution's steps"
                );
                None
            }
        }
    }

    /// Polls the executions whose stop was accepted until each has ended or
    /// `budget` runs out, with backoff; the ones still `Stopping` then get a
    /// fresh list of the steps that hold them.
    async fn wait_for_end(
        &self,
        trigger: Trigger,
        results: &mut [ExecutionResult],
        budget: Duration,
        deadline: Option<Instant>,
    ) {
        let until = Instant::now() + budget;
        let mut pending: Vec<usize> = (0..results.len())
            .filter(|&i| results[i].outcome == Outcome::StopRequested)
            .collect();
        let mut delay = FIRST_POLL;
        // The last pause is cut to end at `until`, so the wait asked for is
        // waited out: the final poll comes at the end of the budget, not up
        // to half of it earlier.
        while !pending.is_empty() && Instant::now() < until {
            tokio::time::sleep(delay.min(until - Instant::now())).await;
            delay = (delay * 2).min(MAX_POLL);
            let client = &self.client;
            // Ordered, as the stops were, for the same backpressure.
            let polled: Vec<(usize, Option<String>)> = stream::iter(pending.iter().copied())
                .map(|i| {
                    let arn = results[i].arn.clone();
                    async move {
                        let status = bounded(deadline, sagemaker::describe_status(client, &arn));
                        (i, status.await.ok())
                    }
                })
                .buffered(self.config.max_concurrency)
                .collect()
                .await;
            pending.clear();
            for (i, status) in polled {
                let ended = status.as_deref().is_some_and(sagemaker::is_finished);
                if status.is_some() {
                    results[i].status = status;
                }
                if !ended {
                    pending.push(i);
                }
            }
        }
        // The executions still stopping get their blocking steps listed again,
        // as many at once as the stops were.
        let refreshed: Vec<(usize, Option<Vec<sagemaker::HoldingStep>>)> =
            stream::iter(pending.iter().copied())
                .map(|i| {
                    let arn = results[i].arn.clone();
                    async move { (i, self.listed_holding_steps(&arn, deadline).await) }
                })
                .buffered(self.config.max_concurrency)
                .collect()
                .await;
        for (i, fresh) in refreshed {
            results[i]
                .status
                .get_or_insert_with(|| "Stopping".to_owned());
            // A listing that failed keeps the steps seen after the stop.
            let Some(fresh) = fresh else { continue };
            let before = std::mem::take(&mut results[i].blocking_steps);
            results[i].blocking_steps = fresh
                .into_iter()
                .map(|held| {
                    let mut step = held.step;
                    // Keep what Force did to a step that still holds the stop.
                    step.force = before
                        .iter()
                        .find(|b| b.name == step.name)
                        .and_then(|b| b.force.clone());
                    step
                })
                .collect();
        }
        for result in results.iter().filter(|r| r.status.is_some()) {
            info!(
                trigger = trigger.name(),
                arn = result.arn.as_str(),
                status = result.status.as_deref(),
                blocking_steps = step_labels(&result.blocking_steps),
                "waited"
            );
        }
    }
}

/// How a target was found: named by the caller (status unknown) or listed as
/// `Executing` by a sweep.
#[derive(Debug, Clone, Copy)]
enum Found {
    Named,
    Executing,
}

/// One item of an event's work: a target to act on, or a pipeline whose
/// listing failed (reported in order with the targets).
enum Work {
    Act(Target, Found),
    ListingFailed(PipelineFailure),
}

/// Time kept, within the deadline, for the calls that end a `Wait` (the last
/// poll and the fresh listing of the steps that still hold the stop).
const FINAL_CALLS: Duration = Duration::from_secs(1);

/// The first pause before polling a stopped execution, doubling up to
/// [`MAX_POLL`]: most stops without blocking steps end within seconds.
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(5);

/// Time left before `deadline`; `None` when there is no deadline.
fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|at| at.saturating_duration_since(Instant::now()))
}

/// One structured line per target: trigger, ARN, token, outcome, latency,
/// and the steps holding the stop. The token is an idempotency key, not a secret.
fn log_outcome(
    trigger: Trigger,
    caller: Option<&str>,
    token: &str,
    result: &ExecutionResult,
    elapsed: Duration,
) {
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let arn = result.arn.as_str();
    let outcome = result.outcome.name();
    let blocking_steps = step_labels(&result.blocking_steps);
    match (&result.outcome, result.error()) {
        (_, Some(e)) => warn!(
            trigger = trigger.name(),
            caller,
            arn,
            token,
            outcome,
            error_type = e.kind.error_type(),
            error = e.message.as_str(),
            blocking_steps,
            latency_ms,
            "stop"
        ),
        (Outcome::AlreadyFinished { status }, None) => info!(
            trigger = trigger.name(),
            caller,
            arn,
            token,
            outcome,
            status = status.as_str(),
            latency_ms,
            "stop"
        ),
        _ => info!(
            trigger = trigger.name(),
            caller, arn, token, outcome, blocking_steps, latency_ms, "stop"
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

/// The invocation's deadline, brought forward to the front end's: API Gateway
/// answers 503 itself once its integration timeout has passed, so calls and
/// `Wait` must end, and the reply be sent, before then.
fn front_end_deadline(
    deadline: Option<Instant>,
    reply_by_epoch_ms: Option<u64>,
) -> Option<Instant> {
    let Some(reply_by) = reply_by_epoch_ms else {
        return deadline;
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = Duration::from_millis(reply_by.saturating_sub(now_ms)).saturating_sub(REPLY_MARGIN);
    let front_end = Instant::now() + left;
    Some(deadline.map_or(front_end, |d| d.min(front_end)))
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
pub fn shape(trigger: Trigger, response: Response) -> Result<Reply, Diagnostic> {
    if let Some(flavor) = trigger.http() {
        let (status, body) = match response {
            Response::Ignored(reason) => (200, Reply::Json(reply::ignored_body(&reason))),
            Response::Done(report) => report.http(),
            Response::Refused(e) => (e.kind.http_status(), Reply::Json(reply::error_body(&e))),
        };
        return Ok(reply::http_response(flavor, status, &body));
    }
    match response {
        Response::Ignored(reason) => Ok(Reply::Json(reply::ignored_body(&reason))),
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
