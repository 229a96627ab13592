//! What the command line prints: the function's reply as JSON, or the typed
//! answer as tab-separated text, made safe for a terminal either way.

use serde_json::Value;
use stopper_core::error::{escape_unsafe, is_unsafe_char};
use stopper_core::limit::GuardedRun;
use stopper_core::reply::{self, ignored_body, Reply};
use stopper_core::report::{Answer, Report};
use stopper_core::steps::StepKind;
use stopper_core::trigger::Trigger;
use stopper_core::StopError;

/// The reply the function would send, as JSON: for an HTTP event, the
/// response its front end would get (errors included); otherwise the report
/// (whatever its outcome: a run that stopped one execution and failed on
/// another says both) or the ignored body. `None` for a refused event, whose
/// error is all there is to say.
pub fn json(trigger: Trigger, answer: Answer) -> Option<Value> {
    if trigger.http().is_some() {
        return reply::shape(trigger, answer).ok().map(|r| r.to_value());
    }
    match answer {
        Answer::Ignored(reason) => Some(ignored_body(&reason)),
        Answer::Refused(_) => None,
        Answer::Acted(report) => Some(Reply::Report(report).to_value()),
    }
}

/// Tab-separated lines, in the spirit of the AWS CLI's `--output text`: one
/// per execution (ARN, outcome, status, error code), one per blocking step
/// (`BLOCKINGSTEP`, name, type, queue or function, what `Force` did), one per
/// pipeline that could not be listed (`PIPELINE`, name, error code), and the
/// message of a sweep that found nothing or the reason an event was ignored.
/// Every field is terminal-safe.
pub fn text(answer: &Answer) -> String {
    match answer {
        Answer::Ignored(reason) => terminal_safe(reason),
        Answer::Refused(_) => String::new(),
        Answer::Acted(report) => report_lines(report).join("\n"),
    }
}

/// One line of tab-separated, terminal-safe fields.
fn tsv<S: AsRef<str>>(fields: &[S]) -> String {
    fields
        .iter()
        .map(|f| terminal_safe(f.as_ref()))
        .collect::<Vec<_>>()
        .join("\t")
}

fn report_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for execution in &report.executions {
        let mut fields = vec![
            execution.arn.as_str(),
            execution.outcome.name(),
            execution.shown_status().map_or("", |s| s.as_str()),
        ];
        if let stopper_core::report::Outcome::Failed(e) = &execution.outcome {
            fields.push(e.kind.error_type());
        }
        lines.push(tsv(&fields));
        if let Some(run) = &execution.guard {
            lines.push(tsv(&run_fields("OVERLIMIT", "", run)));
        }
        for step in &execution.blocking_steps {
            let location = match &step.kind {
                StepKind::Callback { queue_url } => queue_url.as_deref(),
                StepKind::Lambda { function_arn } => function_arn.as_deref(),
            };
            lines.push(tsv(&[
                "BLOCKINGSTEP",
                &step.name,
                step.kind.name(),
                location.unwrap_or(""),
                step.force.as_ref().map_or("", |f| f.name()),
            ]));
        }
    }
    for failure in &report.pipeline_failures {
        lines.push(tsv(&[
            "PIPELINE",
            &failure.pipeline,
            failure.error.kind.error_type(),
        ]));
    }
    if let Some(guard) = &report.guard {
        let counts = [
            guard.pipelines_examined,
            guard.pipelines_guarded,
            guard.pipelines_exempt,
            guard.skipped.len() + guard.not_allowed.len(),
            guard.invalid_tags.len(),
            guard.executions_examined,
            guard.over_limit,
        ]
        .map(|n| n.to_string());
        let mut fields = vec!["GUARD", guard.tag_key.as_str()];
        fields.extend(counts.iter().map(String::as_str));
        lines.push(tsv(&fields));
        for skipped in &guard.skipped {
            lines.push(tsv(&["SKIPPED", &skipped.pipeline, &skipped.reason]));
        }
        for tag in &guard.invalid_tags {
            lines.push(tsv(&["INVALIDTAG", &tag.pipeline, &tag.value]));
        }
        for (arn, run) in &guard.within_limit {
            lines.push(tsv(&run_fields("WITHINLIMIT", arn, run)));
        }
        for stuck in &guard.stuck_stopping {
            let minutes = (stuck.stopping_for.as_secs() / 60).to_string();
            lines.push(tsv(&["STUCKSTOPPING", &stuck.arn, &minutes]));
        }
        if let Some(error) = &guard.error {
            lines.push(tsv(&["GUARD", "Failed", error.kind.error_type()]));
        }
    }
    if let Some(message) = report.nothing_found() {
        lines.push(terminal_safe(&message));
    }
    lines
}

/// `LABEL [arn] max-runtime source runtime-minutes` of a guarded execution.
fn run_fields(label: &str, arn: &str, run: &GuardedRun) -> Vec<String> {
    let mut fields = vec![label.to_owned()];
    if !arn.is_empty() {
        fields.push(arn.to_owned());
    }
    fields.extend([
        run.limit.max_runtime.to_string(),
        run.limit.source.name().to_owned(),
        (run.runtime.as_secs() / 60).to_string(),
    ]);
    fields
}

/// `An error occurred (Code): message`, as the AWS CLI says it: the one
/// form of every error the command prints.
pub fn error_line(error: &StopError) -> String {
    format!(
        "An error occurred ({}): {}",
        error.kind.error_type(),
        terminal_safe(&error.message)
    )
}

/// Caller input made safe for a terminal: every control character (C0, DEL
/// and C1: ESC sequences, BEL, CSI) and invisible formatting character
/// (bidirectional overrides, zero-width) escaped. An ARN carrying `ESC ] 0 ;`
/// must not retitle the operator's terminal, nor `ESC [ 2 J` clear it.
pub fn terminal_safe(text: &str) -> String {
    escape_unsafe(text)
}

/// JSON for a terminal: serde_json escapes C0 controls inside strings, but
/// not DEL, C1 (U+0080-U+009F, CSI among them) or the invisible formatting
/// characters. Those are escaped here as
/// `\u00XX`, which is the same JSON. Raw newlines are the pretty layout's.
pub fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe_char(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Indented JSON, as the AWS CLI prints it.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stopper_core::report::{ExecutionReport, Force, Outcome, PipelineFailure, StepReport};
    use stopper_core::status::ExecutionStatus;
    use stopper_core::trigger::HttpFlavor;
    use stopper_core::ErrorKind;

    const A: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";

    fn report(executions: Vec<ExecutionReport>) -> Report {
        Report {
            executions,
            ..Report::default()
        }
    }

    #[test]
    fn nothing_printed_can_drive_the_terminal() {
        let hostile = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\u{202e}\u{2066}\u{200b}";
        let mut failed = ExecutionReport::new(
            hostile,
            Outcome::Failed(StopError::new(ErrorKind::Validation, hostile)),
        );
        failed.blocking_steps = vec![StepReport {
            name: hostile.into(),
            kind: StepKind::Callback {
                queue_url: Some(hostile.into()),
            },
            force: None,
        }];
        let mut swept = report(vec![failed]);
        swept.pipeline_failures = vec![PipelineFailure {
            pipeline: hostile.into(),
            error: StopError::new(ErrorKind::NotFound, hostile),
        }];
        let nothing = Report {
            pipelines_swept: vec![hostile.into()],
            ..Report::default()
        };
        for printed in [
            terminal_safe(hostile),
            json_safe(&pretty(
                &json!({"PipelineExecutionArn": hostile, "Outcome": "Failed"}),
            )),
            text(&Answer::Acted(swept)),
            text(&Answer::Acted(nothing)),
            text(&Answer::Ignored(hostile.into())),
            error_line(&StopError::validation(hostile)),
        ] {
            assert!(printed.contains("owned"), "{printed:?}");
            assert!(
                !printed
                    .chars()
                    .any(|c| is_unsafe_char(c) && c != '\n' && c != '\t'),
                "{printed:?}"
            );
        }
        // The escaped JSON is the same JSON.
        let safe = json_safe(&pretty(&json!({"a": hostile})));
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap()["a"], hostile);
    }

    #[test]
    fn text_output_has_one_line_per_execution_blocking_step_and_failed_listing() {
        let mut stopping = ExecutionReport::new(A, Outcome::StopRequested);
        stopping.status = Some(ExecutionStatus::Stopping);
        stopping.blocking_steps = vec![
            StepReport {
                name: "approve".into(),
                kind: StepKind::Callback {
                    queue_url: Some("q".into()),
                },
                force: Some(Force::Sent),
            },
            StepReport {
                name: "score".into(),
                kind: StepKind::Lambda { function_arn: None },
                force: None,
            },
        ];
        let missing = ExecutionReport::new(
            "b",
            Outcome::Failed(StopError::new(ErrorKind::NotFound, "gone")),
        );
        let finished = ExecutionReport::new(
            "c",
            Outcome::AlreadyFinished {
                status: ExecutionStatus::Succeeded,
            },
        );
        let mut r = report(vec![stopping, missing, finished]);
        r.pipeline_failures = vec![PipelineFailure {
            pipeline: "p".into(),
            error: StopError::new(ErrorKind::Forbidden, "denied"),
        }];
        assert_eq!(
            text(&Answer::Acted(r)),
            format!(
                "{A}\tStopRequested\tStopping\n\
                 BLOCKINGSTEP\tapprove\tCallback\tq\tSent\n\
                 BLOCKINGSTEP\tscore\tLambda\t\t\n\
                 b\tFailed\t\tResourceNotFound\n\
                 c\tAlreadyFinished\tSucceeded\n\
                 PIPELINE\tp\tAccessDenied"
            )
        );
        let nothing = Report {
            pipelines_swept: vec!["p".into()],
            ..Report::default()
        };
        assert_eq!(
            text(&Answer::Acted(nothing)),
            "no running executions of p; nothing to stop"
        );
        assert_eq!(text(&Answer::Ignored("alarm is OK".into())), "alarm is OK");
        assert_eq!(text(&Answer::Refused(StopError::validation("bad"))), "");
    }

    #[test]
    fn json_output_is_the_reply_the_function_would_send() {
        let single = Report {
            single: true,
            ..report(vec![ExecutionReport::new(A, Outcome::StopRequested)])
        };
        assert_eq!(
            json(Trigger::Direct, Answer::Acted(single.clone())),
            Some(json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"}))
        );
        // Failed targets are printed too (the error goes to stderr).
        let failed = report(vec![ExecutionReport::new(
            A,
            Outcome::Failed(StopError::new(ErrorKind::NotFound, "gone")),
        )]);
        let printed = json(Trigger::Direct, Answer::Acted(failed)).unwrap();
        assert_eq!(
            printed["Executions"][0]["Error"]["Code"],
            "ResourceNotFound"
        );
        assert_eq!(
            json(
                Trigger::Direct,
                Answer::Refused(StopError::validation("bad"))
            ),
            None
        );
        let http = json(
            Trigger::Http(HttpFlavor::HttpApi),
            Answer::Refused(StopError::validation("bad")),
        )
        .unwrap();
        assert_eq!(http["statusCode"], 400);
        assert_eq!(
            error_line(&StopError::validation("bad")),
            "An error occurred (ValidationError): bad"
        );
    }
}
