//! The chat notification against the custom-notification schema of Amazon Q
//! Developer in chat applications, written down in
//! `tests/chat-notification.schema.json` (from
//! <https://docs.aws.amazon.com/chatbot/latest/adminguide/custom-notifs.html>):
//! for every sample event in `events/`, as a plain stop and as a guard run,
//! and for the largest messages the function can write.
//!
//! No JSON Schema crate is a dependency: `problems` checks the keywords the
//! schema file uses (type, required, properties, additionalProperties, enum,
//! minLength, maxLength, items), and fails on any other, so the file cannot
//! say more than is checked.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use stopper_core::arn::Scope;
use stopper_core::chat::chat_notice;
use stopper_core::config::Config;
use stopper_core::guard::GuardSummary;
use stopper_core::limit::{GuardedRun, Limit, LimitSource, MaxRuntime};
use stopper_core::notification::Context;
use stopper_core::plan::prepare;
use stopper_core::report::{ExecutionReport, Outcome, Report};
use stopper_core::trigger::{Cause, HttpFlavor, Trigger};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn events_file(name: &str) -> String {
    std::fs::read_to_string(root().join("events").join(name)).unwrap()
}

fn schema() -> Value {
    let text = std::fs::read_to_string(root().join("tests/chat-notification.schema.json"))
        .expect("tests/chat-notification.schema.json");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// What makes `value` not an instance of `schema`, each with where.
fn problems(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rules = schema.as_object().expect("a schema is an object");
    for keyword in rules.keys() {
        assert!(
            [
                "$schema",
                "$comment",
                "title",
                "type",
                "required",
                "properties",
                "additionalProperties",
                "enum",
                "minLength",
                "maxLength",
                "items",
            ]
            .contains(&keyword.as_str()),
            "{at}: the schema uses {keyword}, which this check does not know"
        );
    }
    if let Some(kind) = rules.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            other => panic!("{at}: type {other} is not checked"),
        };
        if !ok {
            return vec![format!("{at}: not of type {kind}")];
        }
    }
    if let Some(allowed) = rules.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            found.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if rules
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| chars < min)
        {
            found.push(format!("{at}: shorter than minLength"));
        }
        if rules
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|max| chars > max)
        {
            found.push(format!("{at}: {chars} characters, over maxLength"));
        }
    }
    if let (Some(items), Some(array)) = (rules.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            found.extend(problems(items, item, &format!("{at}[{i}]")));
        }
    }
    if let Some(object) = value.as_object() {
        for key in rules
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap();
            if !object.contains_key(key) {
                found.push(format!("{at}: {key} is required"));
            }
        }
        let properties = rules.get("properties").and_then(Value::as_object);
        for (key, member) in object {
            let at = format!("{at}.{key}");
            match (
                properties.and_then(|p| p.get(key)),
                rules.get("additionalProperties"),
            ) {
                (Some(rule), _) => found.extend(problems(rule, member, &at)),
                (None, Some(Value::Bool(false))) => found.push(format!("{at}: not in the schema")),
                (None, Some(rule @ Value::Object(_))) => found.extend(problems(rule, member, &at)),
                (None, _) => {}
            }
        }
    }
    found
}

fn check(message: &str) {
    let value: Value = serde_json::from_str(message).expect("the chat message is JSON");
    let found = problems(&schema(), &value, "$");
    assert!(found.is_empty(), "{found:?}\n{message}");
}

#[test]
fn the_check_catches_what_the_schema_forbids() {
    let good = json!({
        "version": "1.0", "source": "custom", "id": "r",
        "content": {"textType": "client-markdown", "title": "t", "description": "d", "keywords": ["k"]},
        "metadata": {"summary": "s", "eventType": "e", "relatedResources": ["a"],
                     "additionalContext": {"RequestId": "r"}}
    });
    let schema = schema();
    assert_eq!(problems(&schema, &good, "$"), Vec::<String>::new());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut value = good.clone();
        edit(&mut value);
        value
    };
    for (value, needle) in [
        (broken(&|v| v["version"] = json!("2.0")), "$.version"),
        (
            broken(&|v| v["source"] = json!("aws.sagemaker")),
            "$.source",
        ),
        (
            broken(&|v| drop(v.as_object_mut().unwrap().remove("version"))),
            "version is required",
        ),
        (
            broken(&|v| drop(v["content"].as_object_mut().unwrap().remove("description"))),
            "description is required",
        ),
        (
            broken(&|v| v["content"]["textType"] = json!("markdown")),
            "$.content.textType",
        ),
        (
            broken(&|v| v["content"]["title"] = json!("t".repeat(151))),
            "$.content.title",
        ),
        (
            broken(&|v| v["content"]["description"] = json!("")),
            "$.content.description",
        ),
        (
            broken(&|v| v["content"]["description"] = json!("é".repeat(3001))),
            "$.content.description",
        ),
        (
            broken(&|v| v["content"]["keywords"] = json!([1])),
            "$.content.keywords[0]",
        ),
        (
            broken(&|v| v["content"]["body"] = json!("x")),
            "$.content.body",
        ),
        (
            broken(&|v| v["metadata"]["additionalContext"]["Count"] = json!(3)),
            "Count",
        ),
        (broken(&|v| v["metadata"] = json!([])), "$.metadata"),
        (broken(&|v| v["extra"] = json!(1)), "$.extra"),
    ] {
        let found = problems(&schema, &value, "$");
        assert!(
            found.iter().any(|p| p.contains(needle)),
            "{needle}: {found:?}"
        );
    }
}

fn arn(pipeline: &str, id: &str) -> String {
    format!("arn:aws:sagemaker:us-east-1:123456789012:pipeline/{pipeline}/execution/{id}")
}

fn guarded(arn: String, minutes: u64, source: LimitSource) -> ExecutionReport {
    ExecutionReport {
        guard: Some(GuardedRun {
            limit: Limit {
                max_runtime: MaxRuntime::from_minutes(minutes).unwrap(),
                source,
            },
            runtime: Duration::from_secs(minutes * 60 + 420),
        }),
        ..ExecutionReport::new(arn, Outcome::StopRequested)
    }
}

fn stops(arns: &[String]) -> Report {
    Report {
        executions: arns
            .iter()
            .map(|a| ExecutionReport::new(a.clone(), Outcome::StopRequested))
            .collect(),
        ..Report::default()
    }
}

fn guard_run(executions: Vec<ExecutionReport>, tag_key: &str) -> Report {
    Report {
        executions,
        guard: Some(Box::new(GuardSummary {
            tag_key: tag_key.into(),
            ..GuardSummary::default()
        })),
        ..Report::default()
    }
}

#[test]
fn every_sample_event_gets_a_chat_message_in_the_schema() {
    let scope =
        Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:stopper").unwrap();
    let config = Config {
        default_pipeline: Some("nightly-training".into()),
        ..Config::default()
    };
    // The samples, and an SNS message that is a request (no sample of its own).
    let mut events: Vec<String> = std::fs::read_dir(root().join("events"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    let mut sns: Value = serde_json::from_str(&events_file("alarm-sns.json")).unwrap();
    sns["Records"][0]["Sns"]["Message"] = json!(r#"{"PipelineName": "nightly-training"}"#);
    events.push(sns.to_string());
    let mut triggers = Vec::new();
    for event in events {
        let prepared = prepare(&event, &config, &scope, "request-1");
        let context = Context {
            trigger: prepared.trigger,
            cause: prepared.cause.as_ref(),
            caller: prepared.caller.as_deref(),
            request_id: "request-1",
            function_name: "stopper",
        };
        let plain = stops(&[arn("nightly-training", "k7xvw1b9q2hj")]);
        let guard = guard_run(
            vec![
                guarded(arn("nightly-training", "a"), 240, LimitSource::Tag),
                guarded(arn("feature-eng", "b"), 90, LimitSource::Default),
            ],
            "pipeline-stopper:max-runtime",
        );
        for report in [plain, guard] {
            check(
                &chat_notice(&report, context)
                    .expect("a stop is notified")
                    .detail,
            );
        }
        triggers.push(prepared.trigger);
    }
    triggers.sort_by_key(|t| t.name());
    triggers.dedup();
    assert_eq!(triggers.len(), 11, "every trigger: {triggers:?}");
}

#[test]
fn the_largest_messages_are_in_the_schema() {
    // 300 executions of 300 pipelines, every name as long as it may be: the
    // longest pipeline names (256), execution ARNs (2,048), tag key (128),
    // caller (256), alarm name (255), request id and function name.
    let long = |c: &str, n: usize| c.repeat(n);
    let arns: Vec<String> = (0..300)
        .map(|i| {
            arn(
                &format!("{}{i:03}", long("p", 253)),
                &format!("{}{i:03}", long("x", 1728)),
            )
        })
        .collect();
    let cause = Cause::Alarm {
        name: long("a", 255),
        state: "ALARM".into(),
    };
    assert!(arns.iter().all(|a| a.len() == 2048));
    let caller = long("c", 256);
    let request_id = long("r", 200);
    let function_name = long("f", 140);
    for trigger in [
        Trigger::AlarmSns,
        Trigger::Http(HttpFlavor::FunctionUrl),
        Trigger::ScheduledEvent,
    ] {
        let context = Context {
            trigger,
            cause: Some(&cause),
            caller: Some(&caller),
            request_id: &request_id,
            function_name: &function_name,
        };
        let guard = guard_run(
            arns.iter()
                .enumerate()
                .map(|(i, a)| {
                    let source = if i % 7 == 0 {
                        LimitSource::Default
                    } else {
                        LimitSource::Tag
                    };
                    guarded(a.clone(), 60 + i as u64, source)
                })
                .collect(),
            &long("k", 128),
        );
        for report in [stops(&arns), guard] {
            let notice = chat_notice(&report, context).unwrap();
            check(&notice.detail);
            let message: Value = serde_json::from_str(&notice.detail).unwrap();
            let description = message["content"]["description"].as_str().unwrap();
            // Every line is there: nothing was cut to fit.
            assert!(description.contains("\nRequest: `"), "{description}");
            assert!(description.contains("and 295 more"), "{description}");
            // Far within SNS's 256 KB, with the Pipelines attribute.
            let attribute = serde_json::to_string(&notice.pipelines).unwrap().len();
            assert_eq!(notice.pipelines.len(), 300);
            assert!(notice.detail.len() < 16 * 1024, "{}", notice.detail.len());
            assert!(notice.detail.len() + attribute < 128 * 1024);
            assert!(notice.subject.len() < 100 && notice.subject.is_ascii());
        }
    }
}
