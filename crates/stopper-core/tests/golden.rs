//! The replies, EMF records and stop notices (JSON and chat) are public contracts: this test
//! pins their exact bytes. For every sample payload in `events/`, prepared as
//! the function prepares it, it shapes the event's own answer and a fixed set
//! of answers covering every reply shape (ignored; refused; acted with every
//! outcome, blocking steps and what `Force` did, `Wait`'s results, a guard
//! run's summary) and compares them byte for byte with
//! `tests/golden/<event>.txt`.
//!
//! A change to a reply is a change to the contract: regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p stopper-core --test golden` and review the diff.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use stopper_core::arn::Scope;
use stopper_core::chat::chat_notice;
use stopper_core::config::{Config, DEFAULT_NAMESPACE};
use stopper_core::guard::{GuardSummary, InvalidTag, SkippedPipeline, StuckStop};
use stopper_core::limit::{GuardedRun, Limit, LimitSource, MaxRuntime};
use stopper_core::metrics::{Record, Tally};
use stopper_core::notification::{notices, Context};
use stopper_core::plan::{prepare, Next, Plan};
use stopper_core::reply::shape;
use stopper_core::report::{
    Answer, ExecutionReport, Force, Outcome, PipelineFailure, Report, StepReport,
};
use stopper_core::status::ExecutionStatus;
use stopper_core::steps::StepKind;
use stopper_core::{ErrorKind, StopError};

const A: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";
const B: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/p3m8zq0d5c1r";
const C: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/backfill/execution/x1";
const REQUEST_ID: &str = "5f1c2a6e-golden";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn failed(kind: ErrorKind, message: &str) -> Outcome {
    Outcome::Failed(StopError::new(kind, message))
}

fn execution(arn: &str, outcome: Outcome) -> ExecutionReport {
    ExecutionReport::new(arn, outcome)
}

fn acted(single: bool, executions: Vec<ExecutionReport>) -> Answer {
    Answer::Acted(Report {
        executions,
        single,
        ..Report::default()
    })
}

fn callback(queue: bool, force: Option<Force>) -> StepReport {
    StepReport {
        name: "approve".into(),
        kind: StepKind::Callback {
            queue_url: queue.then(|| "https://sqs.us-east-1.amazonaws.com/123456789012/q".into()),
        },
        force,
    }
}

fn lambda(function: bool, force: Option<Force>) -> StepReport {
    StepReport {
        name: "score".into(),
        kind: StepKind::Lambda {
            function_arn: function
                .then(|| "arn:aws:lambda:us-east-1:123456789012:function:score".into()),
        },
        force,
    }
}

fn run(minutes: u64, source: LimitSource, ran_seconds: u64) -> GuardedRun {
    GuardedRun {
        limit: Limit {
            max_runtime: MaxRuntime::from_minutes(minutes).unwrap(),
            source,
        },
        runtime: Duration::from_secs(ran_seconds),
    }
}

fn summary() -> GuardSummary {
    GuardSummary {
        tag_key: "pipeline-stopper:max-runtime".into(),
        default: MaxRuntime::from_minutes(90),
        pipelines_examined: 6,
        pipelines_guarded: 3,
        pipelines_exempt: 1,
        skipped: vec![SkippedPipeline {
            pipeline: "unread".into(),
            reason: "its tags could not be read: AccessDenied".into(),
        }],
        not_allowed: vec![
            SkippedPipeline {
                pipeline: "secret-pipeline".into(),
                reason: "not in ALLOWED_PIPELINES".into(),
            },
            SkippedPipeline {
                pipeline: "other-secret".into(),
                reason: "not in ALLOWED_PIPELINES".into(),
            },
        ],
        invalid_tags: vec![InvalidTag {
            pipeline: "broken".into(),
            value: "4 \"hours\"\u{1b}".into(),
            reason: "not a duration".into(),
        }],
        executions_examined: 9,
        over_limit: 3,
        within_limit: vec![
            (C.into(), run(1440, LimitSource::Tag, 125)),
            (B.into(), run(90, LimitSource::Default, 0)),
        ],
        stuck_stopping: vec![StuckStop {
            arn: "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stuck/execution/s1".into(),
            token: "guard-token".into(),
            stopping_for: Duration::from_secs(20 * 60 + 59),
        }],
        error: None,
    }
}

/// Every reply shape, by name.
fn fixed_answers() -> Vec<(&'static str, Answer)> {
    let stopped_after_wait = ExecutionReport {
        status: Some(ExecutionStatus::Stopped),
        ..execution(A, Outcome::StopRequested)
    };
    let wait_ran_out = ExecutionReport {
        status: Some(ExecutionStatus::Stopping),
        blocking_steps: vec![callback(true, None), lambda(true, None)],
        ..execution(B, Outcome::StopRequested)
    };
    let forced = ExecutionReport {
        status: Some(ExecutionStatus::Stopping),
        blocking_steps: vec![
            callback(true, Some(Force::Sent)),
            lambda(true, Some(Force::NotPossible)),
            callback(false, Some(Force::StepAlreadyEnded)),
            lambda(false, None),
            callback(false, None),
        ],
        ..execution(A, Outcome::StopRequested)
    };
    let force_failed = ExecutionReport {
        blocking_steps: vec![callback(
            true,
            Some(Force::Failed(StopError::new(
                ErrorKind::Throttled,
                "SageMaker kept throttling",
            ))),
        )],
        ..execution(B, Outcome::StopRequested)
    };
    let dry = ExecutionReport {
        status: Some(ExecutionStatus::Executing),
        blocking_steps: vec![
            callback(true, Some(Force::WouldSend)),
            lambda(true, Some(Force::NotPossible)),
        ],
        ..execution(A, Outcome::WouldStop)
    };
    let guarded = |arn: &str, outcome, run| ExecutionReport {
        guard: Some(run),
        ..execution(arn, outcome)
    };
    let guard_report = Report {
        executions: vec![
            guarded(
                A,
                Outcome::StopRequested,
                run(240, LimitSource::Tag, 247 * 60 + 59),
            ),
            guarded(
                B,
                failed(ErrorKind::Throttled, "t"),
                run(90, LimitSource::Default, 91 * 60),
            ),
            guarded(
                C,
                Outcome::AlreadyFinished {
                    status: ExecutionStatus::Succeeded,
                },
                run(2880, LimitSource::Tag, 2881 * 60),
            ),
            ExecutionReport {
                status: None,
                ..execution(
                    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/stuck/execution/s1",
                    Outcome::AlreadyStopping,
                )
            },
        ],
        guard: Some(Box::new(summary())),
        ..Report::default()
    };
    let guard_dry = Report {
        executions: vec![guarded(
            A,
            Outcome::WouldStop,
            run(60, LimitSource::Tag, 61 * 60),
        )],
        dry_run: true,
        guard: Some(Box::new(summary())),
        ..Report::default()
    };
    let guard_nothing = Report {
        guard: Some(Box::new(GuardSummary {
            tag_key: "team:max-runtime".into(),
            default: None,
            ..GuardSummary::default()
        })),
        ..Report::default()
    };
    let guard_failed = Report {
        guard: Some(Box::new(GuardSummary {
            error: Some(StopError::new(ErrorKind::Forbidden, "Search was denied")),
            ..summary()
        })),
        ..Report::default()
    };
    let guard_failed_dry = Report {
        dry_run: true,
        ..guard_failed.clone()
    };
    let listing_failed = PipelineFailure {
        pipeline: "nightly-training".into(),
        error: StopError::new(ErrorKind::NotFound, "no pipeline nightly-training"),
    };
    vec![
        (
            "ignored",
            Answer::Ignored("alarm \"a\" is in state OK, not ALARM; nothing to stop".into()),
        ),
        (
            "refused-validation",
            Answer::Refused(StopError::validation(
                "unknown field `Pipeline\u{1b}[31m`, expected one of `PipelineExecutionArn`",
            )),
        ),
        (
            "refused-forbidden",
            Answer::Refused(StopError::forbidden(
                "pipeline \"p\" is not in ALLOWED_PIPELINES (q)",
            )),
        ),
        (
            "refused-method-not-allowed",
            Answer::Refused(StopError::new(
                ErrorKind::MethodNotAllowed,
                "GET is not allowed: POST",
            )),
        ),
        (
            "refused-configuration",
            Answer::Refused(StopError::new(ErrorKind::Configuration, "no credentials")),
        ),
        (
            "refused-unavailable",
            Answer::Refused(StopError::new(
                ErrorKind::Unavailable,
                "no time left before the deadline",
            )),
        ),
        (
            "single-stop-requested",
            acted(true, vec![execution(A, Outcome::StopRequested)]),
        ),
        (
            "single-stop-requested-waited",
            acted(true, vec![stopped_after_wait.clone()]),
        ),
        (
            "single-already-stopping",
            acted(true, vec![execution(A, Outcome::AlreadyStopping)]),
        ),
        (
            "single-already-stopping-waited",
            acted(
                true,
                vec![ExecutionReport {
                    status: Some(ExecutionStatus::Stopped),
                    ..execution(A, Outcome::AlreadyStopping)
                }],
            ),
        ),
        (
            "single-already-finished",
            acted(
                true,
                vec![execution(
                    A,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::Succeeded,
                    },
                )],
            ),
        ),
        (
            "single-status-unknown-to-this-build",
            acted(
                true,
                vec![execution(
                    A,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::parse("Paused"),
                    },
                )],
            ),
        ),
        (
            "single-would-stop",
            Answer::Acted(Report {
                dry_run: true,
                ..match acted(true, vec![dry.clone()]) {
                    Answer::Acted(r) => r,
                    _ => unreachable!(),
                }
            }),
        ),
        (
            "single-failed-not-found",
            acted(
                true,
                vec![execution(
                    A,
                    failed(ErrorKind::NotFound, "no execution k7xvw1b9q2hj"),
                )],
            ),
        ),
        (
            "single-failed-conflict",
            acted(
                true,
                vec![execution(
                    A,
                    failed(ErrorKind::Conflict, "the execution is not Executing"),
                )],
            ),
        ),
        ("single-forced", acted(true, vec![forced.clone()])),
        (
            "single-force-failed",
            acted(true, vec![force_failed.clone()]),
        ),
        (
            "several-all-stopped",
            acted(
                false,
                vec![stopped_after_wait.clone(), wait_ran_out.clone()],
            ),
        ),
        (
            "several-every-outcome",
            Answer::Acted(Report {
                executions: vec![
                    forced,
                    force_failed,
                    execution(A, Outcome::AlreadyStopping),
                    execution(
                        B,
                        Outcome::AlreadyFinished {
                            status: ExecutionStatus::CompletedWithFailures,
                        },
                    ),
                    execution(C, failed(ErrorKind::Upstream, "SageMaker answered 500")),
                    wait_ran_out,
                ],
                pipeline_failures: vec![PipelineFailure {
                    pipeline: "backfill".into(),
                    error: StopError::new(ErrorKind::Throttled, "slow down"),
                }],
                pipelines_swept: vec!["backfill".into()],
                ..Report::default()
            }),
        ),
        (
            "several-would-stop",
            Answer::Acted(Report {
                executions: vec![dry, execution(B, Outcome::WouldStop)],
                dry_run: true,
                ..Report::default()
            }),
        ),
        (
            "sweep-one-already-finished",
            acted(
                false,
                vec![execution(
                    A,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::Stopped,
                    },
                )],
            ),
        ),
        (
            "sweep-found-nothing",
            Answer::Acted(Report {
                pipelines_swept: vec!["nightly-training".into(), "backfill".into()],
                ..Report::default()
            }),
        ),
        (
            "sweep-listing-failed",
            Answer::Acted(Report {
                pipeline_failures: vec![listing_failed.clone()],
                pipelines_swept: vec!["nightly-training".into()],
                ..Report::default()
            }),
        ),
        (
            "sweep-listing-failed-dry",
            Answer::Acted(Report {
                pipeline_failures: vec![listing_failed],
                dry_run: true,
                ..Report::default()
            }),
        ),
        ("guard-run", Answer::Acted(guard_report)),
        ("guard-dry-run", Answer::Acted(guard_dry)),
        ("guard-nothing-over-its-limit", Answer::Acted(guard_nothing)),
        ("guard-discovery-failed", Answer::Acted(guard_failed)),
        (
            "guard-discovery-failed-dry",
            Answer::Acted(guard_failed_dry),
        ),
    ]
}

/// The answer an event would get if every target it plans were stopped.
fn own_answer(plan: &Plan) -> Answer {
    Answer::Acted(Report {
        executions: plan
            .executions()
            .iter()
            .map(|t| execution(&t.arn, Outcome::StopRequested))
            .collect(),
        pipelines_swept: plan.pipelines().to_vec(),
        single: plan.is_single(),
        dry_run: plan.options.dry_run,
        guard: plan.guard().map(|policy| {
            Box::new(GuardSummary {
                tag_key: policy.tag_key.clone(),
                default: policy.default,
                ..GuardSummary::default()
            })
        }),
        ..Report::default()
    })
}

/// One event's golden text: each answer's reply (or the error that fails
/// the invocation), its EMF record and its notices.
fn golden_text(event: &str) -> String {
    let scope =
        Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:stopper").unwrap();
    let config = Config {
        default_pipeline: Some("nightly-training".into()),
        ..Config::default()
    };
    let prepared = prepare(event, &config, &scope, REQUEST_ID);
    let own = match &prepared.next {
        Next::Answer(answer) => ("prepared", answer.clone()),
        Next::Stop(plan) => ("planned-all-stopped", own_answer(plan)),
    };
    let mut out = format!(
        "trigger: {}\ncaller: {:?}\n",
        prepared.trigger.name(),
        prepared.caller
    );
    for (i, (name, answer)) in std::iter::once(own).chain(fixed_answers()).enumerate() {
        writeln!(out, "\n## {name}").unwrap();
        let mut tally = Tally::of(&answer);
        // One record with a failed notification, for its metric.
        tally.notifications_failed = u64::from(name == "several-every-outcome");
        let record = Record {
            namespace: if i % 2 == 0 {
                DEFAULT_NAMESPACE
            } else {
                "Team/Stopper"
            },
            function_name: "stopper",
            trigger: prepared.trigger,
            tally,
            timestamp_ms: 1_700_000_000_123,
            request_id: REQUEST_ID,
            caller: prepared.caller.as_deref(),
        };
        let context = Context {
            trigger: prepared.trigger,
            cause: prepared.cause.as_ref(),
            caller: prepared.caller.as_deref(),
            request_id: REQUEST_ID,
            function_name: "stopper",
        };
        let (notices, chat) = match &answer {
            Answer::Acted(report) => (notices(report, context), chat_notice(report, context)),
            _ => (Vec::new(), None),
        };
        match shape(prepared.trigger, answer) {
            Ok(reply) => writeln!(out, "reply: {}", serde_json::to_string(&reply).unwrap()),
            Err(error) => writeln!(out, "error: {error}"),
        }
        .unwrap();
        writeln!(out, "metrics: {}", record.to_line()).unwrap();
        for notice in notices {
            writeln!(out, "notice: {}", notice.detail).unwrap();
            writeln!(out, "notice resources: {:?}", notice.resources).unwrap();
            writeln!(out, "notice pipelines: {:?}", notice.pipelines).unwrap();
            writeln!(out, "notice subject: {}", notice.subject).unwrap();
        }
        if let Some(chat) = chat {
            writeln!(out, "chat: {}", chat.detail).unwrap();
            writeln!(out, "chat pipelines: {:?}", chat.pipelines).unwrap();
            writeln!(out, "chat subject: {}", chat.subject).unwrap();
        }
    }
    out
}

#[test]
fn replies_metrics_and_notices_match_the_golden_files_byte_for_byte() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    // One set for every build: the replies' key order does not depend on
    // serde_json's features (the function's build preserves a `json!` map's
    // insertion order, the core built alone sorts it).
    let golden_dir = root().join("tests/golden");
    let mut events: Vec<PathBuf> = std::fs::read_dir(root().join("../../events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    events.sort();
    assert!(!events.is_empty());
    let mut differ = Vec::new();
    for event in &events {
        let text = golden_text(&std::fs::read_to_string(event).unwrap());
        let stem = event.file_stem().unwrap().to_str().unwrap();
        let golden = golden_dir.join(format!("{stem}.txt"));
        if update {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&golden, &text).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(text.as_str()) {
            differ.push(golden.display().to_string());
        }
    }
    // Every golden file belongs to an event: none is left over from a removed one.
    let goldens = std::fs::read_dir(&golden_dir).unwrap().count();
    assert_eq!(
        goldens,
        events.len(),
        "stale files in {}",
        golden_dir.display()
    );
    assert!(
        differ.is_empty(),
        "differs from the golden file (UPDATE_GOLDEN=1 to regenerate, then review): {differ:?}"
    );
}
