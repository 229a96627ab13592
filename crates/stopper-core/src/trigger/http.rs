//! HTTP events: API Gateway REST and HTTP APIs, and function URLs; the
//! caller they authenticated and the body that holds the request.

use aws_lambda_events::event::apigw::{
    ApiGatewayProxyRequest, ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest,
};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::limits::{MAX_CALLER_CHARS, MAX_HTTP_ENVELOPE_BYTES};
use super::parse::parse_envelope;
use super::{Decoded, FrontEnd, HttpFlavor, Probe, Selection, Trigger};
use crate::arn::quote;
use crate::error::{ErrorKind, StopError};

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
    // integration timeout.
    let front_end = match request.flavor {
        HttpFlavor::FunctionUrl => None,
        HttpFlavor::HttpApi | HttpFlavor::RestApi => Some(FrontEnd {
            received_epoch_ms: request.received_epoch_ms,
        }),
    };
    Decoded {
        trigger,
        identity,
        action,
        caller: request.caller,
        front_end,
        cause: None,
    }
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
    use crate::trigger::{decode, MAX_HTTP_ENVELOPE_BYTES};
    use serde_json::{json, Value};

    const HTTP_API: &str = include_str!("../../../../events/http-api.json");

    fn http_api(edit: impl FnOnce(&mut Value)) -> String {
        let mut event: Value = serde_json::from_str(HTTP_API).unwrap();
        edit(&mut event);
        event.to_string()
    }

    /// The envelope's bound is inclusive: exactly the limit passes, one more
    /// is refused.
    #[test]
    fn the_envelope_bound_takes_exactly_its_limit() {
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
    }

    /// The header map the HTTP events decode into panics past 24,576
    /// distinct names. The envelope's bound keeps every event below that:
    /// headers (and a REST event's multi-value headers) with as many distinct
    /// names as fit, the shortest first, are decoded, not a panic.
    #[test]
    fn the_most_headers_an_envelope_holds_fit_the_header_map() {
        const TOKEN: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~";
        let names = (1..=3).flat_map(|len| {
            (0..TOKEN.len().pow(len)).map(move |mut i| {
                let mut name = String::new();
                for _ in 0..len {
                    name.push(TOKEN[i % TOKEN.len()] as char);
                    i /= TOKEN.len();
                }
                name
            })
        });
        for (file, field, value) in [
            ("http-api.json", "headers", json!("")),
            ("http-rest-api.json", "multiValueHeaders", json!([""])),
        ] {
            let text = std::fs::read_to_string(format!("../../events/{file}")).unwrap();
            let mut event: Value = serde_json::from_str(&text).unwrap();
            event[field] = json!({});
            let body_len = serde_json::to_string(&event["body"]).unwrap().len();
            let mut budget = MAX_HTTP_ENVELOPE_BYTES - (event.to_string().len() - body_len);
            let mut headers = serde_json::Map::new();
            for name in names.clone() {
                let cost = name.len() + value.to_string().len() + 4;
                if cost > budget {
                    break;
                }
                budget -= cost;
                headers.insert(name, value.clone());
            }
            assert!(headers.len() > 10_000, "{}", headers.len());
            event[field] = Value::Object(headers);
            let decoded = decode(&event.to_string());
            assert!(decoded.action.is_ok(), "{file}: {:?}", decoded.action);
        }
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
}
