//! The function's configuration, read once at init from environment variables.

use wildmatch::WildMatch;

use crate::arn::{is_pipeline_name, quote};
use crate::error::StopError;
use crate::guard::{
    parse_max_runtime, MaxRuntime, TagValue, DEFAULT_MAX_RUNTIME_TAG, DURATION_FORMS,
};

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
}

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
        }
    }
}

/// Pipeline names or `*`/`?` globs. SageMaker writes pipeline names in lower
/// case inside ARNs (`pipeline/nightly-training/...` for `Nightly-Training`),
/// so matching ignores case: one list then works for names and ARNs alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowList {
    /// `None`: unset, every pipeline is allowed.
    patterns: Option<Vec<WildMatch>>,
    source: String,
}

/// Patterns compare as their text (`WildMatch` has no `Eq` only because it is
/// generic over characters).
impl Eq for AllowList {}

impl AllowList {
    pub fn parse(spec: &str) -> Result<AllowList, StopError> {
        let entries: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(StopError::validation(
                "ALLOWED_PIPELINES is set but lists no pipeline; unset it to allow every pipeline",
            ));
        }
        for entry in &entries {
            let literal: String = entry.chars().filter(|c| *c != '*' && *c != '?').collect();
            if !literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(StopError::validation(format!(
                    "ALLOWED_PIPELINES entry {} is neither a pipeline name nor a glob of one",
                    quote(entry)
                )));
            }
        }
        Ok(AllowList {
            patterns: Some(
                entries
                    .iter()
                    .map(|e| WildMatch::new_case_insensitive(e))
                    .collect(),
            ),
            source: entries.join(","),
        })
    }

    pub fn allows(&self, pipeline: &str) -> bool {
        match &self.patterns {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(pipeline)),
        }
    }

    /// Refuses a pipeline outside the list.
    pub fn check(&self, pipeline: &str) -> Result<(), StopError> {
        if self.allows(pipeline) {
            Ok(())
        } else {
            Err(StopError::forbidden(format!(
                "pipeline {} is not in ALLOWED_PIPELINES ({})",
                quote(pipeline),
                self.source
            )))
        }
    }
}

impl Config {
    /// Reads the configuration through `var` (the process environment in
    /// `main`, a map in tests). A bad setting fails the function's init with a
    /// message naming the variable, rather than misbehaving on the first event.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Config, StopError> {
        let set = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
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
        Ok(Config {
            default_pipeline,
            allowed,
            max_concurrency,
            max_runtime_tag,
            default_max_runtime,
        })
    }
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

    fn config(vars: &[(&str, &str)]) -> Result<Config, StopError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn unset_means_any_pipeline_and_no_default() {
        let c = config(&[]).unwrap();
        assert!(c.allowed.allows("anything") && c.allowed.check("anything").is_ok());
        assert_eq!(c.default_pipeline, None);
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert_eq!(c.max_runtime_tag, DEFAULT_MAX_RUNTIME_TAG);
        assert_eq!(c.default_max_runtime, None);
    }

    #[test]
    fn the_guard_settings_are_read() {
        let c = config(&[
            ("MAX_RUNTIME_TAG", " team:max-runtime "),
            ("DEFAULT_MAX_RUNTIME", "6h"),
        ])
        .unwrap();
        assert_eq!(c.max_runtime_tag, "team:max-runtime");
        assert_eq!(c.default_max_runtime, MaxRuntime::from_minutes(360));
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
}
