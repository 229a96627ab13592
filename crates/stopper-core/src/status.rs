//! An execution's status, as SageMaker reports it: one type for the
//! statuses the decisions depend on, which keeps any other value as sent.

use std::fmt;
use std::time::SystemTime;

/// `PipelineExecutionStatus`. SageMaker may add statuses: one this build
/// does not know is kept as `Other`, treated as still running (never as
/// finished, so it is not reported as ended when it may not be), and shown
/// as SageMaker spelled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStatus {
    Executing,
    Stopping,
    Stopped,
    Failed,
    Succeeded,
    CompletedWithFailures,
    /// A status this build does not know, or none (`"Unknown"`).
    Other(String),
}

impl ExecutionStatus {
    /// SageMaker's spelling, or the value it sent.
    pub fn parse(status: &str) -> ExecutionStatus {
        match status {
            "Executing" => ExecutionStatus::Executing,
            "Stopping" => ExecutionStatus::Stopping,
            "Stopped" => ExecutionStatus::Stopped,
            "Failed" => ExecutionStatus::Failed,
            "Succeeded" => ExecutionStatus::Succeeded,
            "CompletedWithFailures" => ExecutionStatus::CompletedWithFailures,
            other => ExecutionStatus::Other(other.to_owned()),
        }
    }

    /// A described execution without a status.
    pub fn unknown() -> ExecutionStatus {
        ExecutionStatus::Other("Unknown".to_owned())
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Executing => "Executing",
            ExecutionStatus::Stopping => "Stopping",
            ExecutionStatus::Stopped => "Stopped",
            ExecutionStatus::Failed => "Failed",
            ExecutionStatus::Succeeded => "Succeeded",
            ExecutionStatus::CompletedWithFailures => "CompletedWithFailures",
            ExecutionStatus::Other(other) => other,
        }
    }

    /// The execution has ended and cannot be stopped.
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Stopped
                | ExecutionStatus::Failed
                | ExecutionStatus::Succeeded
                | ExecutionStatus::CompletedWithFailures
        )
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One execution as `ListPipelineExecutions` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedExecution {
    pub arn: String,
    pub status: ExecutionStatus,
    /// When it started; `None` when SageMaker did not say.
    pub started: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_reads_back_as_sagemaker_spells_it_and_only_the_ended_ones_are_finished() {
        for (text, finished) in [
            ("Executing", false),
            ("Stopping", false),
            ("Stopped", true),
            ("Failed", true),
            ("Succeeded", true),
            ("CompletedWithFailures", true),
            ("Unknown", false),
            ("Paused", false),
            ("", false),
            ("stopped", false),
        ] {
            let status = ExecutionStatus::parse(text);
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(status.is_finished(), finished, "{text}");
        }
        assert_eq!(
            ExecutionStatus::parse("Paused"),
            ExecutionStatus::Other("Paused".into())
        );
        assert_eq!(ExecutionStatus::unknown().as_str(), "Unknown");
        assert!(!ExecutionStatus::unknown().is_finished());
    }
}
