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

mod alarm;
mod eventbridge;
mod http;
mod limits;
mod mentions;
mod parse;
mod sns;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::StopError;
use crate::options::Options;
use crate::request::{json_kind_of_text, StopRequest};

pub use eventbridge::{ALARM_STATE_CHANGE, SAGEMAKER_STATUS_CHANGE};
pub use limits::{
    API_GATEWAY_TIMEOUT_MS, MAX_ALARM_EVENT_BYTES, MAX_CALLER_CHARS, MAX_EVENTBRIDGE_EVENT_BYTES,
    MAX_HTTP_ENVELOPE_BYTES, MAX_SNS_EVENT_BYTES,
};
#[cfg(test)]
pub(crate) use mentions::REQUEST_FIELDS;

use alarm::decode_alarm_action;
use eventbridge::decode_eventbridge;
use http::decode_http;
use mentions::no_request_field_at_top;
use sns::decode_records;

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
    /// Who asked, for HTTP requests: the IAM principal (or account) or the JWT
    /// subject and issuer that API Gateway or the function URL authenticated.
    /// Logged on every stop line and named in `Force`'s default reason.
    pub caller: Option<String>,
    /// For API Gateway (not function URLs): its integration timeout, by which
    /// the reply must be sent before it gives up and answers 503 itself.
    pub front_end: Option<FrontEnd>,
    /// What set it off, when the event names it (an alarm, a scheduled rule):
    /// said in the chat notification of what it stopped.
    pub cause: Option<Cause>,
}

/// What set an event off, as the event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A CloudWatch alarm: its name and the state it went into.
    Alarm { name: String, state: String },
    /// An EventBridge scheduled rule: its name (from the event's `resources`).
    Rule(String),
}

/// API Gateway's integration timeout on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontEnd {
    /// When API Gateway received the request (ms since the epoch), as the
    /// event says.
    pub received_epoch_ms: Option<u64>,
}

impl FrontEnd {
    /// When (ms since the epoch) the reply must be sent, given the time now:
    /// [`limits::API_GATEWAY_TIMEOUT_MS`] after the receipt. A receipt time
    /// that is missing or implausible (in the future, or as long ago as the
    /// timeout or longer: a clock that disagrees with API Gateway's) counts
    /// from now.
    pub fn reply_by(self, now_epoch_ms: u64) -> u64 {
        let timeout = limits::API_GATEWAY_TIMEOUT_MS;
        let received = self
            .received_epoch_ms
            .filter(|&t| t > now_epoch_ms.saturating_sub(timeout) && t <= now_epoch_ms)
            .unwrap_or(now_epoch_ms);
        received + timeout
    }
}

impl Decoded {
    /// An event refused before its trigger's identity is known.
    fn refused(trigger: Trigger, error: StopError) -> Decoded {
        Decoded::new(trigger, None, Err(error))
    }

    fn new(
        trigger: Trigger,
        identity: Option<String>,
        action: Result<Action, StopError>,
    ) -> Decoded {
        Decoded {
            trigger,
            identity,
            action,
            caller: None,
            front_end: None,
            cause: None,
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
    /// Whether `DEFAULT_PIPELINE_NAME` stands in: only for a trigger that
    /// allows it (never HTTP) and an event with no target field at all.
    pub default_allowed: bool,
    /// A guard run: the executions over their pipeline's limit.
    pub guard: bool,
    /// Dry run, wait, force, age filter.
    pub options: Options,
}

impl Selection {
    fn from_request(
        request: StopRequest,
        trigger_allows_default: bool,
    ) -> Result<Selection, StopError> {
        let options = Options::from_request(&request)?;
        let default_allowed = trigger_allows_default && !request.names_target();
        let mut execution_arns: Vec<String> = request.execution_arn.flatten().into_iter().collect();
        execution_arns.extend(request.execution_arns.flatten().unwrap_or_default());
        Ok(Selection {
            execution_arns,
            pipelines: request.pipeline_name.flatten().into_iter().collect(),
            token: request.client_request_token,
            default_allowed,
            guard: request.guard == Some(true),
            options,
        })
    }

    /// The selection of a request read from JSON text.
    fn from_text(text: &str, trigger_allows_default: bool) -> Result<Action, StopError> {
        StopRequest::from_text(text)
            .and_then(|r| Selection::from_request(r, trigger_allows_default))
            .map(Action::Stop)
    }

    pub fn is_empty(&self) -> bool {
        self.execution_arns.is_empty() && self.pipelines.is_empty() && !self.guard
    }
}

/// The top-level keys that tell triggers apart, read without building the
/// event: the rest of it is skipped, not held. A key given twice is refused.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<&'a RawValue>,
    #[serde(rename = "requestContext", borrow, default)]
    request_context: Option<&'a RawValue>,
    #[serde(rename = "httpMethod", borrow, default)]
    http_method: Option<&'a RawValue>,
    #[serde(rename = "detail-type", borrow, default)]
    detail_type: Option<&'a RawValue>,
    #[serde(rename = "alarmData", borrow, default)]
    alarm_data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

/// Decodes any event the function can receive, from its JSON text. Never
/// panics; whatever cannot be understood comes back as a `Validation` error in
/// `action`. The event is never held as a `serde_json::Value` tree (which
/// takes many times the text's size: docs/performance.md, "The largest
/// events"): each trigger's fields are read into
/// their types straight from the text, and lists are bounded as they are read.
pub fn decode(event: &str) -> Decoded {
    if !event.trim_start().starts_with('{') {
        return Decoded::refused(
            Trigger::Direct,
            StopError::validation(format!(
                "the event must be a JSON object, not {}",
                json_kind_of_text(event)
            )),
        );
    }
    let probe: Probe = match serde_json::from_str(event) {
        Ok(probe) => probe,
        Err(e) => {
            return Decoded::refused(
                Trigger::Direct,
                StopError::validation(format!("not a valid event: {e}")),
            )
        }
    };
    let decoded = if probe.records.is_some() {
        decode_records(event)
    } else if let Some(context) = probe.request_context {
        decode_http(event, context, &probe)
    } else if probe.detail_type.is_some() {
        decode_eventbridge(event)
    } else if probe.alarm_data.is_some() {
        decode_alarm_action(event)
    } else {
        return Decoded::new(Trigger::Direct, None, Selection::from_text(event, true));
    };
    // A service event's top-level keys are its service's: a request field
    // there was meant as a request, and read as the event it would be dropped.
    Decoded {
        action: no_request_field_at_top(event, "the event").and(decoded.action),
        ..decoded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operators filter the function's logs by trigger (`trigger=alarm-sns`):
    /// each trigger needs a name of its own, fit for a filter (lower-case
    /// words and hyphens), or two kinds of event would be told apart nowhere.
    /// The spellings themselves are not pinned here.
    #[test]
    fn every_trigger_has_a_distinct_log_name_fit_for_a_filter() {
        let all = [
            Trigger::Direct,
            Trigger::EventBridge,
            Trigger::ScheduledEvent,
            Trigger::SageMakerStatusChange,
            Trigger::AlarmEventBridge,
            Trigger::AlarmLambdaAction,
            Trigger::AlarmSns,
            Trigger::Sns,
            Trigger::Http(HttpFlavor::RestApi),
            Trigger::Http(HttpFlavor::HttpApi),
            Trigger::Http(HttpFlavor::FunctionUrl),
        ];
        let mut names: Vec<&str> = all.iter().map(|t| t.name()).collect();
        for name in &names {
            assert!(
                !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
                    && !name.starts_with('-')
                    && !name.ends_with('-'),
                "{name:?}"
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "two triggers share a log name");
        assert_eq!(
            all.iter().filter(|t| t.http().is_some()).count(),
            3,
            "only the HTTP triggers get HTTP replies"
        );
    }
}
