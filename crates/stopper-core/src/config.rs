//! The function's configuration, read once at init from environment variables.

use crate::arn::{is_pipeline_name, quote};
use crate::error::StopError;
use crate::limit::{
    parse_max_runtime, MaxRuntime, TagValue, DEFAULT_MAX_RUNTIME_TAG, DURATION_FORMS,
};

/// The type of [`Config::allowed`], where whoever builds a `Config` looks for it
/// (the tests, the fuzz target); it lives in `allow`, which the guard uses
/// without the rest of the configuration.
pub use crate::allow::AllowList;

/// The namespace when `METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "SageMakerPipelineStopper";

/// Targets stopped at the same time, unless `MAX_CONCURRENCY` says otherwise.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

#[derive(Debug, Clone)]
pub struct Config {
    /// `DEFAULT_PIPELINE_NAME`: the pipeline whose running executions a schedule,
    /// alarm or direct invocation that names no target stops.
    pub default_pipeline: Option<String>,
    /// `ALLOWED_PIPELINES`: which pipelines may be stopped at all.
    pub allowed: AllowList,
    /// `MAX_CONCURRENCY`: targets acted on at once for one event (each
    /// target's own calls run in sequence; a sweep's listing runs beside them).
    pub max_concurrency: usize,
    /// `MAX_RUNTIME_TAG`: the tag whose value is a pipeline's longest allowed run.
    pub max_runtime_tag: String,
    /// `DEFAULT_MAX_RUNTIME`: the limit of untagged pipelines; `None`: they are never touched.
    pub default_max_runtime: Option<MaxRuntime>,
    /// `STOPPING_GRACE`: how long an execution may stay `Stopping` before the
    /// guard reports it stuck (and, with `Force`, fails what holds it);
    /// `None` (`off`): never.
    pub stopping_grace: Option<MaxRuntime>,
}

/// `STOPPING_GRACE` when unset: 15 minutes. A stop held by a Lambda step ends
/// within the step's timeout (at most 10 minutes), so an execution still
/// `Stopping` after 15 is held by something that will not end on its own: a
/// Callback step whose consumer does not answer.
pub const DEFAULT_STOPPING_GRACE_MINUTES: u64 = 15;

/// The configuration with nothing set. Written out rather than derived: a
/// derived `max_concurrency` of 0 would act on nothing and never finish.
impl Default for Config {
    fn default() -> Config {
        Config {
            default_pipeline: None,
            allowed: AllowList::default(),
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            max_runtime_tag: DEFAULT_MAX_RUNTIME_TAG.to_owned(),
            default_max_runtime: None,
            stopping_grace: MaxRuntime::from_minutes(DEFAULT_STOPPING_GRACE_MINUTES),
        }
    }
}

impl Config {
    /// Reads the configuration through `var` (the process environment in
    /// `main`, a map in tests). A bad setting fails the function's init with a
    /// message naming the variable, rather than misbehaving on the first event.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, StopError> {
        let set = |name: &str| setting(&var, name);
        let allowed = match set("ALLOWED_PIPELINES") {
            Some(spec) => AllowList::parse(&spec)?,
            None => AllowList::default(),
        };
        let default_pipeline = set("DEFAULT_PIPELINE_NAME");
        if let Some(name) = &default_pipeline {
            if !is_pipeline_name(name) {
                return Err(StopError::validation(format!(
                    "DEFAULT_PIPELINE_NAME {} is not a valid pipeline name",
                    quote(name)
                )));
            }
            allowed.check(name).map_err(|e| {
                StopError::validation(format!(
                    "DEFAULT_PIPELINE_NAME is refused by ALLOWED_PIPELINES: {}",
                    e.message
                ))
            })?;
        }
        let max_concurrency = match set("MAX_CONCURRENCY") {
            None => DEFAULT_MAX_CONCURRENCY,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| {
                    StopError::validation(format!(
                        "MAX_CONCURRENCY {} is not a number from 1 to 256",
                        quote(&v)
                    ))
                })?,
        };
        let max_runtime_tag = match set("MAX_RUNTIME_TAG") {
            None => DEFAULT_MAX_RUNTIME_TAG.to_owned(),
            Some(key) if is_tag_key(&key) => key,
            Some(key) => {
                return Err(StopError::validation(format!(
                    "MAX_RUNTIME_TAG {} is not a tag key: 1 to 128 letters, digits, spaces and _.:/=+-@, \
                     not starting with aws:",
                    quote(&key)
                )))
            }
        };
        let default_max_runtime = match set("DEFAULT_MAX_RUNTIME") {
            None => None,
            Some(text) => match parse_max_runtime(&text) {
                Ok(TagValue::Limit(limit)) => Some(limit),
                Ok(TagValue::Exempt) => {
                    return Err(StopError::validation(format!(
                        "DEFAULT_MAX_RUNTIME {} exempts nothing: unset it to leave untagged pipelines alone",
                        quote(&text)
                    )))
                }
                Err(_) => {
                    return Err(StopError::validation(format!(
                        "DEFAULT_MAX_RUNTIME {} is not a duration: expected {DURATION_FORMS}",
                        quote(&text)
                    )))
                }
            },
        };
        let stopping_grace = match set("STOPPING_GRACE") {
            None => MaxRuntime::from_minutes(DEFAULT_STOPPING_GRACE_MINUTES),
            Some(text) => match parse_max_runtime(&text) {
                Ok(TagValue::Limit(grace)) => Some(grace),
                Ok(TagValue::Exempt) => None,
                Err(_) => {
                    return Err(StopError::validation(format!(
                        "STOPPING_GRACE {} is not a duration: expected {DURATION_FORMS}, or off",
                        quote(&text)
                    )))
                }
            },
        };
        Ok(Config {
            default_pipeline,
            allowed,
            max_concurrency,
            max_runtime_tag,
            default_max_runtime,
            stopping_grace,
        })
    }
}

/// What the function reports beyond its reply, read at init by the function
/// only (the command line neither emits metrics nor notifies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operations {
    /// `METRICS_NAMESPACE`: the CloudWatch namespace of the EMF records;
    /// `off` (or `none`) emits none. Unset: [`DEFAULT_NAMESPACE`].
    pub metrics_namespace: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_NAME` (else `sagemaker-pipeline-stopper`): the
    /// `FunctionName` dimension.
    pub function_name: String,
    /// `NOTIFY_EVENT_BUS`: the EventBridge bus (name or ARN) stop
    /// notifications are put on.
    pub event_bus: Option<String>,
    /// `NOTIFY_TOPIC_ARN`: the SNS topic stop notifications are published to.
    pub topic_arn: Option<String>,
    /// `NOTIFY_TOPIC_FORMAT`: what the topic's messages are.
    pub topic_format: TopicFormat,
    /// `EXECUTION_DESCRIPTION`: `append` (unset: the default) appends why to
    /// the description of each execution a stop was requested for (see
    /// `note`); `off` writes nothing. `false` in `Operations::default()`,
    /// the command line's: it writes nothing.
    pub append_to_description: bool,
}

/// The body of the SNS topic's messages (`NOTIFY_TOPIC_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TopicFormat {
    /// `json`: the notice, as the EventBridge event's `detail`.
    #[default]
    Json,
    /// `chat`: a custom notification that Amazon Q Developer in chat
    /// applications shows in Slack, Microsoft Teams or Amazon Chime.
    Chat,
}

impl Operations {
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Operations, StopError> {
        let set = |name: &str| setting(&var, name);
        let metrics_namespace = match set("METRICS_NAMESPACE") {
            None => Some(DEFAULT_NAMESPACE.to_owned()),
            Some(off) if off.eq_ignore_ascii_case("off") || off.eq_ignore_ascii_case("none") => {
                None
            }
            Some(namespace) if is_namespace(&namespace) => Some(namespace),
            Some(namespace) => {
                return Err(StopError::validation(format!(
                    "METRICS_NAMESPACE {} is not a CloudWatch namespace: 1 to 255 printable ASCII \
                     characters, not starting with AWS/ (or off)",
                    quote(&namespace)
                )))
            }
        };
        let event_bus = set("NOTIFY_EVENT_BUS");
        if let Some(bus) = &event_bus {
            if !is_event_bus(bus) {
                return Err(StopError::validation(format!(
                    "NOTIFY_EVENT_BUS {} is neither an event bus name nor an event bus ARN",
                    quote(bus)
                )));
            }
        }
        let topic_arn = set("NOTIFY_TOPIC_ARN");
        if let Some(topic) = &topic_arn {
            if !is_standard_topic_arn(topic) {
                return Err(StopError::validation(format!(
                    "NOTIFY_TOPIC_ARN {} is not the ARN of a standard SNS topic \
                     (arn:aws:sns:REGION:ACCOUNT:NAME; FIFO topics are not supported)",
                    quote(topic)
                )));
            }
        }
        let topic_format = match set("NOTIFY_TOPIC_FORMAT") {
            None => TopicFormat::Json,
            Some(format) if format.eq_ignore_ascii_case("json") => TopicFormat::Json,
            Some(format) if format.eq_ignore_ascii_case("chat") => TopicFormat::Chat,
            Some(format) => {
                return Err(StopError::validation(format!(
                    "NOTIFY_TOPIC_FORMAT {} is not a format: json (the default) or chat",
                    quote(&format)
                )))
            }
        };
        let append_to_description = match set("EXECUTION_DESCRIPTION") {
            None => true,
            Some(value) if value.eq_ignore_ascii_case("append") => true,
            Some(value) if value.eq_ignore_ascii_case("off") => false,
            Some(value) => {
                return Err(StopError::validation(format!(
                    "EXECUTION_DESCRIPTION {} is neither append (the default) nor off",
                    quote(&value)
                )))
            }
        };
        Ok(Operations {
            metrics_namespace,
            // A dimension value may not be empty: CloudWatch would drop the record.
            function_name: set("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "sagemaker-pipeline-stopper".to_owned()),
            event_bus,
            topic_arn,
            topic_format,
            append_to_description,
        })
    }
}

/// A namespace CloudWatch accepts: 1 to 255 characters, printable ASCII,
/// not starting with `AWS/` (reserved for AWS services).
pub fn is_namespace(s: &str) -> bool {
    (1..=255).contains(&s.len())
        && s.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !s.starts_with("AWS/")
        && s.trim() == s
}

/// A variable's value, trimmed; `None` when unset or blank.
fn setting(var: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    var(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// An EventBridge bus name (`[/\.\-_A-Za-z0-9]{1,256}`, as PutEvents takes
/// it) or an event bus ARN.
fn is_event_bus(bus: &str) -> bool {
    let name_chars = |s: &str| {
        (1..=256).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    };
    match bus.strip_prefix("arn:") {
        None => name_chars(bus),
        Some(rest) => {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            matches!(parts.as_slice(), [partition, "events", region, account, resource]
                if partition.starts_with("aws")
                    && !region.is_empty()
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && resource.strip_prefix("event-bus/").is_some_and(name_chars))
        }
    }
}

/// A standard SNS topic ARN: `arn:PARTITION:sns:REGION:ACCOUNT:NAME`, the name
/// 1 to 256 letters, digits, `-` and `_` (a `.fifo` name needs a message
/// group, which a notification has no use for).
fn is_standard_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    matches!(parts.as_slice(), ["arn", partition, "sns", region, account, name]
        if partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && (1..=256).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// A tag key SageMaker accepts (`^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`, 1 to 128
/// characters), and not one of AWS's reserved `aws:` keys.
fn is_tag_key(key: &str) -> bool {
    let chars = key.chars().count();
    (1..=128).contains(&chars)
        && !key.to_ascii_lowercase().starts_with("aws:")
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An environment of these variables only.
    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn config(vars: &[(&str, &str)]) -> Result<Config, StopError> {
        Config::from_env(env(vars))
    }

    #[test]
    fn unset_means_any_pipeline_and_no_default() {
        let c = config(&[]).unwrap();
        assert!(c.allowed.allows("anything") && c.allowed.check("anything").is_ok());
        assert_eq!(c.default_pipeline, None);
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(c.max_runtime_tag, DEFAULT_MAX_RUNTIME_TAG);
        assert_eq!(c.default_max_runtime, None);
        assert_eq!(c.stopping_grace, MaxRuntime::from_minutes(15));
    }

    #[test]
    fn the_guard_settings_are_read() {
        let c = config(&[
            ("MAX_RUNTIME_TAG", " team:max-runtime "),
            ("DEFAULT_MAX_RUNTIME", "6h"),
            ("STOPPING_GRACE", "30m"),
        ])
        .unwrap();
        assert_eq!(c.max_runtime_tag, "team:max-runtime");
        assert_eq!(c.default_max_runtime, MaxRuntime::from_minutes(360));
        assert_eq!(c.stopping_grace, MaxRuntime::from_minutes(30));
        assert_eq!(
            config(&[("STOPPING_GRACE", "off")]).unwrap().stopping_grace,
            None
        );
        let err = config(&[("STOPPING_GRACE", "soon")]).unwrap_err();
        assert!(err.message.contains("STOPPING_GRACE"), "{}", err.message);
    }

    #[test]
    fn allow_list_takes_names_and_globs_case_insensitively() {
        let c = config(&[("ALLOWED_PIPELINES", " nightly-training , exp-* ")]).unwrap();
        assert!(c.allowed.allows("nightly-training"));
        assert!(c.allowed.allows("Nightly-Training"));
        assert!(c.allowed.allows("exp-42"));
        assert!(!c.allowed.allows("nightly-training-2"));
        assert!(!c.allowed.allows("prod-inference"));
        let err = c.allowed.check("prod-inference").unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Forbidden);
        assert!(err.message.contains("prod-inference"));
    }

    #[test]
    fn bad_settings_fail_init_with_the_variable_named() {
        for (vars, needle) in [
            (vec![("ALLOWED_PIPELINES", " , ")], "ALLOWED_PIPELINES"),
            (vec![("ALLOWED_PIPELINES", "a b")], "ALLOWED_PIPELINES"),
            (
                vec![("DEFAULT_PIPELINE_NAME", "not valid!")],
                "DEFAULT_PIPELINE_NAME",
            ),
            (
                vec![("DEFAULT_PIPELINE_NAME", "p"), ("ALLOWED_PIPELINES", "q")],
                "DEFAULT_PIPELINE_NAME",
            ),
            (vec![("MAX_CONCURRENCY", "0")], "MAX_CONCURRENCY"),
            (vec![("MAX_CONCURRENCY", "lots")], "MAX_CONCURRENCY"),
            (
                vec![("MAX_RUNTIME_TAG", "aws:max-runtime")],
                "MAX_RUNTIME_TAG",
            ),
            (vec![("MAX_RUNTIME_TAG", "max\"runtime")], "MAX_RUNTIME_TAG"),
            (
                vec![("MAX_RUNTIME_TAG", &"k".repeat(129))],
                "MAX_RUNTIME_TAG",
            ),
            (
                vec![("DEFAULT_MAX_RUNTIME", "4 hours")],
                "DEFAULT_MAX_RUNTIME",
            ),
            (vec![("DEFAULT_MAX_RUNTIME", "0")], "DEFAULT_MAX_RUNTIME"),
            (vec![("DEFAULT_MAX_RUNTIME", "none")], "DEFAULT_MAX_RUNTIME"),
        ] {
            let err = config(&vars).unwrap_err();
            assert!(err.message.contains(needle), "{vars:?}: {}", err.message);
        }
    }

    #[test]
    fn default_pipeline_and_concurrency_are_read() {
        let c = config(&[
            ("DEFAULT_PIPELINE_NAME", "nightly-training"),
            ("MAX_CONCURRENCY", "4"),
        ])
        .unwrap();
        assert_eq!(c.default_pipeline.as_deref(), Some("nightly-training"));
        assert_eq!(c.max_concurrency, 4);
    }

    fn operations(vars: &[(&str, &str)]) -> Result<Operations, StopError> {
        Operations::from_env(env(vars))
    }

    #[test]
    fn operations_default_to_metrics_on_and_no_notifications() {
        let o = operations(&[("AWS_LAMBDA_FUNCTION_NAME", "stopper")]).unwrap();
        assert_eq!(o.metrics_namespace.as_deref(), Some(DEFAULT_NAMESPACE));
        assert_eq!(o.function_name, "stopper");
        assert_eq!((o.event_bus, o.topic_arn), (None, None));
        assert_eq!(o.topic_format, TopicFormat::Json);
        let unnamed = operations(&[]).unwrap();
        assert_eq!(unnamed.function_name, "sagemaker-pipeline-stopper");
        for off in ["off", "OFF", "none"] {
            let o = operations(&[("METRICS_NAMESPACE", off)]).unwrap();
            assert_eq!(o.metrics_namespace, None, "{off}");
        }
        let o = operations(&[
            ("METRICS_NAMESPACE", " Team/Stopper "),
            ("NOTIFY_EVENT_BUS", "default"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:stops",
            ),
        ])
        .unwrap();
        assert_eq!(o.metrics_namespace.as_deref(), Some("Team/Stopper"));
        assert_eq!(o.topic_format, TopicFormat::Json);
        assert!(o.append_to_description);
        for (value, append) in [("off", false), ("OFF", false), ("append", true), ("", true)] {
            let o = operations(&[("EXECUTION_DESCRIPTION", value)]).unwrap();
            assert_eq!(o.append_to_description, append, "{value:?}");
        }
        for (value, format) in [
            ("chat", TopicFormat::Chat),
            (" Chat ", TopicFormat::Chat),
            ("json", TopicFormat::Json),
            ("JSON", TopicFormat::Json),
            ("", TopicFormat::Json),
        ] {
            let o = operations(&[("NOTIFY_TOPIC_FORMAT", value)]).unwrap();
            assert_eq!(o.topic_format, format, "{value:?}");
        }
        assert_eq!(o.event_bus.as_deref(), Some("default"));
        assert_eq!(
            o.topic_arn.as_deref(),
            Some("arn:aws:sns:us-east-1:123456789012:stops")
        );
        for bus in [
            "ops/stops",
            "arn:aws:events:eu-west-1:123456789012:event-bus/ops",
            "arn:aws-cn:events:cn-north-1:123456789012:event-bus/default",
        ] {
            assert!(operations(&[("NOTIFY_EVENT_BUS", bus)]).is_ok(), "{bus}");
        }
    }

    #[test]
    fn bad_operations_settings_fail_init_with_the_variable_named() {
        for (name, value) in [
            ("METRICS_NAMESPACE", "AWS/Lambda"),
            ("METRICS_NAMESPACE", "caf\u{e9}"),
            ("NOTIFY_EVENT_BUS", "my bus"),
            (
                "NOTIFY_EVENT_BUS",
                "arn:aws:events:us-east-1:123:event-bus/x",
            ),
            (
                "NOTIFY_EVENT_BUS",
                "arn:aws:sns:us-east-1:123456789012:event-bus/x",
            ),
            (
                "NOTIFY_EVENT_BUS",
                "arn:aws:events:us-east-1:123456789012:rule/x",
            ),
            ("NOTIFY_TOPIC_ARN", "stops"),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:stops.fifo",
            ),
            (
                "NOTIFY_TOPIC_ARN",
                "arn:aws:sqs:us-east-1:123456789012:stops",
            ),
            ("NOTIFY_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:a:b"),
            ("NOTIFY_TOPIC_FORMAT", "slack"),
            ("NOTIFY_TOPIC_FORMAT", "chatbot"),
            ("EXECUTION_DESCRIPTION", "true"),
        ] {
            let err = operations(&[(name, value)]).unwrap_err();
            assert!(err.message.starts_with(name), "{value}: {}", err.message);
        }
    }

    #[test]
    fn namespaces_are_checked() {
        for good in ["SageMakerPipelineStopper", "Team/Stopper", "a b"] {
            assert!(is_namespace(good), "{good}");
        }
        for bad in ["", "AWS/Lambda", " x", "x\n", "é", &"n".repeat(256)] {
            assert!(!is_namespace(bad), "{bad:?}");
        }
    }
}
