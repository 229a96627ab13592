//! The stop in the team's chat: the SNS message of `NOTIFY_TOPIC_FORMAT=chat`,
//! a custom notification that Amazon Q Developer in chat applications
//! (formerly AWS Chatbot) shows in Slack, Microsoft Teams or Amazon Chime.
//!
//! Its schema: <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>
//! (`version` "1.0" and `source` "custom", required; an optional `id`;
//! `content` with `textType` "client-markdown" (the only one supported),
//! `title`, `description`, and optional `nextSteps` and `keywords`; optional
//! `metadata`: `threadId`, `summary`, `eventType`, `relatedResources`,
//! `additionalContext`, a map of strings). `tests/chat-notification.schema.json`
//! writes it down, and the tests check every message against it.
//!
//! The page gives no length limits. Ours are conservative: a title of at most
//! [`MAX_TITLE_CHARS`] (Slack's header block takes 150) and a description of
//! at most [`MAX_DESCRIPTION_CHARS`] (Slack's section block takes 3,000). Every
//! name in the message is bounded, so that holds for any event, and a guard
//! run that stopped 300 executions is the same few lines as one that stopped
//! one: counts, and the first [`SHOWN`] names.
//!
//! One message per event, never split: it names a few executions, not all
//! (the JSON notices on the bus name every one).

use serde::Serialize;
use std::time::Duration;

use crate::arn::parse_execution_arn;
use crate::limit::LimitSource;
use crate::notification::{self, Context, Notice, MAX_EXECUTION_BYTES};
use crate::report::{ExecutionReport, Report};
use crate::trigger::{Cause, HttpFlavor, Trigger};

/// The longest title written (Slack's header block takes 150 characters).
pub const MAX_TITLE_CHARS: usize = 150;
/// The longest description written (Slack's section block takes 3,000).
pub const MAX_DESCRIPTION_CHARS: usize = 3000;
/// Pipelines and executions named; the rest are counted.
pub const SHOWN: usize = 5;
/// `metadata.eventType`: the kind of message, for whoever reads the metadata.
pub const EVENT_TYPE: &str = "SageMakerPipelineExecutionsStopRequested";

/// A pipeline or an execution id, at most this long in the message.
pub(crate) const NAME_CHARS: usize = 100;
/// A caller, an alarm's or a rule's name: the longest any of them has
/// (callers are kept to 256 characters, alarm names to 255).
pub(crate) const LONG_NAME_CHARS: usize = 256;
/// A pipeline in the title.
const TITLE_NAME_CHARS: usize = 64;

/// The chat notification of an event's report: none unless it requested a
/// stop (as [`notification::notices`]).
pub fn chat_notice(report: &Report, context: Context<'_>) -> Option<Notice> {
    let stopped = notification::stopped(report);
    if stopped.is_empty() {
        return None;
    }
    let total = stopped.len();
    let mut pipelines: Vec<(String, usize)> = Vec::new();
    for execution in &stopped {
        let pipeline = notification::pipeline_of(&execution.arn);
        match pipelines.iter_mut().find(|(p, _)| *p == pipeline) {
            Some((_, count)) => *count += 1,
            None => pipelines.push((pipeline, 1)),
        }
    }
    let subject = notification::subject(total, report, context.trigger, None);
    let shown: Vec<&ExecutionReport> = stopped.iter().take(SHOWN).copied().collect();
    let message = Message {
        version: "1.0",
        source: "custom",
        id: context.request_id,
        content: Content {
            text_type: "client-markdown",
            title: title(total, &pipelines),
            description: description(&stopped, &pipelines, report, context),
            keywords: keywords(report, context.trigger),
        },
        metadata: Metadata {
            summary: subject.clone(),
            event_type: EVENT_TYPE,
            related_resources: shown.iter().map(|e| e.arn.as_str()).collect(),
            additional_context: Additional {
                function_name: context.function_name,
                trigger: context.trigger.name(),
                request_id: context.request_id,
                executions_stopped: total.to_string(),
                caller: context.caller,
            },
        },
    };
    Some(Notice {
        detail: serde_json::to_string(&message).expect("a chat notification always serialises"),
        resources: stopped.iter().map(|e| e.arn.clone()).collect(),
        pipelines: attribute(pipelines.into_iter().map(|(p, _)| p)),
        subject,
    })
}

/// The `Pipelines` message attribute: every pipeline, unless their names
/// together would pass [`MAX_EXECUTION_BYTES`] (hundreds of pipelines in one
/// event): those past it are left out, so the message stays far within SNS's
/// 256 KB.
fn attribute(pipelines: impl Iterator<Item = String>) -> Vec<String> {
    let mut size = 2;
    let mut kept = Vec::new();
    for pipeline in pipelines {
        size += serde_json::to_string(&pipeline).map_or(0, |s| s.len()) + 1;
        if size > MAX_EXECUTION_BYTES {
            break;
        }
        kept.push(pipeline);
    }
    kept
}

fn title(total: usize, pipelines: &[(String, usize)]) -> String {
    let noun = if total == 1 {
        "execution"
    } else {
        "executions"
    };
    match pipelines {
        [(only, _)] => format!(
            "Stop requested: {total} {noun} of SageMaker pipeline {}",
            clean(only, TITLE_NAME_CHARS)
        ),
        _ => format!(
            "Stop requested: {total} {noun} of {} SageMaker pipelines",
            pipelines.len()
        ),
    }
}

/// A few lines: the pipelines, the executions, why, who, and the request.
fn description(
    stopped: &[&ExecutionReport],
    pipelines: &[(String, usize)],
    report: &Report,
    context: Context<'_>,
) -> String {
    let listed = pipelines
        .iter()
        .map(|(pipeline, count)| format!("{} ({count})", code(pipeline, NAME_CHARS)));
    let executions = stopped.iter().map(|e| {
        let id = parse_execution_arn(&e.arn).map_or(e.arn.as_str(), |a| a.execution_id);
        match &e.guard {
            Some(run) => format!("{} (ran {})", code(id, NAME_CHARS), runtime(run.runtime)),
            None => code(id, NAME_CHARS),
        }
    });
    let pipelines = match pipelines {
        [(only, _)] => format!("Pipeline: {}", code(only, NAME_CHARS)),
        _ => format!("Pipelines: {}", list(listed, pipelines.len())),
    };
    let mut lines = vec![
        pipelines,
        match stopped.len() {
            1 => format!("Execution: {}", list(executions, 1)),
            n => format!("Executions: {}", list(executions, n)),
        },
        format!("Why: {}", why(stopped, report, context)),
    ];
    if let Some(caller) = context.caller {
        lines.push(format!("Who: {}", code(caller, LONG_NAME_CHARS)));
    }
    lines.push(format!(
        "Request: {} (function {})",
        code(context.request_id, NAME_CHARS),
        code(context.function_name, NAME_CHARS)
    ));
    lines.join("\n")
}

/// The first [`SHOWN`] items, then how many more.
fn list(items: impl Iterator<Item = String>, count: usize) -> String {
    let shown: Vec<String> = items.take(SHOWN).collect();
    match count.saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{}, and {more} more", shown.join(", ")),
    }
}

/// Why these executions were stopped: the guard's limits, or the trigger
/// (the alarm, the rule, the kind of request).
fn why(stopped: &[&ExecutionReport], report: &Report, context: Context<'_>) -> String {
    let by = origin(context.trigger, context.cause, code);
    let Some(guard) = &report.guard else {
        return by;
    };
    // The tags' limits, each once, and the default's (there is one default).
    let (mut tagged, mut default) = (Vec::new(), None);
    for run in stopped.iter().filter_map(|e| e.guard) {
        match run.limit.source {
            LimitSource::Tag if !tagged.contains(&run.limit.max_runtime) => {
                tagged.push(run.limit.max_runtime)
            }
            LimitSource::Tag => {}
            LimitSource::Default => default = Some(run.limit.max_runtime),
        }
    }
    let mut limits = Vec::new();
    if !tagged.is_empty() {
        let values = tagged.iter().map(ToString::to_string);
        limits.push(format!(
            "{} (tag {})",
            list(values, tagged.len()),
            code(&guard.tag_key, LONG_NAME_CHARS)
        ));
    }
    if let Some(default) = default {
        limits.push(format!("{default} (default)"));
    }
    let over = match tagged.len() + usize::from(default.is_some()) {
        0 => String::new(),
        1 => format!(", over the limit {}", limits.join(", ")),
        _ => format!(", over the limits {}", limits.join(", ")),
    };
    format!("the runtime guard{over}; run by {by}")
}

/// The trigger, in words, with the alarm or rule it names, each written by
/// `write` (as inline code here, quoted in an execution's description).
pub(crate) fn origin(
    trigger: Trigger,
    cause: Option<&Cause>,
    write: fn(&str, usize) -> String,
) -> String {
    let alarm = |via: &str| match cause {
        Some(Cause::Alarm { name, state }) => format!(
            "CloudWatch alarm {} in {} ({via})",
            write(name, LONG_NAME_CHARS),
            write(state, NAME_CHARS)
        ),
        _ => format!("a CloudWatch alarm ({via})"),
    };
    match trigger {
        Trigger::Direct => "a direct invocation or an EventBridge Scheduler schedule".to_owned(),
        Trigger::EventBridge => "an EventBridge event".to_owned(),
        Trigger::ScheduledEvent => match cause {
            Some(Cause::Rule(rule)) => {
                format!(
                    "the EventBridge scheduled rule {}",
                    write(rule, LONG_NAME_CHARS)
                )
            }
            _ => "an EventBridge scheduled rule".to_owned(),
        },
        Trigger::SageMakerStatusChange => {
            "a SageMaker pipeline execution status change event".to_owned()
        }
        Trigger::AlarmEventBridge => alarm("on EventBridge"),
        Trigger::AlarmLambdaAction => alarm("its Lambda action"),
        Trigger::AlarmSns => alarm("through SNS"),
        Trigger::Sns => "an SNS message".to_owned(),
        Trigger::Http(flavor) => format!(
            "an HTTP request ({})",
            match flavor {
                HttpFlavor::RestApi => "API Gateway REST API",
                HttpFlavor::HttpApi => "API Gateway HTTP API",
                HttpFlavor::FunctionUrl => "function URL",
            }
        ),
    }
}

fn keywords(report: &Report, trigger: Trigger) -> Vec<&'static str> {
    let mut keywords = vec![trigger.name()];
    if report.guard.is_some() {
        keywords.push("runtime-guard");
    }
    keywords
}

/// `5h 12m`, `47m`, `2d 3h`: how long an execution had run.
pub(crate) fn runtime(d: Duration) -> String {
    let minutes = d.as_secs() / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours, minutes) {
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// A name as inline code (see [`clean`]).
fn code(name: &str, max: usize) -> String {
    format!("`{}`", clean(name, max))
}

/// A name at most `max` characters long, with nothing in it that chat
/// markdown reads (a backquote would end a code span; `<` and `>` make Slack
/// links and mentions; `[`, `]` and `@` links and mentions where a renderer
/// ignores the code span) or that breaks the line or hides or reorders text
/// (control, zero-width, bidi and line-separator characters).
fn clean(name: &str, max: usize) -> String {
    shortened(name, max, |c| match c {
        '`' => '\'',
        '<' => '‹',
        '>' => '›',
        '[' => '［',
        ']' => '］',
        '@' => '＠',
        c => c,
    })
}

/// `name`, or its first `max - 1` characters and an ellipsis, each
/// character that breaks the line or hides or reorders text a space and
/// every other one as `replace` makes it.
pub(crate) fn shortened(name: &str, max: usize, replace: fn(char) -> char) -> String {
    let shown = |c| match c {
        c if crate::error::is_unsafe_char(c) => ' ',
        c => replace(c),
    };
    if name.chars().count() <= max {
        name.chars().map(shown).collect()
    } else {
        name.chars().take(max - 1).map(shown).chain(['…']).collect()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    version: &'static str,
    source: &'static str,
    id: &'a str,
    content: Content,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    text_type: &'static str,
    title: String,
    description: String,
    keywords: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    summary: String,
    event_type: &'static str,
    related_resources: Vec<&'a str>,
    additional_context: Additional<'a>,
}

/// `additionalContext`: strings only, as the schema has it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Additional<'a> {
    function_name: &'a str,
    trigger: &'static str,
    request_id: &'a str,
    executions_stopped: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::GuardSummary;
    use crate::report::{execution_arn as arn, guarded, report, Outcome};
    use crate::status::ExecutionStatus;
    use serde_json::Value;

    fn context() -> Context<'static> {
        Context {
            trigger: Trigger::Direct,
            cause: None,
            caller: None,
            request_id: "req-1",
            function_name: "stopper",
        }
    }

    fn message(notice: &Notice) -> Value {
        serde_json::from_str(&notice.detail).unwrap()
    }

    fn description(notice: &Notice) -> String {
        message(notice)["content"]["description"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn guard_run(executions: Vec<ExecutionReport>) -> Report {
        Report {
            executions,
            guard: Some(Box::new(GuardSummary {
                tag_key: "pipeline-stopper:max-runtime".into(),
                ..GuardSummary::default()
            })),
            ..Report::default()
        }
    }

    #[test]
    fn a_guard_run_that_stopped_300_executions_stays_a_few_short_lines() {
        let executions = (0..300)
            .map(|i| {
                let pipeline = if i < 250 {
                    "nightly-training"
                } else {
                    "feature-eng"
                };
                let (limit, source) = if i < 250 {
                    (240, LimitSource::Tag)
                } else {
                    (90, LimitSource::Default)
                };
                guarded(
                    arn(pipeline, &format!("e{i:03}")),
                    limit,
                    source,
                    limit + 12,
                )
            })
            .collect();
        let notice = chat_notice(&guard_run(executions), context()).unwrap();
        let m = message(&notice);
        assert_eq!(
            m["content"]["title"],
            "Stop requested: 300 executions of 2 SageMaker pipelines"
        );
        assert_eq!(
            description(&notice),
            "Pipelines: `nightly-training` (250), `feature-eng` (50)\n\
             Executions: `e000` (ran 4h 12m), `e001` (ran 4h 12m), `e002` (ran 4h 12m), \
             `e003` (ran 4h 12m), `e004` (ran 4h 12m), and 295 more\n\
             Why: the runtime guard, over the limits 4h (tag `pipeline-stopper:max-runtime`), \
             90m (default); run by a direct invocation or an EventBridge Scheduler schedule\n\
             Request: `req-1` (function `stopper`)"
        );
        assert!(notice.detail.len() < 2048, "{}", notice.detail.len());
        assert_eq!(
            m["metadata"]["relatedResources"].as_array().unwrap().len(),
            SHOWN
        );
        assert_eq!(
            m["metadata"]["additionalContext"]["ExecutionsStopped"],
            "300"
        );
        assert_eq!(
            m["content"]["keywords"],
            serde_json::json!(["direct", "runtime-guard"])
        );
        // What SNS gets beside the body: every execution counted, both
        // pipelines for filter policies, today's subject.
        assert_eq!(notice.resources.len(), 300);
        assert_eq!(notice.pipelines, ["nightly-training", "feature-eng"]);
        assert_eq!(
            notice.subject,
            "Stop requested: 300 SageMaker pipeline executions (the runtime guard)"
        );
    }

    #[test]
    fn only_a_requested_stop_is_told_and_never_a_dry_run() {
        let (a, b) = (arn("nightly", "a"), arn("nightly", "b"));
        let finished = Outcome::AlreadyFinished {
            status: ExecutionStatus::Stopped,
        };
        let mixed = report(
            false,
            vec![(&a, Outcome::AlreadyStopping), (&b, Outcome::StopRequested)],
        );
        let notice = chat_notice(&mixed, context()).unwrap();
        assert_eq!(notice.resources, [b.as_str()]);
        assert!(description(&notice).contains("Execution: `b`\n"));
        assert!(!notice.detail.contains(&a));
        for nothing in [
            report(false, vec![(&a, finished), (&b, Outcome::AlreadyStopping)]),
            report(false, vec![(&a, Outcome::WouldStop)]),
            Report::default(),
        ] {
            assert_eq!(chat_notice(&nothing, context()), None);
        }
        let mut dry = report(false, vec![(&a, Outcome::StopRequested)]);
        dry.dry_run = true;
        assert_eq!(chat_notice(&dry, context()), None);
    }

    /// The `Why:` line of one stop of `nightly` under `context`.
    fn why_of(context: Context<'_>) -> String {
        let a = arn("nightly", "a");
        let d = description(
            &chat_notice(&report(true, vec![(&a, Outcome::StopRequested)]), context).unwrap(),
        );
        let line = d.lines().find(|l| l.starts_with("Why: ")).unwrap();
        line["Why: ".len()..].to_owned()
    }

    #[test]
    fn a_guard_stop_without_a_limit_on_record_names_none() {
        // Each execution the guard stops carries its limit; one without says
        // only that the guard stopped it, with no empty list of limits.
        let a = arn("nightly", "a");
        let notice = chat_notice(
            &guard_run(vec![ExecutionReport::new(a, Outcome::StopRequested)]),
            context(),
        )
        .unwrap();
        assert!(
            description(&notice).contains(
                "\nWhy: the runtime guard; run by a direct invocation or an EventBridge Scheduler schedule\n"
            ),
            "{}",
            description(&notice)
        );
    }

    #[test]
    fn the_pipelines_attribute_keeps_names_up_to_its_byte_limit_exactly() {
        // 2 bytes of brackets, then each name quoted and a comma: a name of
        // MAX_EXECUTION_BYTES - 5 bytes fills the limit exactly, and is kept.
        let fits = "p".repeat(MAX_EXECUTION_BYTES - 5);
        assert_eq!(
            attribute([fits.clone()].into_iter()),
            std::slice::from_ref(&fits)
        );
        assert!(attribute([fits + "p"].into_iter()).is_empty());
    }

    #[test]
    fn why_names_the_alarm_the_rule_or_the_request() {
        let alarm = Cause::Alarm {
            name: "nightly-too-long".into(),
            state: "ALARM".into(),
        };
        let rule = Cause::Rule("stop-at-0600".into());
        for (trigger, cause, expected) in [
            (
                Trigger::AlarmEventBridge,
                Some(&alarm),
                "CloudWatch alarm `nightly-too-long` in `ALARM` (on EventBridge)",
            ),
            (
                Trigger::AlarmLambdaAction,
                Some(&alarm),
                "CloudWatch alarm `nightly-too-long` in `ALARM` (its Lambda action)",
            ),
            (
                Trigger::AlarmSns,
                Some(&alarm),
                "CloudWatch alarm `nightly-too-long` in `ALARM` (through SNS)",
            ),
            (Trigger::AlarmSns, None, "a CloudWatch alarm (through SNS)"),
            (
                Trigger::ScheduledEvent,
                Some(&rule),
                "the EventBridge scheduled rule `stop-at-0600`",
            ),
            (
                Trigger::ScheduledEvent,
                None,
                "an EventBridge scheduled rule",
            ),
            (
                Trigger::Direct,
                None,
                "a direct invocation or an EventBridge Scheduler schedule",
            ),
            (Trigger::EventBridge, None, "an EventBridge event"),
            (
                Trigger::SageMakerStatusChange,
                None,
                "a SageMaker pipeline execution status change event",
            ),
            (Trigger::Sns, None, "an SNS message"),
            (
                Trigger::Http(HttpFlavor::RestApi),
                None,
                "an HTTP request (API Gateway REST API)",
            ),
            (
                Trigger::Http(HttpFlavor::HttpApi),
                None,
                "an HTTP request (API Gateway HTTP API)",
            ),
            (
                Trigger::Http(HttpFlavor::FunctionUrl),
                None,
                "an HTTP request (function URL)",
            ),
        ] {
            let context = Context {
                trigger,
                cause,
                ..context()
            };
            assert_eq!(why_of(context), expected, "{trigger:?}");
        }
    }

    #[test]
    fn who_is_the_caller_when_known() {
        let a = arn("nightly", "a");
        let r = report(true, vec![(&a, Outcome::StopRequested)]);
        let caller = "arn:aws:sts::123456789012:assumed-role/ops/alice";
        let http = Context {
            trigger: Trigger::Http(HttpFlavor::HttpApi),
            caller: Some(caller),
            ..context()
        };
        let notice = chat_notice(&r, http).unwrap();
        assert!(description(&notice).contains(&format!("\nWho: `{caller}`\n")));
        assert_eq!(
            message(&notice)["metadata"]["additionalContext"]["Caller"],
            caller
        );
        let unknown = chat_notice(&r, context()).unwrap();
        assert!(!description(&unknown).contains("Who:"));
        assert!(message(&unknown)["metadata"]["additionalContext"]
            .get("Caller")
            .is_none());
    }

    #[test]
    fn a_guard_with_one_limit_says_it_once() {
        let r = guard_run(vec![
            guarded(arn("nightly", "a"), 240, LimitSource::Tag, 300),
            guarded(arn("nightly", "b"), 240, LimitSource::Tag, 1530),
        ]);
        let d = description(&chat_notice(&r, context()).unwrap());
        assert!(
            d.contains("Executions: `a` (ran 5h), `b` (ran 1d 1h)\n"),
            "{d}"
        );
        assert!(
            d.contains("Why: the runtime guard, over the limit 4h (tag `pipeline-stopper:max-runtime`); run by "),
            "{d}"
        );
        let by_default = guard_run(vec![guarded(
            arn("nightly", "a"),
            90,
            LimitSource::Default,
            91,
        )]);
        let d = description(&chat_notice(&by_default, context()).unwrap());
        assert!(
            d.contains("(ran 1h 31m)") && d.contains("over the limit 90m (default); run by "),
            "{d}"
        );
    }

    #[test]
    fn names_cannot_break_out_of_their_code_spans() {
        let a = arn("nightly", "a");
        let r = report(true, vec![(&a, Outcome::StopRequested)]);
        let cause = Cause::Alarm {
            name: "x` <!channel> *now*\nWhy: forged\u{2028}Who: root\u{202E}[l](https://e.vil) @here\u{200B}"
                .into(),
            state: "ALARM".into(),
        };
        let context = Context {
            trigger: Trigger::AlarmSns,
            cause: Some(&cause),
            caller: Some("<@U123>`"),
            ..context()
        };
        let d = description(&chat_notice(&r, context).unwrap());
        assert_eq!(
            d.lines().filter(|l| l.starts_with("Why: ")).count(),
            1,
            "{d}"
        );
        assert!(!d.contains('<') && !d.contains('>'), "{d}");
        assert!(
            !d.contains('[') && !d.contains(']') && !d.contains('@'),
            "{d}"
        );
        assert!(
            d.lines()
                .all(|l| !l.chars().any(crate::error::is_unsafe_char)),
            "{d:?}"
        );
        assert!(
            d.contains("`x' ‹!channel› *now* Why: forged Who: root ［l］(https://e.vil) ＠here `"),
            "{d}"
        );
        assert!(d.contains("Who: `‹＠U123›'`"), "{d}");
        // Each line's backquotes pair up.
        assert!(d.lines().all(|l| l.matches('`').count() % 2 == 0), "{d}");
    }

    #[test]
    fn long_names_are_cut_and_the_title_stays_short() {
        let pipeline = "p".repeat(256);
        let a = arn(&pipeline, "a");
        let notice =
            chat_notice(&report(true, vec![(&a, Outcome::StopRequested)]), context()).unwrap();
        let title = message(&notice)["content"]["title"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(title.chars().count() <= MAX_TITLE_CHARS, "{title}");
        assert!(title.ends_with(&format!("{}…", "p".repeat(63))), "{title}");
        assert!(description(&notice).starts_with(&format!("Pipeline: `{}…`\n", "p".repeat(99))));
        assert_eq!(notice.pipelines, [pipeline]);
    }

    #[test]
    fn the_pipelines_attribute_stops_short_of_100_kb() {
        let arns: Vec<String> = (0..1000)
            .map(|i| arn(&format!("{}{i:03}", "p".repeat(253)), "a"))
            .collect();
        let r = report(
            false,
            arns.iter()
                .map(|a| (a.as_str(), Outcome::StopRequested))
                .collect(),
        );
        let notice = chat_notice(&r, context()).unwrap();
        let json = serde_json::to_string(&notice.pipelines).unwrap();
        assert!(json.len() <= MAX_EXECUTION_BYTES, "{}", json.len());
        assert!(
            json.len() > MAX_EXECUTION_BYTES - 260,
            "as many as fit: {}",
            json.len()
        );
        assert_eq!(
            notice.pipelines[..],
            arns.iter()
                .map(|a| notification::pipeline_of(a))
                .collect::<Vec<_>>()[..notice.pipelines.len()]
        );
        assert_eq!(notice.resources.len(), 1000);
        assert!(message(&notice)["content"]["title"]
            .as_str()
            .unwrap()
            .ends_with("1000 executions of 1000 SageMaker pipelines"));
    }

    #[test]
    fn runtimes_read_at_a_glance() {
        for (minutes, text) in [
            (0, "0m"),
            (47, "47m"),
            (60, "1h"),
            (312, "5h 12m"),
            (1440, "1d"),
            (1441, "1d"),
            (1530, "1d 1h"),
            (3 * 1440 + 125, "3d 2h"),
        ] {
            assert_eq!(
                runtime(Duration::from_secs(minutes * 60 + 30)),
                text,
                "{minutes}"
            );
        }
    }
}
