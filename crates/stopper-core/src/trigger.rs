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

use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarm, CloudWatchAlarmData, CloudWatchAlarmStateValue,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::event::sns::{CloudWatchAlarmPayload, SnsEvent};
use base64::Engine as _;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::arn::quote;
use crate::error::{ErrorKind, StopError};
use crate::options::Options;
use crate::request::{json_kind, json_kind_of_text, StopRequest, MAX_REQUEST_BYTES};

/// The largest alarm event read (CloudWatch alarm state changes on
/// EventBridge, alarm Lambda actions, SNS alarm notifications). A real one is
/// a few KB; this bounds the `Value` tree their lenient decoding builds.
pub const MAX_ALARM_EVENT_BYTES: usize = 256 * 1024;
/// SNS's own limit on a message: a larger one was not delivered by SNS.
pub const MAX_SNS_MESSAGE_BYTES: usize = 256 * 1024;
/// The largest SNS event read: one record whose message, escaped inside the
/// event's JSON, can take up to 6 bytes per byte (`\u0000`).
pub const MAX_SNS_EVENT_BYTES: usize = 6 * MAX_SNS_MESSAGE_BYTES + 64 * 1024;
/// The largest HTTP `requestContext` read. API Gateway's and function URLs'
/// are a few KB (authorizer claims included); a larger one is not from them.
pub const MAX_REQUEST_CONTEXT_BYTES: usize = 64 * 1024;
/// The largest EventBridge event read: Lambda takes at most 1 MB in an
/// asynchronous invocation, which is how EventBridge delivers.
pub const MAX_EVENTBRIDGE_EVENT_BYTES: usize = 1024 * 1024;
/// The largest HTTP event read, not counting its body. API Gateway and
/// function URLs send at most 10 KB of request line and headers (twice over in
/// a REST event's `multiValueHeaders`) and a few KB of `requestContext`; the
/// rest of an event up to Lambda's 6 MB is the body.
pub const MAX_HTTP_ENVELOPE_BYTES: usize = 256 * 1024;
/// The most header values an HTTP event may carry. API Gateway allows 10 KB
/// of headers; the header map these events decode into panics past 32,768.
pub const MAX_HTTP_HEADERS: usize = 1_000;
/// The longest caller identity kept for logs and the forced-step reason.
pub const MAX_CALLER_CHARS: usize = 256;
/// API Gateway gives an integration at most this long (HTTP APIs 30 s, REST
/// APIs 29 s by default) before it answers 503 itself; the function must
/// reply before then. Counted from the request's arrival at API Gateway.
pub const API_GATEWAY_TIMEOUT_MS: u64 = 29_000;

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
    /// Who asked, for HTTP requests: the IAM principal (or account) or the JWT
    /// subject and issuer that API Gateway or the function URL authenticated.
    /// Logged on every stop line and named in `Force`'s default reason.
    pub caller: Option<String>,
    /// For API Gateway: the time (ms since the epoch) by which the reply must
    /// be sent, before the front end gives up and answers 503 itself.
    pub reply_by_epoch_ms: Option<u64>,
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
            reply_by_epoch_ms: None,
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
        self.execution_arns.is_empty() && self.pipelines.is_empty()
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
    #[serde(default)]
    headers: HeaderCount,
    #[serde(rename = "multiValueHeaders", default)]
    multi_value_headers: HeaderCount,
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
}

/// The request fields, by name with case and punctuation folded: a service
/// event (SNS, HTTP, EventBridge, alarm) carrying one at its top level is a
/// request in the wrong place, or an alarm in disguise, and is refused rather
/// than read as its service's event (which would drop the field, and could
/// then fall back to the default pipeline).
const REQUEST_FIELDS: [&str; 10] = [
    "pipelineexecutionarn",
    "pipelineexecutionarns",
    "pipelinename",
    "clientrequesttoken",
    "dryrun",
    "wait",
    "waitseconds",
    "force",
    "reason",
    "olderthanminutes",
];

fn folded(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// What a walk over a service event's JSON found.
#[derive(Default)]
struct Mentions {
    /// How many times a target or request field is named, outside the
    /// top-level subtrees skipped. Keys count (`"PipelineName": ...`), and so
    /// do `{"name": ...}` values (as SNS writes alarm dimensions).
    total: usize,
    /// The first request field at the top level, quoted: a request in the
    /// wrong place, or an alarm in disguise.
    at_top: Option<String>,
}

/// Walks a service event's JSON once: counts the mentions of targets and
/// request fields, and refuses a key given twice in any object. In an
/// alarm's payload (`alarm`), `reason` below the top level is CloudWatch's
/// own field (the state's reason) and does not count.
fn mentions_in(
    text: &str,
    what: &str,
    skip_top: &[&str],
    alarm: bool,
) -> Result<Mentions, StopError> {
    const EXTRA: [&str; 3] = ["pipelinenames", "pipelinearn", "executionarn"];
    // Longer than any field name: not one, and not worth folding.
    let is_request_field = |s: &str| s.len() <= 64 && REQUEST_FIELDS.contains(&folded(s).as_str());
    let is_mention = |s: &str| {
        s.len() <= 64 && {
            let f = folded(s);
            (REQUEST_FIELDS.contains(&f.as_str()) && !(alarm && f == "reason"))
                || EXTRA.contains(&f.as_str())
        }
    };

    /// One JSON value; counts mentions (when `count`) and refuses a key given
    /// twice in any object. serde_json's recursion limit bounds its depth.
    struct Walk<'a, F: Fn(&str) -> bool, G: Fn(&str) -> bool> {
        count: bool,
        top: bool,
        skip_top: &'a [&'a str],
        is_mention: &'a F,
        is_request_field: &'a G,
        mentions: &'a mut Mentions,
        /// This value is a `"name"`'s: a string naming a target counts.
        named: bool,
    }
    impl<'de, F: Fn(&str) -> bool, G: Fn(&str) -> bool> de::DeserializeSeed<'de> for Walk<'_, F, G> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de, F: Fn(&str) -> bool, G: Fn(&str) -> bool> Visitor<'de> for Walk<'_, F, G> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if seen.contains(&key) {
                    return Err(de::Error::custom(format!("duplicate field `{key}`")));
                }
                let skipped = self.top && self.skip_top.contains(&key.as_str());
                let count = self.count && !skipped;
                if self.top && self.mentions.at_top.is_none() && (self.is_request_field)(&key) {
                    self.mentions.at_top = Some(quote(&key));
                }
                if count && ((self.is_mention)(&key) || self.top && (self.is_request_field)(&key)) {
                    self.mentions.total += 1;
                }
                map.next_value_seed(Walk {
                    count,
                    top: false,
                    skip_top: self.skip_top,
                    is_mention: self.is_mention,
                    is_request_field: self.is_request_field,
                    mentions: &mut *self.mentions,
                    named: count && folded(&key) == "name",
                })?;
                seen.insert(key);
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq
                .next_element_seed(Walk {
                    count: self.count,
                    top: false,
                    skip_top: self.skip_top,
                    is_mention: self.is_mention,
                    is_request_field: self.is_request_field,
                    mentions: &mut *self.mentions,
                    named: false,
                })?
                .is_some()
            {}
            Ok(())
        }
        fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
            if self.named && (self.is_mention)(value) {
                self.mentions.total += 1;
            }
            Ok(())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E: de::Error>(self) -> Result<(), E> {
            Ok(())
        }
    }
    let mut mentions = Mentions::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    de::DeserializeSeed::deserialize(
        Walk {
            count: true,
            top: true,
            skip_top,
            is_mention: &is_mention,
            is_request_field: &is_request_field,
            mentions: &mut mentions,
            named: false,
        },
        &mut deserializer,
    )
    .and_then(|()| deserializer.end())
    .map_err(|e| StopError::validation(format!("{what}: {e}")))?;
    Ok(mentions)
}

/// Refuses a service event that names a target or request field anywhere
/// outside the parts it is read from (`skip_top`): such a field would be
/// dropped, and the default pipeline could be stopped instead. Also refuses
/// a key given twice anywhere.
fn nothing_named_outside(text: &str, what: &str, skip_top: &[&str]) -> Result<(), StopError> {
    let mentions = mentions_in(text, what, skip_top, false)?;
    no_request_field_at_top(&mentions, what)?;
    match mentions.total {
        0 => Ok(()),
        n => Err(StopError::validation(format!(
            "{what} names a target or request field {n} time(s) outside where a request is read: refusing to \
             guess what it means (a request goes in a direct invocation, an EventBridge detail, an SNS message \
             or an HTTP body)"
        ))),
    }
}

/// The mentions in an alarm's payload, for `alarm_action` to match against
/// the dimensions it reads; a request field at its top level is refused
/// first, whatever the alarm's state: the payload is a request in disguise.
fn alarm_mentions(text: &str, what: &str) -> Result<usize, StopError> {
    let mentions = mentions_in(text, what, &[], true)?;
    no_request_field_at_top(&mentions, what)?;
    Ok(mentions.total)
}

/// Refuses a service event that carries a request field at its top level.
fn no_request_field_at_top(mentions: &Mentions, what: &str) -> Result<(), StopError> {
    match &mentions.at_top {
        None => Ok(()),
        Some(field) => Err(StopError::validation(format!(
            "{what} has the request field {field} at its top level: refusing to guess whether it is the event \
             or a request (a request goes in a direct invocation, an EventBridge detail, an SNS message or an \
             HTTP body)"
        ))),
    }
}

/// How many header values an object of headers holds (an array counts each
/// element), counted without keeping them. Anything else counts as none.
#[derive(Default)]
struct HeaderCount(usize);

impl<'de> Deserialize<'de> for HeaderCount {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> Visitor<'de> for Values {
            type Value = usize;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("header values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
                let mut n = 0usize;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    n = n.saturating_add(map.next_value::<ValueCount>()?.0);
                }
                Ok(n)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
                let mut n = 0usize;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(n)
            }
            fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
                Ok(0)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<usize, E> {
                Ok(1)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<usize, E> {
                Ok(1)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<usize, E> {
                Ok(1)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<usize, E> {
                Ok(1)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<usize, E> {
                Ok(1)
            }
        }
        /// One header's values: 1 for a string, the length of an array.
        struct ValueCount(usize);
        impl<'de> Deserialize<'de> for ValueCount {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Values).map(ValueCount)
            }
        }
        d.deserialize_any(Values).map(HeaderCount)
    }
}

/// Decodes any event the function can receive, from its JSON text. Never
/// panics; whatever cannot be understood comes back as a `Validation` error in
/// `action`. The event is never held as a `serde_json::Value` tree (which
/// takes 20 to 30 times the text's size): each trigger's fields are read into
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
    // Each service event is then walked once, within its size bound, for
    // duplicate keys and for targets or request fields outside its request.
    if probe.records.is_some() {
        decode_records(event)
    } else if let Some(context) = probe.request_context {
        decode_http(event, context, &probe)
    } else if probe.detail_type.is_some() {
        decode_eventbridge(event)
    } else if probe.alarm_data.is_some() {
        decode_alarm_action(event)
    } else {
        Decoded::new(Trigger::Direct, None, Selection::from_text(event, true))
    }
}

/// Typed parse from JSON text, with the field at fault named.
fn parse<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StopError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = crate::request::field_path(e.path());
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        StopError::validation(format!("not a valid {what}{at}: {}", e.inner()))
    })
}

/// Typed parse of an HTTP event's envelope. The error names where, never
/// what: serde quotes the offending value, and in an HTTP envelope that can
/// be a cookie, an `authorization` header or a token in a query string.
fn parse_envelope<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StopError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        StopError::validation(format!(
            "not a valid {what} at {}: a value of the wrong type, or with characters a front end never sends \
             (the value is not quoted: it may be a credential)",
            crate::request::field_path(e.path())
        ))
    })
}

/// Refuses an event larger than its source ever sends.
fn within(text: &str, limit: usize, what: &str) -> Result<(), StopError> {
    if text.len() > limit {
        return Err(StopError::validation(format!(
            "{what} of {} bytes is larger than any its source sends ({limit} bytes at most)",
            text.len()
        )));
    }
    Ok(())
}

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

fn decode_records(event: &str) -> Decoded {
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

/// What tells the HTTP front ends apart, inside `requestContext`.
#[derive(Deserialize)]
struct ContextProbe<'a> {
    #[serde(borrow, default)]
    http: Option<&'a RawValue>,
    #[serde(rename = "domainName", default)]
    domain_name: Option<String>,
}

/// One HTTP request, whichever front end sent it.
struct HttpRequest {
    flavor: HttpFlavor,
    method: String,
    body: Option<String>,
    base64: bool,
    request_id: Option<String>,
    caller: Option<String>,
    /// When API Gateway received it (ms since the epoch), if it says.
    received_epoch_ms: Option<u64>,
}

fn decode_http(event: &str, context: &RawValue, probe: &Probe) -> Decoded {
    let shape = serde_json::from_str::<ContextProbe>(context.get()).ok();
    let flavor = match &shape {
        Some(ContextProbe {
            http: Some(_),
            domain_name,
        }) if domain_name
            .as_deref()
            .is_some_and(|d| d.contains(".lambda-url.") && d.ends_with(".on.aws")) =>
        {
            HttpFlavor::FunctionUrl
        }
        Some(ContextProbe { http: Some(_), .. }) => HttpFlavor::HttpApi,
        _ if probe.http_method.is_some() => HttpFlavor::RestApi,
        _ => return Decoded::refused(
            Trigger::Direct,
            StopError::validation(
                "unsupported event: a requestContext without httpMethod or http (WebSocket and \
                     other API Gateway events are not stop requests)",
            ),
        ),
    };
    let trigger = Trigger::Http(flavor);
    // Lengths compared as numbers: the event is never sliced (a byte index
    // inside a multi-byte character would panic).
    let body_bytes = probe.body.map_or(0, |b| b.get().len());
    let envelope_bytes = event.len().saturating_sub(body_bytes);
    if envelope_bytes > MAX_HTTP_ENVELOPE_BYTES {
        return Decoded::refused(
            trigger,
            StopError::validation(format!(
                "an HTTP event of {envelope_bytes} bytes without its body is larger than any front end sends \
                 ({MAX_HTTP_ENVELOPE_BYTES} bytes at most)"
            )),
        );
    }
    // A body that is not a string (or null) is no front end's, and would
    // slip its size past the envelope's bound.
    if probe.body.is_some_and(|b| !b.get().starts_with(['"', 'n'])) {
        return Decoded::refused(
            trigger,
            StopError::validation(
                "the HTTP event's body is not a string: not from an HTTP front end",
            ),
        );
    }
    if let Err(e) = nothing_named_outside(event, "an HTTP event", &["body", "requestContext"]) {
        return Decoded::refused(trigger, e);
    }
    let headers = probe.headers.0.saturating_add(probe.multi_value_headers.0);
    if headers > MAX_HTTP_HEADERS {
        return Decoded::refused(
            trigger,
            StopError::validation(format!(
                "the request has {headers} header values; no HTTP front end sends more than {MAX_HTTP_HEADERS}"
            )),
        );
    }
    if let Err(e) = within(context.get(), MAX_REQUEST_CONTEXT_BYTES, "a requestContext") {
        return Decoded::refused(trigger, e);
    }
    let request = match flavor {
        HttpFlavor::FunctionUrl => {
            parse_envelope::<LambdaFunctionUrlRequest>(event, "function URL request").map(|r| {
                let iam = r.request_context.authorizer.and_then(|a| a.iam);
                HttpRequest {
                    flavor,
                    method: r.request_context.http.method.unwrap_or_default(),
                    body: r.body,
                    base64: r.is_base64_encoded,
                    request_id: r.request_context.request_id,
                    caller: iam.and_then(|iam| iam_caller(iam.user_arn, iam.account_id)),
                    // Function URLs have no integration timeout of their own.
                    received_epoch_ms: None,
                }
            })
        }
        HttpFlavor::HttpApi => parse_envelope::<ApiGatewayV2httpRequest>(event, "HTTP API request")
            .map(|r| {
                let context = r.request_context;
                HttpRequest {
                    flavor,
                    method: context.http.method.to_string(),
                    body: r.body,
                    base64: r.is_base64_encoded,
                    request_id: context.request_id,
                    caller: context.authorizer.and_then(authorizer_caller),
                    received_epoch_ms: u64::try_from(context.time_epoch).ok(),
                }
            }),
        HttpFlavor::RestApi => {
            parse_envelope::<ApiGatewayProxyRequest>(event, "API Gateway REST request").map(|r| {
                let context = r.request_context;
                let identity = context.identity;
                HttpRequest {
                    flavor,
                    method: r.http_method.to_string(),
                    body: r.body,
                    base64: r.is_base64_encoded,
                    request_id: context.request_id,
                    caller: iam_caller(identity.user_arn, identity.account_id)
                        .or_else(|| authorizer_caller(context.authorizer)),
                    received_epoch_ms: u64::try_from(context.request_time_epoch).ok(),
                }
            })
        }
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => return Decoded::refused(trigger, e),
    };
    let identity = request
        .request_id
        .filter(|id| !id.is_empty())
        .map(|id| format!("http:{id}"));
    let action = if !request.method.eq_ignore_ascii_case("POST") {
        Err(StopError::new(
            ErrorKind::MethodNotAllowed,
            format!(
                "method {} is not allowed: send a POST with a JSON body",
                quote(&request.method)
            ),
        ))
    } else {
        http_body(request.body.as_deref(), request.base64)
            .and_then(|text| Selection::from_text(&text, false))
    };
    // API Gateway (not a function URL) answers 503 itself after its
    // integration timeout. A receipt time that is missing or implausible
    // (0, in the future) counts from now, which is never later.
    let reply_by_epoch_ms = match request.flavor {
        HttpFlavor::FunctionUrl => None,
        HttpFlavor::HttpApi | HttpFlavor::RestApi => {
            let now = now_epoch_ms();
            let received = request
                .received_epoch_ms
                .filter(|&t| t > now.saturating_sub(API_GATEWAY_TIMEOUT_MS) && t <= now)
                .unwrap_or(now);
            Some(received + API_GATEWAY_TIMEOUT_MS)
        }
    };
    Decoded {
        trigger,
        identity,
        action,
        caller: request.caller,
        reply_by_epoch_ms,
    }
}

fn now_epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An IAM caller: the principal's ARN, else its account.
fn iam_caller(user_arn: Option<String>, account_id: Option<String>) -> Option<String> {
    let caller = match (user_arn, account_id) {
        (Some(arn), _) if !arn.is_empty() => arn,
        (_, Some(account)) if !account.is_empty() => format!("account {account}"),
        _ => return None,
    };
    Some(bound_caller(&caller))
}

/// The caller an API Gateway authorizer vouches for: IAM, or a JWT's subject
/// and issuer.
fn authorizer_caller(authorizer: ApiGatewayRequestAuthorizer) -> Option<String> {
    if let Some(iam) = authorizer.iam {
        if let Some(caller) = iam_caller(iam.user_arn, iam.account_id) {
            return Some(caller);
        }
    }
    let claims = authorizer.jwt?.claims;
    let sub = claims.get("sub").filter(|s| !s.is_empty())?;
    let caller = match claims.get("iss").filter(|s| !s.is_empty()) {
        Some(iss) => format!("jwt sub {sub} iss {iss}"),
        None => format!("jwt sub {sub}"),
    };
    Some(bound_caller(&caller))
}

/// A caller identity fit for a log line and a failure reason: control
/// characters escaped, at most [`MAX_CALLER_CHARS`].
fn bound_caller(caller: &str) -> String {
    let mut out = String::new();
    let mut written = 0;
    for c in caller.chars() {
        if written >= MAX_CALLER_CHARS {
            out.push('…');
            break;
        }
        let before = out.len();
        crate::error::push_safe(&mut out, c);
        written += out[before..].chars().count();
    }
    out
}

/// The JSON text of an HTTP request's body, plain or base64 (`isBase64Encoded`).
fn http_body(body: Option<&str>, base64: bool) -> Result<String, StopError> {
    let body = body.unwrap_or("");
    // Refused before it is decoded: a base64 body is 4/3 of its text.
    let limit = if base64 {
        MAX_REQUEST_BYTES / 3 * 4 + 4
    } else {
        MAX_REQUEST_BYTES
    };
    within(body, limit, "the request body")?;
    let text = if base64 {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| {
                StopError::validation(format!("the body is marked base64 but is not: {e}"))
            })?;
        String::from_utf8(bytes)
            .map_err(|e| StopError::validation(format!("the body is not UTF-8: {e}")))?
    } else {
        body.to_owned()
    };
    if text.trim().is_empty() {
        return Err(StopError::validation(
            "the request body is empty: send a JSON object such as {\"PipelineExecutionArn\": \"arn:aws:sagemaker:...\"}",
        ));
    }
    if let Err(e) = serde_json::from_str::<IgnoredAny>(&text) {
        return Err(StopError::validation(format!(
            "the body is not valid JSON: {e}"
        )));
    }
    Ok(text)
}

fn decode_eventbridge(event: &str) -> Decoded {
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
    // Outside an alarm, a target may be named only in `detail`, where it is read.
    let outside_detail = || nothing_named_outside(event, "an EventBridge event", &["detail"]);
    let (trigger, action) = match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.cloudwatch", ALARM_STATE_CHANGE) => (
            Trigger::AlarmEventBridge,
            within(event, MAX_ALARM_EVENT_BYTES, "an alarm event")
                .and_then(|()| alarm_mentions(event, "an alarm event"))
                .and_then(|mentions| {
                    let data = parse::<CloudWatchAlarmData<Value, Value>>(
                        detail,
                        "CloudWatch alarm state change detail",
                    )?;
                    eventbridge_alarm(&data, mentions)
                }),
        ),
        ("aws.sagemaker", SAGEMAKER_STATUS_CHANGE) => (
            Trigger::SageMakerStatusChange,
            outside_detail().and_then(|()| sagemaker_status_change(detail)),
        ),
        // A scheduled rule's `detail` is `{}`: a request with no target field,
        // which stops DEFAULT_PIPELINE_NAME's running executions.
        (_, "Scheduled Event") => (
            Trigger::ScheduledEvent,
            outside_detail().and_then(|()| detail_request(detail, &envelope.resources)),
        ),
        _ => (
            Trigger::EventBridge,
            outside_detail().and_then(|()| detail_request(detail, &envelope.resources)),
        ),
    };
    Decoded::new(trigger, identity, action)
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
    let status = detail.status.unwrap_or_default();
    if matches!(
        status.as_str(),
        "Succeeded" | "Failed" | "Stopped" | "CompletedWithFailures"
    ) {
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

fn decode_alarm_action(event: &str) -> Decoded {
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
fn eventbridge_alarm(
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
fn alarm_action(
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
        options: Options::default(),
    }))
}
