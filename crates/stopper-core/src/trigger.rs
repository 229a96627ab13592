//! Decoding a Lambda event into the trigger that sent it and what it names.
//!
//! Dispatch is on explicit discriminators, never on "which type happens to
//! deserialize": `aws_lambda_events`' alarm type also accepts an EventBridge
//! alarm event, and the API Gateway types accept almost anything with a
//! `requestContext`, so an untagged enum would route events to the wrong trigger.
//!
//! | discriminator                                   | trigger                    |
//! |-------------------------------------------------|----------------------------|
//! | `Records[0].EventSource == "aws:sns"`           | SNS (alarm or request)     |
//! | `requestContext.http` (+ `.lambda-url.` domain) | HTTP API v2 / function URL |
//! | `requestContext` + `httpMethod`                 | REST API (payload v1)      |
//! | `detail-type` + `source`                        | EventBridge (4 kinds)      |
//! | `alarmData`                                     | alarm's Lambda action      |
//! | anything else                                   | direct / Scheduler input   |

use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sns::{CloudWatchAlarmPayload, SnsEvent};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::arn::quote;
use crate::error::{ErrorKind, StopError};
use crate::options::Options;
use crate::request::{json_kind, StopRequest};

/// The `detail-type` SageMaker uses for pipeline execution status changes.
pub const SAGEMAKER_STATUS_CHANGE: &str =
    "SageMaker Model Building Pipeline Execution Status Change";
/// The `detail-type` of CloudWatch alarm state changes on EventBridge.
pub const ALARM_STATE_CHANGE: &str = "CloudWatch Alarm State Change";

/// Which kind of event invoked the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Direct invocation, or an EventBridge Scheduler schedule's `Input`.
    Direct,
    /// A custom EventBridge event whose `detail` names the target.
    EventBridge,
    /// An EventBridge `Scheduled Event` (a scheduled rule).
    ScheduledEvent,
    /// SageMaker's own pipeline execution status change event.
    SageMakerStatusChange,
    /// `CloudWatch Alarm State Change` on EventBridge.
    AlarmEventBridge,
    /// A CloudWatch alarm's direct Lambda action (`alarmData`).
    AlarmLambdaAction,
    /// A CloudWatch alarm notification delivered through SNS.
    AlarmSns,
    /// Any other SNS message: its body is a request.
    Sns,
    /// HTTP, through API Gateway or a function URL.
    Http(HttpFlavor),
}

/// The HTTP front ends, which differ in the reply shape they expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpFlavor {
    /// API Gateway REST API, payload format 1.0.
    RestApi,
    /// API Gateway HTTP API, payload format 2.0.
    HttpApi,
    /// A Lambda function URL (payload format 2.0).
    FunctionUrl,
}

impl Trigger {
    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Direct => "direct",
            Trigger::EventBridge => "eventbridge",
            Trigger::ScheduledEvent => "scheduled-event",
            Trigger::SageMakerStatusChange => "sagemaker-status-change",
            Trigger::AlarmEventBridge => "alarm-eventbridge",
            Trigger::AlarmLambdaAction => "alarm-lambda-action",
            Trigger::AlarmSns => "alarm-sns",
            Trigger::Sns => "sns",
            Trigger::Http(HttpFlavor::RestApi) => "http-rest-api",
            Trigger::Http(HttpFlavor::HttpApi) => "http-api",
            Trigger::Http(HttpFlavor::FunctionUrl) => "function-url",
        }
    }

    pub fn http(self) -> Option<HttpFlavor> {
        match self {
            Trigger::Http(flavor) => Some(flavor),
            _ => None,
        }
    }
}

/// A decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub trigger: Trigger,
    /// The trigger's own identity (event id, SNS MessageId, alarm ARN and state
    /// time, HTTP request id), namespaced by kind; the seed of derived tokens.
    /// `None`: the Lambda request id stands in.
    pub identity: Option<String>,
    /// What to do, or why the event is refused. Kept apart from `trigger` so an
    /// HTTP request with a bad body still gets an HTTP-shaped reply.
    pub action: Result<Action, StopError>,
}

impl Decoded {
    /// An event refused before its trigger's identity is known.
    fn refused(trigger: Trigger, error: StopError) -> Decoded {
        Decoded {
            trigger,
            identity: None,
            action: Err(error),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Stop what the selection names.
    Stop(Selection),
    /// Do nothing, successfully, for this reason (an alarm leaving ALARM, ...).
    Ignore(String),
}

/// What an event names, before validation against the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub execution_arns: Vec<String>,
    /// Pipeline names or pipeline ARNs, whose `Executing` executions to stop.
    pub pipelines: Vec<String>,
    /// The caller's own `ClientRequestToken`.
    pub token: Option<String>,
    /// Whether `DEFAULT_PIPELINE_NAME` stands in when nothing is named.
    /// HTTP callers must always name their target.
    pub default_allowed: bool,
    /// Dry run, wait, force, age filter.
    pub options: Options,
}

impl Selection {
    fn from_request(request: StopRequest, default_allowed: bool) -> Result<Selection, StopError> {
        let options = Options::from_request(&request)?;
        let mut execution_arns: Vec<String> = request.execution_arn.into_iter().collect();
        execution_arns.extend(request.execution_arns.unwrap_or_default());
        Ok(Selection {
            execution_arns,
            pipelines: request.pipeline_name.into_iter().collect(),
            token: request.client_request_token,
            default_allowed,
            options,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.execution_arns.is_empty() && self.pipelines.is_empty()
    }
}

/// Decodes any event the function can receive. Never panics; whatever cannot be
/// understood comes back as a `Validation` error in `action`.
pub fn decode(event: &Value) -> Decoded {
    let Some(object) = event.as_object() else {
        return Decoded::refused(
            Trigger::Direct,
            StopError::validation(format!(
                "the event must be a JSON object, not {}",
                json_kind(event)
            )),
        );
    };
    if let Some(records) = object.get("Records") {
        decode_records(event, records)
    } else if let Some(context) = object.get("requestContext") {
        decode_http(event, context)
    } else if object.contains_key("detail-type") {
        decode_eventbridge(event)
    } else if object.contains_key("alarmData") {
        decode_alarm_action(event)
    } else {
        Decoded {
            trigger: Trigger::Direct,
            identity: None,
            action: StopRequest::from_value(event)
                .and_then(|r| Selection::from_request(r, true).map(Action::Stop)),
        }
    }
}

/// Typed parse through `aws_lambda_events`, with the field at fault named.
fn parse<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, StopError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        StopError::validation(format!("not a valid {what}{at}: {}", e.inner()))
    })
}

fn decode_records(event: &Value, records: &Value) -> Decoded {
    let source = records
        .get(0)
        .and_then(|r| r.get("EventSource").or_else(|| r.get("eventSource")))
        .and_then(Value::as_str)
        .unwrap_or("");
    if source != "aws:sns" {
        return Decoded::refused(
            Trigger::Sns,
            StopError::validation(format!(
                "unsupported event: Records from {} are not a stop request (SNS notifications are)",
                if source.is_empty() {
                    "an unknown source".to_owned()
                } else {
                    quote(source)
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
    let identity = Some(format!("sns:{}", record.sns.message_id));
    let message: Value = match serde_json::from_str(&record.sns.message) {
        Ok(v) => v,
        Err(e) => {
            return Decoded {
                trigger: Trigger::Sns,
                identity,
                action: Err(StopError::validation(format!(
                    "the SNS message is not JSON: {e}"
                ))),
            }
        }
    };
    if message.get("AlarmName").is_some() {
        Decoded {
            trigger: Trigger::AlarmSns,
            identity,
            action: decode_sns_alarm(message),
        }
    } else {
        Decoded {
            trigger: Trigger::Sns,
            identity,
            action: StopRequest::from_value(&message)
                .and_then(|r| Selection::from_request(r, true).map(Action::Stop)),
        }
    }
}

fn decode_sns_alarm(mut message: Value) -> Result<Action, StopError> {
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
    let alarm: CloudWatchAlarmPayload = parse(&message, "CloudWatch alarm notification")?;
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
    alarm_action(&alarm.alarm_name, &alarm.new_state_value, &dimensions)
}

fn decode_http(event: &Value, context: &Value) -> Decoded {
    let (flavor, method, body, base64, request_id) = if context.get("http").is_some() {
        let is_url = context
            .get("domainName")
            .and_then(Value::as_str)
            .is_some_and(|d| d.contains(".lambda-url."));
        if is_url {
            match parse::<LambdaFunctionUrlRequest>(event, "function URL request") {
                Ok(r) => (
                    HttpFlavor::FunctionUrl,
                    r.request_context.http.method.unwrap_or_default(),
                    r.body,
                    r.is_base64_encoded,
                    r.request_context.request_id,
                ),
                Err(e) => return Decoded::refused(Trigger::Http(HttpFlavor::FunctionUrl), e),
            }
        } else {
            match parse::<ApiGatewayV2httpRequest>(event, "HTTP API request") {
                Ok(r) => (
                    HttpFlavor::HttpApi,
                    r.request_context.http.method.to_string(),
                    r.body,
                    r.is_base64_encoded,
                    r.request_context.request_id,
                ),
                Err(e) => return Decoded::refused(Trigger::Http(HttpFlavor::HttpApi), e),
            }
        }
    } else if event.get("httpMethod").is_some() {
        match parse::<ApiGatewayProxyRequest>(event, "API Gateway REST request") {
            Ok(r) => (
                HttpFlavor::RestApi,
                r.http_method.to_string(),
                r.body,
                r.is_base64_encoded,
                r.request_context.request_id,
            ),
            Err(e) => return Decoded::refused(Trigger::Http(HttpFlavor::RestApi), e),
        }
    } else {
        return Decoded::refused(Trigger::Direct, StopError::validation(
                "unsupported event: a requestContext without httpMethod or http (WebSocket and other \
                 API Gateway events are not stop requests)",
            ));
    };
    let identity = request_id
        .filter(|id| !id.is_empty())
        .map(|id| format!("http:{id}"));
    let action = if !method.eq_ignore_ascii_case("POST") {
        Err(StopError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "method {} is not allowed: send a POST with a JSON body",
                quote(&method)
            ),
        ))
    } else {
        http_body(body.as_deref(), base64)
            .and_then(|r| Selection::from_request(r, false).map(Action::Stop))
    };
    Decoded {
        trigger: Trigger::Http(flavor),
        identity,
        action,
    }
}

/// The JSON body of an HTTP request, plain or base64 (`isBase64Encoded`).
fn http_body(body: Option<&str>, base64: bool) -> Result<StopRequest, StopError> {
    let body = body.unwrap_or("");
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| {
                StopError::validation(format!("the body is marked base64 but is not: {e}"))
            })?
    } else {
        body.as_bytes().to_vec()
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| StopError::validation(format!("the body is not UTF-8: {e}")))?;
    if text.trim().is_empty() {
        return Err(StopError::validation(
            "the request body is empty: send a JSON object such as {\"PipelineExecutionArn\": \"arn:aws:sagemaker:...\"}",
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| StopError::validation(format!("the body is not valid JSON: {e}")))?;
    StopRequest::from_value(&value)
}

fn decode_eventbridge(event: &Value) -> Decoded {
    let envelope: EventBridgeEvent<Value> = match parse(event, "EventBridge event") {
        Ok(e) => e,
        Err(e) => return Decoded::refused(Trigger::EventBridge, e),
    };
    let identity = envelope
        .id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| format!("eventbridge:{id}"));
    let detail = &envelope.detail;
    let (trigger, action) = match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => (
            Trigger::AlarmEventBridge,
            parse::<CloudWatchAlarmData<Value, Value>>(
                detail,
                "CloudWatch alarm state change detail",
            )
            .and_then(|d| eventbridge_alarm(&d)),
        ),
        ("aws.sagemaker", SAGEMAKER_STATUS_CHANGE) => (
            Trigger::SageMakerStatusChange,
            sagemaker_status_change(detail),
        ),
        (_, "Scheduled Event") if detail.as_object().is_some_and(|d| d.is_empty()) => (
            Trigger::ScheduledEvent,
            Ok(Action::Stop(Selection {
                default_allowed: true,
                ..Selection::default()
            })),
        ),
        (_, "Scheduled Event") => (Trigger::ScheduledEvent, detail_request(detail)),
        _ => (Trigger::EventBridge, detail_request(detail)),
    };
    Decoded {
        trigger,
        identity,
        action,
    }
}

fn detail_request(detail: &Value) -> Result<Action, StopError> {
    StopRequest::from_value(detail)
        .and_then(|r| Selection::from_request(r, true).map(Action::Stop))
        .map_err(|e| StopError::validation(format!("EventBridge detail: {}", e.message)))
}

/// SageMaker's own status change event names one execution. One that has
/// already ended is left alone: there is nothing to stop.
fn sagemaker_status_change(detail: &Value) -> Result<Action, StopError> {
    let arn = detail
        .get("pipelineExecutionArn")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            StopError::validation(
                "SageMaker status change event without detail.pipelineExecutionArn",
            )
        })?;
    let status = detail
        .get("currentPipelineExecutionStatus")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(
        status,
        "Succeeded" | "Failed" | "Stopped" | "CompletedWithFailures"
    ) {
        return Ok(Action::Ignore(format!(
            "execution {arn} is already {status}; nothing to stop"
        )));
    }
    Ok(Action::Stop(Selection {
        execution_arns: vec![arn.to_owned()],
        ..Selection::default()
    }))
}

fn decode_alarm_action(event: &Value) -> Decoded {
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
    Decoded {
        trigger: Trigger::AlarmLambdaAction,
        identity,
        action: eventbridge_alarm(&alarm.alarm_data),
    }
}

/// The alarm data shared by EventBridge alarm events and Lambda alarm actions.
fn eventbridge_alarm(data: &CloudWatchAlarmData<Value, Value>) -> Result<Action, StopError> {
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
            if let Some(value) = value.as_str() {
                dimensions.push((name.clone(), value.to_owned()));
            }
        }
    }
    alarm_action(&data.alarm_name, state, &dimensions)
}

/// Acts only on ALARM. The target: a `PipelineExecutionArn` dimension if the
/// metric has one (explicit), else its `PipelineName` dimensions (SageMaker's
/// pipeline metrics carry one), else the configured default pipeline.
fn alarm_action(
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
    let execution_arns = values("PipelineExecutionArn");
    let pipelines = if execution_arns.is_empty() {
        values("PipelineName")
    } else {
        Vec::new()
    };
    Ok(Action::Stop(Selection {
        execution_arns,
        pipelines,
        token: None,
        default_allowed: true,
        options: Options::default(),
    }))
}
