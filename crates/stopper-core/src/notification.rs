//! The notification of what an event stopped: built only when a stop was
//! actually requested (never for a dry run, a refusal, or executions that had
//! already ended), for every trigger alike (HTTP included, which Lambda
//! destinations would miss), and published by the shell to an EventBridge bus
//! and/or an SNS topic.
//!
//! One notice per event, split into parts only when its executions would not
//! fit one EventBridge entry or SNS message (256 KB each): a sweep of 1,000
//! executions is a handful of messages, not 1,000.

use serde::Serialize;

use crate::arn::parse_execution_arn;
use crate::reply::ExecutionEntry;
use crate::report::{ExecutionReport, Outcome, Report};
use crate::trigger::{Cause, Trigger};

/// EventBridge `Source` of the events published.
pub const SOURCE: &str = "sagemaker-pipeline-stopper";
/// EventBridge `DetailType` of the events published.
pub const DETAIL_TYPE: &str = "SageMaker Pipeline Executions Stop Requested";

/// At most this many bytes of executions in one notice. EventBridge counts an
/// entry's `Detail`, `Resources`, `Source` and `DetailType` against 256 KB
/// (the ARNs are in both `Detail` and `Resources`), and SNS a message and its
/// attributes against 256 KB: 100 KB of executions keeps well inside both.
pub const MAX_EXECUTION_BYTES: usize = 100 * 1024;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The message: JSON (the EventBridge `Detail`; the SNS message, which
    /// may be a chat notification instead, see `chat`).
    pub detail: String,
    /// The execution ARNs (EventBridge `Resources`).
    pub resources: Vec<String>,
    /// The pipelines, once each, in order (an SNS message attribute, for
    /// subscription filter policies).
    pub pipelines: Vec<String>,
    /// The SNS subject: ASCII, under 100 characters.
    pub subject: String,
}

/// Who asked, and under which event.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub trigger: Trigger,
    /// What set the event off, when it says (the chat notification names it).
    pub cause: Option<&'a Cause>,
    pub caller: Option<&'a str>,
    pub request_id: &'a str,
    pub function_name: &'a str,
}

/// The executions whose stop this event requested: what is notified, in
/// every format (none for a dry run).
pub(crate) fn stopped(report: &Report) -> Vec<&ExecutionReport> {
    if report.dry_run {
        return Vec::new();
    }
    report
        .executions
        .iter()
        .filter(|e| e.outcome == Outcome::StopRequested)
        .collect()
}

/// The notices for an event's report: none unless it requested a stop.
pub fn notices(report: &Report, context: Context<'_>) -> Vec<Notice> {
    let stopped = stopped(report);
    let mut parts: Vec<Vec<&ExecutionReport>> = Vec::new();
    let mut size = 0;
    for execution in stopped {
        let bytes = serde_json::to_string(&Entry::new(execution)).map_or(0, |s| s.len())
            + execution.arn.len();
        match parts.last_mut() {
            Some(part) if size + bytes <= MAX_EXECUTION_BYTES => part.push(execution),
            _ => {
                parts.push(vec![execution]);
                size = 0;
            }
        }
        size += bytes;
    }
    let total: usize = parts.iter().map(Vec::len).sum();
    let count = parts.len();
    parts
        .iter()
        .enumerate()
        .map(|(i, executions)| notice(executions, total, i + 1, count, report, context))
        .collect()
}

fn notice(
    executions: &[&ExecutionReport],
    total: usize,
    part: usize,
    parts: usize,
    report: &Report,
    context: Context<'_>,
) -> Notice {
    let mut pipelines: Vec<String> = Vec::new();
    for execution in executions {
        let pipeline = pipeline_of(&execution.arn);
        if !pipelines.contains(&pipeline) {
            pipelines.push(pipeline);
        }
    }
    let detail = Detail {
        function_name: context.function_name,
        trigger: context.trigger.name(),
        guard: report.guard.is_some(),
        caller: context.caller,
        request_id: context.request_id,
        executions_stopped: total,
        executions: executions.iter().map(|e| Entry::new(e)).collect(),
        part,
        parts,
    };
    let subject = subject(
        total,
        report,
        context.trigger,
        (parts > 1).then_some((part, parts)),
    );
    Notice {
        detail: serde_json::to_string(&detail).expect("a notice always serialises"),
        resources: executions.iter().map(|e| e.arn.clone()).collect(),
        pipelines,
        subject,
    }
}

/// The SNS subject: ASCII, under 100 characters; `part`: of how many.
pub(crate) fn subject(
    total: usize,
    report: &Report,
    trigger: Trigger,
    part: Option<(usize, usize)>,
) -> String {
    let noun = if total == 1 {
        "execution"
    } else {
        "executions"
    };
    let by = if report.guard.is_some() {
        "the runtime guard"
    } else {
        trigger.name()
    };
    let mut subject = format!("Stop requested: {total} SageMaker pipeline {noun} ({by})");
    if let Some((part, parts)) = part {
        subject.push_str(&format!(" {part}/{parts}"));
    }
    subject
}

/// The pipeline of an execution ARN (as it is written in the ARN).
pub(crate) fn pipeline_of(arn: &str) -> String {
    parse_execution_arn(arn).map_or_else(|_| String::new(), |a| a.pipeline.to_owned())
}

/// The EventBridge `Detail` and the SNS message.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Detail<'a> {
    function_name: &'a str,
    trigger: &'static str,
    guard: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a str>,
    request_id: &'a str,
    executions_stopped: usize,
    executions: Vec<Entry<'a>>,
    part: usize,
    parts: usize,
}

/// An execution as the reply shows it, with its pipeline named, so that
/// rules can match `detail.Executions.PipelineName`.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(rename = "PipelineName")]
    pipeline: String,
    #[serde(flatten)]
    execution: ExecutionEntry<'a>,
}

impl<'a> Entry<'a> {
    fn new(execution: &'a ExecutionReport) -> Entry<'a> {
        Entry {
            pipeline: pipeline_of(&execution.arn),
            execution: ExecutionEntry::new(execution),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, StopError};
    use crate::guard::GuardSummary;
    use crate::report::{execution_arn as arn, report};
    use crate::status::ExecutionStatus;
    use crate::trigger::HttpFlavor;
    use serde_json::Value;

    fn context() -> Context<'static> {
        Context {
            trigger: Trigger::Http(HttpFlavor::HttpApi),
            cause: None,
            caller: Some("arn:aws:iam::123456789012:user/ops"),
            request_id: "req-1",
            function_name: "stopper",
        }
    }

    #[test]
    fn only_executions_whose_stop_was_requested_are_notified() {
        let (a, b, c, d) = (
            arn("nightly", "a"),
            arn("nightly", "b"),
            arn("other", "c"),
            arn("nightly", "d"),
        );
        let r = report(
            false,
            vec![
                (&a, Outcome::StopRequested),
                (
                    &b,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::Succeeded,
                    },
                ),
                (
                    &c,
                    Outcome::Failed(StopError::new(ErrorKind::Conflict, "x")),
                ),
                (&d, Outcome::StopRequested),
            ],
        );
        let notices = notices(&r, context());
        assert_eq!(notices.len(), 1);
        let n = &notices[0];
        assert_eq!(n.resources, vec![a.clone(), d.clone()]);
        assert_eq!(n.pipelines, vec!["nightly"]);
        assert_eq!(
            n.subject,
            "Stop requested: 2 SageMaker pipeline executions (http-api)"
        );
        let v: Value = serde_json::from_str(&n.detail).unwrap();
        assert_eq!(v["Trigger"], "http-api");
        assert_eq!(v["Caller"], "arn:aws:iam::123456789012:user/ops");
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["FunctionName"], "stopper");
        assert_eq!(v["Guard"], false);
        assert_eq!(v["ExecutionsStopped"], 2);
        assert_eq!(v["Executions"][0]["PipelineExecutionArn"], a.as_str());
        assert_eq!(v["Executions"][0]["PipelineName"], "nightly");
        assert_eq!(v["Executions"][0]["Outcome"], "StopRequested");
        assert_eq!(v["Executions"][1]["PipelineExecutionArn"], d.as_str());
        assert_eq!(
            (v["Part"].clone(), v["Parts"].clone()),
            (1.into(), 1.into())
        );
    }

    #[test]
    fn nothing_stopped_or_a_dry_run_is_no_notice() {
        let a = arn("nightly", "a");
        let finished = report(
            true,
            vec![(
                &a,
                Outcome::AlreadyFinished {
                    status: ExecutionStatus::Stopped,
                },
            )],
        );
        assert!(notices(&finished, context()).is_empty());
        let mut dry = report(false, vec![(&a, Outcome::WouldStop)]);
        dry.dry_run = true;
        assert!(notices(&dry, context()).is_empty());
        // A dry run never requests a stop; if a report said so, still none.
        dry.executions[0].outcome = Outcome::StopRequested;
        assert!(notices(&dry, context()).is_empty());
        assert!(notices(&Report::default(), context()).is_empty());
    }

    #[test]
    fn a_large_sweep_is_split_into_parts_that_each_fit_a_message() {
        let arns: Vec<String> = (0..3000)
            .map(|i| arn("nightly", &format!("{i:012}")))
            .collect();
        let r = report(
            false,
            arns.iter()
                .map(|a| (a.as_str(), Outcome::StopRequested))
                .collect(),
        );
        let notices = notices(&r, context());
        assert!(notices.len() > 1, "{}", notices.len());
        let mut seen = Vec::new();
        for (i, n) in notices.iter().enumerate() {
            // Detail plus Resources, within EventBridge's and SNS's 256 KB.
            let entry = n.detail.len() + n.resources.iter().map(String::len).sum::<usize>();
            assert!(entry < 200 * 1024, "part {i}: {entry} bytes");
            let v: Value = serde_json::from_str(&n.detail).unwrap();
            assert_eq!(v["Part"], i + 1);
            assert_eq!(v["Parts"], notices.len());
            assert_eq!(v["ExecutionsStopped"], 3000);
            assert!(n
                .subject
                .ends_with(&format!(" {}/{}", i + 1, notices.len())));
            assert!(n.subject.len() < 100 && n.subject.is_ascii());
            seen.extend(n.resources.iter().cloned());
        }
        assert_eq!(seen, arns, "every execution once, in order");
        // Packed: each part holds at most MAX_EXECUTION_BYTES of executions,
        // and no part could have taken the next part's first one.
        let bytes = |arn: &String| {
            let execution = r.executions.iter().find(|e| &e.arn == arn).unwrap();
            serde_json::to_string(&Entry::new(execution)).unwrap().len() + arn.len()
        };
        let sizes: Vec<usize> = notices
            .iter()
            .map(|n| n.resources.iter().map(bytes).sum())
            .collect();
        for (i, size) in sizes.iter().enumerate() {
            assert!(*size <= MAX_EXECUTION_BYTES, "part {i}: {size}");
            if let Some(next) = notices.get(i + 1) {
                assert!(
                    size + bytes(&next.resources[0]) > MAX_EXECUTION_BYTES,
                    "part {i}"
                );
            }
        }
        assert!(sizes[0] > 90 * 1024, "{sizes:?}");
    }

    #[test]
    fn the_longest_execution_arns_still_fit() {
        let long = "x".repeat(1900);
        let arns: Vec<String> = (0..200).map(|i| arn("p", &format!("{long}{i}"))).collect();
        let r = report(
            false,
            arns.iter()
                .map(|a| (a.as_str(), Outcome::StopRequested))
                .collect(),
        );
        for n in notices(&r, context()) {
            let entry = n.detail.len() + n.resources.iter().map(String::len).sum::<usize>();
            assert!(entry < 256 * 1024 - 1024, "{entry}");
        }
    }

    #[test]
    fn a_guard_run_says_so() {
        let a = arn("nightly", "a");
        let mut r = report(false, vec![(&a, Outcome::StopRequested)]);
        r.guard = Some(Box::new(GuardSummary::default()));
        let n = &notices(
            &r,
            Context {
                trigger: Trigger::Direct,
                caller: None,
                ..context()
            },
        )[0];
        assert_eq!(
            n.subject,
            "Stop requested: 1 SageMaker pipeline execution (the runtime guard)"
        );
        let v: Value = serde_json::from_str(&n.detail).unwrap();
        assert_eq!(v["Guard"], true);
        assert!(v.get("Caller").is_none());
    }
}
