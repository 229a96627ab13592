//! The engine: acts on one plan's targets (the named executions, then the
//! ones the sweeps find) at most `max_concurrency` at a time, then, with
//! `Wait`, polls them until they end. It makes the calls through
//! [`sagemaker`] and asks [`stopper_core::decide`] what each answer means;
//! what it keeps is the mechanics: order, concurrency, deadlines, and not
//! acting twice on an execution both named and found. It tells a
//! [`Progress`] observer, when it has one, what it found and did; it never
//! asks it anything.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use aws_sdk_sagemaker::Client;
use futures_util::future;
use futures_util::stream::{self, StreamExt};
use stopper_core::decide::{self, AfterConflict, AfterStop, ForceStep, Look};
use stopper_core::limit::GuardedRun;
use stopper_core::plan::{Plan, Target};
use stopper_core::report::{
    step_labels, ExecutionReport, Outcome, PipelineFailure, Report, StepReport,
};
use stopper_core::status::ExecutionStatus;
use stopper_core::steps::BlockingStep;
use stopper_core::trigger::Trigger;
use stopper_core::{ErrorKind, StopError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::sagemaker;

mod guard;

/// Time kept, within the deadline, for the calls that end a `Wait` (the last
/// poll and the fresh listing of the steps that still hold the stop).
const FINAL_CALLS: Duration = Duration::from_secs(1);

/// The first pause before polling a stopped execution, doubling up to
/// [`MAX_POLL`]: most stops without blocking steps end within seconds.
const FIRST_POLL: Duration = Duration::from_millis(250);
const MAX_POLL: Duration = Duration::from_secs(5);

/// One event's calls: where they go, how many at once, and by when.
pub struct Engine<'a> {
    pub client: &'a Client,
    pub max_concurrency: usize,
    /// For the log lines.
    pub trigger: Trigger,
    /// When every call must be done by; `None`: the SDK's timeouts bound them.
    pub deadline: Option<Instant>,
    /// Told what the engine finds and does (the CLI's progress display);
    /// `None` for the function. Only told: nothing the engine does depends on it.
    pub progress: Option<&'a dyn Progress>,
}

/// An observer of one event's work, for a display of its progress. The engine
/// calls it as things happen and never reads anything back; every method does
/// nothing unless implemented.
pub trait Progress: Debug + Send + Sync {
    /// `targets` more targets to act on: the named ones when the work starts
    /// (possibly none), then each one a sweep or the guard finds.
    fn found(&self, targets: usize) {
        let _ = targets;
    }
    /// Every target has been found: the sweeps' listings, or the guard's
    /// discovery, are over (some may have failed).
    fn found_all(&self) {}
    /// A target has been acted on (in whatever order they complete).
    fn done(&self, execution: &ExecutionReport) {
        let _ = execution;
    }
    /// During a `Wait`, at its start and after each poll: the executions still
    /// stopping (each with its last status and the blocking steps listed after
    /// its stop), and how long the wait may still last. Empty once all have
    /// ended.
    fn waiting(&self, stopping: &[&ExecutionReport], left: Duration) {
        let _ = (stopping, left);
    }
}

/// One item of an event's work: a target to act on, with how it is looked at
/// before its stop (`None`: a sweep's listing has just said `Executing`) and
/// the limit it ran past when the guard found it; or a pipeline whose listing
/// failed (reported in order with the targets).
enum Work {
    Act(Target, Option<Look>, Option<GuardedRun>),
    ListingFailed(PipelineFailure),
}

impl Engine<'_> {
    /// Acts on every target of `plan` and reports on each. One failure never
    /// hides another's result.
    pub async fn run(&self, plan: &Plan) -> Report {
        let mut report = Report {
            single: plan.is_single(),
            dry_run: plan.options.dry_run,
            pipelines_swept: plan.pipelines().to_vec(),
            ..Report::default()
        };
        self.tell(|p| p.found(plan.executions().len()));
        // The sweeps list a page ahead of the stops, into a channel of one
        // page, so that a slot never waits on the next page's round trip.
        let (found_tx, mut found_rx) = mpsc::channel(sagemaker::LIST_PAGE_SIZE);
        let finding = async {
            let guard = match plan.guard() {
                Some(policy) => Some(self.guard(plan, policy, found_tx).await),
                None => {
                    self.sweep(plan, found_tx).await;
                    None
                }
            };
            self.tell(|p| p.found_all());
            guard
        };
        let acting = async {
            let named = plan
                .executions()
                .iter()
                .map(|target| Work::Act(target.clone(), Some(Look::Named), None));
            let swept = stream::poll_fn(move |cx| found_rx.poll_recv(cx));
            // `buffered`, not `buffer_unordered`, on purpose: a target whose
            // call is in backoff (throttled) holds back new starts until it
            // completes, since its finished followers still count against the
            // limit. That backpressure keeps a sweep at SageMaker's rate limit
            // instead of spending every retry (measured in docs/performance.md,
            // "Decisions").
            let mut done = stream::iter(named)
                .chain(swept)
                .map(|work| self.work(plan, work))
                .buffered(self.max_concurrency);
            while let Some(entry) = done.next().await {
                match entry {
                    Ok(execution) => report.executions.push(execution),
                    Err(failure) => report.pipeline_failures.push(failure),
                }
            }
        };
        let (guard, ()) = future::join(finding, acting).await;
        report.guard = guard.map(Box::new);
        report.settle_stuck();
        if let Some(guard) = &report.guard {
            guard::log_guard(self.trigger, guard, &report.executions);
        }
        // The wait ends early enough for its last poll and the fresh step
        // listing to be answered before the deadline.
        let room = self.deadline.map(|at| {
            at.saturating_duration_since(Instant::now())
                .saturating_sub(FINAL_CALLS)
        });
        if let Some(budget) = plan.options.wait_budget(room) {
            self.wait_for_end(&mut report.executions, budget).await;
        }
        report
    }

    /// Lists each swept pipeline's executions and sends on those a sweep
    /// stops, except any already named or found; a listing that fails, or
    /// outlasts the deadline, is sent on as a failure.
    async fn sweep(&self, plan: &Plan, found: mpsc::Sender<Work>) {
        let started_before = plan
            .options
            .older_than_minutes
            .map(|minutes| SystemTime::now() - Duration::from_secs(minutes * 60));
        let mut seen: HashSet<String> = plan.executions().iter().map(|t| t.arn.clone()).collect();
        for pipeline in plan.pipelines() {
            let mut listing = pin!(sagemaker::list_executions(
                self.client,
                pipeline,
                started_before
            ));
            let mut swept = 0_usize;
            loop {
                let next = self.bounded(async { Ok(listing.next().await) }).await;
                let work = match next {
                    Ok(Some(Ok(listed))) => {
                        if !decide::is_swept(&listed, started_before) {
                            continue;
                        }
                        swept += 1;
                        if !seen.insert(listed.arn.clone()) {
                            continue;
                        }
                        self.tell(|p| p.found(1));
                        Work::Act(plan.swept_target(listed.arn), None, None)
                    }
                    Ok(None) => {
                        info!(
                            trigger = self.trigger.name(),
                            pipeline,
                            executing = swept,
                            older_than_minutes = plan.options.older_than_minutes,
                            "swept pipeline"
                        );
                        break;
                    }
                    Ok(Some(Err(error))) | Err(error) => {
                        warn!(
                            trigger = self.trigger.name(),
                            pipeline,
                            listed = swept,
                            error_type = error.kind.error_type(),
                            error = error.message.as_str(),
                            "could not list executions"
                        );
                        let failure = PipelineFailure {
                            pipeline: pipeline.clone(),
                            error,
                        };
                        // The listing ends here; the next pipeline's starts.
                        if found.send(Work::ListingFailed(failure)).await.is_err() {
                            return;
                        }
                        break;
                    }
                };
                if found.send(work).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Does one item of work, logging what happened to a target.
    async fn work(&self, plan: &Plan, work: Work) -> Result<ExecutionReport, PipelineFailure> {
        match work {
            Work::Act(target, look, guard) => {
                let started = Instant::now();
                let mut execution = self.act(plan, &target, look).await;
                execution.guard = guard;
                execution.token.clone_from(&target.token);
                log_stop(
                    self.trigger,
                    plan.caller.as_deref(),
                    &target.token,
                    &execution,
                    started.elapsed(),
                );
                self.tell(|p| p.done(&execution));
                Ok(execution)
            }
            Work::ListingFailed(failure) => Err(failure),
        }
    }

    /// Stops one target (in a dry run, looks at it), then lists the steps
    /// that hold the stop and, with `Force`, fails the ones that can be.
    async fn act(&self, plan: &Plan, target: &Target, look: Option<Look>) -> ExecutionReport {
        let arn = target.arn.as_str();
        let mut execution = if plan.options.dry_run {
            let status = match look {
                None => Ok(ExecutionStatus::Executing),
                Some(_) => self.describe_status(arn).await,
            };
            decide::dry_run_report(arn, status)
        } else {
            // One deadline for the stops and the status look-ups a refusal
            // needs: running out of time is then `UpstreamUnavailable`
            // (retry), never a refusal that was not understood.
            let outcome = self
                .bounded(async {
                    // An execution not known to be `Executing` is looked at
                    // first: one already stopping (a redelivered event, an
                    // alarm and a schedule for the same runaway) or ended is
                    // reported as such, not stopped again, counted and
                    // notified. A sweep's listing has just said `Executing`.
                    if let Some(look) = look {
                        let status = sagemaker::describe_status(self.client, arn).await;
                        if let Some(outcome) = decide::before_stop(arn, status, look) {
                            return Ok(outcome);
                        }
                    }
                    self.stop(arn, &target.token).await
                })
                .await
                .unwrap_or_else(Outcome::Failed);
            ExecutionReport::new(arn, outcome)
        };
        if !decide::lists_blocking_steps(&execution.outcome) {
            return execution;
        }
        // A listing that fails is logged and reported as no steps: the stop
        // itself has been accepted either way.
        for step in self.blocking_steps(arn).await.unwrap_or_default() {
            let force = match decide::force_step(&step, &plan.options) {
                ForceStep::Leave => None,
                ForceStep::Report(force) => Some(force),
                ForceStep::Send(callback_token) => {
                    // `force_step` never sends in a dry run; a second guard
                    // costs nothing where a mistake would change state.
                    assert!(!plan.options.dry_run, "a dry run must send nothing");
                    let token = plan.force_token(arn, callback_token.expose());
                    let reason = plan.failure_reason();
                    let sent = sagemaker::fail_callback_step(
                        self.client,
                        callback_token,
                        &reason,
                        &token,
                        &step.name,
                    );
                    Some(decide::after_send(self.bounded(sent).await))
                }
            };
            execution.blocking_steps.push(StepReport::new(&step, force));
        }
        execution
    }

    /// Stops one execution; a stop refused for the execution's state is
    /// looked into, and sent again (same token) while it is still
    /// `Executing`, a few times, a short pause apart.
    async fn stop(&self, arn: &str, token: &str) -> Result<Outcome, StopError> {
        let mut retries_left = decide::CONFLICT_RETRIES;
        loop {
            let stopped = sagemaker::stop(self.client, arn, token).await;
            let conflict = match decide::after_stop(stopped) {
                AfterStop::Outcome(outcome) => return Ok(outcome),
                AfterStop::LookUpStatus(conflict) => conflict,
            };
            let status = sagemaker::describe_status(self.client, arn).await;
            match decide::after_conflict(arn, conflict, status, retries_left > 0) {
                AfterConflict::Outcome(outcome) => return Ok(outcome),
                AfterConflict::Retry => {
                    info!(
                        arn,
                        retries_left, "stop refused while Executing; sending it again"
                    );
                    tokio::time::sleep(decide::CONFLICT_PAUSE).await;
                    retries_left -= 1;
                }
            }
        }
    }

    /// Polls the executions whose stop was accepted until each has ended or
    /// `budget` runs out, with backoff; the ones still stopping then get a
    /// fresh list of the steps that hold them.
    async fn wait_for_end(&self, executions: &mut [ExecutionReport], budget: Duration) {
        let until = Instant::now() + budget;
        let mut pending: Vec<usize> = (0..executions.len())
            .filter(|&i| decide::awaits_end(&executions[i].outcome))
            .collect();
        let mut pause = FIRST_POLL;
        self.tell_waiting(executions, &pending, until);
        // The last pause is cut to end at `until`, so the wait asked for is
        // waited out: the final poll comes at the end of the budget, not up
        // to half of it earlier.
        while !pending.is_empty() && Instant::now() < until {
            tokio::time::sleep(pause.min(until - Instant::now())).await;
            pause = (pause * 2).min(MAX_POLL);
            let arns = pending.iter().map(|&i| executions[i].arn.clone());
            let polled = self
                .call_each(
                    arns,
                    |arn| async move { self.describe_status(&arn).await.ok() },
                )
                .await;
            let mut still_stopping = Vec::new();
            for (i, status) in pending.into_iter().zip(polled) {
                let ended = status.as_ref().is_some_and(ExecutionStatus::is_finished);
                if status.is_some() {
                    executions[i].status = status;
                }
                if !ended {
                    still_stopping.push(i);
                }
            }
            pending = still_stopping;
            self.tell_waiting(executions, &pending, until);
        }
        let arns = pending.iter().map(|&i| executions[i].arn.clone());
        let fresh = self
            .call_each(arns, |arn| async move { self.blocking_steps(&arn).await })
            .await;
        for (&i, fresh) in pending.iter().zip(fresh) {
            decide::after_wait(&mut executions[i], fresh);
        }
        for execution in executions.iter().filter(|e| e.status.is_some()) {
            info!(
                trigger = self.trigger.name(),
                arn = execution.arn.as_str(),
                status = execution.status.as_ref().map(ExecutionStatus::as_str),
                blocking_steps = step_labels(&execution.blocking_steps),
                "waited"
            );
        }
    }

    /// Tells the progress observer, if there is one.
    fn tell(&self, event: impl FnOnce(&dyn Progress)) {
        if let Some(progress) = self.progress {
            event(progress);
        }
    }

    /// Tells the progress observer which executions a `Wait` still waits for.
    fn tell_waiting(&self, executions: &[ExecutionReport], pending: &[usize], until: Instant) {
        self.tell(|p| {
            let stopping: Vec<&ExecutionReport> = pending.iter().map(|&i| &executions[i]).collect();
            p.waiting(&stopping, until.saturating_duration_since(Instant::now()));
        });
    }

    /// `call` on each ARN, as many at once as the stops, results in order
    /// (ordered for the same backpressure as the stops).
    async fn call_each<T, F, Fut>(&self, arns: impl Iterator<Item = String>, call: F) -> Vec<T>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = T>,
    {
        stream::iter(arns)
            .map(call)
            .buffered(self.max_concurrency)
            .collect()
            .await
    }

    async fn describe_status(&self, arn: &str) -> Result<ExecutionStatus, StopError> {
        self.bounded(sagemaker::describe_status(self.client, arn))
            .await
    }

    /// The blocking steps of an execution, or `None` (logged) when they could not be listed.
    async fn blocking_steps(&self, arn: &str) -> Option<Vec<BlockingStep>> {
        match self.bounded(sagemaker::list_steps(self.client, arn)).await {
            Ok(steps) => Some(
                steps
                    .into_iter()
                    .filter_map(decide::blocking_step)
                    .collect(),
            ),
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

    /// Halfway between now and the deadline, if there is one.
    fn half_the_time_left(&self) -> Option<Instant> {
        self.deadline.map(|at| {
            let now = Instant::now();
            now + at.saturating_duration_since(now) / 2
        })
    }

    /// Runs a SageMaker call, giving up at the deadline.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, StopError>>,
    ) -> Result<T, StopError> {
        bounded(self.deadline, call).await
    }
}

/// Runs a SageMaker call, giving up at `deadline` (if there is one).
async fn bounded<T>(
    deadline: Option<Instant>,
    call: impl Future<Output = Result<T, StopError>>,
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

/// One structured line per target: trigger, ARN, token, outcome, latency,
/// and the blocking steps. The token is an idempotency key, not a secret.
fn log_stop(
    trigger: Trigger,
    caller: Option<&str>,
    token: &str,
    execution: &ExecutionReport,
    elapsed: Duration,
) {
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    let arn = execution.arn.as_str();
    let outcome = execution.outcome.name();
    let blocking_steps = step_labels(&execution.blocking_steps);
    match (&execution.outcome, execution.error()) {
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
