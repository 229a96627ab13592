//! Every sample payload in `events/` lands in the trigger it must, naming
//! exactly what it must. A new file in `events/` without a case here fails.

use std::path::PathBuf;

use serde_json::{json, Value};
use stopper_core::config::Config;
use stopper_core::options::Options;
use stopper_core::plan::plan;
use stopper_core::trigger::{decode, Action, Cause, HttpFlavor, Selection, Trigger};
use stopper_core::ErrorKind;

const A: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";
const B: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/p3m8zq0d5c1r";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// What an event names. `trigger_allows_default`: the default pipeline may
/// stand in, which it then does only when the event names nothing.
fn selection(arns: &[&str], pipelines: &[&str], trigger_allows_default: bool) -> Selection {
    let default_allowed = trigger_allows_default && arns.is_empty() && pipelines.is_empty();
    Selection {
        execution_arns: arns.iter().map(|s| s.to_string()).collect(),
        pipelines: pipelines.iter().map(|s| s.to_string()).collect(),
        token: None,
        default_allowed,
        guard: false,
        options: Options::default(),
    }
}

/// (file, trigger, identity, what it asks)
fn expectations() -> Vec<(&'static str, Trigger, Option<&'static str>, Action)> {
    let stop = Action::Stop;
    vec![
        ("direct.json", Trigger::Direct, None, stop(selection(&[A], &[], true))),
        ("scheduler-input.json", Trigger::Direct, None, stop(selection(&[], &["nightly-training"], true))),
        (
            "guard-schedule.json",
            Trigger::Direct,
            None,
            stop(Selection { guard: true, ..selection(&[], &[], false) }),
        ),
        (
            "eventbridge-custom.json",
            Trigger::EventBridge,
            Some("eventbridge:6a7e8feb-b491-4cf7-a9f1-bf3703467718"),
            stop(selection(&[A, B], &[], true)),
        ),
        (
            "eventbridge-scheduled.json",
            Trigger::ScheduledEvent,
            Some("eventbridge:53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"),
            stop(selection(&[], &[], true)),
        ),
        (
            "sagemaker-status-change.json",
            Trigger::SageMakerStatusChange,
            Some("eventbridge:315c1398-40ff-a850-213b-158f73e60175"),
            stop(selection(&[A], &[], false)),
        ),
        (
            "alarm-eventbridge.json",
            Trigger::AlarmEventBridge,
            Some("eventbridge:c4c1c1c9-6542-e61b-6ef0-8c4d36933a92"),
            stop(selection(&[], &["nightly-training"], true)),
        ),
        (
            "alarm-eventbridge-ok.json",
            Trigger::AlarmEventBridge,
            Some("eventbridge:0f9ae1d2-7b2e-4c1e-9e3a-5d1b2f7c9a10"),
            Action::Ignore("alarm \"nightly-training-too-long\" is in state OK, not ALARM; nothing to stop".into()),
        ),
        (
            "alarm-lambda-action.json",
            Trigger::AlarmLambdaAction,
            Some("alarm:arn:aws:cloudwatch:us-east-1:123456789012:alarm:nightly-training-too-long:2026-11-22T05:12:31.123+00:00"),
            stop(selection(&[], &["nightly-training"], true)),
        ),
        (
            "alarm-sns.json",
            Trigger::AlarmSns,
            Some("sns:95df01b4-ee98-5cb9-9903-4c221d41eb5e"),
            stop(selection(&[], &["nightly-training"], true)),
        ),
        (
            "http-rest-api.json",
            Trigger::Http(HttpFlavor::RestApi),
            Some("http:c6af9ac6-7b61-11e6-9a41-93e8deadbeef"),
            stop(selection(&[A], &[], false)),
        ),
        (
            "http-api.json",
            Trigger::Http(HttpFlavor::HttpApi),
            Some("http:JKJaXmPLvHcESHA="),
            stop(selection(&[A], &[], false)),
        ),
        (
            "function-url.json",
            Trigger::Http(HttpFlavor::FunctionUrl),
            Some("http:f3c1a6d2-0a4b-4c8e-9f1d-2b3c4d5e6f70"),
            stop(selection(&[A, B], &[], false)),
        ),
    ]
}

#[test]
fn every_sample_event_lands_in_its_trigger_and_names_its_targets() {
    for (file, trigger, identity, action) in expectations() {
        let decoded = decode(&load(file).to_string());
        assert_eq!(decoded.trigger, trigger, "{file}");
        assert_eq!(decoded.identity.as_deref(), identity, "{file}");
        assert_eq!(decoded.action, Ok(action), "{file}");
    }
}

/// What set each sample off, as the chat notification says it: the alarm
/// (all three deliveries) and the scheduled rule; nothing for the others.
#[test]
fn alarms_and_scheduled_rules_are_named_as_the_cause() {
    let alarm = |name: &str, state: &str| {
        Some(Cause::Alarm {
            name: name.into(),
            state: state.into(),
        })
    };
    for (file, ..) in expectations() {
        let expected = match file {
            "alarm-eventbridge.json" | "alarm-lambda-action.json" => {
                alarm("nightly-training-too-long", "ALARM")
            }
            "alarm-eventbridge-ok.json" => alarm("nightly-training-too-long", "OK"),
            "alarm-sns.json" => alarm("nightly-training-cost", "ALARM"),
            "eventbridge-scheduled.json" => {
                Some(Cause::Rule("stop-nightly-training-at-0600".into()))
            }
            _ => None,
        };
        assert_eq!(decode(&load(file).to_string()).cause, expected, "{file}");
    }
    // A rule on a custom bus is named with its bus; resources naming no rule
    // name none.
    let on_bus = with("eventbridge-scheduled.json", |e| {
        e["resources"] = json!(["arn:aws:events:us-east-1:123456789012:rule/ops/nightly"])
    });
    assert_eq!(
        decode(&on_bus.to_string()).cause,
        Some(Cause::Rule("ops/nightly".into()))
    );
    let none = with("eventbridge-scheduled.json", |e| e["resources"] = json!([]));
    assert_eq!(decode(&none.to_string()).cause, None);
}

#[test]
fn every_file_in_events_has_an_expectation() {
    let covered: Vec<&str> = expectations().iter().map(|e| e.0).collect();
    let mut files = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".json") {
            files += 1;
            assert!(
                covered.contains(&name.as_str()),
                "events/{name} has no expectation in this test"
            );
        }
    }
    assert_eq!(files, covered.len());
}

#[test]
fn every_sample_event_plans_within_its_account_and_region() {
    let scope = stopper_core::arn::Scope::from_function_arn(
        "arn:aws:lambda:us-east-1:123456789012:function:stopper",
    );
    let config = Config {
        default_pipeline: Some("nightly-training".into()),
        ..Config::default()
    };
    for (file, ..) in expectations() {
        let decoded = decode(&load(file).to_string());
        if let Ok(Action::Stop(selection)) = decoded.action {
            let p = plan(&selection, &config, scope.as_ref().unwrap(), "id")
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(
                !p.executions().is_empty() || !p.pipelines().is_empty() || p.guard().is_some(),
                "{file}"
            );
            assert_eq!(p.guard().is_some(), file == "guard-schedule.json", "{file}");
            if p.guard().is_some() {
                // The guard finds its own targets: never the default pipeline.
                assert!(
                    p.executions().is_empty() && p.pipelines().is_empty(),
                    "{file}"
                );
            }
        }
    }
}

fn with(file: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = load(file);
    edit(&mut event);
    event
}

#[test]
fn http_methods_other_than_post_are_405_on_every_front_end() {
    let get_v1 = with("http-rest-api.json", |e| e["httpMethod"] = "GET".into());
    let get_v2 = with("http-api.json", |e| {
        e["requestContext"]["http"]["method"] = "GET".into()
    });
    let put_url = with("function-url.json", |e| {
        e["requestContext"]["http"]["method"] = "PUT".into()
    });
    for event in [get_v1, get_v2, put_url] {
        let decoded = decode(&event.to_string());
        assert!(decoded.trigger.http().is_some());
        assert_eq!(
            decoded.action.unwrap_err().kind,
            ErrorKind::MethodNotAllowed
        );
    }
}

#[test]
fn http_bodies_that_are_not_a_json_object_are_400() {
    for (body, base64, needle) in [
        (Value::Null, false, "empty"),
        ("".into(), false, "empty"),
        ("not json".into(), false, "not valid JSON"),
        ("[1,2]".into(), false, "JSON object"),
        (
            "{\"PipelineExecutionArn\": 5}".into(),
            false,
            "PipelineExecutionArn",
        ),
        ("!!!".into(), true, "base64"),
        ("//79/Q==".into(), true, "UTF-8"),
        (
            format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into(),
            false,
            "JSON object",
        ),
    ] {
        let event = with("http-api.json", |e| {
            e["body"] = body.clone();
            e["isBase64Encoded"] = base64.into();
        });
        let err = decode(&event.to_string()).action.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(err.message.contains(needle), "{body}: {}", err.message);
    }
}

#[test]
fn alarms_act_only_on_alarm_in_every_delivery() {
    let ok_action = with("alarm-lambda-action.json", |e| {
        e["alarmData"]["state"]["value"] = "OK".into()
    });
    let insufficient_sns = with("alarm-sns.json", |e| {
        let message = e["Records"][0]["Sns"]["Message"].as_str().unwrap().replace(
            "\"NewStateValue\":\"ALARM\"",
            "\"NewStateValue\":\"INSUFFICIENT_DATA\"",
        );
        e["Records"][0]["Sns"]["Message"] = message.into();
    });
    for event in [
        ok_action,
        insufficient_sns,
        load("alarm-eventbridge-ok.json"),
    ] {
        assert!(matches!(
            decode(&event.to_string()).action,
            Ok(Action::Ignore(_))
        ));
    }
}

#[test]
fn an_alarm_dimension_naming_an_execution_wins_over_the_pipeline() {
    let event = with("alarm-eventbridge.json", |e| {
        e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]
            ["PipelineExecutionArn"] = A.into();
    });
    assert_eq!(
        decode(&event.to_string()).action,
        Ok(Action::Stop(selection(&[A], &[], true)))
    );
}

#[test]
fn a_composite_alarm_without_metrics_falls_back_to_configuration() {
    let event = with("alarm-eventbridge.json", |e| {
        e["detail"]["configuration"] = serde_json::json!({"alarmRule": "ALARM(a) OR ALARM(b)"});
    });
    assert_eq!(
        decode(&event.to_string()).action,
        Ok(Action::Stop(selection(&[], &[], true)))
    );
}

#[test]
fn a_finished_execution_in_a_sagemaker_event_is_left_alone() {
    let event = with("sagemaker-status-change.json", |e| {
        e["detail"]["currentPipelineExecutionStatus"] = "Succeeded".into();
    });
    assert!(
        matches!(decode(&event.to_string()).action, Ok(Action::Ignore(m)) if m.contains("Succeeded"))
    );
}

#[test]
fn an_sns_message_that_is_not_an_alarm_is_a_request() {
    let event = with("alarm-sns.json", |e| {
        e["Records"][0]["Sns"]["Message"] = format!("{{\"PipelineExecutionArn\": \"{A}\"}}").into();
    });
    let decoded = decode(&event.to_string());
    assert_eq!(decoded.trigger, Trigger::Sns);
    assert_eq!(decoded.action, Ok(Action::Stop(selection(&[A], &[], true))));
}

#[test]
fn misrouted_and_malformed_events_are_clear_validation_errors() {
    let s3 = serde_json::json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]});
    let websocket =
        serde_json::json!({"requestContext": {"routeKey": "$connect", "eventType": "CONNECT"}});
    let bad_eventbridge =
        serde_json::json!({"detail-type": "x", "source": "y", "detail": "not an object"});
    let truncated_alarm =
        serde_json::json!({"source": "aws.cloudwatch", "alarmData": {"alarmName": "a"}});
    for (event, needle) in [
        (s3, "aws:s3"),
        (websocket, "WebSocket"),
        (bad_eventbridge, "EventBridge detail"),
        (truncated_alarm, "alarm"),
        (serde_json::json!([1]), "JSON object"),
        (
            serde_json::json!({"PipelineExecutionArn": A, "Force": "yes please"}),
            "Force",
        ),
    ] {
        let err = decode(&event.to_string()).action.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(err.message.contains(needle), "{event}: {}", err.message);
    }
}

/// Rewrites the alarm inside `alarm-sns.json`'s SNS message.
fn sns_alarm(edit: impl Fn(&mut Value)) -> Value {
    with("alarm-sns.json", |e| {
        let text = e["Records"][0]["Sns"]["Message"].as_str().unwrap();
        let mut alarm: Value = serde_json::from_str(text).unwrap();
        edit(&mut alarm);
        e["Records"][0]["Sns"]["Message"] = alarm.to_string().into();
    })
}

#[test]
fn anomaly_detection_and_composite_alarms_through_sns_are_understood() {
    // Anomaly detection: no Threshold, a ThresholdMetricId and metric queries.
    let anomaly = sns_alarm(|alarm| {
        let trigger = alarm["Trigger"].as_object_mut().unwrap();
        for key in [
            "Threshold",
            "MetricName",
            "Namespace",
            "Statistic",
            "Dimensions",
        ] {
            trigger.remove(key);
        }
        trigger.insert("ThresholdMetricId".into(), "ad1".into());
        trigger.insert(
            "Metrics".into(),
            serde_json::json!([
                {"Id": "m1", "ReturnData": true, "MetricStat": {"Metric": {
                    "Namespace": "AWS/Sagemaker/ModelBuildingPipeline", "MetricName": "ExecutionDuration",
                    "Dimensions": [{"value": "nightly-training", "name": "PipelineName"}]},
                    "Period": 300, "Stat": "Maximum"}},
                {"Id": "ad1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "expected", "ReturnData": true}
            ]),
        );
    });
    assert_eq!(
        decode(&anomaly.to_string()).action,
        Ok(Action::Stop(selection(&[], &["nightly-training"], true)))
    );
    // Composite: no Trigger at all; the configured default pipeline applies.
    let composite = sns_alarm(|alarm| {
        let fields = alarm.as_object_mut().unwrap();
        fields.remove("Trigger");
        fields.insert("AlarmRule".into(), "ALARM(a) OR ALARM(b)".into());
    });
    assert_eq!(
        decode(&composite.to_string()).action,
        Ok(Action::Stop(selection(&[], &[], true)))
    );
}

/// What happens to `event` with `default` as DEFAULT_PIPELINE_NAME, in this
/// function's account and region: the pipelines a sweep would stop, or why
/// the event is refused (by the decoder or the planner).
fn with_default(event: &str, default: &str) -> Result<Vec<String>, stopper_core::StopError> {
    let scope = stopper_core::arn::Scope::for_region("us-east-1", Some("123456789012")).unwrap();
    let config = Config {
        default_pipeline: Some(default.into()),
        ..Config::default()
    };
    match decode(event).action? {
        Action::Stop(s) => plan(&s, &config, &scope, "id").map(|p| p.pipelines().to_vec()),
        other => panic!("{event}: {other:?}"),
    }
}

/// Issue 12: an event whose target field is present but empty, null or blank
/// is refused on every trigger that may fall back to the default pipeline;
/// only one with no target field at all reaches `DEFAULT_PIPELINE_NAME`.
#[test]
fn present_but_empty_targets_never_widen_into_the_default_sweep() {
    let empties = [
        json!({"PipelineExecutionArns": []}),
        json!({"PipelineExecutionArns": null}),
        json!({"PipelineExecutionArn": null}),
        json!({"PipelineName": null}),
        json!({"PipelineName": "  "}),
        json!({"pipelineExecutionArns": [], "DryRun": true}),
    ];
    for request in &empties {
        let direct = request.clone();
        let eventbridge = with("eventbridge-custom.json", |e| e["detail"] = request.clone());
        let scheduled = with("eventbridge-scheduled.json", |e| {
            e["detail"] = request.clone()
        });
        let sns = with("alarm-sns.json", |e| {
            e["Records"][0]["Sns"]["Message"] = request.to_string().into()
        });
        for event in [direct, eventbridge, scheduled, sns] {
            let refused = with_default(&event.to_string(), "nightly-training").unwrap_err();
            assert_eq!(refused.kind, ErrorKind::Validation, "{event}");
        }
    }
    // No target field at all: the documented fallback.
    for event in [
        json!({}),
        json!({"DryRun": true}),
        load("eventbridge-scheduled.json"),
    ] {
        assert_eq!(
            with_default(&event.to_string(), "nightly-training").unwrap(),
            vec!["nightly-training"],
            "{event}"
        );
    }
}

#[test]
fn alarms_with_target_like_dimensions_are_refused_not_defaulted() {
    let dims = |d: Value| {
        with("alarm-eventbridge.json", |e| {
            e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = d
        })
    };
    for bad in [
        json!({"pipelineName": "nightly-training"}),
        json!({"Pipeline_Name": "nightly-training"}),
        json!({"PipelineNames": "nightly-training"}),
        json!({"pipelineExecutionArn": A}),
        json!({"ExecutionArn": A}),
        json!({"PipelineExecutionArns": A}),
        json!({"PipelineName": ""}),
        json!({"PipelineExecutionArn": 7}),
        json!({"PipelineExecutionArn": null}),
    ] {
        let event = dims(bad.clone());
        let refused = with_default(&event.to_string(), "nightly-training").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Validation, "{bad}");
    }
    // An alarm on an unrelated metric (a bill, say) stops the default.
    assert_eq!(
        with_default(
            &dims(json!({"Currency": "USD"})).to_string(),
            "nightly-training"
        )
        .unwrap(),
        vec!["nightly-training"]
    );
}

#[test]
fn duplicate_keys_are_refused_in_bodies_messages_and_details() {
    let arns = format!(r#"{{"PipelineExecutionArn": "{A}", "PipelineExecutionArn": "{B}"}}"#);
    let http = with("http-api.json", |e| {
        e["body"] = arns.clone().into();
        e["isBase64Encoded"] = false.into();
    });
    let sns = with("alarm-sns.json", |e| {
        e["Records"][0]["Sns"]["Message"] = arns.clone().into()
    });
    // A detail with duplicate keys cannot be built as a Value: splice the text.
    let eventbridge = with("eventbridge-custom.json", |e| e["detail"] = json!("DETAIL"))
        .to_string()
        .replace(r#""DETAIL""#, &arns);
    let direct = arns.clone();
    for event in [http.to_string(), sns.to_string(), eventbridge, direct] {
        let err = decode(&event).action.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation, "{event}");
        assert!(err.message.contains("duplicate field"), "{}", err.message);
    }
}

#[test]
fn events_larger_than_their_source_sends_are_refused_before_they_are_built() {
    let huge_alarm = with("alarm-lambda-action.json", |e| {
        e["alarmData"]["configuration"]["description"] = "x".repeat(300 * 1024).into()
    });
    // An alarm notification past the alarm bound, and an SNS event past
    // what SNS's 256 KB messages make.
    let huge_notification =
        sns_alarm(|alarm| alarm["AlarmDescription"] = "x".repeat(300 * 1024).into());
    let huge_sns = with("alarm-sns.json", |e| {
        e["Records"][0]["Sns"]["Message"] = "\u{1}".repeat(300 * 1024).into()
    });
    let huge_eventbridge = with("eventbridge-custom.json", |e| {
        e["resources"] = vec!["x".repeat(1024); 1024].into()
    });
    let many_headers = with("http-api.json", |e| {
        let headers: serde_json::Map<String, Value> = (0..40_000)
            .map(|i| (format!("h{i}"), Value::from("v")))
            .collect();
        e["headers"] = Value::Object(headers);
    });
    let huge_context = with("http-api.json", |e| {
        e["requestContext"]["authorizer"]["lambda"] = json!({"blob": "x".repeat(200 * 1024)})
    });
    for event in [
        huge_alarm,
        huge_notification,
        huge_sns,
        huge_eventbridge,
        many_headers,
        huge_context,
    ] {
        let err = decode(&event.to_string()).action.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(err.message.len() < 1_000, "{}", err.message);
        assert!(err.message.contains("larger than"), "{}", err.message);
    }
}

#[test]
fn http_events_carry_the_caller_and_api_gateways_reply_deadline() {
    let now_ms = 1_795_327_200_000;
    let http = with("http-api.json", |e| {
        e["requestContext"]["timeEpoch"] = (now_ms - 25_000).into()
    });
    let decoded = decode(&http.to_string());
    assert_eq!(
        decoded.caller.as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/mlops-dashboard/mlops-dashboard")
    );
    let front_end = decoded.front_end.unwrap();
    assert_eq!(front_end.reply_by(now_ms), now_ms + 4_000);
    // A receipt time from the future, or longer ago than the timeout,
    // counts from now.
    for odd in [0, now_ms - 29_000, now_ms + 1] {
        let event = with("http-api.json", |e| {
            e["requestContext"]["timeEpoch"] = odd.into()
        });
        let front_end = decode(&event.to_string()).front_end.unwrap();
        assert_eq!(front_end.reply_by(now_ms), now_ms + 29_000, "{odd}");
    }
    // The last moment that is plausible is taken as it is.
    let edge = with("http-api.json", |e| {
        e["requestContext"]["timeEpoch"] = now_ms.into()
    });
    assert_eq!(
        decode(&edge.to_string())
            .front_end
            .unwrap()
            .reply_by(now_ms),
        now_ms + 29_000
    );
    let jwt = with(
        "http-api.json",
        |e| e["requestContext"]["authorizer"] = json!({"jwt": {"claims": {"sub": "u-42", "iss": "https://idp.example.com"}, "scopes": null}}),
    );
    assert_eq!(
        decode(&jwt.to_string()).caller.as_deref(),
        Some("jwt sub u-42 iss https://idp.example.com")
    );
    let rest = decode(&load("http-rest-api.json").to_string());
    assert!(rest.front_end.is_some());
    let url = decode(&load("function-url.json").to_string());
    assert_eq!(
        url.front_end, None,
        "function URLs have no integration timeout"
    );
    assert!(decode(&load("direct.json").to_string()).caller.is_none());
}

/// The HTTP envelope's size is checked without slicing the event: a body of
/// multi-byte characters at any alignment is a clean answer, never a panic.
#[test]
fn multi_byte_bodies_at_any_alignment_never_panic() {
    for pad in 0..8 {
        let body = format!(r#"{{"x": "{}{}"}}"#, "a".repeat(pad), "é".repeat(200_000));
        for file in ["http-api.json", "http-rest-api.json", "function-url.json"] {
            let event = with(file, |e| {
                e["body"] = body.clone().into();
                e["isBase64Encoded"] = false.into();
                e["cookies"] = json!(["session=SECRETSESSIONCOOKIE"]);
            });
            let decoded = decode(&event.to_string());
            let err = decoded.action.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Validation, "{file} {pad}");
            assert!(!err.message.contains("SECRETSESSIONCOOKIE"));
        }
    }
}

/// A service event with a request field at its top level, or an alarm
/// notification with one in its message, is refused: read as its service's
/// event, the field would be dropped and the default pipeline stopped.
#[test]
fn request_fields_outside_a_request_are_refused_not_dropped() {
    let alarm_with_request = with("alarm-sns.json", |e| {
        let mut message: Value =
            serde_json::from_str(e["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["PipelineExecutionArn"] = A.into();
        message["DryRun"] = true.into();
        e["Records"][0]["Sns"]["Message"] = message.to_string().into();
    });
    let scheduled = with("eventbridge-scheduled.json", |e| {
        e["PipelineName"] = "other".into()
    });
    let action = with("alarm-lambda-action.json", |e| {
        e["pipelineName"] = "other".into()
    });
    let http = with("http-api.json", |e| e["PipelineExecutionArn"] = A.into());
    for event in [alarm_with_request, scheduled, action, http] {
        let err = decode(&event.to_string()).action.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation, "{event}");
        assert!(err.message.contains("request field"), "{}", err.message);
    }
}

#[test]
fn alarm_payloads_that_mention_a_target_elsewhere_or_twice_are_refused() {
    let dims_as_list = with("alarm-lambda-action.json", |e| {
        e["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] =
            json!([{"name": "PipelineName", "value": "nightly-training"}])
    });
    let pipeline_arn_dimension = with("alarm-eventbridge.json", |e| {
        e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = json!({"PipelineArn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training"})
    });
    let sns_trigger_string = with("alarm-sns.json", |e| {
        let mut message: Value =
            serde_json::from_str(e["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
        message["Trigger"] = "PipelineName=nightly-training".into();
        e["Records"][0]["Sns"]["Message"] = message.to_string().into();
    });
    for event in [dims_as_list, pipeline_arn_dimension, sns_trigger_string] {
        let refused = with_default(&event.to_string(), "nightly-training").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Validation, "{event}");
    }
    // Duplicate keys inside alarm payloads: read as maps, the last would win.
    let message = load("alarm-sns.json")["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .replacen(
            r#""NewStateValue":"#,
            r#""NewStateValue": "OK", "NewStateValue":"#,
            1,
        );
    assert!(
        message.contains(r#""NewStateValue": "OK", "NewStateValue":"#),
        "{message}"
    );
    let sns = with("alarm-sns.json", |e| {
        e["Records"][0]["Sns"]["Message"] = message.clone().into()
    });
    let action = load("alarm-eventbridge.json").to_string().replacen(
        r#""dimensions":{"#,
        r#""dimensions":{"PipelineName":"other-pipe","#,
        1,
    );
    assert!(action.contains("other-pipe"));
    for event in [sns.to_string(), action] {
        let err = decode(&event).action.unwrap_err();
        assert!(err.message.contains("duplicate field"), "{}", err.message);
    }
}

/// The second review's findings, where a caller writes keys in a service
/// event: an SNS message's attributes, an EventBridge event's resources, an
/// HTTP request's query string (an HTTP request never falls back to the
/// default: it must name its target in its body); also an object for a body,
/// and header values quoted into errors. Keys that only CloudWatch or SNS
/// write (an alarm's `detail`, `state`, `alarmData`, an SNS record) are not
/// searched: no service writes a target there, and whoever hand-writes such an
/// event could as well send `{}`, which asks for the default pipeline.
#[test]
fn targets_named_anywhere_outside_a_request_are_refused() {
    let other =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/prod-inference/execution/zz9yy8xx7ww6";
    let events = [
        with("alarm-sns.json", |e| {
            e["Records"][0]["Sns"]["Message"] = "{}".into();
            e["Records"][0]["Sns"]["MessageAttributes"] =
                json!({"PipelineName": {"Type": "String", "Value": "prod-inference"}});
        }),
        with("alarm-sns.json", |e| {
            e["Records"][0]["Sns"]["Message"] = "{}".into();
            e["Records"][0]["Sns"]["MessageAttributes"] =
                json!({"dry_run": {"Type": "String", "Value": "true"}});
        }),
        with("eventbridge-custom.json", |e| {
            e["detail"] = json!({});
            e["resources"] = json!([other]);
        }),
        with("http-api.json", |e| {
            e["body"] = "{}".into();
            e["isBase64Encoded"] = false.into();
            e["queryStringParameters"] = json!({"PipelineName": "prod-inference"})
        }),
    ];
    for event in events {
        let refused = with_default(&event.to_string(), "nightly-training").unwrap_err();
        assert_eq!(refused.kind, ErrorKind::Validation, "{event}");
    }
    // An object for a body, however large, is refused before it is walked.
    let body_object = with("http-api.json", |e| e["body"] = json!({"aaa": 0, "aab": 0}));
    assert!(decode(&body_object.to_string()).action.is_err());
    // A header value a front end would never send is refused without being quoted.
    let header = with("http-api.json", |e| {
        e["headers"]["cookie"] = "session=SECRETSESSIONCOOKIE\u{1}".into()
    });
    let err = decode(&header.to_string()).action.unwrap_err();
    assert!(
        !err.message.contains("SECRETSESSIONCOOKIE"),
        "{}",
        err.message
    );
    assert!(err.message.contains("headers"), "{}", err.message);
}

/// An EventBridge event whose `resources` name a SageMaker pipeline may not
/// fall back to the default pipeline; one whose detail names its target, or
/// whose resources name something else, is read as it is.
#[test]
fn eventbridge_resources_refuse_the_default_only_for_a_pipeline() {
    let event = |detail: Value, resources: Value| {
        with("eventbridge-scheduled.json", |e| {
            e["detail"] = detail;
            e["resources"] = resources;
        })
        .to_string()
    };
    let pipeline = json!(["arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training"]);
    let named = json!({"PipelineName": "nightly-training"});
    assert!(matches!(
        decode(&event(named, pipeline.clone())).action,
        Ok(Action::Stop(_))
    ));
    assert!(decode(&event(json!({}), pipeline)).action.is_err());
    for other in [
        json!(["arn:aws:sagemaker:us-east-1:123456789012:model/m"]),
        json!(["arn:aws:other:us-east-1:123456789012:pipeline/x"]),
    ] {
        let Ok(Action::Stop(selection)) = decode(&event(json!({}), other.clone())).action else {
            panic!("{other}")
        };
        assert!(selection.default_allowed, "{other}");
    }
}

/// Inside the part a request is read from, a value that happens to spell a
/// field name is a value: a pipeline named `PipelineName` is a pipeline.
#[test]
fn a_value_spelled_like_a_field_inside_the_request_is_a_value() {
    let event = with("eventbridge-custom.json", |e| {
        e["detail"] = json!({"PipelineName": "PipelineName"});
    });
    let Ok(Action::Stop(selection)) = decode(&event.to_string()).action else {
        panic!("{event}")
    };
    assert_eq!(selection.pipelines, vec!["PipelineName"]);
}
