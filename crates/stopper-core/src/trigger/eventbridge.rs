//! EventBridge events: custom events and scheduled rules (a request in
//! `detail`), SageMaker's status changes, and CloudWatch alarm state changes.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::alarm::{alarm_cause, eventbridge_alarm, AlarmData};
use super::limits::{within, MAX_ALARM_EVENT_BYTES, MAX_EVENTBRIDGE_EVENT_BYTES};
use super::parse::parse;
use super::{Action, Cause, Decoded, Selection, Trigger};
use crate::arn::quote;
use crate::error::StopError;
use crate::status::ExecutionStatus;

/// The `detail-type` SageMaker uses for pipeline execution status changes.
pub const SAGEMAKER_STATUS_CHANGE: &str =
    "SageMaker Model Building Pipeline Execution Status Change";
/// The `detail-type` of CloudWatch alarm state changes on EventBridge.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

pub(super) fn decode_eventbridge(event: &str) -> Decoded {
    if let Err(e) = within(event, MAX_EVENTBRIDGE_EVENT_BYTES, "an EventBridge event") {
        return Decoded::refused(Trigger::EventBridge, e);
    }
    let envelope: EventBridgeEvent<Box<RawValue>> = match parse(event, "EventBridge event") {
        Ok(e) => e,
        Err(e) => return Decoded::refused(Trigger::EventBridge, e),
    };
    let identity = envelope
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| format!("eventbridge:{id}"));
    let detail = envelope.detail.get();
    let mut cause = None;
    let (trigger, action) = match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => (
            Trigger::AlarmEventBridge,
            within(event, MAX_ALARM_EVENT_BYTES, "an alarm event")
                .and_then(|()| parse::<AlarmData>(detail, "CloudWatch alarm state change detail"))
                .and_then(|data| {
                    cause = Some(alarm_cause(&data));
                    eventbridge_alarm(&data)
                }),
        ),
        ("aws.sagemaker", SAGEMAKER_STATUS_CHANGE) => (
            Trigger::SageMakerStatusChange,
            sagemaker_status_change(detail),
        ),
        // A scheduled rule's `detail` is `{}`: a request with no target field,
        // which stops DEFAULT_PIPELINE_NAME's running executions.
        (_, "Scheduled Event") => {
            cause = scheduled_rule(&envelope.resources).map(Cause::Rule);
            (
                Trigger::ScheduledEvent,
                detail_request(detail, &envelope.resources),
            )
        }
        _ => (
            Trigger::EventBridge,
            detail_request(detail, &envelope.resources),
        ),
    };
    Decoded {
        cause,
        ..Decoded::new(trigger, identity, action)
    }
}

/// The name of the rule a scheduled event names in its `resources`
/// (`arn:aws:events:REGION:ACCOUNT:rule/NAME`, or `rule/BUS/NAME`).
fn scheduled_rule(resources: &Option<Vec<String>>) -> Option<String> {
    resources
        .iter()
        .flatten()
        .find_map(|r| r.split_once(":rule/"))
        .map(|(_, name)| name.to_owned())
        .filter(|name| !name.is_empty())
}

/// The request in an EventBridge `detail`. One that would fall back to the
/// default pipeline is refused when the event's `resources` name a SageMaker
/// pipeline: that is where EventBridge events carry the ARNs they are about,
/// and the default would be a guess.
fn detail_request(detail: &str, resources: &Option<Vec<String>>) -> Result<Action, StopError> {
    let action = Selection::from_text(detail, true)
        .map_err(|e| StopError::validation(format!("EventBridge detail: {}", e.message)))?;
    let names_pipeline = resources
        .iter()
        .flatten()
        .find(|r| r.contains(":sagemaker:") && r.contains(":pipeline/"));
    match (&action, names_pipeline) {
        (Action::Stop(selection), Some(resource)) if selection.default_allowed => {
            Err(StopError::validation(format!(
                "the EventBridge event's resources name {} but its detail names no target: refusing to fall \
                 back to DEFAULT_PIPELINE_NAME (name the target in detail)",
                quote(resource)
            )))
        }
        _ => Ok(action),
    }
}

/// SageMaker's own status change event names one execution. One that has
/// already ended is left alone: there is nothing to stop.
fn sagemaker_status_change(detail: &str) -> Result<Action, StopError> {
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "pipelineExecutionArn")]
        arn: Option<String>,
        #[serde(rename = "currentPipelineExecutionStatus", default)]
        status: Option<String>,
    }
    let detail: Detail = parse(detail, "SageMaker status change detail")?;
    let arn = detail.arn.filter(|a| !a.trim().is_empty()).ok_or_else(|| {
        StopError::validation("SageMaker status change event without detail.pipelineExecutionArn")
    })?;
    let status = ExecutionStatus::parse(detail.status.as_deref().unwrap_or_default());
    if status.is_finished() {
        return Ok(Action::Ignore(format!(
            "execution {} is already {status}; nothing to stop",
            quote(&arn)
        )));
    }
    Ok(Action::Stop(Selection {
        execution_arns: vec![arn],
        ..Selection::default()
    }))
}
