//! The walk over a service event's JSON that finds the target and request
//! fields named where no request is read, and keys given twice.

use serde::de::{self, MapAccess, SeqAccess, Visitor};

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
pub(super) fn nothing_named_outside(
    text: &str,
    what: &str,
    skip_top: &[&str],
) -> Result<(), StopError> {
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
pub(super) fn alarm_mentions(text: &str, what: &str) -> Result<usize, StopError> {
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
