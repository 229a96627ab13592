//! A pipeline's runtime limit: how long its executions may run, as a tag on
//! the pipeline (or `DEFAULT_MAX_RUNTIME`) writes it, and what the guard makes
//! of one pipeline given its tag, the default and `ALLOWED_PIPELINES`. Also
//! the spelling of every duration setting (`DEFAULT_MAX_RUNTIME`,
//! `STOPPING_GRACE`), read at init by `config`.
//!
//! Nothing here is guessed: a tag value that cannot be read leaves its
//! pipeline alone and is reported, never taken for the default.

use std::fmt;
use std::time::Duration;

use crate::allow::AllowList;
use crate::arn::quote;

/// The tag key read when `MAX_RUNTIME_TAG` is unset. Namespaced, so it cannot
/// collide with a team's own `max-runtime` tag meaning something else.
pub const DEFAULT_MAX_RUNTIME_TAG: &str = "pipeline-stopper:max-runtime";

/// The longest limit accepted: a year (SageMaker ends every execution after
/// 28 days anyway; anything longer than a year is a typo).
pub const MAX_LIMIT_MINUTES: u64 = 525_600;

/// How long a pipeline's executions may run, in whole minutes (at least one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MaxRuntime {
    minutes: u64,
}

impl MaxRuntime {
    pub fn from_minutes(minutes: u64) -> Option<MaxRuntime> {
        (1..=MAX_LIMIT_MINUTES)
            .contains(&minutes)
            .then_some(MaxRuntime { minutes })
    }

    pub fn minutes(self) -> u64 {
        self.minutes
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_secs(self.minutes * 60)
    }
}

/// The shortest exact spelling: `2d`, `4h`, `90m`.
impl fmt::Display for MaxRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minutes;
        if m.is_multiple_of(1440) {
            write!(f, "{}d", m / 1440)
        } else if m.is_multiple_of(60) {
            write!(f, "{}h", m / 60)
        } else {
            write!(f, "{m}m")
        }
    }
}

/// What a tag value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagValue {
    Limit(MaxRuntime),
    /// `none` or `off`: the pipeline is exempt from `DEFAULT_MAX_RUNTIME`.
    Exempt,
}

/// How a duration is written, for error messages.
pub const DURATION_FORMS: &str =
    "a number of minutes (90), or a number with m, h or d (90m, 4h, 2d), from 1 minute to 365 days";

/// Reads a limit: a bare number is minutes; `90m`, `4h`, `2d`; `none` or `off`
/// (any case) exempts. Surrounding spaces are ignored. Anything else is an
/// error saying why, never a guess: `4H` (minutes or hours?), `1.5h`,
/// `1h30m`, `0`, `-5` and `4 hours` are refused.
pub fn parse_max_runtime(text: &str) -> Result<TagValue, String> {
    let value = text.trim();
    if value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case("off") {
        return Ok(TagValue::Exempt);
    }
    let (digits, per_unit) = match value.as_bytes().last() {
        Some(b'm') => (&value[..value.len() - 1], 1),
        Some(b'h') => (&value[..value.len() - 1], 60),
        Some(b'd') => (&value[..value.len() - 1], 1440),
        _ => (value, 1),
    };
    let refused = || {
        format!(
            "{} is not a duration: expected {DURATION_FORMS}, or none/off",
            quote(text)
        )
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused());
    }
    // At most 7 digits reach the bound; more would only overflow.
    let minutes = (digits.len() <= 7)
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .map(|n| n * per_unit);
    minutes
        .and_then(MaxRuntime::from_minutes)
        .map(TagValue::Limit)
        .ok_or_else(refused)
}

/// Where an execution's limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    Tag,
    Default,
}

impl LimitSource {
    pub fn name(self) -> &'static str {
        match self {
            LimitSource::Tag => "Tag",
            LimitSource::Default => "Default",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max_runtime: MaxRuntime,
    pub source: LimitSource,
}

/// What the guard makes of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PipelineGuard {
    /// Its executions are stopped once they run longer than this.
    Guarded(Limit),
    /// Tagged `none`/`off`.
    Exempt,
    /// No tag and no default: never touched.
    Unguarded,
    /// The tag cannot be read: the pipeline is left alone and reported.
    InvalidTag { value: String, why: String },
    /// It has a limit (or a tag that cannot be read), but `ALLOWED_PIPELINES`
    /// does not list it: this deployment may not act on it, so replies count
    /// it and say nothing of it (its name and tag are in the log only).
    NotAllowed { why: String },
    /// Not seen tagged, and its own tags could not be read: the default does
    /// not apply to a pipeline not known to be untagged.
    Unconfirmed { why: String },
}

/// The limit of `pipeline` given its tag (if tagged) and the default.
pub fn pipeline_guard(
    pipeline: &str,
    tag: Option<&str>,
    default: Option<MaxRuntime>,
    allowed: &AllowList,
) -> PipelineGuard {
    let limit = match (tag.map(parse_max_runtime), default) {
        (Some(Ok(TagValue::Exempt)), _) => return PipelineGuard::Exempt,
        (None, None) => return PipelineGuard::Unguarded,
        (Some(Ok(TagValue::Limit(max_runtime))), _) => Ok(Limit {
            max_runtime,
            source: LimitSource::Tag,
        }),
        (Some(Err(why)), _) => Err(why),
        (None, Some(max_runtime)) => Ok(Limit {
            max_runtime,
            source: LimitSource::Default,
        }),
    };
    // Checked before the tag is echoed: a pipeline this deployment may not
    // act on is not described to anyone.
    if let Err(e) = allowed.check(pipeline) {
        return PipelineGuard::NotAllowed { why: e.message };
    }
    match limit {
        Ok(limit) => PipelineGuard::Guarded(limit),
        Err(why) => PipelineGuard::InvalidTag {
            value: bounded(tag.unwrap_or_default()),
            why,
        },
    }
}

/// A tag value as echoed back: tag values have at most 256 characters, but a
/// reply must not carry whatever a stand-in sends.
fn bounded(value: &str) -> String {
    const MAX: usize = 256;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        value.chars().take(MAX).collect::<String>() + "…"
    }
}

/// An execution measured against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardedRun {
    pub limit: Limit,
    /// How long it had run when the guard looked.
    pub runtime: Duration,
}

impl GuardedRun {
    /// Whether it has run longer than its limit (a run of exactly the limit has not).
    pub fn is_over(&self) -> bool {
        self.runtime > self.limit.max_runtime.as_duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn minutes(n: u64) -> MaxRuntime {
        MaxRuntime::from_minutes(n).unwrap()
    }

    fn limit(n: u64) -> Result<TagValue, String> {
        Ok(TagValue::Limit(minutes(n)))
    }

    #[test]
    fn durations_read_as_documented() {
        for (text, expected) in [
            ("90", limit(90)),
            ("90m", limit(90)),
            ("4h", limit(240)),
            ("2d", limit(2880)),
            (" 4h ", limit(240)),
            ("007", limit(7)),
            ("1", limit(1)),
            ("365d", limit(MAX_LIMIT_MINUTES)),
            ("none", Ok(TagValue::Exempt)),
            ("OFF", Ok(TagValue::Exempt)),
            (" None ", Ok(TagValue::Exempt)),
        ] {
            assert_eq!(parse_max_runtime(text), expected, "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_value_and_the_forms() {
        for text in [
            "",
            " ",
            "0",
            "0h",
            "-5",
            "+5",
            "4H",
            "4M",
            "1.5h",
            "1h30m",
            "4 hours",
            "4 h",
            "h",
            "m",
            "4hh",
            "366d",
            "525601",
            "99999999999999999999",
            "٣h",
            "４h",
            "4h\n5",
            "never",
            "nonee",
            "\u{1b}[31m4h",
        ] {
            let why = parse_max_runtime(text).unwrap_err();
            assert!(why.contains("90m, 4h, 2d"), "{text:?}: {why}");
            assert!(
                !why.contains('\u{1b}'),
                "the value is quoted, escaped: {why}"
            );
        }
    }

    #[test]
    fn a_limit_is_shown_in_its_shortest_exact_form() {
        for (n, shown) in [
            (90, "90m"),
            (60, "1h"),
            (240, "4h"),
            (1440, "1d"),
            (1500, "25h"),
        ] {
            assert_eq!(minutes(n).to_string(), shown);
            assert_eq!(minutes(n).minutes(), n);
            assert_eq!(minutes(n).as_duration(), Duration::from_secs(n * 60));
            assert_eq!(parse_max_runtime(shown), limit(n));
        }
        assert_eq!(MaxRuntime::from_minutes(0), None);
        assert_eq!(MaxRuntime::from_minutes(MAX_LIMIT_MINUTES + 1), None);
        assert_eq!(
            (LimitSource::Tag.name(), LimitSource::Default.name()),
            ("Tag", "Default")
        );
    }

    proptest! {
        /// Every limit in range reads back from each of its spellings, and
        /// its display reads back as itself.
        #[test]
        fn every_limit_round_trips(n in 1..=MAX_LIMIT_MINUTES) {
            prop_assert_eq!(parse_max_runtime(&n.to_string()), limit(n));
            prop_assert_eq!(parse_max_runtime(&format!("{n}m")), limit(n));
            prop_assert_eq!(parse_max_runtime(&minutes(n).to_string()), limit(n));
            if n * 60 <= MAX_LIMIT_MINUTES {
                prop_assert_eq!(parse_max_runtime(&format!("{n}h")), limit(n * 60));
            }
        }

        /// Never a panic, and a value is read only when it is a plain number
        /// with at most one unit letter, or none/off.
        #[test]
        fn only_the_grammar_is_read(text in "\\PC{0,12}") {
            if let Ok(read) = parse_max_runtime(&text) {
                let t = text.trim();
                let plain = t.trim_end_matches(['m', 'h', 'd']);
                prop_assert!(
                    t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("off")
                        || (!plain.is_empty() && plain.bytes().all(|b| b.is_ascii_digit())
                            && t.len() - plain.len() <= 1),
                    "{:?} read as {:?}", text, read
                );
            }
        }
    }
    #[test]
    fn a_pipelines_limit_comes_from_its_tag_else_the_default() {
        let any = AllowList::default();
        let tag = |n| {
            PipelineGuard::Guarded(Limit {
                max_runtime: minutes(n),
                source: LimitSource::Tag,
            })
        };
        let default = |n| {
            PipelineGuard::Guarded(Limit {
                max_runtime: minutes(n),
                source: LimitSource::Default,
            })
        };
        assert_eq!(pipeline_guard("p", Some("4h"), None, &any), tag(240));
        assert_eq!(
            pipeline_guard("p", Some("4h"), Some(minutes(60)), &any),
            tag(240)
        );
        assert_eq!(
            pipeline_guard("p", None, Some(minutes(60)), &any),
            default(60)
        );
        assert_eq!(
            pipeline_guard("p", None, None, &any),
            PipelineGuard::Unguarded
        );
        assert_eq!(
            pipeline_guard("p", Some("off"), Some(minutes(60)), &any),
            PipelineGuard::Exempt
        );
        let PipelineGuard::InvalidTag { value, why } =
            pipeline_guard("p", Some("4 hours"), Some(minutes(60)), &any)
        else {
            panic!("an unreadable tag is not the default");
        };
        assert_eq!(value, "4 hours");
        assert!(why.contains("4 hours"));
        let long = "9".repeat(300);
        let PipelineGuard::InvalidTag { value, .. } = pipeline_guard("p", Some(&long), None, &any)
        else {
            panic!()
        };
        assert_eq!(value.chars().count(), 257, "echoed back bounded");
        let only_q = AllowList::parse("q").unwrap();
        assert!(matches!(
            pipeline_guard("p", Some("4h"), None, &only_q),
            PipelineGuard::NotAllowed { .. }
        ));
        assert!(matches!(
            pipeline_guard("p", None, Some(minutes(5)), &only_q),
            PipelineGuard::NotAllowed { .. }
        ));
        assert_eq!(
            pipeline_guard("p", None, None, &only_q),
            PipelineGuard::Unguarded
        );
        assert_eq!(pipeline_guard("Q", Some("4h"), None, &only_q), tag(240));
        // A tag this deployment may not act on is not read back to anyone.
        assert!(matches!(
            pipeline_guard("p", Some("4 hours"), None, &only_q),
            PipelineGuard::NotAllowed { .. }
        ));
        assert_eq!(
            pipeline_guard("p", Some("none"), Some(minutes(5)), &only_q),
            PipelineGuard::Exempt
        );
    }
}
