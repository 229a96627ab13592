//! The runtime guard's runs: which running executions are over their
//! pipeline's limit ([`crate::limit`]). One guard run sees the tagged
//! pipelines first, then the running executions oldest first; [`GuardRun`]
//! decides about each as it arrives and keeps the summary the reply gives.
//!
//! Nothing here is guessed: a tag value that cannot be read leaves its
//! pipeline alone and is reported; an execution whose start time is unknown
//! is not stopped; `ALLOWED_PIPELINES` and the function's scope bound
//! everything the tags say.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use crate::allow::AllowList;
use crate::arn::{check_execution_arn, parse_pipeline, ExecutionArn, Scope};
use crate::error::StopError;
use crate::limit::{pipeline_guard, GuardedRun, Limit, LimitSource, MaxRuntime, PipelineGuard};
use crate::status::ExecutionStatus;
use crate::token;

/// The seed of the guard's stop tokens. The token of an execution derives from
/// the execution and the guard alone (not the event), so overlapping guard
/// runs, a redelivered schedule and the CLI's `--guard` all send the same
/// token for it, and SageMaker stops it at most once.
pub const GUARD_IDENTITY: &str = "guard";

/// A pipeline that carries the tag, as the guard's discovery finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedPipeline {
    pub arn: String,
    pub name: String,
    /// The tag's value; `None` if the search matched the pipeline but its
    /// tags, as returned, lack the key (reported as an unreadable tag).
    pub value: Option<String>,
}

/// A running execution, as the guard's discovery finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningExecution {
    pub arn: String,
    pub status: ExecutionStatus,
    /// When it was created; `None` when SageMaker did not say.
    pub created: Option<SystemTime>,
    /// When its status last changed (for one `Stopping`: when it was asked
    /// to stop); `None` when SageMaker did not say.
    pub modified: Option<SystemTime>,
}

/// An execution `Stopping` for longer than the grace period: a Callback step
/// whose consumer does not answer holds it (a stopped runaway still running).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckStop {
    pub arn: String,
    /// Its guard token (a stop is not sent again: it is `Stopping`; `Force`'s
    /// step-failure tokens derive from the execution alone too).
    pub token: String,
    pub stopping_for: Duration,
}
/// What the guard does with one execution it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// Over its limit: stop it with this token.
    Stop { token: String, run: GuardedRun },
    /// Nothing: within its limit, unguarded, exempt, skipped, not running,
    /// or judged already (listed twice).
    Leave,
}

/// A pipeline the guard did not act on although a limit applies, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPipeline {
    pub pipeline: String,
    pub reason: String,
}

/// A pipeline whose tag could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTag {
    pub pipeline: String,
    pub value: String,
    pub reason: String,
}

/// What one guard run examined; the stops themselves are the report's
/// executions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardSummary {
    pub tag_key: String,
    pub default: Option<MaxRuntime>,
    /// Pipelines seen: the tagged ones, and those of the running executions.
    pub pipelines_examined: usize,
    /// Of those, pipelines with a limit (tag or default) the guard may act on.
    pub pipelines_guarded: usize,
    pub pipelines_exempt: usize,
    /// Pipelines with a limit that the guard did not act on: their tags could
    /// not be read to confirm the default.
    pub skipped: Vec<SkippedPipeline>,
    /// Pipelines with a limit (or an unreadable tag) outside
    /// `ALLOWED_PIPELINES`: logged by name, counted in replies.
    pub not_allowed: Vec<SkippedPipeline>,
    pub invalid_tags: Vec<InvalidTag>,
    /// Running executions looked at.
    pub executions_examined: usize,
    /// Executions over their limit (of pipelines the guard may act on).
    pub over_limit: usize,
    /// Running executions of guarded pipelines within their limit (dry runs
    /// only: a real run reports what it stopped).
    pub within_limit: Vec<(String, GuardedRun)>,
    /// Executions `Stopping` for longer than the grace period.
    pub stuck_stopping: Vec<StuckStop>,
    /// The discovery itself failed (the search for tagged pipelines or running
    /// executions): what was found before it is still acted on.
    pub error: Option<StopError>,
}

/// What a guard run needs to know, fixed when the event is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardPolicy {
    pub tag_key: String,
    pub default: Option<MaxRuntime>,
    /// How long an execution may stay `Stopping` before it is reported stuck.
    pub stopping_grace: Option<MaxRuntime>,
    pub allowed: AllowList,
    pub scope: Scope,
}

/// One guard run: the decisions and the tally, fed by the discovery: the
/// tagged pipelines, then the running executions (every page, in any order),
/// then the tags of the pipelines [`GuardRun::to_confirm`] names, read one by
/// one; then each execution is judged.
///
/// `Search` is an index: its listing of tagged pipelines can miss one
/// without failing. So the default never applies to a pipeline merely not
/// seen tagged: only to one whose own tags were read and lack the key.
#[derive(Debug)]
pub struct GuardRun<'a> {
    policy: &'a GuardPolicy,
    now: SystemTime,
    dry_run: bool,
    /// Each pipeline whose limit is known, by its ARN in lower case (as
    /// execution ARNs write it): the tagged ones, and those confirmed untagged.
    pipelines: HashMap<String, PipelineGuard>,
    /// Pipelines within the default but not confirmed untagged (dry runs
    /// list their executions within the limit): counted once.
    assumed_default: HashSet<String>,
    /// Executions judged, so one listed twice is judged once.
    judged: HashSet<String>,
    /// Pipelines whose own tags `ListTags` read (see [`GuardRun::to_confirm`]).
    confirmed: HashSet<String>,
    summary: GuardSummary,
}

/// A pipeline execution's pipeline, as the key [`GuardRun`] knows it by.
fn pipeline_key(execution: &ExecutionArn) -> String {
    format!(
        "arn:{}:sagemaker:{}:{}:pipeline/{}",
        execution.partition, execution.region, execution.account, execution.pipeline
    )
    .to_ascii_lowercase()
}

impl<'a> GuardRun<'a> {
    pub fn new(policy: &'a GuardPolicy, now: SystemTime, dry_run: bool) -> GuardRun<'a> {
        GuardRun {
            policy,
            now,
            dry_run,
            pipelines: HashMap::new(),
            assumed_default: HashSet::new(),
            judged: HashSet::new(),
            confirmed: HashSet::new(),
            summary: GuardSummary {
                tag_key: policy.tag_key.clone(),
                default: policy.default,
                ..GuardSummary::default()
            },
        }
    }

    /// A pipeline that carries the tag. One outside the function's scope, or
    /// whose name is not the one its ARN gives, is not this deployment's to
    /// judge: it sets nothing.
    pub fn add_tagged(&mut self, pipeline: &TaggedPipeline) {
        match parse_pipeline(&pipeline.arn, &self.policy.scope) {
            Ok(name) if name.eq_ignore_ascii_case(&pipeline.name) => {
                let tag = pipeline.value.as_deref().unwrap_or_default();
                self.see(pipeline.arn.to_ascii_lowercase(), &pipeline.name, Some(tag));
            }
            _ => {}
        }
    }

    fn see(&mut self, key: String, pipeline: &str, tag: Option<&str>) -> &PipelineGuard {
        if !self.pipelines.contains_key(&key) {
            let guard = pipeline_guard(pipeline, tag, self.policy.default, &self.policy.allowed);
            self.count(pipeline, &guard);
            self.pipelines.insert(key.clone(), guard);
        }
        &self.pipelines[&key]
    }

    fn count(&mut self, pipeline: &str, guard: &PipelineGuard) {
        let summary = &mut self.summary;
        summary.pipelines_examined += 1;
        match guard {
            PipelineGuard::Guarded(_) => summary.pipelines_guarded += 1,
            PipelineGuard::Exempt => summary.pipelines_exempt += 1,
            PipelineGuard::Unguarded => {}
            PipelineGuard::InvalidTag { value, why } => summary.invalid_tags.push(InvalidTag {
                pipeline: pipeline.to_owned(),
                value: value.clone(),
                reason: why.clone(),
            }),
            PipelineGuard::NotAllowed { why } => summary.not_allowed.push(SkippedPipeline {
                pipeline: pipeline.to_owned(),
                reason: why.clone(),
            }),
            PipelineGuard::Unconfirmed { why } => summary.skipped.push(SkippedPipeline {
                pipeline: pipeline.to_owned(),
                reason: why.clone(),
            }),
        }
    }

    /// Whether any execution can be over a limit: a pipeline is guarded, or
    /// there is a default. Without either, there is nothing to list.
    pub fn lists_executions(&self) -> bool {
        self.policy.default.is_some()
            || self
                .pipelines
                .values()
                .any(|p| matches!(p, PipelineGuard::Guarded(_)))
    }

    /// The pipelines (their ARNs, each once) whose own tags must be read
    /// before the guard acts on any of their executions: those, in scope and
    /// allowed, with a running execution over their limit (the tag's, as the
    /// index has it, or the default for one not seen tagged), or one of
    /// `stopping` stuck past the grace period. `Search` is an index: a tag
    /// changed a moment ago (to `off`, say) may not be in it yet, and a
    /// pipeline missing from it is not known to be untagged.
    pub fn to_confirm(
        &self,
        executions: &[RunningExecution],
        stopping: &[RunningExecution],
    ) -> Vec<String> {
        let limit_of = |parsed: &ExecutionArn| match self.pipelines.get(&pipeline_key(parsed)) {
            Some(PipelineGuard::Guarded(limit)) => Some(limit.max_runtime),
            Some(_) => None,
            None => self.policy.default,
        };
        let over = executions
            .iter()
            .filter_map(|e| self.running_for(e))
            .filter(|(parsed, runtime)| {
                limit_of(parsed).is_some_and(|limit| *runtime > limit.as_duration())
            })
            .map(|(parsed, _)| parsed);
        let stuck = stopping
            .iter()
            .filter_map(|e| self.stuck_for(e).map(|(parsed, _)| parsed))
            .filter(|parsed| limit_of(parsed).is_some());
        let mut wanted = Vec::new();
        let mut listed = HashSet::new();
        for parsed in over.chain(stuck) {
            let key = pipeline_key(&parsed);
            if !self.confirmed.contains(&key)
                && self.policy.allowed.check(parsed.pipeline).is_ok()
                && listed.insert(key.clone())
            {
                wanted.push(key);
            }
        }
        wanted
    }

    /// An execution's pipeline and how long it has been `Stopping`, if it is,
    /// in scope, for longer than the grace period.
    fn stuck_for<'e>(
        &self,
        execution: &'e RunningExecution,
    ) -> Option<(ExecutionArn<'e>, Duration)> {
        let grace = self.policy.stopping_grace?;
        if execution.status != ExecutionStatus::Stopping {
            return None;
        }
        let parsed = check_execution_arn(&execution.arn, &self.policy.scope).ok()?;
        let stopping_for = self.now.duration_since(execution.modified?).ok()?;
        (stopping_for > grace.as_duration()).then_some((parsed, stopping_for))
    }

    /// A running execution's pipeline and how long it has run, if it is in
    /// scope and its start is known.
    fn running_for<'e>(
        &self,
        execution: &'e RunningExecution,
    ) -> Option<(ExecutionArn<'e>, Duration)> {
        if execution.status != ExecutionStatus::Executing {
            return None;
        }
        // The search is the account's; the function acts only in its scope.
        let parsed = check_execution_arn(&execution.arn, &self.policy.scope).ok()?;
        let runtime = self
            .now
            .duration_since(execution.created?)
            .unwrap_or_default();
        Some((parsed, runtime))
    }

    /// The tag of a pipeline [`GuardRun::to_confirm`] named, as `ListTags`
    /// read it (`Ok(None)`: it has none, and the default applies). When its
    /// tags could not be read, the pipeline is skipped and reported.
    pub fn add_confirmed(&mut self, pipeline_arn: &str, tag: Result<Option<String>, StopError>) {
        let key = pipeline_arn.to_ascii_lowercase();
        let name = pipeline_arn
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        self.confirmed.insert(key.clone());
        if let Some(PipelineGuard::Guarded(_)) = self.pipelines.get(&key) {
            // The limit the index's tag gave: replaced by what the tags say.
            self.pipelines.remove(&key);
            self.summary.pipelines_examined -= 1;
            self.summary.pipelines_guarded -= 1;
        }
        match tag {
            Ok(tag) => {
                self.see(key, &name, tag.as_deref());
            }
            Err(error) => {
                let guard = PipelineGuard::Unconfirmed {
                    why: format!(
                        "its tags could not be read to confirm its {} tag (or that it has none), \
                         so no limit applies: {}",
                        self.policy.tag_key, error.message
                    ),
                };
                self.count(&name, &guard);
                self.pipelines.insert(key, guard);
            }
        }
    }

    /// Decides about one running execution.
    pub fn judge(&mut self, execution: &RunningExecution) -> Judged {
        if !self.judged.insert(execution.arn.clone()) {
            return Judged::Leave;
        }
        self.summary.executions_examined += 1;
        let Some((parsed, runtime)) = self.running_for(execution) else {
            return Judged::Leave;
        };
        let key = pipeline_key(&parsed);
        let pipeline = parsed.pipeline.to_owned();
        let limit = match (self.pipelines.get(&key), self.policy.default) {
            // Over it, the limit must be what the pipeline's own tags say.
            (Some(PipelineGuard::Guarded(limit)), _)
                if self.confirmed.contains(&key) || runtime <= limit.max_runtime.as_duration() =>
            {
                *limit
            }
            (Some(_), _) => return Judged::Leave,
            (None, None) => {
                self.see(key, &pipeline, None);
                return Judged::Leave;
            }
            // Not confirmed untagged: never stopped by the default (its tags
            // are read first; `to_confirm`). Within the default, a dry run
            // still lists it, as the default would judge it.
            (None, Some(max_runtime)) => {
                let limit = Limit {
                    max_runtime,
                    source: LimitSource::Default,
                };
                if (GuardedRun { limit, runtime }).is_over()
                    || self.policy.allowed.check(&pipeline).is_err()
                {
                    return Judged::Leave;
                }
                if self.assumed_default.insert(key) {
                    self.summary.pipelines_examined += 1;
                    self.summary.pipelines_guarded += 1;
                }
                limit
            }
        };
        let run = GuardedRun { limit, runtime };
        if !run.is_over() {
            if self.dry_run {
                self.summary.within_limit.push((execution.arn.clone(), run));
            }
            return Judged::Leave;
        }
        self.summary.over_limit += 1;
        Judged::Stop {
            token: token::derive(GUARD_IDENTITY, &execution.arn),
            run,
        }
    }

    /// Whether executions stuck `Stopping` are looked for.
    pub fn lists_stopping(&self) -> bool {
        self.policy.stopping_grace.is_some()
    }

    /// Whether an execution found `Stopping` has been so for longer than the
    /// grace period, in scope, of a pipeline the guard guards (a limit from
    /// its tag, or the default once its tags were read): an exempt or
    /// unguarded pipeline's stops are not the guard's to force. Judged after
    /// the tags [`GuardRun::to_confirm`] names were read.
    pub fn judge_stopping(&mut self, execution: &RunningExecution) -> Option<StuckStop> {
        let (parsed, stopping_for) = self.stuck_for(execution)?;
        let key = pipeline_key(&parsed);
        let guarded = matches!(self.pipelines.get(&key), Some(PipelineGuard::Guarded(_)))
            && self.confirmed.contains(&key);
        if !guarded || !self.judged.insert(execution.arn.clone()) {
            return None;
        }
        let stuck = StuckStop {
            arn: execution.arn.clone(),
            token: token::derive(GUARD_IDENTITY, &execution.arn),
            stopping_for,
        };
        self.summary.stuck_stopping.push(stuck.clone());
        Some(stuck)
    }

    /// The discovery failed part-way.
    pub fn failed(&mut self, error: StopError) {
        self.summary.error = Some(error);
    }

    pub fn finish(self) -> GuardSummary {
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::DEFAULT_MAX_RUNTIME_TAG;

    const P: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline";

    fn minutes(n: u64) -> MaxRuntime {
        MaxRuntime::from_minutes(n).unwrap()
    }

    #[test]
    fn a_failed_discovery_is_kept_in_the_summary() {
        let policy = policy(None, None);
        let mut run = GuardRun::new(&policy, SystemTime::now(), false);
        let error = StopError::validation("denied");
        run.failed(error.clone());
        assert_eq!(run.finish().error, Some(error));
    }
    fn policy(default: Option<u64>, allowed: Option<&str>) -> GuardPolicy {
        GuardPolicy {
            tag_key: DEFAULT_MAX_RUNTIME_TAG.into(),
            default: default.map(minutes),
            stopping_grace: None,
            allowed: allowed.map_or_else(AllowList::default, |a| AllowList::parse(a).unwrap()),
            scope: Scope::for_region("us-east-1", Some("123456789012")).unwrap(),
        }
    }
    fn running(pipeline: &str, id: &str, age_minutes: u64, now: SystemTime) -> RunningExecution {
        RunningExecution {
            arn: format!("{P}/{pipeline}/execution/{id}"),
            status: ExecutionStatus::Executing,
            created: Some(now - Duration::from_secs(age_minutes * 60)),
            modified: None,
        }
    }

    fn stopping(pipeline: &str, id: &str, minutes: u64, now: SystemTime) -> RunningExecution {
        RunningExecution {
            status: ExecutionStatus::Stopping,
            modified: Some(now - Duration::from_secs(minutes * 60)),
            ..running(pipeline, id, 1000, now)
        }
    }

    #[test]
    fn an_execution_stopping_past_the_grace_period_is_stuck_once() {
        let now = SystemTime::now();
        let mut policy = policy(None, Some("p,q,exempt,untagged"));
        policy.stopping_grace = MaxRuntime::from_minutes(15);
        let mut run = GuardRun::new(&policy, now, false);
        assert!(run.lists_stopping());
        run.add_tagged(&tagged("p", "4h"));
        run.add_tagged(&tagged("exempt", "none"));
        let stuck = stopping("p", "a", 16, now);
        assert_eq!(run.judge_stopping(&stuck), None, "its tags not read yet");
        assert_eq!(
            run.to_confirm(&[], std::slice::from_ref(&stuck)),
            [format!("{P}/p")]
        );
        run.add_confirmed(&format!("{P}/p"), Ok(Some("4h".into())));
        // Exempt, or untagged without a default: not the guard's to force.
        assert_eq!(run.judge_stopping(&stopping("exempt", "x", 99, now)), None);
        assert_eq!(
            run.judge_stopping(&stopping("untagged", "y", 99, now)),
            None
        );
        let found = run.judge_stopping(&stuck).unwrap();
        assert_eq!(found.token, token::derive(GUARD_IDENTITY, &stuck.arn));
        assert_eq!(found.stopping_for.as_secs() / 60, 16);
        assert_eq!(run.judge_stopping(&stuck), None, "listed twice: once");
        let mut other_account = stopping("p", "o", 99, now);
        other_account.arn = other_account.arn.replace("123456789012", "999999999999");
        let mut unknown = stopping("p", "u", 99, now);
        unknown.modified = None;
        for e in [
            stopping("p", "b", 15, now),
            stopping("elsewhere", "c", 99, now),
            running("p", "d", 99, now),
            other_account,
            unknown,
        ] {
            assert_eq!(run.judge_stopping(&e), None, "{e:?}");
        }
        assert_eq!(run.finish().stuck_stopping, [found]);
        policy.stopping_grace = None;
        let mut off = GuardRun::new(&policy, now, false);
        assert!(!off.lists_stopping());
        assert_eq!(off.judge_stopping(&stopping("p", "a", 999, now)), None);
    }

    fn tagged(name: &str, value: &str) -> TaggedPipeline {
        TaggedPipeline {
            arn: format!("{P}/{}", name.to_ascii_lowercase()),
            name: name.into(),
            value: Some(value.into()),
        }
    }

    fn id(arn: &str) -> &str {
        arn.rsplit('/').next().unwrap()
    }

    #[test]
    fn executions_over_their_limit_are_stopped_with_a_token_of_their_own() {
        let now = SystemTime::now();
        let policy = policy(None, None);
        let mut run = GuardRun::new(&policy, now, false);
        assert!(!run.lists_executions(), "nothing guarded: nothing to list");
        run.add_tagged(&tagged("Nightly-Training", "60"));
        assert!(run.lists_executions());
        let over = running("nightly-training", "a", 61, now);
        // Over its limit as the index has it: the pipeline's own tags decide.
        assert_eq!(
            run.to_confirm(
                &[over.clone(), running("nightly-training", "y", 5, now)],
                &[]
            ),
            [format!("{P}/nightly-training")]
        );
        // Exactly at its limit is not over it: nothing to confirm.
        assert!(run
            .to_confirm(&[running("nightly-training", "b", 60, now)], &[])
            .is_empty());
        run.add_confirmed(&format!("{P}/nightly-training"), Ok(Some("60".into())));
        assert!(run.to_confirm(std::slice::from_ref(&over), &[]).is_empty());
        let Judged::Stop {
            token,
            run: guarded,
        } = run.judge(&over)
        else {
            panic!()
        };
        assert_eq!(token, token::derive(GUARD_IDENTITY, &over.arn));
        assert_eq!(
            guarded.limit,
            Limit {
                max_runtime: minutes(60),
                source: LimitSource::Tag
            }
        );
        assert_eq!(guarded.runtime.as_secs() / 60, 61);
        // Exactly the limit is not over it; nothing relies on the order.
        assert_eq!(
            run.judge(&running("nightly-training", "b", 60, now)),
            Judged::Leave
        );
        assert_eq!(
            run.judge(&running("nightly-training", "c", 5, now)),
            Judged::Leave
        );
        assert!(matches!(
            run.judge(&running("nightly-training", "d", 500, now)),
            Judged::Stop { .. }
        ));
        // Listed twice (a page repeated, tokens that cycle): judged once.
        assert_eq!(run.judge(&over), Judged::Leave);
        let summary = run.finish();
        assert_eq!(
            (
                summary.pipelines_examined,
                summary.pipelines_guarded,
                summary.executions_examined,
                summary.over_limit
            ),
            (1, 1, 4, 2)
        );
    }

    #[test]
    fn nothing_unguarded_exempt_skipped_unreadable_or_out_of_scope_is_stopped() {
        let now = SystemTime::now();
        let policy = policy(Some(30), Some("guarded,exempt,broken,untagged,keyless"));
        let mut run = GuardRun::new(&policy, now, true);
        run.add_tagged(&tagged("guarded", "2h"));
        run.add_tagged(&tagged("exempt", "none"));
        run.add_tagged(&tagged("broken", "2 hours"));
        run.add_tagged(&tagged("elsewhere", "1h"));
        run.add_tagged(&TaggedPipeline {
            value: None,
            ..tagged("keyless", "")
        });
        let executions = [
            running("exempt", "e", 1000, now),
            running("broken", "b", 1000, now),
            running("elsewhere", "x", 1000, now),
            running("keyless", "k", 1000, now),
            running("guarded", "g1", 121, now),
            running("untagged", "u1", 31, now),
            running("guarded", "g2", 100, now),
            running("untagged", "u2", 29, now),
        ];
        assert_eq!(
            run.to_confirm(&executions, &[]),
            [format!("{P}/guarded"), format!("{P}/untagged")]
        );
        run.add_confirmed(&format!("{P}/guarded"), Ok(Some("2h".into())));
        run.add_confirmed(&format!("{P}/untagged"), Ok(None));
        let mut other_account = running("guarded", "o", 999, now);
        other_account.arn = other_account.arn.replace("123456789012", "999999999999");
        let mut stopping = running("guarded", "s", 999, now);
        stopping.status = ExecutionStatus::Stopping;
        let mut unknown_start = running("guarded", "n", 999, now);
        unknown_start.created = None;
        let mut stopped = Vec::new();
        for e in [other_account, stopping, unknown_start]
            .iter()
            .chain(&executions)
        {
            if let Judged::Stop { run, .. } = run.judge(e) {
                stopped.push((id(&e.arn).to_owned(), run.limit.source));
            }
        }
        assert_eq!(
            stopped,
            vec![
                ("g1".to_owned(), LimitSource::Tag),
                ("u1".to_owned(), LimitSource::Default)
            ]
        );
        let summary = run.finish();
        assert_eq!(summary.pipelines_examined, 6);
        assert_eq!(
            summary.pipelines_guarded, 2,
            "guarded and untagged (default)"
        );
        assert_eq!(summary.pipelines_exempt, 1);
        assert!(summary.skipped.is_empty());
        assert_eq!(summary.not_allowed.len(), 1);
        assert_eq!(summary.not_allowed[0].pipeline, "elsewhere");
        assert!(summary.not_allowed[0].reason.contains("ALLOWED_PIPELINES"));
        let invalid: Vec<&str> = summary
            .invalid_tags
            .iter()
            .map(|t| t.pipeline.as_str())
            .collect();
        assert_eq!(invalid, ["broken", "keyless"]);
        assert_eq!(summary.over_limit, 2);
        let within: Vec<&str> = summary.within_limit.iter().map(|(a, _)| id(a)).collect();
        assert_eq!(
            within,
            ["g2", "u2"],
            "dry runs list the guarded executions within their limit"
        );
    }

    /// `Search` is an index: a pipeline missing from its listing of tagged
    /// pipelines is not known to be untagged.
    #[test]
    fn the_default_applies_only_to_a_pipeline_whose_own_tags_were_read() {
        let now = SystemTime::now();
        let policy = policy(Some(60), None);
        let run_with = |confirmed: Option<Result<Option<String>, StopError>>| {
            let mut run = GuardRun::new(&policy, now, false);
            let execution = running("backfill", "a", 500, now);
            assert_eq!(
                run.to_confirm(std::slice::from_ref(&execution), &[]),
                [format!("{P}/backfill")]
            );
            if let Some(tag) = confirmed {
                run.add_confirmed(&format!("{P}/backfill"), tag);
            }
            let judged = run.judge(&execution);
            (judged, run.finish())
        };
        // Not read (the deadline came first): not stopped.
        assert_eq!(run_with(None).0, Judged::Leave);
        // Read and untagged: the default.
        let (judged, _) = run_with(Some(Ok(None)));
        assert!(
            matches!(judged, Judged::Stop { run, .. } if run.limit.source == LimitSource::Default)
        );
        // Read, and tagged after all (exempt, or a longer limit): the tag.
        assert_eq!(run_with(Some(Ok(Some("none".into())))).0, Judged::Leave);
        assert_eq!(run_with(Some(Ok(Some("9h".into())))).0, Judged::Leave);
        let (judged, _) = run_with(Some(Ok(Some("2h".into()))));
        assert!(matches!(judged, Judged::Stop { run, .. } if run.limit.source == LimitSource::Tag));
        // Unreadable: skipped, and said why.
        let denied = StopError::forbidden("access denied");
        let (judged, summary) = run_with(Some(Err(denied)));
        assert_eq!(judged, Judged::Leave);
        assert_eq!(summary.skipped[0].pipeline, "backfill");
        assert!(summary.skipped[0].reason.contains("access denied"));
        // A tagged pipeline needs no confirmation; within the default, none either.
        let mut run = GuardRun::new(&policy, now, false);
        run.add_tagged(&tagged("backfill", "none"));
        let young = running("other", "y", 30, now);
        assert!(run
            .to_confirm(&[running("backfill", "a", 500, now), young], &[])
            .is_empty());
    }

    #[test]
    fn only_allowed_pipelines_are_confirmed_each_once_and_a_default_means_a_listing() {
        let now = SystemTime::now();
        let mut policy = policy(Some(60), Some("backfill,stuck"));
        policy.stopping_grace = MaxRuntime::from_minutes(15);
        let mut run = GuardRun::new(&policy, now, false);
        assert!(
            run.lists_executions(),
            "a default: every running execution may be over it"
        );
        let executions = [
            running("backfill", "a", 500, now),
            running("backfill", "b", 300, now),
            running("elsewhere", "c", 500, now),
        ];
        let stopping = [
            stopping("stuck", "s", 60, now),
            stopping("elsewhere", "t", 60, now),
            stopping("backfill", "u", 5, now),
        ];
        assert_eq!(
            run.to_confirm(&executions, &stopping),
            [format!("{P}/backfill"), format!("{P}/stuck")]
        );
        // Confirmed untagged: the default guards it, and its stuck stop is the guard's.
        run.add_confirmed(&format!("{P}/stuck"), Ok(None));
        assert!(run.judge_stopping(&stopping[0]).is_some());
    }

    #[test]
    fn an_unconfirmed_pipeline_within_the_default_is_listed_in_a_dry_run_and_counted_once() {
        let now = SystemTime::now();
        let policy = policy(Some(60), None);
        let mut run = GuardRun::new(&policy, now, true);
        for id in ["a", "b"] {
            assert_eq!(run.judge(&running("fresh", id, 30, now)), Judged::Leave);
        }
        // Over the default but never confirmed: left alone, and not counted.
        assert_eq!(run.judge(&running("unread", "c", 90, now)), Judged::Leave);
        let summary = run.finish();
        assert_eq!(
            (summary.pipelines_examined, summary.pipelines_guarded),
            (1, 1)
        );
        let within: Vec<&str> = summary.within_limit.iter().map(|(a, _)| id(a)).collect();
        assert_eq!(within, ["a", "b"]);
        assert_eq!(summary.within_limit[0].1.limit.source, LimitSource::Default);
        assert_eq!(summary.over_limit, 0);
    }

    #[test]
    fn without_a_default_an_untagged_pipeline_is_examined_and_left_alone() {
        let now = SystemTime::now();
        let policy = policy(None, None);
        let mut run = GuardRun::new(&policy, now, true);
        assert_eq!(
            run.judge(&running("untagged", "a", 5000, now)),
            Judged::Leave
        );
        assert_eq!(
            run.judge(&running("untagged", "b", 5000, now)),
            Judged::Leave
        );
        let summary = run.finish();
        assert_eq!(
            (
                summary.pipelines_examined,
                summary.pipelines_guarded,
                summary.executions_examined
            ),
            (1, 0, 2)
        );
        assert!(summary.within_limit.is_empty());
    }

    /// The index can lag a tag change: a limit the index gives is acted on
    /// only once the pipeline's own tags confirm it.
    #[test]
    fn a_tag_changed_since_the_index_saw_it_decides() {
        let now = SystemTime::now();
        let policy = policy(Some(600), None);
        let judge_after = |confirmed: Option<Result<Option<String>, StopError>>| {
            let mut run = GuardRun::new(&policy, now, false);
            run.add_tagged(&tagged("p", "1h"));
            if let Some(tag) = confirmed {
                run.add_confirmed(&format!("{P}/p"), tag);
            }
            let judged = run.judge(&running("p", "a", 90, now));
            (judged, run.finish())
        };
        // Not read (the deadline came first): nothing stopped on the index's word.
        assert_eq!(judge_after(None).0, Judged::Leave);
        let (judged, summary) = judge_after(Some(Ok(Some("off".into()))));
        assert_eq!(judged, Judged::Leave);
        assert_eq!(
            (
                summary.pipelines_examined,
                summary.pipelines_guarded,
                summary.pipelines_exempt
            ),
            (1, 0, 1)
        );
        // The tag removed: the default (10 h) applies, and 90 minutes is within it.
        assert_eq!(judge_after(Some(Ok(None))).0, Judged::Leave);
        let (judged, summary) = judge_after(Some(Ok(Some("1h".into()))));
        assert!(matches!(judged, Judged::Stop { run, .. } if run.limit.source == LimitSource::Tag));
        assert_eq!(
            (summary.pipelines_examined, summary.pipelines_guarded),
            (1, 1)
        );
        let (judged, summary) = judge_after(Some(Err(StopError::forbidden("denied"))));
        assert_eq!(judged, Judged::Leave);
        assert_eq!(summary.skipped.len(), 1);
        assert_eq!(summary.pipelines_guarded, 0);
    }

    #[test]
    fn a_tag_sets_a_limit_only_for_the_pipeline_its_arn_names_in_scope() {
        let now = SystemTime::now();
        let policy = policy(None, None);
        let mut run = GuardRun::new(&policy, now, false);
        let elsewhere = |from: &str, to: &str| TaggedPipeline {
            arn: tagged("p", "1m").arn.replace(from, to),
            ..tagged("p", "1m")
        };
        run.add_tagged(&elsewhere("123456789012", "999999999999"));
        run.add_tagged(&elsewhere("us-east-1", "eu-west-1"));
        // A record whose name is not its ARN's.
        run.add_tagged(&TaggedPipeline {
            name: "p".into(),
            ..tagged("q", "1m")
        });
        assert!(!run.lists_executions());
        assert_eq!(run.judge(&running("p", "a", 500, now)), Judged::Leave);
        assert_eq!(run.finish().pipelines_guarded, 0);
    }

    /// Overlapping runs, a redelivery and the CLI derive the same token for an
    /// execution; two executions never share one.
    #[test]
    fn the_token_depends_on_the_execution_alone() {
        let now = SystemTime::now();
        let policy = policy(Some(10), None);
        let token_of = |e: &RunningExecution, dry: bool| {
            let mut run = GuardRun::new(&policy, now + Duration::from_secs(7), dry);
            run.add_confirmed(&format!("{P}/p"), Ok(None));
            match run.judge(e) {
                Judged::Stop { token, .. } => token,
                other => panic!("{other:?}"),
            }
        };
        let a = running("p", "a", 60, now);
        let b = running("p", "b", 60, now);
        assert_eq!(token_of(&a, false), token_of(&a, true));
        assert_ne!(token_of(&a, false), token_of(&b, false));
        assert!(token::is_valid(&token_of(&a, false)));
    }
}
