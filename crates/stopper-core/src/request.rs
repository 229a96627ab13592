//! What a request can name: the fields accepted in a direct invocation, a
//! schedule's input, an EventBridge `detail`, an SNS message or an HTTP body.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::error::StopError;

/// Explicit ARNs one request may name. Lambda caps a payload at 6 MB anyway;
/// this keeps a hand-typed mistake from fanning out into thousands of calls,
/// and is enforced while the list is read, so a 6 MB list is never held.
pub const MAX_EXPLICIT_TARGETS: usize = 100;

/// The largest request read. The largest valid one is about 210 KB (100 ARNs
/// of 2,048 characters, and the options); anything larger is refused before
/// it is parsed, so a 6 MB field name is never copied into an error.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The request fields, read straight from the JSON text (never through a
/// `serde_json::Value` map, which would keep the last of two duplicate keys:
/// serde refuses a field given twice, and so do we). Unknown fields are
/// refused rather than ignored: a typo such as `PipelineExecutionARN` must not
/// fall back to the default pipeline and stop something the caller did not name.
///
/// The target fields are `Option<Option<_>>`: absent (`None`) is told apart
/// from `null` (`Some(None)`), because only an event with no target field at
/// all may fall back to `DEFAULT_PIPELINE_NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopRequest {
    #[serde(
        rename = "PipelineExecutionArn",
        alias = "pipelineExecutionArn",
        default,
        deserialize_with = "present"
    )]
    pub execution_arn: Option<Option<String>>,
    #[serde(
        rename = "PipelineExecutionArns",
        alias = "pipelineExecutionArns",
        default,
        deserialize_with = "present_bounded_list"
    )]
    pub execution_arns: Option<Option<Vec<String>>>,
    #[serde(
        rename = "PipelineName",
        alias = "pipelineName",
        default,
        deserialize_with = "present"
    )]
    pub pipeline_name: Option<Option<String>>,
    #[serde(
        rename = "ClientRequestToken",
        alias = "clientRequestToken",
        default,
        deserialize_with = "not_null"
    )]
    pub client_request_token: Option<String>,
    /// Report what would be stopped; change nothing.
    #[serde(
        rename = "DryRun",
        alias = "dryRun",
        default,
        deserialize_with = "not_null"
    )]
    pub dry_run: Option<bool>,
    /// Wait for stopped executions to end, up to the function's remaining time.
    #[serde(
        rename = "Wait",
        alias = "wait",
        default,
        deserialize_with = "not_null"
    )]
    pub wait: Option<bool>,
    /// Wait at most this long (implies `Wait`).
    #[serde(
        rename = "WaitSeconds",
        alias = "waitSeconds",
        default,
        deserialize_with = "not_null"
    )]
    pub wait_seconds: Option<u64>,
    /// Fail running Callback steps so the stop can complete.
    #[serde(
        rename = "Force",
        alias = "force",
        default,
        deserialize_with = "not_null"
    )]
    pub force: Option<bool>,
    /// The failure reason sent to forced Callback steps.
    #[serde(
        rename = "Reason",
        alias = "reason",
        default,
        deserialize_with = "not_null"
    )]
    pub reason: Option<String>,
    /// With a pipeline sweep: only executions running longer than this.
    #[serde(
        rename = "OlderThanMinutes",
        alias = "olderThanMinutes",
        default,
        deserialize_with = "not_null"
    )]
    pub older_than_minutes: Option<u64>,
    /// The runtime guard: stop every execution that has run longer than its
    /// pipeline's limit (`MAX_RUNTIME_TAG`, `DEFAULT_MAX_RUNTIME`).
    #[serde(
        rename = "Guard",
        alias = "guard",
        default,
        deserialize_with = "not_null"
    )]
    pub guard: Option<bool>,
}

/// A field that is present: `Some(None)` for `null`, `Some(Some(v))` otherwise.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An option that is present must have a value: `"DryRun": null` (a template
/// variable that rendered as nothing) is refused, never read as "not a dry
/// run", which would stop for real.
fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// `PipelineExecutionArns`, refused as soon as it names more than
/// [`MAX_EXPLICIT_TARGETS`], before the rest of the list is read.
fn present_bounded_list<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<Vec<String>>>, D::Error> {
    struct Bounded;
    impl<'de> Visitor<'de> for Bounded {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of at most {MAX_EXPLICIT_TARGETS} execution ARNs")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut arns = Vec::new();
            while let Some(arn) = seq.next_element::<String>()? {
                if arns.len() == MAX_EXPLICIT_TARGETS {
                    return Err(de::Error::custom(format!(
                        "names more than {MAX_EXPLICIT_TARGETS} executions; split the request"
                    )));
                }
                arns.push(arn);
            }
            Ok(Some(arns))
        }
    }
    deserializer.deserialize_option(Bounded).map(Some)
}

impl StopRequest {
    /// Reads a request from JSON text, with the offending field named in the
    /// error (`PipelineExecutionArns[2]: invalid type: ...`). Refuses a key
    /// given twice, and a target field that is present but null, empty or blank.
    pub fn from_text(text: &str) -> Result<StopRequest, StopError> {
        if text.len() > MAX_REQUEST_BYTES {
            return Err(StopError::validation(format!(
                "the request has {} bytes; a valid one has at most about 210 KB (100 ARNs and the options), \
                 and the limit is {MAX_REQUEST_BYTES}",
                text.len()
            )));
        }
        let first = text.trim_start().chars().next();
        if first != Some('{') {
            return Err(StopError::validation(format!(
                "the request must be a JSON object, not {}",
                json_kind_of_text(text)
            )));
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let request: StopRequest =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                let path = field_path(e.path());
                if path == "." {
                    StopError::validation(format!("invalid request: {}", e.inner()))
                } else {
                    StopError::validation(format!("invalid request: {path}: {}", e.inner()))
                }
            })?;
        deserializer
            .end()
            .map_err(|e| StopError::validation(format!("invalid request: {e}")))?;
        request.check_targets()?;
        Ok(request)
    }

    /// Reads a request from a JSON value (the CLI, tests).
    pub fn from_value(value: &Value) -> Result<StopRequest, StopError> {
        Self::from_text(&value.to_string())
    }

    /// A target field that is present must name something: `[]`, `null`,
    /// `""` or `"  "` is a mistake (a script whose filter found nothing sends
    /// exactly `[]`), never a request to fall back to the default pipeline.
    fn check_targets(&self) -> Result<(), StopError> {
        let empty = |field: &str, what: &str| {
            Err(StopError::validation(format!(
                "{field} is {what}: name a target, or leave the field out (an event falls back to \
                 DEFAULT_PIPELINE_NAME only when it has no target field at all)"
            )))
        };
        for (field, value) in [
            ("PipelineExecutionArn", &self.execution_arn),
            ("PipelineName", &self.pipeline_name),
        ] {
            match value {
                Some(None) => return empty(field, "null"),
                Some(Some(v)) if v.trim().is_empty() => return empty(field, "empty"),
                _ => {}
            }
        }
        match &self.execution_arns {
            Some(None) => return empty("PipelineExecutionArns", "null"),
            Some(Some(list)) if list.is_empty() => return empty("PipelineExecutionArns", "empty"),
            Some(Some(list)) => {
                if let Some(i) = list.iter().position(|a| a.trim().is_empty()) {
                    return empty(&format!("PipelineExecutionArns[{i}]"), "empty");
                }
            }
            None => {}
        }
        if self.guard == Some(false) {
            return Err(StopError::validation(
                "Guard is false: ask for a guard run with \"Guard\": true, or leave the field out \
                 (a false Guard never falls back to DEFAULT_PIPELINE_NAME)",
            ));
        }
        Ok(())
    }

    /// Whether the request has any target field at all (`Guard` is one: the
    /// guard finds its own targets).
    pub fn names_target(&self) -> bool {
        self.execution_arn.is_some()
            || self.execution_arns.is_some()
            || self.pipeline_name.is_some()
            || self.guard.is_some()
    }
}

/// Where in the input an error is (`PipelineExecutionArns[2]`), cut short: the
/// path of an unknown field is the field's name, which the caller chose.
pub fn field_path(path: &serde_path_to_error::Path) -> String {
    const MAX: usize = 200;
    let path = path.to_string();
    if path.chars().count() <= MAX {
        return path;
    }
    let cut: String = path.chars().take(MAX).collect();
    format!("{cut}… ({} characters)", path.chars().count())
}

/// "a string", "an array", ... of JSON text, from its first character.
pub fn json_kind_of_text(text: &str) -> &'static str {
    match text.trim_start().chars().next() {
        Some('\u{feff}') => "text that starts with a byte order mark",
        Some('n') => "null",
        Some('t' | 'f') => "a boolean",
        Some('"') => "a string",
        Some('[') => "an array",
        Some('{') => "an object",
        Some(_) => "a number",
        None => "nothing",
    }
}

/// "a string", "an array", ... for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(text: &str) -> Result<StopRequest, StopError> {
        StopRequest::from_text(text)
    }

    /// Every request field, one at a time and all together, in PascalCase and
    /// camelCase: each spelling sets that field and no other. The table must
    /// cover `REQUEST_FIELDS` exactly (the list `trigger/mentions.rs` checks a
    /// service event's top-level keys, an SNS alarm notification's and an SNS
    /// message's attributes against), so a new field cannot be added without
    /// being tested here.
    #[test]
    fn reads_every_field_in_both_spellings() {
        let fields: [(&str, &str, StopRequest); 11] = [
            (
                "PipelineExecutionArn",
                r#""a""#,
                StopRequest {
                    execution_arn: Some(Some("a".into())),
                    ..StopRequest::default()
                },
            ),
            (
                "PipelineExecutionArns",
                r#"["a", "b"]"#,
                StopRequest {
                    execution_arns: Some(Some(vec!["a".into(), "b".into()])),
                    ..StopRequest::default()
                },
            ),
            (
                "PipelineName",
                r#""p""#,
                StopRequest {
                    pipeline_name: Some(Some("p".into())),
                    ..StopRequest::default()
                },
            ),
            (
                "ClientRequestToken",
                r#""t""#,
                StopRequest {
                    client_request_token: Some("t".into()),
                    ..StopRequest::default()
                },
            ),
            (
                "DryRun",
                "true",
                StopRequest {
                    dry_run: Some(true),
                    ..StopRequest::default()
                },
            ),
            (
                "Wait",
                "true",
                StopRequest {
                    wait: Some(true),
                    ..StopRequest::default()
                },
            ),
            (
                "WaitSeconds",
                "5",
                StopRequest {
                    wait_seconds: Some(5),
                    ..StopRequest::default()
                },
            ),
            (
                "Force",
                "true",
                StopRequest {
                    force: Some(true),
                    ..StopRequest::default()
                },
            ),
            (
                "Reason",
                r#""r""#,
                StopRequest {
                    reason: Some("r".into()),
                    ..StopRequest::default()
                },
            ),
            (
                "OlderThanMinutes",
                "7",
                StopRequest {
                    older_than_minutes: Some(7),
                    ..StopRequest::default()
                },
            ),
            (
                "Guard",
                "true",
                StopRequest {
                    guard: Some(true),
                    ..StopRequest::default()
                },
            ),
        ];
        let folded = |name: &str| name.to_ascii_lowercase();
        let mut covered: Vec<String> = fields.iter().map(|(name, ..)| folded(name)).collect();
        let mut listed: Vec<String> = crate::trigger::REQUEST_FIELDS
            .iter()
            .map(|f| f.to_string())
            .collect();
        covered.sort();
        listed.sort();
        assert_eq!(
            covered, listed,
            "the table must name every field in REQUEST_FIELDS"
        );

        let camel = |name: &str| name[..1].to_ascii_lowercase() + &name[1..];
        let mut all = StopRequest::default();
        for (name, value, expected) in &fields {
            for spelling in [name.to_string(), camel(name)] {
                let got = request(&format!(r#"{{"{spelling}": {value}}}"#))
                    .unwrap_or_else(|e| panic!("{spelling}: {e}"));
                assert_eq!(&got, expected, "{spelling} sets its own field and no other");
            }
            // A spelling in any other case is not the field.
            let upper = name.to_ascii_uppercase();
            assert!(
                request(&format!(r#"{{"{upper}": {value}}}"#)).is_err(),
                "{upper}"
            );
            let merge = |into: &mut StopRequest, from: &StopRequest| {
                macro_rules! take { ($($f:ident),*) => { $( if from.$f.is_some() { into.$f = from.$f.clone(); } )* } }
                take!(
                    execution_arn,
                    execution_arns,
                    pipeline_name,
                    client_request_token,
                    dry_run,
                    wait,
                    wait_seconds,
                    force,
                    reason,
                    older_than_minutes,
                    guard
                );
            };
            merge(&mut all, expected);
        }
        // All together, in each spelling: every field read, none lost.
        for spell in [
            |n: &str| n.to_string(),
            |n: &str| n[..1].to_ascii_lowercase() + &n[1..],
        ] {
            let body: Vec<String> = fields
                .iter()
                .map(|(name, value, _)| format!(r#""{}": {value}"#, spell(name)))
                .collect();
            assert_eq!(request(&format!("{{{}}}", body.join(", "))).unwrap(), all);
        }
        assert!(!request("{}").unwrap().names_target());
    }

    #[test]
    fn refuses_typos_wrong_types_and_non_objects_with_the_field_named() {
        let err = request(r#"{"PipelineExecutionARN": "a"}"#).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionARN"),
            "{}",
            err.message
        );
        let err = request(r#"{"PipelineExecutionArns": ["a", 7]}"#).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionArns[1]"),
            "{}",
            err.message
        );
        // A list field given as anything but a list says what it takes.
        for wrong in [r#""a""#, "7", r#"{"a": 1}"#] {
            let err = request(&format!(r#"{{"PipelineExecutionArns": {wrong}}}"#)).unwrap_err();
            assert!(
                err.message.contains("PipelineExecutionArns")
                    && err
                        .message
                        .contains("expected a list of at most 100 execution ARNs"),
                "{wrong}: {}",
                err.message
            );
        }
        let err = request(r#"{"PipelineExecutionArn": {"deep": [1]}}"#).unwrap_err();
        assert!(
            err.message.contains("PipelineExecutionArn"),
            "{}",
            err.message
        );
        for v in ["[]", "\"arn\"", "null", "3", " true", ""] {
            assert!(
                request(v).unwrap_err().message.contains("JSON object"),
                "{v}"
            );
        }
        assert!(request(r#"{"PipelineName": "p"} {}"#).is_err());
    }

    #[test]
    fn a_present_target_field_must_name_something() {
        for text in [
            r#"{"PipelineExecutionArns": []}"#,
            r#"{"PipelineExecutionArns": null}"#,
            r#"{"PipelineExecutionArns": ["  "]}"#,
            r#"{"PipelineExecutionArn": null}"#,
            r#"{"PipelineExecutionArn": ""}"#,
            r#"{"PipelineName": null}"#,
            r#"{"PipelineName": " "}"#,
            r#"{"pipelineName": null, "DryRun": true}"#,
        ] {
            let err = request(text).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::Validation, "{text}");
            assert!(
                err.message.contains("leave the field out"),
                "{text}: {}",
                err.message
            );
        }
        // Only an event without any target field may fall back to the default.
        assert!(!request(r#"{"DryRun": true}"#).unwrap().names_target());
    }

    #[test]
    fn a_null_option_is_refused_not_read_as_unset() {
        for field in [
            "DryRun",
            "dryRun",
            "Wait",
            "WaitSeconds",
            "Force",
            "Reason",
            "OlderThanMinutes",
            "ClientRequestToken",
        ] {
            let text = format!(r#"{{"PipelineName": "p", "{field}": null}}"#);
            let err = request(&text).unwrap_err();
            assert!(err.message.contains(field), "{field}: {}", err.message);
            assert!(err.message.contains("null"), "{field}: {}", err.message);
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_not_resolved() {
        for text in [
            r#"{"PipelineExecutionArn": "a", "PipelineExecutionArn": "b"}"#,
            r#"{"PipelineExecutionArn": "a", "pipelineExecutionArn": "b"}"#,
            r#"{"PipelineName": "a", "PipelineName": "b"}"#,
            r#"{"DryRun": true, "DryRun": false}"#,
        ] {
            let err = request(text).unwrap_err();
            assert!(
                err.message.contains("duplicate field"),
                "{text}: {}",
                err.message
            );
        }
    }

    #[test]
    fn caps_the_number_of_explicit_targets_while_reading() {
        let many: Vec<String> = (0..=MAX_EXPLICIT_TARGETS)
            .map(|i| format!("a{i}"))
            .collect();
        let err = StopRequest::from_value(&json!({ "PipelineExecutionArns": many })).unwrap_err();
        assert!(err.message.contains("more than 100"), "{}", err.message);
        assert!(
            err.message.contains("PipelineExecutionArns"),
            "{}",
            err.message
        );
        let at_cap: Vec<String> = many[..MAX_EXPLICIT_TARGETS].to_vec();
        assert!(StopRequest::from_value(&json!({ "PipelineExecutionArns": at_cap })).is_ok());
        // The list is refused at element 101, before the rest is read: the
        // rest is not even valid JSON here.
        let mut text = String::from(r#"{"PipelineExecutionArns": ["#);
        for i in 0..=MAX_EXPLICIT_TARGETS {
            text.push_str(&format!("\"a{i}\","));
        }
        text.push_str("not json at all");
        let err = request(&text).unwrap_err();
        assert!(err.message.contains("more than 100"), "{}", err.message);
    }

    #[test]
    fn a_request_larger_than_any_valid_one_is_refused_unread() {
        let padded = format!(
            r#"{{"PipelineName": "p"{}}}"#,
            " ".repeat(MAX_REQUEST_BYTES)
        );
        let err = request(&padded).unwrap_err();
        assert!(err.message.contains("bytes"), "{}", err.message);
        assert!(request(r#"{"PipelineName": "p"}"#).is_ok());
        // The limit itself is read: exactly MAX_REQUEST_BYTES is a request.
        let short = r#"{"PipelineName": "p"}"#;
        let at_limit = format!("{short}{}", " ".repeat(MAX_REQUEST_BYTES - short.len()));
        assert_eq!(at_limit.len(), MAX_REQUEST_BYTES);
        assert!(request(&at_limit).is_ok());
        assert!(request(&format!("{at_limit} ")).is_err());
    }

    /// What an error says a value is: each JSON kind by its own name, from a
    /// value or from the first character of its text.
    #[test]
    fn json_kinds_are_named_for_errors() {
        for (value, kind) in [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(1.5), "a number"),
            (json!("s"), "a string"),
            (json!([1]), "an array"),
            (json!({"a": 1}), "an object"),
        ] {
            assert_eq!(json_kind(&value), kind, "{value}");
            assert_eq!(json_kind_of_text(&format!("  {value}")), kind, "{value}");
        }
        assert_eq!(json_kind_of_text("false"), "a boolean");
        assert_eq!(json_kind_of_text("-1"), "a number");
        assert_eq!(json_kind_of_text("  "), "nothing");
        assert_eq!(
            json_kind_of_text("\u{feff}{}"),
            "text that starts with a byte order mark"
        );
    }

    #[test]
    fn a_huge_unknown_field_name_gives_a_bounded_message() {
        let name = "N".repeat(1_000_000);
        let err = request(&format!(r#"{{"{name}": 1}}"#)).unwrap_err();
        assert!(err.message.len() < 2_000, "{}", err.message.len());
        assert!(
            err.message.contains("unknown field"),
            "{}",
            &err.message[..100]
        );
    }
}
