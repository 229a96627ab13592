//! HTTP events: API Gateway REST and HTTP APIs, and function URLs; the
//! caller they authenticated and the body that holds the request.

use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine as _;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::limits::{
    within, API_GATEWAY_TIMEOUT_MS, MAX_CALLER_CHARS, MAX_HTTP_ENVELOPE_BYTES, MAX_HTTP_HEADERS,
    MAX_REQUEST_CONTEXT_BYTES,
};
use super::mentions::nothing_named_outside;
use super::parse::parse_envelope;
use super::{Decoded, HttpFlavor, Probe, Selection, Trigger};
use crate::arn::quote;
use crate::error::{ErrorKind, StopError};
use crate::request::MAX_REQUEST_BYTES;

/// How many header values an object of headers holds (an array counts each
/// element), counted without keeping them. Anything else counts as none.
#[derive(Default)]
pub(super) struct HeaderCount(usize);

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

pub(super) fn decode_http(event: &str, context: &RawValue, probe: &Probe) -> Decoded {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::{decode, MAX_HTTP_ENVELOPE_BYTES, MAX_HTTP_HEADERS};
    use serde_json::{json, Value};

    const HTTP_API: &str = include_str!("../../../../events/http-api.json");

    fn http_api(edit: impl FnOnce(&mut Value)) -> String {
        let mut event: Value = serde_json::from_str(HTTP_API).unwrap();
        edit(&mut event);
        event.to_string()
    }

    /// Header values are counted as the front ends send them: a string is
    /// one, a list is one per element, null is none, any other scalar one.
    #[test]
    fn header_values_are_counted_per_value() {
        for (headers, n) in [
            (json!({}), 0),
            (json!({"a": "x"}), 1),
            (json!({"a": ["1", "2", "3"]}), 3),
            (json!({"a": null}), 0),
            (json!({"a": true, "b": 1, "c": -1, "d": 1.5}), 4),
            (json!(["a", "b"]), 2),
            (json!({"a": "x", "b": ["1", "2"], "c": null, "d": false}), 4),
            (json!(null), 0),
            (json!("one"), 1),
        ] {
            let count: HeaderCount = serde_json::from_value(headers.clone()).unwrap();
            assert_eq!(count.0, n, "{headers}");
        }
    }

    /// The bounds on an HTTP event are inclusive: exactly the limit passes,
    /// one more is refused, for the envelope's size and the header count.
    #[test]
    fn http_bounds_take_exactly_their_limit() {
        let envelope_of = |pad: usize| http_api(|e| e["headers"]["x-pad"] = "a".repeat(pad).into());
        let base = envelope_of(0);
        let body_len = {
            let v: Value = serde_json::from_str(&base).unwrap();
            serde_json::to_string(&v["body"]).unwrap().len()
        };
        let pad = MAX_HTTP_ENVELOPE_BYTES - (base.len() - body_len);
        let at_limit = envelope_of(pad);
        assert_eq!(at_limit.len() - body_len, MAX_HTTP_ENVELOPE_BYTES);
        let too_big = |e: &str| {
            decode(e)
                .action
                .is_err_and(|e| e.message.contains("without its body is larger"))
        };
        assert!(!too_big(&at_limit));
        assert!(too_big(&envelope_of(pad + 1)));

        let with_headers = |n: usize| {
            http_api(|e| {
                e["headers"] = (0..n).map(|i| (format!("h{i}"), json!("v"))).collect();
            })
        };
        let too_many = |e: &str| {
            decode(e)
                .action
                .is_err_and(|e| e.message.contains("header values"))
        };
        assert!(!too_many(&with_headers(MAX_HTTP_HEADERS)));
        assert!(too_many(&with_headers(MAX_HTTP_HEADERS + 1)));
    }

    /// A function URL is told by its domain: a `.lambda-url.` name under
    /// `.on.aws`; either alone is an HTTP API.
    #[test]
    fn only_a_lambda_url_domain_is_a_function_url() {
        for (domain, flavor) in [
            ("abc.lambda-url.us-east-1.on.aws", HttpFlavor::FunctionUrl),
            ("abc.execute-api.us-east-1.on.aws", HttpFlavor::HttpApi),
            ("abc.lambda-url.example.com", HttpFlavor::HttpApi),
            (
                "abc.execute-api.us-east-1.amazonaws.com",
                HttpFlavor::HttpApi,
            ),
        ] {
            let event = http_api(|e| e["requestContext"]["domainName"] = domain.into());
            assert_eq!(decode(&event).trigger, Trigger::Http(flavor), "{domain}");
        }
    }

    /// An IAM caller is its principal's ARN, else its account; empty values
    /// name no one.
    #[test]
    fn an_iam_caller_is_its_arn_else_its_account() {
        let s = |v: &str| Some(v.to_owned());
        for (arn, account, caller) in [
            (
                s("arn:aws:iam::1:user/a"),
                s("1"),
                Some("arn:aws:iam::1:user/a"),
            ),
            (s(""), s("123456789012"), Some("account 123456789012")),
            (None, s("123456789012"), Some("account 123456789012")),
            (s(""), s(""), None),
            (None, s(""), None),
            (None, None, None),
        ] {
            assert_eq!(
                iam_caller(arn.clone(), account.clone()).as_deref(),
                caller,
                "{arn:?} {account:?}"
            );
        }
    }

    /// A caller is cut to MAX_CALLER_CHARS characters, escapes counted.
    #[test]
    fn a_long_caller_is_cut_for_logs() {
        let long = format!("arn:aws:iam::1:user/{}", "u".repeat(400));
        let caller = iam_caller(Some(long), None).unwrap();
        assert_eq!(caller.chars().count(), crate::trigger::MAX_CALLER_CHARS + 1);
        assert!(caller.ends_with('…'));
        assert_eq!(bound_caller("short"), "short");
    }

    /// A base64 body is read up to the size that decodes to the largest
    /// request, and refused for its size one step beyond it.
    #[test]
    fn a_base64_body_is_bounded_by_the_request_it_decodes_to() {
        use base64::Engine as _;
        let short = r#"{"PipelineName": "p"}"#;
        let largest = format!("{short}{}", " ".repeat(MAX_REQUEST_BYTES - short.len()));
        let encoded = base64::engine::general_purpose::STANDARD.encode(&largest);
        assert_eq!(http_body(Some(&encoded), true).unwrap(), largest);
        let err = http_body(Some(&format!("{encoded}AAAA")), true).unwrap_err();
        assert!(err.message.contains("larger than"), "{}", err.message);
    }
}
