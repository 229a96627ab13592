//! The metrics of one event, as a CloudWatch Embedded Metric Format (EMF)
//! record: one JSON line per event that CloudWatch Logs turns into metrics,
//! with no API call and no permission beyond writing the log.
//!
//! Written here as a pure function of the [`Answer`] rather than through the
//! `metrics` facade and `metrics_cloudwatch_embedded`: that crate keeps
//! counters in a process-global recorder and flushes them from its own
//! wrapper around `lambda_runtime::run` (its `lambda` feature also brings
//! `lambda_http`, which this function does not use), while the record wanted
//! here is one line per event computed from a value the handler already has.
//! As a function of data it is tested without a recorder, and fuzzed with the
//! rest of the core.
//!
//! Cardinality is bounded by design: the dimensions are the function's name and
//! the trigger (11 values), never a pipeline or an execution. Counts that are
//! zero are left out of the record, so a metric is only billed for the hours
//! in which it happened (`Events` is always there: one record, one event).

use serde::{Serialize, Serializer};

use crate::report::{Answer, Outcome};
use crate::trigger::Trigger;

/// The dimension sets: per function, and per function and trigger. The first
/// is what alarms watch (every trigger at once), the second what the
/// dashboard breaks down.
pub const DIMENSION_SETS: [&[&str]; 2] = [&["FunctionName"], &["FunctionName", "Trigger"]];

/// What one event came to, counted. Executions are counted by outcome;
/// `stops_failed` counts every failed target (an execution, a pipeline whose
/// listing failed, a guard run whose discovery failed), as `PartialFailure`
/// does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub refused: u64,
    pub ignored: u64,
    pub stops_requested: u64,
    pub already_finished: u64,
    pub already_stopping: u64,
    pub would_stop: u64,
    pub stops_failed: u64,
    /// Guard runs: executions over their limit, and pipelines whose limit
    /// tag could not be read.
    pub over_limit: u64,
    pub invalid_tags: u64,
    /// Executions `Stopping` for longer than the grace period.
    pub stuck_stopping: u64,
    /// Stop notifications that could not be published.
    pub notifications_failed: u64,
    /// Executions whose description could not be given the stop's reason.
    pub descriptions_failed: u64,
}

impl Tally {
    pub fn of(answer: &Answer) -> Tally {
        let mut tally = Tally::default();
        let report = match answer {
            Answer::Ignored(_) => {
                tally.ignored = 1;
                return tally;
            }
            Answer::Refused(_) => {
                tally.refused = 1;
                return tally;
            }
            Answer::Acted(report) => report,
        };
        for execution in &report.executions {
            let counter = match execution.outcome {
                Outcome::StopRequested => &mut tally.stops_requested,
                Outcome::AlreadyFinished { .. } => &mut tally.already_finished,
                Outcome::AlreadyStopping => &mut tally.already_stopping,
                Outcome::WouldStop => &mut tally.would_stop,
                Outcome::Failed(_) => continue,
            };
            *counter += 1;
        }
        tally.stops_failed = report.failure_count() as u64;
        if let Some(guard) = &report.guard {
            tally.over_limit = guard.over_limit as u64;
            tally.invalid_tags = guard.invalid_tags.len() as u64;
            tally.stuck_stopping = guard.stuck_stopping.len() as u64;
        }
        tally
    }

    /// Metric name and value, every metric (zeros included).
    pub fn metrics(&self) -> [(&'static str, u64); 13] {
        [
            ("Events", 1),
            ("Refused", self.refused),
            ("Ignored", self.ignored),
            ("StopsRequested", self.stops_requested),
            ("AlreadyFinished", self.already_finished),
            ("AlreadyStopping", self.already_stopping),
            ("WouldStop", self.would_stop),
            ("StopsFailed", self.stops_failed),
            ("ExecutionsOverLimit", self.over_limit),
            ("InvalidMaxRuntimeTags", self.invalid_tags),
            ("ExecutionsStuckStopping", self.stuck_stopping),
            ("NotificationsFailed", self.notifications_failed),
            ("DescriptionsFailed", self.descriptions_failed),
        ]
    }
}

/// One event's EMF record, and the context it is emitted in.
pub struct Record<'a> {
    pub namespace: &'a str,
    pub function_name: &'a str,
    pub trigger: Trigger,
    pub tally: Tally,
    /// Milliseconds since the epoch.
    pub timestamp_ms: u64,
    /// Properties: searchable in Logs Insights, not metrics.
    pub request_id: &'a str,
    pub caller: Option<&'a str>,
}

impl Record<'_> {
    /// The record as one line of JSON.
    pub fn to_line(&self) -> String {
        let present: Vec<(&str, u64)> = (self.tally.metrics().into_iter())
            .filter(|(_, value)| *value > 0)
            .collect();
        let line = Line {
            aws: Metadata {
                timestamp: self.timestamp_ms,
                cloud_watch_metrics: [Directive {
                    namespace: self.namespace,
                    dimensions: DIMENSION_SETS,
                    metrics: (present.iter())
                        .map(|(name, _)| Definition {
                            name,
                            unit: "Count",
                        })
                        .collect(),
                }],
            },
            function_name: self.function_name,
            trigger: self.trigger.name(),
            metrics: &present,
            request_id: self.request_id,
            caller: self.caller,
        };
        serde_json::to_string(&line).expect("an EMF record always serialises")
    }
}

/// The record as written: metadata, dimensions, the metrics that are not
/// zero (each a member named after it), then the properties.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Line<'a> {
    #[serde(rename = "_aws")]
    aws: Metadata<'a>,
    function_name: &'a str,
    trigger: &'static str,
    /// Members named by the data: a map, in the order of [`Tally::metrics`].
    #[serde(flatten, serialize_with = "members")]
    metrics: &'a [(&'a str, u64)],
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<&'a str>,
}

fn members<S: Serializer>(metrics: &&[(&str, u64)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(metrics.iter().copied())
}

/// The `_aws` member: when, and which members are metrics in which namespace.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata<'a> {
    timestamp: u64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: [&'a [&'a str]; 2],
    metrics: Vec<Definition<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Definition<'a> {
    name: &'a str,
    unit: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_NAMESPACE;
    use crate::error::{ErrorKind, StopError};
    use crate::guard::{GuardSummary, InvalidTag};
    use crate::report::{report, PipelineFailure};
    use crate::status::ExecutionStatus;
    use crate::trigger::HttpFlavor;
    use serde_json::{json, Value};

    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a";

    fn record(answer: &Answer, trigger: Trigger) -> Value {
        let line = Record {
            namespace: DEFAULT_NAMESPACE,
            function_name: "stopper",
            trigger,
            tally: Tally::of(answer),
            timestamp_ms: 1_700_000_000_123,
            request_id: "req-1",
            caller: Some("arn:aws:iam::123456789012:user/ops"),
        }
        .to_line();
        assert!(!line.contains('\n'), "one line: {line}");
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn each_outcome_is_counted_and_only_counts_that_happened_are_metrics() {
        let mut r = report(
            false,
            vec![
                (A, Outcome::StopRequested),
                (A, Outcome::StopRequested),
                (
                    A,
                    Outcome::AlreadyFinished {
                        status: ExecutionStatus::Succeeded,
                    },
                ),
                (
                    A,
                    Outcome::Failed(StopError::new(ErrorKind::Throttled, "t")),
                ),
            ],
        );
        r.pipeline_failures.push(PipelineFailure {
            pipeline: "q".into(),
            error: StopError::new(ErrorKind::Forbidden, "denied"),
        });
        let v = record(&Answer::Acted(r), Trigger::Http(HttpFlavor::HttpApi));
        assert_eq!(
            v["_aws"],
            json!({
                "Timestamp": 1_700_000_000_123u64,
                "CloudWatchMetrics": [{
                    "Namespace": "SageMakerPipelineStopper",
                    "Dimensions": [["FunctionName"], ["FunctionName", "Trigger"]],
                    "Metrics": [
                        {"Name": "Events", "Unit": "Count"},
                        {"Name": "StopsRequested", "Unit": "Count"},
                        {"Name": "AlreadyFinished", "Unit": "Count"},
                        {"Name": "StopsFailed", "Unit": "Count"},
                    ],
                }],
            })
        );
        assert_eq!(v["FunctionName"], "stopper");
        assert_eq!(v["Trigger"], "http-api");
        assert_eq!(v["Events"], 1);
        assert_eq!(v["StopsRequested"], 2);
        assert_eq!(v["AlreadyFinished"], 1);
        // The failed execution and the failed listing.
        assert_eq!(v["StopsFailed"], 2);
        assert_eq!(v["WouldStop"], Value::Null);
        assert_eq!(v["RequestId"], "req-1");
        assert_eq!(v["Caller"], "arn:aws:iam::123456789012:user/ops");
    }

    #[test]
    fn refused_ignored_and_dry_runs_are_counted_as_such() {
        let refused = record(
            &Answer::Refused(StopError::validation("bad")),
            Trigger::Direct,
        );
        assert_eq!(refused["Refused"], 1);
        assert_eq!(refused["Trigger"], "direct");
        assert_eq!(refused["StopsFailed"], Value::Null);
        let ignored = record(&Answer::Ignored("ok".into()), Trigger::AlarmSns);
        assert_eq!(ignored["Ignored"], 1);
        assert_eq!(ignored["Refused"], Value::Null);
        let dry = report(false, vec![(A, Outcome::WouldStop)]);
        let v = record(&Answer::Acted(dry), Trigger::ScheduledEvent);
        assert_eq!(v["WouldStop"], 1);
        assert_eq!(v["StopsRequested"], Value::Null);
    }

    #[test]
    fn a_guard_run_counts_executions_over_their_limit_and_unreadable_tags() {
        let mut r = report(false, vec![(A, Outcome::StopRequested)]);
        r.guard = Some(Box::new(GuardSummary {
            over_limit: 3,
            invalid_tags: vec![
                InvalidTag {
                    pipeline: "p".into(),
                    value: "4H".into(),
                    reason: "r".into(),
                },
                InvalidTag {
                    pipeline: "q".into(),
                    value: "".into(),
                    reason: "r".into(),
                },
            ],
            stuck_stopping: vec![crate::guard::StuckStop {
                arn: A.into(),
                token: "t".into(),
                stopping_for: std::time::Duration::from_secs(3600),
            }],
            error: Some(StopError::new(ErrorKind::Unavailable, "down")),
            ..GuardSummary::default()
        }));
        let tally = Tally::of(&Answer::Acted(r));
        assert_eq!(tally.over_limit, 3);
        assert_eq!(tally.invalid_tags, 2);
        assert_eq!(tally.stuck_stopping, 1);
        // The failed discovery is a failed target.
        assert_eq!(tally.stops_failed, 1);
    }

    #[test]
    fn a_failed_notification_or_description_is_a_metric() {
        let mut tally = Tally::of(&Answer::Ignored("x".into()));
        tally.notifications_failed = 2;
        tally.descriptions_failed = 1;
        let line = Record {
            namespace: "Team/Stopper",
            function_name: "f",
            trigger: Trigger::Sns,
            tally,
            timestamp_ms: 1,
            request_id: "r",
            caller: None,
        }
        .to_line();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["NotificationsFailed"], 2);
        assert_eq!(v["DescriptionsFailed"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "Team/Stopper"
        );
        assert!(v.get("Caller").is_none());
    }
}
