//! The properties the fuzz target (fuzz_targets/decode_and_plan.rs) checks,
//! also run over the seeds by an ordinary test (tests/seeds.rs).
//!
//! Raw bytes → event → trigger → targets → plan → reply, as the function runs
//! them before and after its SageMaker calls. Nothing may panic, hang or
//! allocate without bound, and what the planner accepts is checked here with
//! this file's own code, never with the validators `plan` already called:
//!
//! 1. every planned execution ARN meets SageMaker's documented pattern and
//!    length, and lies in the function's partition, region and account;
//! 2. nothing is planned that the input does not name: each planned execution
//!    ARN is a string of the input, each planned pipeline is named in the
//!    input or is the configured default (then alone: the default never stands
//!    beside a named target);
//! 3. every answer's reply (ignored, refused, or a plan acted on with assorted
//!    outcomes) is valid JSON of a bounded size, in the shape of its trigger;
//! 4. every answer's metrics record is one line of bounded JSON whose counts
//!    add up to its executions, and its stop notices name exactly the
//!    executions whose stop was requested (none in a dry run), each once; its
//!    chat notification, one or none likewise, stays within its bounds.
//!
//! The first byte picks where the bytes go: `{` (or anything else) the whole
//! Lambda event; 0x01 the body of a function URL request; 0x02 the message
//! of an SNS notification. So hand-typed bodies and SNS messages are reached
//! without the fuzzer having to rebuild an HTTP or SNS envelope.

use std::collections::HashSet;
use std::sync::OnceLock;

use base64::Engine as _;
use regex::Regex;
use serde_json::{json, Value};
use stopper_core::arn::Scope;
use stopper_core::chat::{chat_notice, MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS};
use stopper_core::config::{AllowList, Config};
use stopper_core::error::{ErrorKind, StopError, MAX_MESSAGE_BYTES};
use stopper_core::metrics::{Record, Tally};
use stopper_core::notification::{notices, Context};
use stopper_core::plan::{plan, Plan};
use stopper_core::reply::shape;
use stopper_core::report::{
    Answer, ExecutionReport, Force, Outcome, PipelineFailure, Report, StepReport,
};
use stopper_core::status::ExecutionStatus;
use stopper_core::steps::StepKind;
use stopper_core::trigger::{decode, Action, Cause, Trigger};

/// The function's scope in this target, and its parts as written here.
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:stopper";
const PARTITION: &str = "aws";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";
const DEFAULT_PIPELINE: &str = "nightly-training";

/// SageMaker's documented constraint on `PipelineExecutionArn`, and its length.
const DOCUMENTED: &str =
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$";
const DOCUMENTED_MAX_LEN: usize = 2048;

/// Lambda's limit on a synchronous response; no reply may come near it.
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

fn documented() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(DOCUMENTED).expect("the documented pattern"))
}

fn event_from(data: &[u8]) -> Option<String> {
    match data.split_first() {
        Some((1, body)) => {
            let body = std::str::from_utf8(body).ok()?;
            Some(json!({
                "version": "2.0", "rawPath": "/", "rawQueryString": "", "headers": {},
                "requestContext": {
                    "accountId": "123456789012", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
                    "domainPrefix": "x", "requestId": "fuzz-request", "routeKey": "$default", "stage": "$default",
                    "time": "22/Nov/2026:06:00:00 +0000", "timeEpoch": 1795327200000u64,
                    "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "fuzz"}
                },
                "body": body, "isBase64Encoded": false
            }).to_string())
        }
        Some((2, message)) => {
            let message = std::str::from_utf8(message).ok()?;
            Some(json!({"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
                "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                        "Subject": null, "Message": message, "Timestamp": "2026-11-22T05:12:31.187Z",
                        "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                        "MessageAttributes": {}}
            }]}).to_string())
        }
        // The raw text, as the function receives it (duplicate keys and all).
        _ => std::str::from_utf8(data).ok().map(str::to_owned),
    }
}

/// Every string the input holds, as its reader sees it: JSON escapes undone,
/// and strings that are themselves JSON (an SNS message, an HTTP body) or
/// base64 of JSON (an HTTP body with `isBase64Encoded`) opened in turn.
fn strings_of(text: &str) -> HashSet<String> {
    fn walk(value: &Value, depth: usize, out: &mut HashSet<String>) {
        match value {
            Value::String(s) => open(s, depth, out),
            Value::Array(items) => items.iter().for_each(|v| walk(v, depth, out)),
            Value::Object(fields) => {
                for (key, v) in fields {
                    out.insert(key.clone());
                    walk(v, depth, out);
                }
            }
            _ => {}
        }
    }
    fn open(s: &str, depth: usize, out: &mut HashSet<String>) {
        if !out.insert(s.to_owned()) || depth == 0 {
            return;
        }
        if let Ok(inner) = serde_json::from_str::<Value>(s) {
            walk(&inner, depth - 1, out);
        }
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s.trim()) {
            if let Ok(decoded) = String::from_utf8(bytes) {
                open(&decoded, depth - 1, out);
            }
        }
    }
    let mut out = HashSet::new();
    open(text, 4, &mut out);
    out
}

/// Property 1, with this file's own code: the documented pattern and length,
/// and the function's partition, region and account.
fn check_execution_arn(arn: &str) {
    assert!(
        arn.chars().count() <= DOCUMENTED_MAX_LEN,
        "planned an ARN of {} characters",
        arn.chars().count()
    );
    assert!(
        documented().is_match(arn),
        "planned {arn:?}, outside the documented pattern"
    );
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    assert_eq!(
        (fields[1], fields[3], fields[4]),
        (PARTITION, REGION, ACCOUNT),
        "planned {arn:?}, outside the function's scope"
    );
}

/// The allow-list of the second configuration, `nightly-*,exp-?`, matched
/// here by hand (case-insensitively, as documented).
fn allowed_by_hand(pipeline: &str) -> bool {
    let p = pipeline.to_ascii_lowercase();
    p.starts_with("nightly-") || (p.starts_with("exp-") && p.chars().count() == 5)
}

/// The pipeline an execution ARN names: between `:pipeline/` and `/execution/`.
fn pipeline_of(arn: &str) -> &str {
    let rest = &arn[arn.find(":pipeline/").expect("checked above") + ":pipeline/".len()..];
    &rest[..rest.find("/execution/").expect("checked above")]
}

/// Properties 1 and 2 for one accepted plan.
fn check_plan(planned: &Plan, config: &Config, input: &HashSet<String>) {
    // A guard run finds its own targets: it names none, and sweeps nothing
    // (never the default pipeline).
    if planned.guard().is_some() {
        assert!(
            planned.executions().is_empty() && planned.pipelines().is_empty(),
            "a guard run planned targets of its own"
        );
    }
    assert!(
        planned.executions().len() <= 100,
        "planned {} executions",
        planned.executions().len()
    );
    let allow_listed = config.default_pipeline.is_some();
    let mut seen = HashSet::new();
    for target in planned.executions() {
        check_execution_arn(&target.arn);
        assert!(
            input.contains(&target.arn),
            "planned {:?}, which the input does not name",
            target.arn
        );
        assert!(
            seen.insert(target.arn.as_str()),
            "planned {:?} twice",
            target.arn
        );
        let n = target.token.chars().count();
        assert!((32..=128).contains(&n), "a token of {n} characters");
        if allow_listed {
            assert!(
                allowed_by_hand(pipeline_of(&target.arn)),
                "planned {:?} outside the allow-list",
                target.arn
            );
        }
    }
    for pipeline in planned.pipelines() {
        let named = input.iter().any(|s| s.contains(pipeline.as_str()));
        let default = config.default_pipeline.as_deref() == Some(pipeline.as_str());
        assert!(
            named || default,
            "planned pipeline {pipeline:?}, which the input does not name"
        );
        if !named {
            // The default stands in only for an event that names nothing.
            assert!(
                planned.executions().is_empty() && planned.pipelines().len() == 1,
                "the default pipeline planned beside named targets: {planned:?}"
            );
        }
        assert!(
            !pipeline.is_empty()
                && pipeline.len() <= 256
                && pipeline
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "planned pipeline {pipeline:?}, not a pipeline name"
        );
        if allow_listed {
            assert!(
                allowed_by_hand(pipeline),
                "planned pipeline {pipeline:?} outside the allow-list"
            );
        }
    }
}

/// Assorted outcomes for the planned targets, picked by `seed`: every kind of
/// outcome, status, blocking step and force result, with messages that quote
/// the input (bounded by `StopError`) as SageMaker's answers would be quoted.
fn report_for(planned: &Plan, seed: u8, quoted: &str) -> Report {
    let kinds = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Throttled,
        ErrorKind::Upstream,
        ErrorKind::Unavailable,
        ErrorKind::Forbidden,
    ];
    let error = |i: usize| StopError::new(kinds[i % kinds.len()], format!("target {i}: {quoted}"));
    let mut executions: Vec<ExecutionReport> = planned
        .executions()
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let pick = (i + seed as usize) % 7;
            let outcome = match pick {
                0 => Outcome::StopRequested,
                1 => Outcome::AlreadyFinished {
                    status: ExecutionStatus::Succeeded,
                },
                2 => Outcome::AlreadyFinished {
                    status: ExecutionStatus::parse(quoted),
                },
                3 => Outcome::WouldStop,
                _ => Outcome::Failed(error(i)),
            };
            let mut report = ExecutionReport::new(target.arn.clone(), outcome);
            if pick.is_multiple_of(2) {
                report.status = Some(ExecutionStatus::Stopping);
                report.blocking_steps = vec![
                    StepReport {
                        name: quoted.chars().take(256).collect(),
                        kind: StepKind::Callback {
                            queue_url: Some(quoted.chars().take(512).collect()),
                        },
                        force: [
                            None,
                            Some(Force::Sent),
                            Some(Force::WouldSend),
                            Some(Force::Failed(error(i))),
                        ][(i + seed as usize) % 4]
                            .clone(),
                    },
                    StepReport {
                        name: "score".into(),
                        kind: StepKind::Lambda { function_arn: None },
                        force: [
                            None,
                            Some(Force::NotPossible),
                            Some(Force::StepAlreadyEnded),
                        ][i % 3]
                            .clone(),
                    },
                ];
            }
            report
        })
        .collect();
    // A sweep finds executions the plan could not name: one per pipeline.
    let mut pipeline_failures = Vec::new();
    for (i, pipeline) in planned.pipelines().iter().enumerate() {
        if (i + seed as usize).is_multiple_of(3) {
            pipeline_failures.push(PipelineFailure {
                pipeline: pipeline.clone(),
                error: error(i),
            });
        } else {
            let arn = format!(
                "arn:aws:sagemaker:us-east-1:123456789012:pipeline/{pipeline}/execution/swept{i}"
            );
            executions.push(ExecutionReport::new(arn, Outcome::StopRequested));
        }
    }
    Report {
        executions,
        pipeline_failures,
        pipelines_swept: planned.pipelines().to_vec(),
        single: planned.is_single(),
        dry_run: planned.options.dry_run,
        guard: None,
    }
}

/// Property 4: the event's metrics record and stop notices.
fn check_operations(trigger: Trigger, cause: Option<&Cause>, answer: &Answer) {
    let tally = Tally::of(answer);
    let line = Record {
        namespace: "SageMakerPipelineStopper",
        function_name: "fuzz",
        trigger,
        tally,
        timestamp_ms: 1,
        request_id: "r",
        caller: Some("arn:aws:iam::123456789012:user/\u{1b}[31m\n"),
    }
    .to_line();
    assert!(!line.contains('\n') && line.len() < 4096, "{line}");
    let record: Value = serde_json::from_str(&line).expect("the record is JSON");
    assert_eq!(record["Events"], 1);
    let Answer::Acted(report) = answer else {
        assert_eq!(tally.refused + tally.ignored, 1);
        return;
    };
    let failed_executions = report
        .executions
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Failed(_)))
        .count() as u64;
    assert_eq!(
        tally.stops_requested + tally.already_finished + tally.would_stop + failed_executions,
        report.executions.len() as u64
    );
    let context = Context {
        trigger,
        cause,
        caller: None,
        request_id: "r",
        function_name: "fuzz",
    };
    let sent = notices(report, context);
    let notified: Vec<&String> = sent.iter().flat_map(|n| &n.resources).collect();
    let requested: Vec<&String> = report
        .executions
        .iter()
        .filter(|e| e.outcome == Outcome::StopRequested && !report.dry_run)
        .map(|e| &e.arn)
        .collect();
    assert_eq!(notified, requested);
    for notice in &sent {
        let entry = notice.detail.len() + notice.resources.iter().map(String::len).sum::<usize>();
        assert!(entry < 256 * 1024, "a notice of {entry} bytes");
        assert!(notice.subject.len() < 100 && notice.subject.is_ascii());
    }
    let hostile = Context {
        caller: Some("arn:aws:iam::123456789012:user/`<!channel>`\n"),
        ..context
    };
    let chat = chat_notice(report, hostile);
    assert_eq!(chat.is_some(), !requested.is_empty());
    if let Some(chat) = chat {
        assert_eq!(chat.resources.iter().collect::<Vec<_>>(), requested);
        assert!(
            chat.detail.len() < 32 * 1024,
            "a chat message of {} bytes",
            chat.detail.len()
        );
        let message: Value = serde_json::from_str(&chat.detail).expect("the chat message is JSON");
        let text = |key: &str| {
            message["content"][key]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert!((1..=MAX_TITLE_CHARS).contains(&text("title").chars().count()));
        let description = text("description");
        assert!((1..=MAX_DESCRIPTION_CHARS).contains(&description.chars().count()));
        assert!(
            !description.contains("<!") && !description.contains("\n`"),
            "{description}"
        );
    }
}

/// Property 3: the reply to `answer` is valid JSON of a bounded size, in the
/// shape of its trigger (an HTTP trigger's body is JSON text of its own), or
/// the error that fails the invocation, itself bounded.
fn check_reply(trigger: Trigger, answer: Answer, entries: usize) {
    // Per entry: an ARN (2048) and up to three bounded messages, JSON-escaped
    // (at most 6 bytes a character), and escaped again inside an HTTP body.
    let per_entry = 2 * 6 * (DOCUMENTED_MAX_LEN + 3 * (MAX_MESSAGE_BYTES + 256) + 1024);
    let bound = (64 * 1024 + entries * per_entry).min(LAMBDA_RESPONSE_LIMIT);
    match shape(trigger, answer) {
        Ok(reply) => {
            let text = serde_json::to_string(&reply).expect("a reply serialises");
            assert!(
                text.len() <= bound,
                "a reply of {} bytes for {entries} entries",
                text.len()
            );
            let value: Value = serde_json::from_str(&text).expect("a reply is valid JSON");
            if trigger.http().is_some() {
                let status = value["statusCode"]
                    .as_u64()
                    .expect("an HTTP reply has a status");
                assert!((200..600).contains(&status), "HTTP status {status}");
                let body = value["body"].as_str().expect("an HTTP reply has a body");
                let body: Value = serde_json::from_str(body).expect("an HTTP body is JSON");
                assert!(body.is_object(), "an HTTP body is a JSON object");
            } else {
                assert!(value.is_object(), "a reply is a JSON object: {value}");
            }
        }
        Err(error) => {
            assert!(
                trigger.http().is_none(),
                "an HTTP trigger always gets a response"
            );
            let text = serde_json::to_string(&json!({
                "errorType": error.kind.error_type(), "errorMessage": error.message,
            }))
            .expect("an error serialises");
            assert!(
                text.len() <= bound,
                "an error of {} bytes for {entries} entries",
                text.len()
            );
            assert!(!error.message.chars().any(char::is_control));
        }
    }
}

/// The properties above, for one input.
pub fn check(data: &[u8]) {
    let Some(event) = event_from(data) else {
        return;
    };
    let decoded = decode(&event);
    let selection = match &decoded.action {
        Ok(Action::Stop(selection)) => selection,
        Ok(Action::Ignore(reason)) => {
            check_operations(
                decoded.trigger,
                decoded.cause.as_ref(),
                &Answer::Ignored(reason.clone()),
            );
            check_reply(decoded.trigger, Answer::Ignored(reason.clone()), 1);
            return;
        }
        Err(error) => {
            // Whatever the input, a refusal's message is bounded and carries
            // no control character (it reaches replies, logs and terminals).
            assert!(error.message.len() <= MAX_MESSAGE_BYTES + 64);
            assert!(!error.message.chars().any(char::is_control));
            check_reply(decoded.trigger, Answer::Refused(error.clone()), 1);
            return;
        }
    };
    let scope = Scope::from_function_arn(FUNCTION_ARN).expect("a valid function ARN");
    let configs = [
        Config::default(),
        Config {
            default_pipeline: Some(DEFAULT_PIPELINE.into()),
            allowed: AllowList::parse("nightly-*,exp-?").unwrap(),
            ..Config::default()
        },
    ];
    let input = strings_of(&event);
    let seed = data.last().copied().unwrap_or(0);
    let quoted: String = event.chars().skip(seed as usize).take(300).collect();
    for config in &configs {
        let identity = decoded.identity.as_deref().unwrap_or("lambda:fuzz");
        let planned = match plan(selection, config, &scope, identity) {
            Ok(planned) => planned,
            Err(error) => {
                check_reply(decoded.trigger, Answer::Refused(error), 1);
                continue;
            }
        };
        check_plan(&planned, config, &input);
        let report = report_for(&planned, seed, &quoted);
        let entries = report.executions.len() + report.pipeline_failures.len();
        let answer = Answer::Acted(report);
        check_operations(decoded.trigger, decoded.cause.as_ref(), &answer);
        check_reply(decoded.trigger, answer, entries.max(1));
    }
}
