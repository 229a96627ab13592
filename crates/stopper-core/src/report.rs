//! What one event came to, as data: an [`Answer`] (ignored, refused, or acted
//! on), and for an event acted on, a [`Report`] with one [`ExecutionReport`]
//! per execution. `reply` turns these into the wire formats; the CLI renders
//! them as text. Nothing here is serialised or sent.

use crate::error::{ErrorKind, StopError};
use crate::guard::GuardSummary;
use crate::limit::GuardedRun;
use crate::status::ExecutionStatus;
use crate::steps::{BlockingStep, StepKind};

/// What happened to one execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SageMaker accepted the stop: the execution is `Stopping`, then `Stopped`.
    StopRequested,
    /// The execution had already ended (its status says how).
    AlreadyFinished {
        status: ExecutionStatus,
    },
    /// The execution was already `Stopping` when this event asked: another
    /// request's stop is under way (an alarm and a schedule for the same
    /// runaway, an HTTP caller pressing twice). Not this event's stop: it is
    /// neither counted nor notified as one.
    AlreadyStopping,
    /// Dry run: the execution is running and would be stopped.
    WouldStop,
    Failed(StopError),
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::StopRequested => "StopRequested",
            Outcome::AlreadyFinished { .. } => "AlreadyFinished",
            Outcome::AlreadyStopping => "AlreadyStopping",
            Outcome::WouldStop => "WouldStop",
            Outcome::Failed(_) => "Failed",
        }
    }
}

/// One execution: what happened to it, and what holds its stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionReport {
    pub arn: String,
    pub outcome: Outcome,
    /// The execution's status as last seen, when it says more than the
    /// outcome: the final status after `Wait` (or `Stopping` if the wait ran
    /// out), the current one in a dry run.
    pub status: Option<ExecutionStatus>,
    /// Running steps that hold the stop (Callback and Lambda steps).
    pub blocking_steps: Vec<StepReport>,
    /// For an execution the guard found over its limit: the limit, its
    /// source and how long the execution had run.
    pub guard: Option<GuardedRun>,
    /// The stop's idempotency token (the same for every delivery of one
    /// event), by which the reason on the execution is written once.
    pub token: String,
}

impl ExecutionReport {
    pub fn new(arn: impl Into<String>, outcome: Outcome) -> ExecutionReport {
        ExecutionReport {
            arn: arn.into(),
            outcome,
            status: None,
            blocking_steps: Vec::new(),
            guard: None,
            token: String::new(),
        }
    }

    /// The status replies show: the one the execution had ended in, else
    /// the last one seen (after `Wait`, or in a dry run).
    pub fn shown_status(&self) -> Option<&ExecutionStatus> {
        static STOPPING: ExecutionStatus = ExecutionStatus::Stopping;
        match &self.outcome {
            Outcome::AlreadyFinished { status } => Some(status),
            Outcome::AlreadyStopping => self.status.as_ref().or(Some(&STOPPING)),
            _ => self.status.as_ref(),
        }
    }

    /// The error that makes this execution count as failed: its own, or a
    /// forced step's (the stop cannot complete as asked).
    pub fn error(&self) -> Option<&StopError> {
        match &self.outcome {
            Outcome::Failed(e) => Some(e),
            _ => self.blocking_steps.iter().find_map(|s| match &s.force {
                Some(Force::Failed(e)) => Some(e),
                _ => None,
            }),
        }
    }
}

/// A blocking step as reported: what it is, and what `Force` did to it. The
/// callback token stays behind in the [`BlockingStep`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub name: String,
    pub kind: StepKind,
    /// What `Force` did to it; `None` when the request did not ask to force.
    pub force: Option<Force>,
}

impl StepReport {
    pub fn new(step: &BlockingStep, force: Option<Force>) -> StepReport {
        StepReport {
            name: step.name.clone(),
            kind: step.kind.clone(),
            force,
        }
    }

    /// `name(Callback)`, for log lines.
    pub fn label(&self) -> String {
        format!("{}({})", self.name, self.kind.name())
    }
}

/// What `Force` did to one blocking step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Force {
    /// `SendPipelineExecutionStepFailure` was accepted.
    Sent,
    /// Dry run: it would be sent.
    WouldSend,
    /// A Lambda step: nothing can end it early.
    NotPossible,
    /// The step ended before the failure reached it: it no longer holds the stop.
    StepAlreadyEnded,
    /// `SendPipelineExecutionStepFailure` failed (or could not be sent).
    Failed(StopError),
}

impl Force {
    pub fn name(&self) -> &'static str {
        match self {
            Force::Sent => "Sent",
            Force::WouldSend => "WouldSend",
            Force::NotPossible => "NotPossible",
            Force::StepAlreadyEnded => "StepAlreadyEnded",
            Force::Failed(_) => "Failed",
        }
    }
}

/// `a(Callback),b(Lambda)`: the blocking steps of one execution, for logs.
pub fn step_labels(steps: &[StepReport]) -> String {
    steps
        .iter()
        .map(StepReport::label)
        .collect::<Vec<_>>()
        .join(",")
}

/// A pipeline whose running executions could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineFailure {
    pub pipeline: String,
    pub error: StopError,
}

/// Everything an event that was acted on did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub executions: Vec<ExecutionReport>,
    pub pipeline_failures: Vec<PipelineFailure>,
    /// Pipelines swept, for the message of a sweep that found nothing running.
    pub pipelines_swept: Vec<String>,
    /// The event named exactly one execution: reply `{"PipelineExecutionArn": ...}`.
    pub single: bool,
    /// Nothing was changed: the outcomes say what would have been.
    pub dry_run: bool,
    /// A guard run: what it examined (boxed: most reports have none).
    pub guard: Option<Box<GuardSummary>>,
}

impl Report {
    /// Keeps in the guard's summary only the executions found stuck
    /// `Stopping` that the look before acting still found so (one that ended
    /// meanwhile is not stuck: it would raise the metric and its alarm).
    pub fn settle_stuck(&mut self) {
        let Some(guard) = self.guard.as_mut() else {
            return;
        };
        let executions = &self.executions;
        guard.stuck_stopping.retain(|stuck| {
            executions
                .iter()
                .any(|e| e.arn == stuck.arn && e.outcome == Outcome::AlreadyStopping)
        });
    }

    /// The message of a sweep that found nothing running (and failed on
    /// nothing): there is no entry to say so.
    pub fn nothing_found(&self) -> Option<String> {
        let found_nothing = self.executions.is_empty() && self.pipeline_failures.is_empty();
        match &self.guard {
            _ if !found_nothing => None,
            Some(guard) if guard.error.is_some() => None,
            Some(_) => Some("no running execution is over its limit; nothing to stop".to_owned()),
            None => Some(format!(
                "no running executions of {}; nothing to stop",
                self.pipelines_swept.join(", ")
            )),
        }
    }

    /// Targets that failed: executions, pipelines whose listing failed, and
    /// a guard run's discovery.
    pub fn failure_count(&self) -> usize {
        self.failures().len()
    }

    fn failures(&self) -> Vec<(&str, &StopError)> {
        let discovery = self
            .guard
            .as_ref()
            .and_then(|g| g.error.as_ref())
            .map(|e| ("guard discovery", e));
        let executions = self
            .executions
            .iter()
            .filter_map(|r| r.error().map(|e| (r.arn.as_str(), e)));
        let pipelines = self
            .pipeline_failures
            .iter()
            .map(|f| (f.pipeline.as_str(), &f.error));
        discovery
            .into_iter()
            .chain(pipelines)
            .chain(executions)
            .collect()
    }

    /// The error that fails the invocation, if any. With several targets and
    /// any failed, `PartialFailure` names each failed one; a retry is safe,
    /// since the tokens are derived again the same.
    pub fn error(&self) -> Option<StopError> {
        let failures = self.failures();
        let discovery_failed = self.guard.as_ref().is_some_and(|g| g.error.is_some());
        let entries =
            self.executions.len() + self.pipeline_failures.len() + usize::from(discovery_failed);
        match failures.as_slice() {
            [] => None,
            [(_, only)] if entries == 1 => Some((*only).clone()),
            _ => {
                let listed: Vec<String> = failures
                    .iter()
                    .map(|(what, e)| format!("{what} ({}: {})", e.kind.error_type(), e.message))
                    .collect();
                Some(StopError::new(
                    ErrorKind::PartialFailure,
                    format!(
                        "{} of {entries} targets failed: {}",
                        failures.len(),
                        listed.join("; ")
                    ),
                ))
            }
        }
    }

    /// The error an HTTP caller is told of: as [`Report::error`], and a
    /// request for one execution that had already ended is a conflict (an
    /// HTTP client asked for a change that could not be made).
    pub fn http_error(&self) -> Option<StopError> {
        match (self.error(), self.executions.as_slice()) {
            (
                None,
                [ExecutionReport {
                    arn,
                    outcome: Outcome::AlreadyFinished { status },
                    ..
                }],
            ) if self.single => Some(StopError::new(
                ErrorKind::Conflict,
                format!("execution {arn} has already finished with status {status}"),
            )),
            (error, _) => error,
        }
    }
}

/// What one event came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Deliberately not acted on (an alarm leaving ALARM, a status change to
    /// an end state), with the reason.
    Ignored(String),
    /// Refused before any SageMaker call: bad input, a target out of scope, a
    /// configuration that cannot reach SageMaker, no time left.
    Refused(StopError),
    /// Acted on: what happened to each target.
    Acted(Report),
}

impl Answer {
    /// The error the caller is told of, if any; `http`: the caller is an
    /// HTTP client (see [`Report::http_error`]).
    pub fn error(&self, http: bool) -> Option<StopError> {
        match self {
            Answer::Ignored(_) => None,
            Answer::Refused(e) => Some(e.clone()),
            Answer::Acted(report) if http => report.http_error(),
            Answer::Acted(report) => report.error(),
        }
    }
}

/// A report of these outcomes, for the tests of the report and its replies.
#[cfg(test)]
pub(crate) fn report(single: bool, outcomes: Vec<(&str, Outcome)>) -> Report {
    Report {
        executions: outcomes
            .into_iter()
            .map(|(arn, outcome)| ExecutionReport::new(arn, outcome))
            .collect(),
        single,
        ..Report::default()
    }
}

/// The ARN of execution `id` of `pipeline`, in the tests' account and region.
#[cfg(test)]
pub(crate) fn execution_arn(pipeline: &str, id: &str) -> String {
    format!("arn:aws:sagemaker:us-east-1:123456789012:pipeline/{pipeline}/execution/{id}")
}

/// A stop the guard requested: over a limit of `minutes` from `source`,
/// after `ran` minutes (and 59 seconds).
#[cfg(test)]
pub(crate) fn guarded(
    arn: String,
    minutes: u64,
    source: crate::limit::LimitSource,
    ran: u64,
) -> ExecutionReport {
    use crate::limit::{Limit, MaxRuntime};
    ExecutionReport {
        guard: Some(GuardedRun {
            limit: Limit {
                max_runtime: MaxRuntime::from_minutes(minutes).unwrap(),
                source,
            },
            runtime: std::time::Duration::from_secs(ran * 60 + 59),
        }),
        ..ExecutionReport::new(arn, Outcome::StopRequested)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_executions_still_stopping_when_looked_at_stay_stuck() {
        use crate::guard::StuckStop;
        let stuck = |arn: &str| StuckStop {
            arn: arn.into(),
            token: "t".into(),
            stopping_for: std::time::Duration::from_secs(3600),
        };
        let (a, b, c) = ("arn:a", "arn:b", "arn:c");
        let mut r = super::report(
            false,
            vec![
                (a, Outcome::AlreadyStopping),
                (
                    b,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::Stopped,
                    },
                ),
            ],
        );
        r.guard = Some(Box::new(GuardSummary {
            stuck_stopping: vec![stuck(a), stuck(b), stuck(c)],
            ..GuardSummary::default()
        }));
        r.settle_stuck();
        assert_eq!(r.guard.as_ref().unwrap().stuck_stopping, [stuck(a)]);
        let mut plain = super::report(false, vec![]);
        plain.settle_stuck();
        assert!(plain.guard.is_none());
    }

    use super::*;

    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a";
    const B: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/b";

    fn failed(kind: ErrorKind) -> Outcome {
        Outcome::Failed(StopError::new(kind, "x"))
    }

    fn callback(force: Option<Force>) -> StepReport {
        StepReport {
            name: "approve".into(),
            kind: StepKind::Callback { queue_url: None },
            force,
        }
    }

    #[test]
    fn one_failed_target_is_its_own_error_and_several_are_a_partial_failure() {
        let one = report(true, vec![(A, failed(ErrorKind::NotFound))]);
        assert_eq!(one.error().unwrap().kind, ErrorKind::NotFound);
        let several = report(
            false,
            vec![
                (A, Outcome::StopRequested),
                (B, failed(ErrorKind::Throttled)),
            ],
        );
        let e = several.error().unwrap();
        assert_eq!(e.kind, ErrorKind::PartialFailure);
        assert!(e.message.starts_with("1 of 2 targets failed: "));
        assert!(e.message.contains(&format!("{B} (ThrottlingException: x)")));
        assert!(!e.message.contains(A));
        // A sweep's one entry that failed is the sweep's error, not a partial one.
        let swept = report(false, vec![(A, failed(ErrorKind::Conflict))]);
        assert_eq!(swept.error().unwrap().kind, ErrorKind::Conflict);
        let ok = report(
            false,
            vec![(A, Outcome::StopRequested), (B, Outcome::WouldStop)],
        );
        assert_eq!(ok.error(), None);
    }

    #[test]
    fn a_failed_listing_counts_as_a_failed_target() {
        let mut r = report(false, vec![(A, Outcome::StopRequested)]);
        r.pipeline_failures.push(PipelineFailure {
            pipeline: "p".into(),
            error: StopError::new(ErrorKind::Forbidden, "denied"),
        });
        let e = r.error().unwrap();
        assert_eq!(e.kind, ErrorKind::PartialFailure);
        assert!(e.message.starts_with("1 of 2") && e.message.contains("p (AccessDenied"));
    }

    #[test]
    fn a_failed_force_fails_its_execution_but_other_force_results_do_not() {
        let mut r = report(true, vec![(A, Outcome::StopRequested)]);
        for force in [
            Force::Sent,
            Force::WouldSend,
            Force::NotPossible,
            Force::StepAlreadyEnded,
        ] {
            r.executions[0].blocking_steps = vec![callback(Some(force))];
            assert_eq!(r.error(), None);
        }
        r.executions[0].blocking_steps = vec![
            callback(Some(Force::Sent)),
            callback(Some(Force::Failed(StopError::new(
                ErrorKind::Throttled,
                "t",
            )))),
        ];
        assert_eq!(r.error().unwrap().kind, ErrorKind::Throttled);
    }

    #[test]
    fn only_one_named_execution_already_finished_is_an_http_conflict() {
        let finished = Outcome::AlreadyFinished {
            status: ExecutionStatus::Succeeded,
        };
        let single = report(true, vec![(A, finished.clone())]);
        assert_eq!(single.error(), None);
        let e = single.http_error().unwrap();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert!(e.message.contains(A) && e.message.ends_with("status Succeeded"));
        // In a sweep, or among several, an ended execution is no error.
        let swept = report(false, vec![(A, finished.clone())]);
        assert_eq!(swept.http_error(), None);
        let answer = Answer::Acted(single);
        assert_eq!(answer.error(false), None);
        assert_eq!(answer.error(true).unwrap().kind, ErrorKind::Conflict);
        assert_eq!(Answer::Ignored("why".into()).error(true), None);
        let refused = StopError::validation("bad");
        assert_eq!(Answer::Refused(refused.clone()).error(false), Some(refused));
    }

    #[test]
    fn step_labels_name_each_step_and_its_kind() {
        let lambda = StepReport {
            name: "score".into(),
            kind: StepKind::Lambda { function_arn: None },
            force: None,
        };
        assert_eq!(
            step_labels(&[callback(None), lambda]),
            "approve(Callback),score(Lambda)"
        );
        assert_eq!(step_labels(&[]), "");
    }
}
