//! CloudWatch alarms: a Lambda alarm action (`alarmData`), and what an alarm
//! in any delivery (EventBridge, action, SNS) asks to stop.

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use serde_json::Value;

use super::limits::{within, MAX_ALARM_EVENT_BYTES};
use super::mentions::alarm_mentions;
use super::parse::parse;
use super::{Action, Decoded, Selection, Trigger};
use crate::arn::quote;
use crate::error::StopError;
use crate::options::Options;

pub(super) fn decode_alarm_action(event: &str) -> Decoded {
    let mentions = match within(event, MAX_ALARM_EVENT_BYTES, "an alarm action payload")
        .and_then(|()| alarm_mentions(event, "an alarm action payload"))
    {
        Ok(mentions) => mentions,
        Err(e) => return Decoded::refused(Trigger::AlarmLambdaAction, e),
    };
    let alarm: CloudWatchAlarm<Value, Value> = match parse(event, "CloudWatch alarm action payload")
    {
        Ok(a) => a,
        Err(e) => return Decoded::refused(Trigger::AlarmLambdaAction, e),
    };
    // A redelivered action carries the same alarm and state time; a new
    // transition into ALARM has a new time, and so a new token.
    let identity = alarm.alarm_data.state.as_ref().map(|s| {
        format!(
            "alarm:{}:{}",
            alarm
                .alarm_arn
                .as_deref()
                .unwrap_or(&alarm.alarm_data.alarm_name),
            s.timestamp.to_rfc3339()
        )
    });
    Decoded::new(
        Trigger::AlarmLambdaAction,
        identity,
        eventbridge_alarm(&alarm.alarm_data, mentions),
    )
}

/// The alarm data shared by EventBridge alarm events and Lambda alarm actions.
/// `mentions`: how often the whole payload names a target or request field.
pub(super) fn eventbridge_alarm(
    data: &CloudWatchAlarmData<Value, Value>,
    mentions: usize,
) -> Result<Action, StopError> {
    let state = match data.state.as_ref().map(|s| &s.value) {
        Some(CloudWatchAlarmStateValue::Alarm) => "ALARM",
        Some(CloudWatchAlarmStateValue::Ok) => "OK",
        Some(CloudWatchAlarmStateValue::InsufficientData) => "INSUFFICIENT_DATA",
        Some(_) => "an unknown state",
        None => "no state",
    };
    let mut dimensions = Vec::new();
    for metric in data
        .configuration
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let dims = metric
            .pointer("/metricStat/metric/dimensions")
            .and_then(Value::as_object);
        for (name, value) in dims.into_iter().flatten() {
            // A value that is not a string is kept as its JSON text, so that a
            // target dimension is refused as invalid rather than skipped (and
            // the default pipeline stopped instead).
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            dimensions.push((name.clone(), value));
        }
    }
    alarm_action(&data.alarm_name, state, &dimensions, mentions)
}

/// Acts only on ALARM. The target: a `PipelineExecutionArn` dimension if the
/// metric has one (explicit), else its `PipelineName` dimensions (SageMaker's
/// pipeline metrics carry one), else the configured default pipeline. A
/// dimension that looks like a target but is not spelled as one
/// (`pipelineName`, `Pipeline_Name`) is refused: the alarm meant a pipeline,
/// and guessing the default would stop another.
pub(super) fn alarm_action(
    alarm_name: &str,
    state: &str,
    dimensions: &[(String, String)],
    mentions: usize,
) -> Result<Action, StopError> {
    if state != "ALARM" {
        return Ok(Action::Ignore(format!(
            "alarm {} is in state {state}, not ALARM; nothing to stop",
            quote(alarm_name)
        )));
    }
    let values = |key: &str| {
        let mut found: Vec<String> = Vec::new();
        for (name, value) in dimensions {
            if name == key && !found.contains(value) {
                found.push(value.clone());
            }
        }
        found
    };
    let normalised = |name: &str| -> String {
        name.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    for (name, _) in dimensions {
        let target = match normalised(name).as_str() {
            "pipelineexecutionarn" => "PipelineExecutionArn",
            "pipelinename" => "PipelineName",
            _ => continue,
        };
        if name != target {
            return Err(StopError::validation(format!(
                "alarm {} has a dimension {} that is not spelled {target}: refusing to guess its target",
                quote(alarm_name),
                quote(name)
            )));
        }
    }
    // Every mention of a pipeline target in the payload must be one of the
    // dimensions read above: a `PipelineName` in a dimensions list where a map
    // belongs, under `Metrics` for `metrics`, a `PipelineArn` dimension, would
    // otherwise be skipped, and the default pipeline stopped instead.
    let read = dimensions
        .iter()
        .filter(|(name, _)| name == "PipelineExecutionArn" || name == "PipelineName")
        .count();
    if mentions > read {
        return Err(StopError::validation(format!(
            "alarm {} names a pipeline or execution where this function does not read targets (the metrics' \
             PipelineExecutionArn or PipelineName dimensions): refusing to guess its target",
            quote(alarm_name)
        )));
    }
    let execution_arns = values("PipelineExecutionArn");
    let pipelines = if execution_arns.is_empty() {
        values("PipelineName")
    } else {
        Vec::new()
    };
    Ok(Action::Stop(Selection {
        default_allowed: execution_arns.is_empty() && pipelines.is_empty(),
        execution_arns,
        pipelines,
        token: None,
        guard: false,
        options: Options::default(),
    }))
}
