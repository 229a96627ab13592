//! `ALLOWED_PIPELINES`: which pipelines this deployment may act on at all.
//! Read at init by `config`, checked by `plan` for what an event names and by
//! the guard for what its tags say.

use wildmatch::WildMatch;

use crate::arn::quote;
use crate::error::StopError;

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
