//! Request fields where no request is read: a service event's top-level keys,
//! an SNS alarm notification's, an SNS message's attributes.

use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};

use crate::arn::quote;
use crate::error::StopError;

/// The request fields, by name with case and punctuation folded: a service
/// event (SNS, HTTP, EventBridge, alarm) carrying one at its top level is a
/// request in the wrong place, or an alarm in disguise, and is refused rather
/// than read as its service's event (which would drop the field, and could
/// then fall back to the default pipeline).
pub(crate) const REQUEST_FIELDS: [&str; 11] = [
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
    "guard",
];

/// `name` without punctuation, in lower case (`Pipeline_Name` → `pipelinename`).
pub(super) fn folded(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `name` is a request field, in any case or punctuation.
pub(super) fn is_request_field(name: &str) -> bool {
    // Longer than any field name: not one, and not worth folding.
    name.len() <= 64 && REQUEST_FIELDS.contains(&folded(name).as_str())
}

/// Refuses a request field in `names` (a service's own keys).
pub(super) fn no_request_field<'a>(
    mut names: impl Iterator<Item = &'a str>,
    what: &str,
) -> Result<(), StopError> {
    match names.find(|name| is_request_field(name)) {
        None => Ok(()),
        Some(field) => Err(StopError::validation(format!(
            "{what} has the request field {} where no request is read: refusing to guess whether it is the \
             event or a request (a request goes in a direct invocation, an EventBridge detail, an SNS message \
             or an HTTP body)",
            quote(field)
        ))),
    }
}

/// Refuses a JSON object (a service event, an SNS alarm notification) with a
/// request field among its top-level keys. The keys are read one at a time
/// and the values skipped: nothing is held.
pub(super) fn no_request_field_at_top(text: &str, what: &str) -> Result<(), StopError> {
    struct FirstRequestField;
    impl<'de> Visitor<'de> for FirstRequestField {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if found.is_none() && is_request_field(&key) {
                    found = Some(key);
                }
            }
            Ok(found)
        }
    }
    let found = serde_json::Deserializer::from_str(text)
        .deserialize_map(FirstRequestField)
        .map_err(|e| StopError::validation(format!("{what}: {e}")))?;
    no_request_field(found.as_deref().into_iter(), what)
}
