//! CloudWatch alarms: a Lambda alarm action (`alarmData`), and what an alarm
//! in any delivery (EventBridge, action, SNS) asks to stop.

use std::collections::HashSet;

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use super::limits::{within, MAX_ALARM_EVENT_BYTES};
use super::mentions::folded;
use super::parse::parse;
use super::{Action, Cause, Decoded, Selection, Trigger};
use crate::arn::quote;
use crate::error::StopError;
use crate::options::Options;

/// The alarm data of EventBridge alarm events and Lambda alarm actions, its
/// configuration and reason data kept as text (the configuration is read
/// into [`Configuration`]).
pub(super) type AlarmData = CloudWatchAlarmData<Box<RawValue>, Box<RawValue>>;

pub(super) fn decode_alarm_action(event: &str) -> Decoded {
    let alarm: CloudWatchAlarm<Box<RawValue>, Box<RawValue>> =
        match within(event, MAX_ALARM_EVENT_BYTES, "an alarm action payload")
            .and_then(|()| parse(event, "CloudWatch alarm action payload"))
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
    Decoded {
        cause: Some(alarm_cause(&alarm.alarm_data)),
        ..Decoded::new(
            Trigger::AlarmLambdaAction,
            identity,
            eventbridge_alarm(&alarm.alarm_data),
        )
    }
}

/// The alarm named in EventBridge alarm events and Lambda alarm actions.
pub(super) fn alarm_cause(data: &AlarmData) -> Cause {
    Cause::Alarm {
        name: data.alarm_name.clone(),
        state: state_name(data).to_owned(),
    }
}

fn state_name(data: &AlarmData) -> &'static str {
    match data.state.as_ref().map(|s| &s.value) {
        Some(CloudWatchAlarmStateValue::Alarm) => "ALARM",
        Some(CloudWatchAlarmStateValue::Ok) => "OK",
        Some(CloudWatchAlarmStateValue::InsufficientData) => "INSUFFICIENT_DATA",
        Some(_) => "an unknown state",
        None => "no state",
    }
}

/// A metric alarm's configuration, as far as it can name a target: its
/// metrics' dimensions. A composite alarm's has no metrics.
#[derive(Deserialize)]
struct Configuration {
    #[serde(default)]
    metrics: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    /// Absent for a metric math expression.
    #[serde(rename = "metricStat", default)]
    stat: Option<MetricStat>,
}

#[derive(Deserialize)]
struct MetricStat {
    metric: MetricDimensions,
}

#[derive(Deserialize)]
struct MetricDimensions {
    #[serde(default)]
    dimensions: Dimensions,
}

/// A metric's dimensions, an object read as its pairs: a name given twice is
/// refused (a map would keep one value silently), and a value that is not a
/// string is kept as its JSON text, so that a target dimension is refused as
/// invalid rather than skipped (and the default pipeline stopped instead).
#[derive(Default)]
struct Dimensions(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Dimensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = Dimensions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of dimensions")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dimensions, A::Error> {
                let (mut pairs, mut seen) = (Vec::new(), HashSet::new());
                while let Some(name) = map.next_key::<String>()? {
                    if !seen.insert(name.clone()) {
                        return Err(de::Error::custom(format!("duplicate field `{name}`")));
                    }
                    let value = match map.next_value::<Value>()? {
                        Value::String(value) => value,
                        other => other.to_string(),
                    };
                    pairs.push((name, value));
                }
                Ok(Dimensions(pairs))
            }
        }
        d.deserialize_map(Pairs)
    }
}

/// The alarm data shared by EventBridge alarm events and Lambda alarm actions.
pub(super) fn eventbridge_alarm(data: &AlarmData) -> Result<Action, StopError> {
    let state = state_name(data);
    let configuration: Configuration =
        parse(data.configuration.get(), "CloudWatch alarm configuration")?;
    let dimensions: Vec<(String, String)> = (configuration.metrics.into_iter())
        .filter_map(|metric| metric.stat)
        .flat_map(|stat| stat.metric.dimensions.0)
        .collect();
    alarm_action(&data.alarm_name, state, &dimensions)
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
    // A dimension that names a pipeline or an execution but is not spelled
    // as one read (`pipelineName`, `Pipeline_Name`, `PipelineArn`): the alarm
    // meant a pipeline, and the default would be a guess.
    for (name, _) in dimensions {
        let target = match folded(name).as_str() {
            "pipelineexecutionarn" | "pipelineexecutionarns" | "executionarn" => {
                "PipelineExecutionArn"
            }
            "pipelinename" | "pipelinenames" | "pipelinearn" => "PipelineName",
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
