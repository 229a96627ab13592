//! The guard's discovery, for the engine: the tagged pipelines, the running
//! and stopping executions, the pipelines' own tags, then the targets in
//! order; and the run's summary line.

use std::time::SystemTime;

use stopper_core::decide::Look;
use stopper_core::guard::{GuardPolicy, GuardRun, GuardSummary, Judged, RunningExecution};
use stopper_core::plan::{Plan, Target};
use stopper_core::report::{ExecutionReport, Outcome};
use stopper_core::trigger::Trigger;
use stopper_core::StopError;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{bounded, Engine, Work};
use crate::sagemaker;

impl Engine<'_> {
    /// The guard's discovery: the tagged pipelines, every running
    /// execution (every page, before any is judged: an exempt pipeline must
    /// be known as exempt, and a stopped execution leaves the `Executing`
    /// filter, so stopping while paging could skip executions), and the tags
    /// of the untagged pipelines the default would stop something of. The
    /// searches get half the time left, so that what they found is stopped,
    /// the longest-running first, with the rest.
    pub(super) async fn guard(
        &self,
        plan: &Plan,
        policy: &GuardPolicy,
        found: mpsc::Sender<Work>,
    ) -> GuardSummary {
        let mut run = GuardRun::new(policy, SystemTime::now(), plan.options.dry_run);
        let searches_until = self.half_the_time_left();
        let tagged = bounded(
            searches_until,
            sagemaker::search_tagged_pipelines(self.client, &policy.tag_key),
        )
        .await;
        match tagged {
            Ok(pipelines) => pipelines.iter().for_each(|p| run.add_tagged(p)),
            Err(error) => {
                // Without every tag, an exempt pipeline could be taken for an
                // untagged one and get the default: judge nothing.
                self.discovery_failed(&mut run, error, "tagged pipelines");
                return run.finish();
            }
        }
        let wanted = run.lists_executions();
        let executions = self
            .search_executions(&mut run, wanted, "Executing", searches_until)
            .await;
        // Executions asked to stop that still are not, past the grace period.
        let wanted = run.lists_stopping();
        let stopping = self
            .search_executions(&mut run, wanted, "Stopping", searches_until)
            .await;
        // The own tags of the pipelines the guard would act on (the index
        // may lag a tag change, and misses pipelines): read within half of
        // the time then left; one not read is skipped, and the stops of the
        // others go ahead with the rest.
        let to_confirm = run.to_confirm(&executions, &stopping);
        let tags_until = self.half_the_time_left();
        let tags = self
            .call_each(to_confirm.into_iter(), |pipeline| async move {
                let tag = bounded(
                    tags_until,
                    sagemaker::pipeline_tag(self.client, &pipeline, &policy.tag_key),
                )
                .await;
                (pipeline, tag)
            })
            .await;
        for (pipeline, tag) in tags {
            run.add_confirmed(&pipeline, tag);
        }
        let stuck: Vec<Target> = stopping
            .iter()
            .filter_map(|execution| run.judge_stopping(execution))
            .map(|stuck| Target {
                arn: stuck.arn,
                token: stuck.token,
            })
            .collect();
        let mut over_limit = Vec::new();
        for execution in executions {
            if let Judged::Stop { token, run } = run.judge(&execution) {
                info!(
                    trigger = self.trigger.name(),
                    arn = execution.arn.as_str(),
                    max_runtime = %run.limit.max_runtime,
                    limit_source = run.limit.source.name(),
                    runtime_minutes = run.runtime.as_secs() / 60,
                    "over its limit"
                );
                let target = Target {
                    arn: execution.arn,
                    token,
                };
                over_limit.push((target, run));
            }
        }
        over_limit.sort_by_key(|(_, run)| std::cmp::Reverse(run.runtime));
        self.tell(|p| p.found(over_limit.len() + stuck.len()));
        // Then the stuck ones: looked at (still `Stopping`: not stopped
        // again), their blocking steps listed and, with `Force`, failed.
        let work = over_limit
            .into_iter()
            .map(|(target, run)| Work::Act(target, Some(Look::Indexed), Some(run)))
            .chain(
                stuck
                    .into_iter()
                    .map(|target| Work::Act(target, Some(Look::Stuck), None)),
            );
        for work in work {
            if found.send(work).await.is_err() {
                break;
            }
        }
        run.finish()
    }

    /// The account's executions in `status`, when `wanted`, searched until
    /// `until`; a search that fails is the run's error, and what it found
    /// before is kept.
    async fn search_executions(
        &self,
        run: &mut GuardRun<'_>,
        wanted: bool,
        status: &str,
        until: Option<Instant>,
    ) -> Vec<RunningExecution> {
        let mut found = Vec::new();
        if wanted {
            let searched = bounded(
                until,
                sagemaker::search_executions(self.client, status, &mut found),
            )
            .await;
            if let Err(error) = searched {
                let searched = format!("{} executions", status.to_ascii_lowercase());
                self.discovery_failed(run, error, &searched);
            }
        }
        found
    }

    /// A search of the guard's discovery failed: logged, and kept as the run's error.
    fn discovery_failed(&self, run: &mut GuardRun, error: StopError, searched: &str) {
        warn!(
            trigger = self.trigger.name(),
            searched,
            error_type = error.kind.error_type(),
            error = error.message.as_str(),
            "guard discovery failed"
        );
        run.failed(error);
    }
}

/// A guard run's summary line, and a WARN line per tag that cannot be read
/// (the pipeline is left alone) and per guarded pipeline skipped.
pub(super) fn log_guard(trigger: Trigger, summary: &GuardSummary, executions: &[ExecutionReport]) {
    for tag in &summary.invalid_tags {
        warn!(
            trigger = trigger.name(),
            pipeline = tag.pipeline.as_str(),
            tag_key = summary.tag_key.as_str(),
            value = tag.value.as_str(),
            reason = tag.reason.as_str(),
            "max-runtime tag cannot be read; the pipeline is left alone"
        );
    }
    for skipped in summary.skipped.iter().chain(&summary.not_allowed) {
        warn!(
            trigger = trigger.name(),
            pipeline = skipped.pipeline.as_str(),
            reason = skipped.reason.as_str(),
            "guarded pipeline skipped"
        );
    }
    for stuck in &summary.stuck_stopping {
        warn!(
            trigger = trigger.name(),
            arn = stuck.arn.as_str(),
            stopping_minutes = stuck.stopping_for.as_secs() / 60,
            "execution stuck stopping: a callback step that is not answered holds its stop"
        );
    }
    info!(
        trigger = trigger.name(),
        tag_key = summary.tag_key.as_str(),
        pipelines_examined = summary.pipelines_examined,
        pipelines_guarded = summary.pipelines_guarded,
        pipelines_exempt = summary.pipelines_exempt,
        pipelines_skipped = summary.skipped.len(),
        pipelines_not_allowed = summary.not_allowed.len(),
        stuck_stopping = summary.stuck_stopping.len(),
        invalid_tags = summary.invalid_tags.len(),
        executions_examined = summary.executions_examined,
        over_limit = summary.over_limit,
        stop_requested = executions
            .iter()
            .filter(|e| e.outcome == Outcome::StopRequested)
            .count(),
        failed = executions.iter().filter(|e| e.error().is_some()).count(),
        "guard run"
    );
}
