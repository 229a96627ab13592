//! SNS events (`Records`): an alarm notification, or a message that is a
//! request.

use aws_lambda_events::event::sns::{CloudWatchAlarmPayload, SnsEvent};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::alarm::alarm_action;
use super::limits::{within, MAX_ALARM_EVENT_BYTES, MAX_SNS_EVENT_BYTES, MAX_SNS_MESSAGE_BYTES};
use super::mentions::{alarm_mentions, nothing_named_outside};
use super::parse::parse;
use super::{Action, Decoded, Selection, Trigger};
use crate::arn::quote;
use crate::error::StopError;
use crate::request::json_kind;

/// The first record's event source, leniently: `EventSource` or `eventSource`.
#[derive(Deserialize)]
struct RecordsProbe {
    #[serde(rename = "Records")]
    records: Vec<RecordSource>,
}

#[derive(Deserialize)]
struct RecordSource {
    #[serde(rename = "EventSource", alias = "eventSource", default)]
    source: Option<String>,
}

pub(super) fn decode_records(event: &str) -> Decoded {
    if let Err(e) = within(event, MAX_SNS_EVENT_BYTES, "an SNS event")
        .and_then(|()| nothing_named_outside(event, "an SNS event", &[]))
    {
        return Decoded::refused(Trigger::Sns, e);
    }
    let source = serde_json::from_str::<RecordsProbe>(event)
        .ok()
        .and_then(|p| p.records.into_iter().next())
        .and_then(|r| r.source)
        .unwrap_or_default();
    if source != "aws:sns" {
        return Decoded::refused(
            Trigger::Sns,
            StopError::validation(format!(
                "unsupported event: Records from {} are not a stop request (SNS notifications are)",
                if source.is_empty() {
                    "an unknown source".to_owned()
                } else {
                    quote(&source)
                }
            )),
        );
    }
    let sns: SnsEvent = match parse(event, "SNS event") {
        Ok(sns) => sns,
        Err(e) => return Decoded::refused(Trigger::Sns, e),
    };
    // Lambda hands an SNS subscription exactly one record per invocation.
    let [record] = sns.records.as_slice() else {
        return Decoded::refused(
            Trigger::Sns,
            StopError::validation(format!(
                "expected exactly one SNS record, got {}",
                sns.records.len()
            )),
        );
    };
    // An empty MessageId would give every such message the same tokens: the
    // Lambda request id stands in instead.
    let identity = Some(record.sns.message_id.as_str())
        .filter(|id| !id.is_empty())
        .map(|id| format!("sns:{id}"));
    let message = record.sns.message.as_str();
    let refused = |error| Decoded::new(Trigger::Sns, identity.clone(), Err(error));
    if let Err(e) = within(message, MAX_SNS_MESSAGE_BYTES, "the SNS message") {
        return refused(e);
    }
    if let Err(e) = serde_json::from_str::<IgnoredAny>(message) {
        return refused(StopError::validation(format!(
            "the SNS message is not JSON: {e}"
        )));
    }
    #[derive(Deserialize)]
    struct AlarmProbe<'a> {
        #[serde(rename = "AlarmName", borrow, default)]
        alarm_name: Option<&'a RawValue>,
    }
    let is_alarm = message.trim_start().starts_with('{')
        && serde_json::from_str::<AlarmProbe>(message).is_ok_and(|p| p.alarm_name.is_some());
    if is_alarm {
        let mentions = match alarm_mentions(message, "the SNS message, an alarm notification,") {
            Ok(mentions) => mentions,
            Err(e) => return Decoded::new(Trigger::AlarmSns, identity, Err(e)),
        };
        // Bounded by MAX_SNS_MESSAGE_BYTES: this tree is at most a few MB.
        let action = within(message, MAX_ALARM_EVENT_BYTES, "the alarm notification")
            .and_then(|()| {
                serde_json::from_str::<Value>(message)
                    .map_err(|e| StopError::validation(format!("the SNS message is not JSON: {e}")))
            })
            .and_then(|message| decode_sns_alarm(message, mentions));
        Decoded::new(Trigger::AlarmSns, identity, action)
    } else {
        Decoded::new(Trigger::Sns, identity, Selection::from_text(message, true))
    }
}

fn decode_sns_alarm(mut message: Value, mentions: usize) -> Result<Action, StopError> {
    match message.get("Trigger") {
        None | Some(Value::Null | Value::Object(_)) => {}
        Some(other) => {
            return Err(StopError::validation(format!(
                "the alarm notification's Trigger is {}, not an object",
                json_kind(other)
            )))
        }
    }
    // The typed payload requires fields that real notifications leave out or
    // null: `"AlarmDescription": null` for alarms without one, no `Threshold`
    // for anomaly-detection alarms (`ThresholdMetricId` instead), no `Trigger`
    // for composite alarms. None of them decides what to stop (the name, the
    // new state and the dimensions do), so they are filled with neutral values.
    if let Some(fields) = message.as_object_mut() {
        for value in fields.values_mut().filter(|v| v.is_null()) {
            *value = Value::String(String::new());
        }
        for key in [
            "AlarmDescription",
            "AWSAccountId",
            "NewStateReason",
            "StateChangeTime",
            "Region",
            "AlarmArn",
            "OldStateValue",
        ] {
            fields
                .entry(key)
                .or_insert_with(|| Value::String(String::new()));
        }
        let trigger = fields
            .entry("Trigger")
            .and_modify(|t| {
                if !t.is_object() {
                    *t = Value::Object(Default::default());
                }
            })
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(trigger) = trigger.as_object_mut() {
            for (key, neutral) in [
                ("Period", Value::from(0)),
                ("EvaluationPeriods", Value::from(0)),
                ("Threshold", Value::from(0.0)),
                ("ComparisonOperator", Value::from("")),
                ("TreatMissingData", Value::from("")),
                ("EvaluateLowSampleCountPercentile", Value::from("")),
            ] {
                let slot = trigger.entry(key).or_insert(Value::Null);
                if slot.is_null() {
                    *slot = neutral;
                }
            }
        }
    }
    let alarm: CloudWatchAlarmPayload =
        serde_path_to_error::deserialize(&message).map_err(|e| {
            StopError::validation(format!(
                "not a valid CloudWatch alarm notification at {}: {}",
                crate::request::field_path(e.path()),
                e.inner()
            ))
        })?;
    let mut dimensions: Vec<(String, String)> = alarm
        .trigger
        .dimensions
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    for query in &alarm.trigger.metrics {
        if let Some(stat) = &query.metric_stat {
            dimensions.extend(
                stat.metric
                    .dimensions
                    .iter()
                    .map(|d| (d.name.clone(), d.value.clone())),
            );
        }
    }
    alarm_action(
        &alarm.alarm_name,
        &alarm.new_state_value,
        &dimensions,
        mentions,
    )
}
