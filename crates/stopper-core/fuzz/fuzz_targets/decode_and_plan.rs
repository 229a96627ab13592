//! Raw bytes → event → trigger → targets → validation → reply, as the
//! function runs them before any SageMaker call. Nothing may panic, hang or
//! allocate without bound, and whatever the planner accepts must be valid.
//!
//! The first byte picks where the bytes go: `{` (or anything else) the whole
//! Lambda event; 0x01 the body of a function URL request; 0x02 the message
//! of an SNS notification. So hand-typed bodies and SNS messages are reached
//! without the fuzzer having to rebuild an HTTP or SNS envelope.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use stopper_core::arn::{check_execution_arn, Scope};
use stopper_core::config::{AllowList, Config};
use stopper_core::plan::plan;
use stopper_core::reply::{error_body, http_response, ignored_body, Reply};
use stopper_core::request::MAX_EXPLICIT_TARGETS;
use stopper_core::token;
use stopper_core::trigger::{decode, Action};

fn event_from(data: &[u8]) -> Option<String> {
    match data.split_first() {
        Some((1, body)) => {
            let body = std::str::from_utf8(body).ok()?;
            Some(json!({
                "version": "2.0", "rawPath": "/", "rawQueryString": "", "headers": {},
                "requestContext": {
                    "accountId": "123456789012", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
                    "domainPrefix": "x", "requestId": "fuzz-request", "routeKey": "$default", "stage": "$default",
                    "time": "22/Nov/2026:06:00:00 +0000", "timeEpoch": 1795327200000u64,
                    "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "fuzz"}
                },
                "body": body, "isBase64Encoded": false
            }).to_string())
        }
        Some((2, message)) => {
            let message = std::str::from_utf8(message).ok()?;
            Some(json!({"Records": [{
                "EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:t:s",
                "Sns": {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
                        "Subject": null, "Message": message, "Timestamp": "2026-11-22T05:12:31.187Z",
                        "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
                        "MessageAttributes": {}}
            }]}).to_string())
        }
        // The raw text, as the function receives it (duplicate keys and all).
        _ => std::str::from_utf8(data).ok().map(str::to_owned),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(event) = event_from(data) else {
        return;
    };
    let decoded = decode(&event);
    let selection = match &decoded.action {
        Ok(Action::Stop(selection)) => selection,
        Ok(Action::Ignore(reason)) => {
            let _ = ignored_body(reason);
            return;
        }
        Err(error) => {
            // Whatever the input, a refusal's message is bounded and carries
            // no control character (it reaches replies, logs and terminals).
            assert!(error.message.len() <= stopper_core::error::MAX_MESSAGE_BYTES + 64);
            assert!(!error.message.chars().any(char::is_control));
            let body = Reply::Json(error_body(error));
            if let Some(flavor) = decoded.trigger.http() {
                let _ = http_response(flavor, error.kind.http_status(), &body);
            }
            return;
        }
    };
    let scope = Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:stopper")
        .expect("a valid function ARN");
    let configs = [
        Config::default(),
        Config {
            default_pipeline: Some("nightly-training".into()),
            allowed: AllowList::parse("nightly-*,exp-?").unwrap(),
            ..Config::default()
        },
    ];
    for config in &configs {
        let identity = decoded.identity.as_deref().unwrap_or("lambda:fuzz");
        let Ok(planned) = plan(selection, config, &scope, identity) else {
            continue;
        };
        // What the planner accepts is what SageMaker and the allow-list accept.
        assert!(planned.executions.len() <= MAX_EXPLICIT_TARGETS + 1);
        for target in &planned.executions {
            let arn =
                check_execution_arn(&target.arn, &scope).expect("planned an invalid ARN");
            assert!(
                config.allowed.check(arn.pipeline).is_ok(),
                "planned a pipeline outside the allow-list"
            );
            assert!(token::is_valid(&target.token), "planned an invalid token");
        }
        for (i, a) in planned.executions.iter().enumerate() {
            assert!(
                planned.executions[i + 1..].iter().all(|b| b.arn != a.arn),
                "planned a target twice"
            );
        }
        for pipeline in &planned.pipelines {
            assert!(config.allowed.check(pipeline).is_ok());
        }
    }
});
