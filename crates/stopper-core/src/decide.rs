//! The rules for what SageMaker's answers mean, as pure functions: the engine
//! (`src/engine.rs`) makes the calls and asks these what the results come
//! to. They are the riskiest rules in the product, so they live here, where
//! they are tested table by table without the SDK.

use std::time::SystemTime;

use crate::error::{ErrorKind, StopError};
use crate::options::Options;
use crate::report::{ExecutionReport, Force, Outcome, StepReport};
use crate::status::{ExecutionStatus, ListedExecution};
use crate::steps::{BlockingStep, CallbackToken, ListedStep, StepKind};

/// Whether a sweep stops a listed execution: one that is `Executing` and,
/// with `started_before` (`OlderThanMinutes`), started before it. SageMaker
/// filters the listing by creation time already; the start time is checked
/// too, so an execution without one is never taken for old.
pub fn is_swept(listed: &ListedExecution, started_before: Option<SystemTime>) -> bool {
    listed.status == ExecutionStatus::Executing
        && started_before.is_none_or(|cutoff| listed.started.is_some_and(|t| t < cutoff))
}

/// How a target that is looked at before its stop was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Named by the caller: it asked for this execution to be stopped.
    Named,
    /// Found `Executing` and over its limit by the guard, in an index.
    Indexed,
    /// Found `Stopping` past the grace period by the guard: never stopped,
    /// only looked at (and, with `Force`, its blocking steps failed).
    Stuck,
}

/// What the status looked up before a stop says, if it settles the target
/// without a stop: an ended execution, or one already `Stopping` (another
/// request's stop, or this event's own, delivered before). `None`: send the
/// stop. A named execution is stopped whatever the look said (the caller
/// asked; the stop's answer decides); the guard acts only on a look that
/// confirms what the index said: an over-limit execution still `Executing`.
pub fn before_stop(
    arn: &str,
    status: Result<ExecutionStatus, StopError>,
    look: Look,
) -> Option<Outcome> {
    let left_alone = |status: &dyn std::fmt::Display| {
        Outcome::Failed(StopError::new(
            ErrorKind::Upstream,
            format!(
                "the guard found execution {arn} in the index but it is {status} now: left alone \
                 until a later run finds it again"
            ),
        ))
    };
    match (status, look) {
        (Ok(status), _) if status.is_finished() => Some(Outcome::AlreadyFinished { status }),
        (Ok(ExecutionStatus::Stopping), _) => Some(Outcome::AlreadyStopping),
        (_, Look::Named) | (Ok(ExecutionStatus::Executing), Look::Indexed) => None,
        (Ok(status), _) => Some(left_alone(&status)),
        (Err(error), _) => Some(Outcome::Failed(error)),
    }
}

/// What `StopPipelineExecution`'s answer comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    /// What happened to the execution.
    Outcome(Outcome),
    /// SageMaker refused the stop for the execution's state (a
    /// `ConflictException`, or the `ValidationException` it answers for an
    /// execution that is not `Executing`: `upstream::service_error` reads
    /// both as a conflict): look up the execution's status and ask
    /// [`after_conflict`].
    LookUpStatus(StopError),
}

/// How many times a stop refused while the execution is still `Executing`
/// is sent again (with the same token), and the pause before each: SageMaker
/// answers `ConflictException` while an execution moves between steps, and a
/// moment later the stop goes through. Apache Airflow's SageMaker hook sends
/// the stop at most 5 times, 0.3 s apart, for this (docs/service-behaviour.md);
/// so does this function, within the invocation's deadline.
pub const CONFLICT_RETRIES: u32 = 4;
pub const CONFLICT_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// What a refused stop comes to, given the status looked up after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterConflict {
    Outcome(Outcome),
    /// Still `Executing`: send the stop again after a pause.
    Retry,
}

/// What `StopPipelineExecution`'s answer means for the execution.
pub fn after_stop(answer: Result<(), StopError>) -> AfterStop {
    match answer {
        Ok(()) => AfterStop::Outcome(Outcome::StopRequested),
        Err(e) if e.kind == ErrorKind::Conflict => AfterStop::LookUpStatus(e),
        Err(e) => AfterStop::Outcome(Outcome::Failed(e)),
    }
}

/// What a refused stop of `arn` means, given the status looked up after it
/// and whether a retry is left: an execution that has ended is reported as
/// such, not failed; one already `Stopping` is on its way down (another
/// request's stop, not this one's); one still `Executing` was refused
/// mid-transition and is tried again while retries are left. When the status
/// could not be read, the refusal stands.
pub fn after_conflict(
    arn: &str,
    conflict: StopError,
    status: Result<ExecutionStatus, StopError>,
    retry_left: bool,
) -> AfterConflict {
    AfterConflict::Outcome(match status {
        Ok(status) if status.is_finished() => Outcome::AlreadyFinished { status },
        Ok(ExecutionStatus::Stopping) => Outcome::AlreadyStopping,
        Ok(ExecutionStatus::Executing) if retry_left => return AfterConflict::Retry,
        Ok(status) => Outcome::Failed(StopError::new(
            ErrorKind::Conflict,
            format!("SageMaker refused to stop execution {arn} in status {status}"),
        )),
        Err(_) => Outcome::Failed(conflict),
    })
}

/// A dry run's report of one execution in `status` (what a stop would do).
pub fn dry_run_report(arn: &str, status: Result<ExecutionStatus, StopError>) -> ExecutionReport {
    match status {
        Ok(status) if status.is_finished() => {
            ExecutionReport::new(arn, Outcome::AlreadyFinished { status })
        }
        Ok(ExecutionStatus::Stopping) => ExecutionReport::new(arn, Outcome::AlreadyStopping),
        Ok(status) => ExecutionReport {
            status: Some(status),
            ..ExecutionReport::new(arn, Outcome::WouldStop)
        },
        Err(error) => ExecutionReport::new(arn, Outcome::Failed(error)),
    }
}

/// Whether the execution's blocking steps are listed: only when
/// the stop went (or would go) ahead.
pub fn lists_blocking_steps(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::StopRequested | Outcome::AlreadyStopping | Outcome::WouldStop
    )
}

/// Whether a `Wait` waits for the execution to end: only for an execution
/// on its way down, by this stop or another (an ended execution has nothing
/// to wait for; a failed stop or a dry run changed nothing).
pub fn awaits_end(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::StopRequested | Outcome::AlreadyStopping)
}

/// The step, if it blocks a stop: a running (`Executing` or `Starting`)
/// Callback or Lambda step. Other steps end on their own when the execution
/// stops.
pub fn blocking_step(step: ListedStep) -> Option<BlockingStep> {
    if !matches!(step.status.as_deref(), Some("Executing" | "Starting")) {
        return None;
    }
    let name = step.name.unwrap_or_else(|| "(unnamed)".to_owned());
    if let Some(callback) = step.callback {
        return Some(BlockingStep {
            name,
            kind: StepKind::Callback {
                queue_url: callback.queue_url,
            },
            callback_token: callback.token,
        });
    }
    step.lambda.map(|lambda| BlockingStep {
        name,
        kind: StepKind::Lambda {
            function_arn: lambda.function_arn,
        },
        callback_token: None,
    })
}

/// What `Force` does to one blocking step.
#[derive(Debug, PartialEq, Eq)]
pub enum ForceStep<'a> {
    /// Not asked to force: the step is reported as it is.
    Leave,
    /// Nothing is sent; the step is reported with what `Force` did.
    Report(Force),
    /// Fail the step with `SendPipelineExecutionStepFailure`, answering with
    /// this token; [`after_send`] says what the answer means.
    Send(&'a CallbackToken),
}

/// What `Force` does to `step`. A Lambda step cannot be ended early by
/// anyone: it is reported as such. A Callback step is failed (in a dry run,
/// would be); one listed without its token cannot be.
pub fn force_step<'a>(step: &'a BlockingStep, options: &Options) -> ForceStep<'a> {
    if !options.force {
        return ForceStep::Leave;
    }
    match (&step.kind, &step.callback_token) {
        (StepKind::Lambda { .. }, _) => ForceStep::Report(Force::NotPossible),
        (StepKind::Callback { .. }, _) if options.dry_run => ForceStep::Report(Force::WouldSend),
        (StepKind::Callback { .. }, None) => ForceStep::Report(Force::Failed(StopError::new(
            ErrorKind::Upstream,
            format!(
                "SageMaker listed callback step {} without a callback token",
                step.name
            ),
        ))),
        (StepKind::Callback { .. }, Some(token)) => ForceStep::Send(token),
    }
}

/// What `SendPipelineExecutionStepFailure`'s answer means: a conflict is a
/// step that ended before the failure reached it, so it no longer holds the
/// stop.
pub fn after_send(answer: Result<(), StopError>) -> Force {
    match answer {
        Ok(()) => Force::Sent,
        Err(e) if e.kind == ErrorKind::Conflict => Force::StepAlreadyEnded,
        Err(e) => Force::Failed(e),
    }
}

/// An execution still not ended when a `Wait` ran out: its status is
/// `Stopping` unless a poll saw otherwise, and its blocking steps are the
/// fresh listing (`None`: the listing failed, and the steps seen after the
/// stop stand). A step still blocking the stop keeps what `Force` did to it.
pub fn after_wait(execution: &mut ExecutionReport, fresh: Option<Vec<BlockingStep>>) {
    execution.status.get_or_insert(ExecutionStatus::Stopping);
    let Some(fresh) = fresh else { return };
    let before = std::mem::take(&mut execution.blocking_steps);
    execution.blocking_steps = fresh
        .iter()
        .map(|step| {
            let forced = before
                .iter()
                .find(|b| b.name == step.name)
                .and_then(|b| b.force.clone());
            StepReport::new(step, forced)
        })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use std::time::Duration;

    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a";

    fn conflict() -> StopError {
        StopError::new(ErrorKind::Conflict, "conflict")
    }

    #[test]
    fn a_sweep_takes_only_executing_executions_old_enough_by_their_start_time() {
        let now = SystemTime::now();
        let listed = |status: ExecutionStatus, started: Option<SystemTime>| ListedExecution {
            arn: A.into(),
            status,
            started,
        };
        let hour = Duration::from_secs(3600);
        let cutoff = Some(now - hour);
        for (execution, no_cutoff, with_cutoff) in [
            (listed(ExecutionStatus::Executing, Some(now)), true, false),
            (
                listed(ExecutionStatus::Executing, Some(now - 2 * hour)),
                true,
                true,
            ),
            // Exactly at the cutoff is not older than it.
            (
                listed(ExecutionStatus::Executing, Some(now - hour)),
                true,
                false,
            ),
            (listed(ExecutionStatus::Executing, None), true, false),
            (
                listed(ExecutionStatus::Stopping, Some(now - 2 * hour)),
                false,
                false,
            ),
            (
                listed(ExecutionStatus::Succeeded, Some(now - 2 * hour)),
                false,
                false,
            ),
            (
                listed(ExecutionStatus::unknown(), Some(now - 2 * hour)),
                false,
                false,
            ),
        ] {
            assert_eq!(is_swept(&execution, None), no_cutoff, "{execution:?}");
            assert_eq!(is_swept(&execution, cutoff), with_cutoff, "{execution:?}");
        }
    }

    #[test]
    fn a_stop_is_requested_failed_or_looked_into_by_its_answer() {
        assert_eq!(
            after_stop(Ok(())),
            AfterStop::Outcome(Outcome::StopRequested)
        );
        assert_eq!(
            after_stop(Err(conflict())),
            AfterStop::LookUpStatus(conflict())
        );
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Throttled,
            ErrorKind::Upstream,
            ErrorKind::Unavailable,
            ErrorKind::Forbidden,
            ErrorKind::Configuration,
        ] {
            let e = StopError::new(kind, "e");
            assert_eq!(
                after_stop(Err(e.clone())),
                AfterStop::Outcome(Outcome::Failed(e))
            );
        }
    }

    #[test]
    fn the_look_before_a_stop_settles_ended_and_stopping_executions_and_the_guard_trusts_only_it() {
        use ExecutionStatus::*;
        let denied = || Err(StopError::new(ErrorKind::Forbidden, "denied"));
        for look in [Look::Named, Look::Indexed, Look::Stuck] {
            assert_eq!(
                before_stop(A, Ok(CompletedWithFailures), look),
                Some(Outcome::AlreadyFinished {
                    status: CompletedWithFailures
                })
            );
            assert_eq!(
                before_stop(A, Ok(Stopping), look),
                Some(Outcome::AlreadyStopping)
            );
        }
        // Named: stopped whatever the look said; the stop's answer decides.
        for status in [Ok(Executing), Ok(ExecutionStatus::unknown()), denied()] {
            assert_eq!(before_stop(A, status, Look::Named), None);
        }
        // The guard: an over-limit execution is stopped only when the look
        // confirms it runs; a stuck one is never stopped.
        assert_eq!(before_stop(A, Ok(Executing), Look::Indexed), None);
        for (status, look) in [
            (Ok(ExecutionStatus::unknown()), Look::Indexed),
            (Ok(Executing), Look::Stuck),
            (Ok(Other("Paused".into())), Look::Stuck),
        ] {
            let Some(Outcome::Failed(e)) = before_stop(A, status, look) else {
                panic!("{look:?}: left alone")
            };
            assert!(e.message.contains("left alone"), "{}", e.message);
        }
        for look in [Look::Indexed, Look::Stuck] {
            assert_eq!(
                before_stop(A, denied(), look),
                Some(Outcome::Failed(StopError::new(
                    ErrorKind::Forbidden,
                    "denied"
                )))
            );
        }
    }

    #[test]
    fn a_conflict_means_what_the_status_found_after_it_says() {
        use ExecutionStatus::*;
        for (status, expected) in [
            (Succeeded, Outcome::AlreadyFinished { status: Succeeded }),
            (Failed, Outcome::AlreadyFinished { status: Failed }),
            (Stopped, Outcome::AlreadyFinished { status: Stopped }),
            (
                CompletedWithFailures,
                Outcome::AlreadyFinished {
                    status: CompletedWithFailures,
                },
            ),
            (Stopping, Outcome::AlreadyStopping),
        ] {
            for retry_left in [true, false] {
                assert_eq!(
                    after_conflict(A, conflict(), Ok(status.clone()), retry_left),
                    AfterConflict::Outcome(expected.clone())
                );
            }
        }
        // Refused mid-transition: tried again while retries are left.
        assert_eq!(
            after_conflict(A, conflict(), Ok(Executing), true),
            AfterConflict::Retry
        );
        for (status, retry_left) in [
            (Executing, false),
            (ExecutionStatus::unknown(), true),
            (Other("Paused".into()), true),
        ] {
            let AfterConflict::Outcome(Outcome::Failed(e)) =
                after_conflict(A, conflict(), Ok(status.clone()), retry_left)
            else {
                panic!("{status} must fail")
            };
            assert_eq!(e.kind, ErrorKind::Conflict);
            assert_eq!(
                e.message,
                format!("SageMaker refused to stop execution {A} in status {status}")
            );
        }
        let lookup = StopError::new(ErrorKind::Throttled, "describe throttled");
        assert_eq!(
            after_conflict(A, conflict(), Err(lookup), true),
            AfterConflict::Outcome(Outcome::Failed(conflict()))
        );
    }

    #[test]
    fn a_dry_run_reports_what_a_stop_would_do() {
        let running = dry_run_report(A, Ok(ExecutionStatus::Executing));
        assert_eq!(running.outcome, Outcome::WouldStop);
        assert_eq!(running.status, Some(ExecutionStatus::Executing));
        // As a real run would find it: another stop is under way.
        let stopping = dry_run_report(A, Ok(ExecutionStatus::Stopping));
        assert_eq!(stopping.outcome, Outcome::AlreadyStopping);
        let ended = dry_run_report(A, Ok(ExecutionStatus::Failed));
        assert_eq!(
            ended.outcome,
            Outcome::AlreadyFinished {
                status: ExecutionStatus::Failed
            }
        );
        assert_eq!(ended.status, None);
        let e = StopError::new(ErrorKind::NotFound, "gone");
        assert_eq!(
            dry_run_report(A, Err(e.clone())).outcome,
            Outcome::Failed(e)
        );
    }

    #[test]
    fn only_running_callback_and_lambda_steps_block_a_stop() {
        use crate::steps::{Callback, Lambda};
        let callback = || Callback {
            queue_url: Some("q".into()),
            token: Some(CallbackToken::new("t")),
        };
        let lambda = || Lambda {
            function_arn: Some("f".into()),
        };
        let listed =
            |status: &str, callback: Option<Callback>, lambda: Option<Lambda>| ListedStep {
                name: Some("s".into()),
                status: Some(status.into()),
                callback,
                lambda,
            };
        for status in ["Executing", "Starting"] {
            assert_eq!(
                blocking_step(listed(status, Some(callback()), None)),
                Some(BlockingStep {
                    name: "s".into(),
                    kind: StepKind::Callback {
                        queue_url: Some("q".into())
                    },
                    callback_token: Some(CallbackToken::new("t")),
                })
            );
            assert_eq!(
                blocking_step(listed(status, None, Some(lambda()))),
                Some(BlockingStep {
                    name: "s".into(),
                    kind: StepKind::Lambda {
                        function_arn: Some("f".into())
                    },
                    callback_token: None,
                })
            );
            // A training step, or any other kind: it stops with the execution.
            assert_eq!(blocking_step(listed(status, None, None)), None);
        }
        for status in ["Succeeded", "Failed", "Stopping", "Stopped", "Paused", ""] {
            assert_eq!(blocking_step(listed(status, Some(callback()), None)), None);
            assert_eq!(blocking_step(listed(status, None, Some(lambda()))), None);
        }
        assert_eq!(
            blocking_step(ListedStep {
                status: None,
                ..listed("", Some(callback()), None)
            }),
            None
        );
        // Both metadata (SageMaker never sends both): the callback, which Force can answer.
        let both = blocking_step(listed("Executing", Some(callback()), Some(lambda()))).unwrap();
        assert_eq!(both.kind.name(), "Callback");
        let unnamed = blocking_step(ListedStep {
            name: None,
            ..listed("Executing", None, Some(lambda()))
        })
        .unwrap();
        assert_eq!(unnamed.name, "(unnamed)");
    }

    #[test]
    fn only_an_execution_on_its_way_down_is_waited_for() {
        assert!(awaits_end(&Outcome::StopRequested));
        assert!(awaits_end(&Outcome::AlreadyStopping));
        for outcome in [
            Outcome::WouldStop,
            Outcome::AlreadyFinished {
                status: ExecutionStatus::Stopped,
            },
            Outcome::Failed(conflict()),
        ] {
            assert!(!awaits_end(&outcome), "{outcome:?}");
        }
    }

    #[test]
    fn blocking_steps_are_listed_only_for_stops_that_go_ahead() {
        assert!(lists_blocking_steps(&Outcome::StopRequested));
        assert!(lists_blocking_steps(&Outcome::WouldStop));
        // Another request's stop: Force may still fail what holds it.
        assert!(lists_blocking_steps(&Outcome::AlreadyStopping));
        assert!(!lists_blocking_steps(&Outcome::AlreadyFinished {
            status: ExecutionStatus::Stopped
        }));
        assert!(!lists_blocking_steps(&Outcome::Failed(conflict())));
    }

    fn step(kind: StepKind, token: Option<&str>) -> BlockingStep {
        BlockingStep {
            name: "approve".into(),
            kind,
            callback_token: token.map(CallbackToken::new),
        }
    }

    fn options(force: bool, dry_run: bool) -> Options {
        Options {
            force,
            dry_run,
            ..Options::default()
        }
    }

    #[test]
    fn force_fails_callback_steps_and_reports_lambda_steps_in_real_and_dry_runs() {
        let callback = || StepKind::Callback { queue_url: None };
        let lambda = || StepKind::Lambda { function_arn: None };
        let with_token = step(callback(), Some("Xk3vQ9aL2m"));
        let without_token = step(callback(), None);
        let lambda_step = step(lambda(), None);
        // Not asked to force: nothing is sent, whatever the step.
        for dry_run in [false, true] {
            for s in [&with_token, &without_token, &lambda_step] {
                assert_eq!(force_step(s, &options(false, dry_run)), ForceStep::Leave);
            }
        }
        let real = options(true, false);
        assert_eq!(
            force_step(&with_token, &real),
            ForceStep::Send(&CallbackToken::new("Xk3vQ9aL2m"))
        );
        assert_eq!(
            force_step(&lambda_step, &real),
            ForceStep::Report(Force::NotPossible)
        );
        let ForceStep::Report(Force::Failed(e)) = force_step(&without_token, &real) else {
            panic!("a callback step without a token cannot be forced")
        };
        assert_eq!(e.kind, ErrorKind::Upstream);
        assert!(e.message.contains("approve without a callback token"));
        // A dry run sends nothing, and says what would be sent.
        let dry = options(true, true);
        for s in [&with_token, &without_token] {
            assert_eq!(force_step(s, &dry), ForceStep::Report(Force::WouldSend));
        }
        assert_eq!(
            force_step(&lambda_step, &dry),
            ForceStep::Report(Force::NotPossible)
        );
    }

    #[test]
    fn a_sent_failure_is_sent_already_ended_on_conflict_or_failed() {
        assert_eq!(after_send(Ok(())), Force::Sent);
        assert_eq!(after_send(Err(conflict())), Force::StepAlreadyEnded);
        let e = StopError::new(ErrorKind::Forbidden, "denied");
        assert_eq!(after_send(Err(e.clone())), Force::Failed(e));
    }

    #[test]
    fn after_a_wait_steps_still_blocking_keep_what_force_did_and_a_failed_listing_keeps_the_old() {
        let callback = |name: &str| BlockingStep {
            name: name.into(),
            kind: StepKind::Callback { queue_url: None },
            callback_token: Some(CallbackToken::new("t")),
        };
        let mut execution = ExecutionReport::new(A, Outcome::StopRequested);
        execution.blocking_steps = vec![
            StepReport::new(&callback("approve"), Some(Force::Sent)),
            StepReport::new(&callback("review"), Some(Force::StepAlreadyEnded)),
        ];
        let seen = execution.clone();
        after_wait(&mut execution, None);
        assert_eq!(execution.status, Some(ExecutionStatus::Stopping));
        assert_eq!(execution.blocking_steps, seen.blocking_steps);

        after_wait(
            &mut execution,
            Some(vec![callback("approve"), callback("new")]),
        );
        assert_eq!(
            execution.blocking_steps,
            vec![
                StepReport::new(&callback("approve"), Some(Force::Sent)),
                StepReport::new(&callback("new"), None),
            ]
        );
        // A status a poll saw is kept.
        let mut polled = ExecutionReport::new(A, Outcome::StopRequested);
        polled.status = Some(ExecutionStatus::Other("Paused".into()));
        after_wait(&mut polled, Some(Vec::new()));
        assert_eq!(polled.status, Some(ExecutionStatus::Other("Paused".into())));
        assert!(polled.blocking_steps.is_empty());
    }
}
