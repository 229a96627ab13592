//! The Lambda adapter: one invocation from the runtime's context and event
//! to its reply. The event is prepared (decoded and planned) by the core,
//! acted on by the [`Engine`], and shaped for its trigger by the core.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sagemaker::Client;
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::value::RawValue;
use stopper_core::arn::Scope;
use stopper_core::chat::chat_notice;
use stopper_core::config::{Config, Operations, TopicFormat};
use stopper_core::metrics::{Record, Tally};
use stopper_core::notification::{self, Notice};
use stopper_core::plan::{prepare, Next};
use stopper_core::reply::{self, Reply};
use stopper_core::report::Answer;
use stopper_core::trigger::{Cause, Trigger};
use stopper_core::{ErrorKind, StopError};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::engine::{Engine, Progress};
use crate::notify::Notifier;

/// Time kept back from the invocation's deadline to send the reply. A call
/// still running then is abandoned and reported as `UpstreamUnavailable`, so
/// the caller hears back instead of seeing the function time out.
pub const REPLY_MARGIN: Duration = Duration::from_millis(500);

/// The longest the reports that follow the stops (the reasons written on the
/// executions, the notifications) may take when the invocation has time to
/// spare: they come before the reply.
const MAX_REPORT_TIME: Duration = Duration::from_secs(10);

/// What the runtime says about one invocation.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// Seeds derived tokens when the trigger has no identity of its own.
    pub request_id: String,
    /// The function's partition, account and region, from the invoked
    /// function ARN; `None` when it cannot be read (as under `cargo lambda
    /// watch`): the configured scope then applies, never no scope at all.
    pub scope: Option<Scope>,
    /// When SageMaker calls must be done by (less the reply margin).
    pub deadline: Option<Instant>,
    /// Told what the engine finds and does: the CLI's progress display on a
    /// terminal. The function has none.
    pub progress: Option<Arc<dyn Progress>>,
}

/// The function: its SageMaker client and configuration, built once at init.
pub struct Stopper {
    client: Client,
    config: Config,
    /// Where targets must be when the invocation does not say: the configured
    /// region's partition and region, and the account when it is known.
    home: Scope,
    /// A configuration that cannot work (an endpoint that is not a URL): every
    /// event that would call SageMaker gets this error instead.
    unusable: Option<StopError>,
    /// The function's metrics and notifications (the command line has none).
    operations: Operations,
    notifier: Notifier,
}

/// What one event came to, with what the function needs to report it.
struct Answered {
    trigger: Trigger,
    /// What set the event off, when it says (an alarm, a scheduled rule).
    cause: Option<Cause>,
    caller: Option<String>,
    answer: Answer,
    /// When calls (and notifications) must be done by.
    deadline: Option<Instant>,
}

impl Stopper {
    /// `home`: the scope of the configured region (and account, if known).
    /// `unusable`: why the configuration cannot reach SageMaker, if it cannot.
    pub fn new(
        client: Client,
        config: Config,
        home: Scope,
        unusable: Option<StopError>,
    ) -> Stopper {
        info!(
            scope = home.describe().as_str(),
            "targets must be in the invoked function's partition, region and account, or, when its ARN \
             cannot be read, in this scope"
        );
        Stopper {
            client,
            config,
            home,
            unusable,
            // No metrics, no notifications: `with_operations` sets them.
            operations: Operations::default(),
            notifier: Notifier::default(),
        }
    }

    /// The function's metrics (`METRICS_NAMESPACE`) and stop notifications.
    pub fn with_operations(mut self, operations: Operations, notifier: Notifier) -> Stopper {
        self.operations = operations;
        self.notifier = notifier;
        self
    }

    /// The Lambda handler. HTTP triggers always get an HTTP response (errors
    /// included); every other trigger gets a JSON reply or a failed invocation
    /// whose `errorType` names the error class. The event arrives as its raw
    /// JSON text and is decoded into types, never held as a `Value` tree.
    pub async fn handle(&self, event: LambdaEvent<Box<RawValue>>) -> Result<Reply, Diagnostic> {
        let (payload, context) = event.into_parts();
        let invocation = Invocation {
            request_id: context.request_id.clone(),
            scope: Scope::from_function_arn(&context.invoked_function_arn),
            deadline: deadline(&context),
            progress: None,
        };
        let answered = self.answer(payload.get(), &invocation).await;
        drop(payload);
        self.notify_and_count(&answered, &invocation.request_id)
            .await;
        reply::shape(answered.trigger, answered.answer).map_err(|error| Diagnostic {
            error_type: error.kind.error_type().to_owned(),
            error_message: error.message,
        })
    }

    /// The function's account of an event beyond its reply: the reason on
    /// each execution it stopped and the notices of what it stopped, written
    /// and published, then its EMF record, written.
    async fn notify_and_count(&self, answered: &Answered, request_id: &str) {
        let caller = answered.caller.as_deref();
        let now_ms = epoch_ms();
        let mut tally = Tally::of(&answered.answer);
        if let Answer::Acted(report) = &answered.answer {
            let context = notification::Context {
                trigger: answered.trigger,
                cause: answered.cause.as_ref(),
                caller,
                request_id,
                function_name: &self.operations.function_name,
            };
            let notices = notification::notices(report, context);
            // The topic gets the same notices, or one chat notification.
            let chat: Vec<Notice>;
            let topic = match self.operations.topic_format {
                TopicFormat::Json => &notices,
                TopicFormat::Chat => {
                    chat = chat_notice(report, context).into_iter().collect();
                    &chat
                }
            };
            let cap = Instant::now() + MAX_REPORT_TIME;
            let by = answered.deadline.map_or(cap, |d| d.min(cap));
            // The reasons on the executions and the notifications, at once.
            let reasons = async {
                if !self.operations.append_to_description {
                    return 0;
                }
                let concurrency = self.config.max_concurrency;
                crate::note::append_reasons(&self.client, report, context, concurrency, now_ms, by)
                    .await
            };
            let published = self.notifier.publish(&notices, topic, by);
            (tally.descriptions_failed, tally.notifications_failed) =
                tokio::join!(reasons, published);
        }
        if let Some(namespace) = &self.operations.metrics_namespace {
            emit(&Record {
                namespace,
                function_name: &self.operations.function_name,
                trigger: answered.trigger,
                tally,
                timestamp_ms: now_ms,
                request_id,
                caller,
            });
        }
    }

    /// One event, from its JSON text to what it came to; the CLI calls this
    /// too, and renders the answer itself.
    pub async fn respond(&self, payload: &str, invocation: &Invocation) -> (Trigger, Answer) {
        let answered = self.answer(payload, invocation).await;
        (answered.trigger, answered.answer)
    }

    async fn answer(&self, payload: &str, invocation: &Invocation) -> Answered {
        let scope = invocation.scope.as_ref().unwrap_or_else(|| {
            warn!(
                scope = self.home.describe().as_str(),
                "the invoked function ARN gives no account and region: using the configured scope"
            );
            &self.home
        });
        let prepared = prepare(payload, &self.config, scope, &invocation.request_id);
        let trigger = prepared.trigger;
        let reply_by = prepared
            .front_end
            .map(|front_end| front_end.reply_by(epoch_ms()));
        let deadline = front_end_deadline(invocation.deadline, reply_by);
        let answer = match (prepared.next, &self.unusable) {
            (Next::Answer(answer), _) => answer,
            // Planned (so bad input is still told as such), but the
            // configuration cannot reach SageMaker: say what is wrong.
            (Next::Stop(_), Some(problem)) => Answer::Refused(problem.clone()),
            // API Gateway has (all but) given up on this request: its caller
            // gets a 503 from it whatever happens here, so nothing is started
            // that the reply could not report.
            (Next::Stop(_), None) if deadline.is_some_and(|d| d <= Instant::now()) => {
                Answer::Refused(StopError::new(
                    ErrorKind::Unavailable,
                    "no time was left before the reply deadline (API Gateway's 29 s integration \
                     timeout, or the function's own) to call SageMaker: nothing was called; retry",
                ))
            }
            (Next::Stop(plan), None) => {
                let engine = Engine {
                    client: &self.client,
                    max_concurrency: self.config.max_concurrency,
                    trigger,
                    deadline,
                    progress: invocation.progress.as_deref(),
                };
                Answer::Acted(engine.run(&plan).await)
            }
        };
        log_answer(trigger, prepared.caller.as_deref(), &answer);
        Answered {
            trigger,
            cause: prepared.cause,
            caller: prepared.caller,
            answer,
            deadline,
        }
    }
}

/// The log line of an event that was not acted on (the engine logs one line
/// per target of an event that was).
fn log_answer(trigger: Trigger, caller: Option<&str>, answer: &Answer) {
    match answer {
        Answer::Ignored(reason) => info!(
            trigger = trigger.name(),
            caller,
            reason = reason.as_str(),
            "ignored"
        ),
        Answer::Refused(e) if e.kind == ErrorKind::Configuration => warn!(
            trigger = trigger.name(),
            caller,
            error_type = e.kind.error_type(),
            error = e.message.as_str(),
            "cannot call SageMaker as configured"
        ),
        Answer::Refused(e) => warn!(
            trigger = trigger.name(),
            caller,
            error_type = e.kind.error_type(),
            error = e.message.as_str(),
            "refused before any SageMaker call"
        ),
        Answer::Acted(_) => {}
    }
}

/// Writes one EMF record to stdout as one line, in one write: CloudWatch Logs
/// reads it as one log event, whatever else the process logs.
fn emit(record: &Record<'_>) {
    use std::io::Write as _;
    let mut line = record.to_line();
    line.push('\n');
    if let Err(e) = std::io::stdout().lock().write_all(line.as_bytes()) {
        warn!(error = %e, "the metrics record could not be written");
    }
}

/// Now, in milliseconds since the epoch (0 if the clock is before it).
fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The instant by which SageMaker calls must be done, from the invocation's
/// deadline (milliseconds since the epoch), less [`REPLY_MARGIN`]. `None` when
/// the runtime gave no usable deadline: 0, or a value that cannot be a time
/// since the epoch (`cargo lambda watch` sends a relative `600000`); the SDK's
/// own timeouts then bound each call.
fn deadline(context: &Context) -> Option<Instant> {
    // 2001-09-09T01:46:40Z: any real deadline is later than this.
    const EARLIEST_EPOCH_MS: u64 = 1_000_000_000_000;
    if context.deadline < EARLIEST_EPOCH_MS {
        tracing::debug!(
            deadline_ms = context.deadline,
            "no usable invocation deadline"
        );
        return None;
    }
    let remaining = Duration::from_millis(context.deadline.saturating_sub(epoch_ms()));
    Some(Instant::now() + remaining.saturating_sub(REPLY_MARGIN))
}

/// The invocation's deadline, brought forward to the front end's: API Gateway
/// answers 503 itself once its integration timeout has passed, so calls and
/// `Wait` must end, and the reply be sent, before then.
fn front_end_deadline(
    deadline: Option<Instant>,
    reply_by_epoch_ms: Option<u64>,
) -> Option<Instant> {
    let Some(reply_by) = reply_by_epoch_ms else {
        return deadline;
    };
    let left =
        Duration::from_millis(reply_by.saturating_sub(epoch_ms())).saturating_sub(REPLY_MARGIN);
    let front_end = Instant::now() + left;
    Some(deadline.map_or(front_end, |d| d.min(front_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(deadline: u64) -> Context {
        let mut context = Context::default();
        context.deadline = deadline;
        context
    }

    #[test]
    fn the_deadline_keeps_a_margin_to_reply() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let at = deadline(&context(now_ms + 10_000)).unwrap();
        let left = at - Instant::now();
        assert!(
            left <= Duration::from_millis(9_500) && left > Duration::from_millis(9_000),
            "{left:?}"
        );
        let past = deadline(&context(now_ms - 1_000)).unwrap();
        assert!(past <= Instant::now());
    }

    #[test]
    fn a_deadline_that_is_not_an_epoch_time_is_ignored() {
        assert!(deadline(&context(0)).is_none());
        assert!(deadline(&context(600_000)).is_none());
    }
}
