//! SNS events (`Records`): an alarm notification, or a message that is a
//! request.

use aws_lambda_events::event::sns::{CloudWatchDimension, SnsEvent};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::alarm::alarm_action;
use super::limits::{within, MAX_ALARM_EVENT_BYTES, MAX_SNS_EVENT_BYTES};
use super::mentions::{no_request_field, no_request_field_at_top};
use super::parse::parse;
use super::{Action, Cause, Decoded, Selection, Trigger};
use crate::arn::quote;
use crate::error::StopError;

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
    if let Err(e) = within(event, MAX_SNS_EVENT_BYTES, "an SNS event") {
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
    // The publisher names the attributes: a request field there was meant
    // for the message.
    let attributes = record.sns.message_attributes.keys().map(String::as_str);
    if let Err(e) = no_request_field(attributes, "the SNS message's attributes") {
        return Decoded::new(Trigger::Sns, identity, Err(e));
    }
    #[derive(Deserialize)]
    struct AlarmProbe<'a> {
        #[serde(rename = "AlarmName", borrow, default)]
        alarm_name: Option<&'a RawValue>,
    }
    let is_alarm = message.trim_start().starts_with('{')
        && serde_json::from_str::<AlarmProbe>(message).is_ok_and(|p| p.alarm_name.is_some());
    if is_alarm {
        let what = "the SNS message, an alarm notification,";
        let mut cause = None;
        let action = within(message, MAX_ALARM_EVENT_BYTES, "the alarm notification")
            .and_then(|()| no_request_field_at_top(message, what))
            .and_then(|()| parse(message, "CloudWatch alarm notification"))
            .and_then(|alarm: AlarmNotification| {
                cause = Some(Cause::Alarm {
                    name: alarm.alarm_name.clone(),
                    state: alarm.new_state_value.clone(),
                });
                decode_sns_alarm(alarm)
            });
        Decoded {
            cause,
            ..Decoded::new(Trigger::AlarmSns, identity, action)
        }
    } else {
        Decoded::new(Trigger::Sns, identity, Selection::from_text(message, true))
    }
}

/// An alarm notification, as far as it names a target. aws_lambda_events'
/// `CloudWatchAlarmPayload` requires fields that real notifications leave out
/// or null (`AlarmDescription`, `Threshold` for anomaly detection alarms,
/// `Trigger` for composite alarms), none of which decides what to stop.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmNotification {
    alarm_name: String,
    new_state_value: String,
    #[serde(default)]
    trigger: Option<AlarmTrigger>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct AlarmTrigger {
    #[serde(default)]
    dimensions: Vec<CloudWatchDimension>,
    /// A metric math or anomaly detection alarm's queries.
    #[serde(default)]
    metrics: Vec<MetricQuery>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricQuery {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetricStat {
    metric: Metric,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metric {
    #[serde(default)]
    dimensions: Vec<CloudWatchDimension>,
}

fn decode_sns_alarm(alarm: AlarmNotification) -> Result<Action, StopError> {
    let trigger = alarm.trigger.unwrap_or_default();
    let queried = (trigger.metrics.into_iter())
        .filter_map(|query| query.metric_stat)
        .flat_map(|stat| stat.metric.dimensions);
    let dimensions: Vec<(String, String)> = (trigger.dimensions.into_iter())
        .chain(queried)
        .map(|d| (d.name, d.value))
        .collect();
    alarm_action(&alarm.alarm_name, &alarm.new_state_value, &dimensions)
}
