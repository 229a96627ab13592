//! Writing the stop's reason on each execution (`EXECUTION_DESCRIPTION`,
//! `append` by default): the entries `stopper_core::note` wrote, each
//! appended to its execution's description with `DescribePipelineExecution`
//! then `UpdatePipelineExecution`. Best effort, like the notifications: a
//! description that cannot be written is a `WARN` line (the error's class,
//! never SageMaker's text) and counted (`DescriptionsFailed`); the stops and
//! the reply stay as they are.

use std::time::Duration;

use aws_sdk_sagemaker::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, StreamExt};
use stopper_core::note::{self, Append};
use stopper_core::notification::Context;
use stopper_core::report::Report;
use stopper_core::StopError;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::sagemaker;

/// The longest the descriptions may take when the invocation has time to
/// spare: they are written after the stops, before the reply.
const MAX_NOTE_TIME: Duration = Duration::from_secs(10);

/// Appends the reason to the description of each execution whose stop this
/// event requested, `concurrency` at a time, by `deadline` (or within
/// [`MAX_NOTE_TIME`]); returns how many could not be written.
pub async fn append_reasons(
    client: &Client,
    report: &Report,
    context: Context<'_>,
    concurrency: usize,
    deadline: Option<Instant>,
) -> u64 {
    let at = DateTime::from_secs(DateTime::from(std::time::SystemTime::now()).secs())
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    let entries = note::entries(report, context, &at);
    if entries.is_empty() {
        return 0;
    }
    let count = entries.len() as u64;
    let by = Instant::now() + MAX_NOTE_TIME;
    let by = deadline.map_or(by, |d| d.min(by));
    let writes = stream::iter(entries)
        .map(|(arn, entry)| append_reason(client, arn, entry, context.request_id))
        .buffer_unordered(concurrency)
        .filter(|written| std::future::ready(!written))
        .count();
    match tokio::time::timeout_at(by, writes).await {
        Ok(failed) => failed as u64,
        Err(_) => {
            warn!(
                executions = count,
                "the stop's reason was not written on the executions: no time was left before the \
                 reply deadline"
            );
            count
        }
    }
}

/// Appends one execution's entry; whether it is there now.
async fn append_reason(client: &Client, arn: &str, entry: String, request_id: &str) -> bool {
    let appended = async {
        let current = sagemaker::description(client, arn).await?;
        let append = note::append(current.as_deref().unwrap_or(""), &entry, request_id);
        if let Append::Write(text) = &append {
            sagemaker::set_description(client, arn, text).await?;
        }
        Ok::<_, StopError>(append)
    };
    match appended.await {
        Ok(Append::Write(_)) => debug!(
            arn,
            "the stop's reason appended to the execution's description"
        ),
        Ok(Append::AlreadyNoted) => debug!(arn, "the stop's reason is on the execution already"),
        Ok(Append::NoRoom) => {
            warn!(
                arn,
                "the stop's reason was not written on the execution: its description leaves no \
                 room within 3,072 characters"
            );
            return false;
        }
        // The message is built from the error's code, never SageMaker's text.
        Err(error) => {
            warn!(
                arn,
                error_type = error.kind.error_type(),
                error = error.message.as_str(),
                "the stop's reason was not written on the execution: check the function's \
                 sagemaker:UpdatePipelineExecution permission"
            );
            return false;
        }
    }
    true
}
