//! Writing the stop's reason on each execution (`EXECUTION_DESCRIPTION`,
//! `append` by default): the entries `stopper_core::note` wrote, each
//! appended to its execution's description with `DescribePipelineExecution`
//! then `UpdatePipelineExecution`. Best effort, like the notifications: a
//! description that cannot be written is a `WARN` line (the error's class,
//! never SageMaker's text) and counted (`DescriptionsFailed`); the stops and
//! the reply stay as they are.

use aws_sdk_sagemaker::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sagemaker::Client;
use futures_util::stream::{self, StreamExt};
use stopper_core::note::{self, Append, Entry};
use stopper_core::notification::Context;
use stopper_core::report::Report;
use stopper_core::{ErrorKind, StopError};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::sagemaker;

/// Appends the reason to the description of each execution whose stop this
/// event requested, `concurrency` at a time, each by `by`; `now_ms`: the time
/// the entries give. Returns how many could not be written.
pub async fn append_reasons(
    client: &Client,
    report: &Report,
    context: Context<'_>,
    concurrency: usize,
    now_ms: u64,
    by: Instant,
) -> u64 {
    let at = DateTime::from_secs((now_ms / 1000) as i64)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default();
    let failed = stream::iter(note::entries(report, context, &at))
        .map(|entry| async move {
            let written = tokio::time::timeout_at(by, append_reason(client, &entry)).await;
            let failure = match written {
                Ok(Ok(Append::Write(_) | Append::AlreadyNoted)) => None,
                Ok(Ok(Append::NoRoom)) => Some((
                    None,
                    "its description leaves no room within 3,072 characters".to_owned(),
                )),
                Ok(Err((call, error))) => {
                    Some((Some(error.kind.error_type()), hint(call, error.kind)))
                }
                Err(_) => Some((
                    Some(ErrorKind::Unavailable.error_type()),
                    "no time was left before the reply deadline (it may yet be written)".to_owned(),
                )),
            };
            let Some((error_type, why)) = failure else {
                return false;
            };
            warn!(
                arn = entry.arn,
                error_type, "the stop's reason was not written on the execution: {why}"
            );
            true
        })
        .buffer_unordered(concurrency)
        .filter(|&failed| std::future::ready(failed))
        .count()
        .await;
    failed as u64
}

/// Appends one execution's entry to its description: what was done, or the
/// call that failed and why.
async fn append_reason(
    client: &Client,
    entry: &Entry<'_>,
) -> Result<Append, (&'static str, StopError)> {
    let current = sagemaker::description(client, entry.arn)
        .await
        .map_err(|e| ("DescribePipelineExecution", e))?;
    let append = note::append(current.as_deref().unwrap_or(""), entry);
    if let Append::Write(text) = &append {
        sagemaker::set_description(client, entry.arn, text)
            .await
            .map_err(|e| ("UpdatePipelineExecution", e))?;
    }
    debug!(arn = entry.arn, outcome = ?append, "the stop's reason on the execution");
    Ok(append)
}

/// What a failed call's class says to an operator (never SageMaker's text).
fn hint(call: &str, kind: ErrorKind) -> String {
    match kind {
        ErrorKind::Forbidden => {
            format!("{call} was denied: check the function's sagemaker:{call} permission")
        }
        ErrorKind::NotFound => "the execution is gone".to_owned(),
        ErrorKind::Conflict => format!("SageMaker refused {call} in the execution's current state"),
        ErrorKind::Throttled => format!("{call} was throttled"),
        ErrorKind::Validation => format!("SageMaker refused {call}'s request as invalid"),
        _ => format!("{call} failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_told_by_its_class_and_the_call_that_failed() {
        let call = "UpdatePipelineExecution";
        for (kind, says) in [
            (ErrorKind::Forbidden, "UpdatePipelineExecution was denied: check the function's sagemaker:UpdatePipelineExecution permission"),
            (ErrorKind::NotFound, "the execution is gone"),
            (ErrorKind::Conflict, "SageMaker refused UpdatePipelineExecution in the execution's current state"),
            (ErrorKind::Throttled, "UpdatePipelineExecution was throttled"),
            (ErrorKind::Validation, "SageMaker refused UpdatePipelineExecution's request as invalid"),
            (ErrorKind::Unavailable, "UpdatePipelineExecution failed"),
        ] {
            assert_eq!(hint(call, kind), says, "{kind:?}");
        }
    }
}
